"""Texts only to mobiles of TEXT_REGIONS, a few per number a day, a ceiling per hour (SMS pumping).

Calls are played with the Caller through signed webhooks; the worker sends to
the fake Twilio API, and what reached it is what counts.
"""
from __future__ import annotations

import pytest
from conftest import make_app
from prometheus_client.parser import text_string_to_metric_families
from test_followup_calls import ASK_WORDS, FAILED_WORDS, KEYED, KEYED_E164, QUEUED_WORDS, WITHHELD, to_finish

from ivr import config
from ivr.texts import worker

NIGERIA_MOBILE = "+2348031234567"
NIGERIA_KEYED = "002348031234500"
CANNOT_TEXT = "we can only send texts to UK mobile numbers"
TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def settings(tmp_path, database_url, twilio_settings):
    def make(**overrides):
        return make_app(tmp_path, DATABASE_URL=database_url, METRICS_TOKEN=TOKEN,
                        **{**twilio_settings, **overrides})
    return make


@pytest.fixture
def app(settings):
    return settings()


def send(app) -> int:
    with app.app_context():
        return worker.Worker(app).run_once()


def say_yes(call, number):
    caller = call(number)
    to_finish(caller)
    return caller, caller.press("1")


def test_a_foreign_caller_id_gets_no_text_and_hears_why(call, app, fake_twilio):
    caller, turn = say_yes(call, NIGERIA_MOBILE)
    assert CANNOT_TEXT in turn.text and ASK_WORDS in turn.text
    assert turn.text.index(CANNOT_TEXT) < turn.text.index(ASK_WORDS)
    caller.hang_up()
    assert send(app) == 0
    assert fake_twilio.messages == []


def test_a_foreign_caller_can_key_in_a_uk_mobile(call, app, fake_twilio):
    caller, _ = say_yes(call, NIGERIA_MOBILE)
    caller.press(KEYED)
    assert QUEUED_WORDS in caller.press("1").text
    caller.hang_up()
    send(app)
    assert [m["to"] for m in fake_twilio.messages] == [KEYED_E164]


def test_a_keyed_in_foreign_mobile_is_refused_with_the_reason(call, app, fake_twilio):
    caller, _ = say_yes(call, WITHHELD)
    turn = caller.press(NIGERIA_KEYED)
    assert CANNOT_TEXT in turn.text and not turn.ended
    assert ASK_WORDS in turn.text
    caller.hang_up()
    assert send(app) == 0
    assert fake_twilio.messages == []


def test_text_regions_lets_the_operator_allow_a_country(settings, fake_twilio):
    app = settings(TEXT_REGIONS=("GB", "NG"))
    caller, turn = say_yes(lambda n: _dial(app, n), NIGERIA_MOBILE)
    assert QUEUED_WORDS in turn.text
    caller.hang_up()
    send(app)
    assert [m["to"] for m in fake_twilio.messages] == [NIGERIA_MOBILE]


def _dial(app, number):
    from ivr.call.caller import Caller, FlaskTransport

    caller = Caller(FlaskTransport(app), from_number=number)
    caller.dial()
    return caller


def test_a_number_gets_at_most_a_few_texts_a_day(settings, fake_twilio):
    app = settings(TEXTS_PER_NUMBER_PER_DAY=2)
    heard = []
    for _ in range(3):
        caller, turn = say_yes(lambda n: _dial(app, n), "+447400123456")
        heard.append(turn.text)
        caller.hang_up()
    assert QUEUED_WORDS in heard[0] and QUEUED_WORDS in heard[1]
    assert FAILED_WORDS in heard[2]
    send(app)
    assert len(fake_twilio.messages) == 2


def scrape(app) -> dict[str, float]:
    page = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    return {s.name: s.value for f in text_string_to_metric_families(page.get_data(as_text=True))
            for s in f.samples if not s.labels}


def test_the_hourly_ceiling_refuses_texts_and_says_so(settings, fake_twilio):
    app = settings(TEXTS_PER_HOUR=2)
    assert scrape(app)["calm_line_text_ceiling_reached"] == 0
    assert app.test_client().get("/readyz").get_json()["warnings"] == []
    heard = []
    for number in ("+447400123456", "+447400123457", "+447400123458"):
        caller, turn = say_yes(lambda n: _dial(app, n), number)
        heard.append(turn.text)
        caller.hang_up()
    assert [QUEUED_WORDS in text for text in heard] == [True, True, False]
    assert FAILED_WORDS in heard[2]
    send(app)
    assert len(fake_twilio.messages) == 2
    figures = scrape(app)
    assert figures["calm_line_text_ceiling_reached"] == 1
    assert figures["calm_line_texts_last_hour"] == 2
    ready = app.test_client().get("/readyz").get_json()
    assert any("TEXTS_PER_HOUR" in warning for warning in ready["warnings"])


@pytest.mark.parametrize("name, value", [("TEXT_REGIONS", "GB,XX"), ("TEXT_REGIONS", ","),
                                         ("TEXTS_PER_NUMBER_PER_DAY", "0"),
                                         ("TEXTS_PER_HOUR", "lots")])
def test_bad_limits_are_refused_naming_the_setting(name, value):
    with pytest.raises(config.SettingError, match=name):
        config.from_env({name: value})


def test_text_regions_default_to_the_default_region():
    assert config.from_env({"DEFAULT_REGION": "ie"})["TEXT_REGIONS"] == ("IE",)
    assert config.from_env({"TEXT_REGIONS": "gb, je"})["TEXT_REGIONS"] == ("GB", "JE")
