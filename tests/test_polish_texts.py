"""Replies to texts in the caller's language (issue 18): HELP, POMOC, STOP, START and
anything else are answered in the language of the latest text the line sent or queued to
that number, within the segment limit; an unknown number is answered in English."""
from __future__ import annotations

import dataclasses
import uuid
import xml.etree.ElementTree as ET
from types import MappingProxyType

import pytest
import sqlalchemy as sa

from ivr import store
from ivr.call.caller import Caller, FlaskTransport
from ivr.call.flow import ALL_OPTIONAL
from ivr.config import REPO_ROOT
from ivr.flowtools.validate import load
from ivr.texts import body as textbody
from ivr.texts import keywords, outbox

MOBILE = "+447400123456"  # the caller's number in every test call
OTHER = "+447400999888"


def _reply(twilio_post, body: str, number: str = MOBILE) -> str:
    response = twilio_post("/sms/inbound", {
        "From": number, "To": "+441632960001", "Body": body,
        "MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    [message] = ET.fromstring(response.get_data(as_text=True)).findall("Message")
    return message.text


def _call_with_text(app, polish: bool, simulated: bool = False) -> None:
    """A whole call from MOBILE that says yes to the text (in Polish after key 7)."""
    caller = Caller(FlaskTransport(app), from_number=MOBILE, simulated=simulated)
    caller.dial()
    if polish:
        caller.press("7")
    caller.press("4")  # talk
    caller.press("#")
    caller.press("1")  # yes, a text
    with app.app_context(), store.read() as conn:
        rows = conn.execute(sa.select(store.outbox.c.language)).all()
    assert rows[-1].language == ("pl-PL" if polish else "en-GB")


def test_a_polish_caller_who_said_yes_to_a_text_gets_polish_replies(app, twilio_post):
    _call_with_text(app, polish=True)
    helped = _reply(twilio_post, "POMOC")
    assert helped.startswith("Calm Line: porady dla rodziców i opiekunów.")
    assert "Niebezpieczeństwo? Dzwoń pod 999" in helped and "0808 800 5000" in helped
    assert textbody.segments(helped) <= textbody.MAX_SEGMENTS  # letters: 3 of UCS-2
    assert _reply(twilio_post, "help").startswith("Calm Line: porady")  # the English word too
    assert _reply(twilio_post, "dziękuję").startswith("Ten numer nie czyta odpowiedzi.")
    assert _reply(twilio_post, "STOP") == "Calm Line nie wyśle już SMS-ów. Odpisz START, by je wznowić."
    with app.app_context():
        assert outbox.number_opted_out(MOBILE)  # the STOP counted, as in English
    assert _reply(twilio_post, "START").startswith("SMS-y od Calm Line są znów włączone.")
    with app.app_context():
        assert not outbox.number_opted_out(MOBILE)


def test_an_english_caller_and_an_unknown_number_get_english(app, twilio_post):
    assert _reply(twilio_post, "HELP", OTHER).startswith("Calm Line: advice for parents")
    assert _reply(twilio_post, "STOP", OTHER).startswith("You will get no more texts")
    _call_with_text(app, polish=False)
    assert _reply(twilio_post, "HELP").startswith("Calm Line: advice for parents")


def test_pomoc_is_answered_in_polish_even_from_a_number_the_line_never_texted(app, twilio_post):
    assert _reply(twilio_post, "pomoc", OTHER).startswith("Calm Line: porady dla rodziców")


def test_the_latest_text_decides(app, twilio_post):
    _call_with_text(app, polish=True)
    _call_with_text(app, polish=False)
    assert _reply(twilio_post, "HELP").startswith("Calm Line: advice for parents")


def test_a_practice_call_does_not_change_the_language_of_the_replies(app, twilio_post):
    _call_with_text(app, polish=True, simulated=True)
    assert _reply(twilio_post, "HELP").startswith("Calm Line: advice for parents")


def test_replies_go_without_polish_letters_when_the_letters_would_break_the_limit():
    """As the text after a call (body.compose_parts): the letters when they fit one text of
    TEXT_MAX_SEGMENTS, else the same words without them. HELP in Polish with its letters is
    3 UCS-2 segments: within the default 3; over a limit of 2, so it goes without them."""
    first, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts", dict(ALL_OPTIONAL))
    polish = first.in_language("pl-PL")
    marked = textbody.reply(polish, "help_reply")
    assert "Niebezpieczeństwo" in marked and textbody.segments(marked) == 3
    tight = dataclasses.replace(polish, settings=MappingProxyType(
        {**polish.settings, "TEXT_MAX_SEGMENTS": 2}))
    bare = textbody.reply(tight, "help_reply")
    assert bare.startswith("Calm Line: porady dla rodzicow i opiekunow.")
    assert textbody.is_gsm7(bare) and textbody.segments(bare) == 1
    stopped = textbody.reply(tight, "stopped_reply")  # 60 characters: fits with its letters
    assert stopped == "Calm Line nie wyśle już SMS-ów. Odpisz START, by je wznowić."
    assert textbody.reply(first, "help_reply").startswith("Calm Line: advice")  # no sms_ascii


@pytest.mark.parametrize(("body", "wants", "language"), [
    ("POMOC", "help", "pl-PL"), ("pomoc", "help", "pl-PL"), ("Pomoc!", "help", "pl-PL"),
    ("ＰＯＭＯＣ", "help", "pl-PL"), ("P0M0C", "help", "pl-PL"),
    ("pomoc stop", "stop", None),  # STOP anywhere in a short text still stops
    ("stop pomoc", "stop", None), ("STOP", "stop", None), ("HELP", "help", None),
    ("pomoc proszę", None, None),  # like HELP: only the whole message
])
def test_pomoc_is_help_in_polish_and_never_hides_a_stop(body, wants, language):
    assert keywords.keyword(body) == wants
    assert keywords.language(body) == language
