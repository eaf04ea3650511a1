"""`ivr twilio configure`: point a number at the deployment, against the fake Twilio API."""
from __future__ import annotations

import pytest
from conftest import make_app

from ivr import cli

NUMBER = "+441134960000"
BASE = "https://line.example.org"


@pytest.fixture
def configure(tmp_path, twilio_settings):
    """Run `ivr twilio configure` in an app with these settings (over the fake's)."""

    def run(*args, **settings):
        app = make_app(tmp_path, upgrade=False, **{**twilio_settings, "PUBLIC_BASE_URL": BASE,
                                                   **settings})
        return app.test_cli_runner().invoke(cli.main, ["twilio", "configure", *args])

    return run


def updates(fake):
    return [r for r in fake.requests if r.method == "POST" and "IncomingPhoneNumbers" in r.path]


def test_it_points_the_number_at_the_deployment_and_says_what_changed(configure, fake_twilio):
    number = fake_twilio.add_phone_number(NUMBER, voice_url="https://old.example.org/answer",
                                          voice_method="GET")
    other = fake_twilio.add_phone_number("+441134960001")
    result = configure("--number", NUMBER)
    assert result.exit_code == 0, result.output
    assert number["voice_url"] == f"{BASE}/voice" and number["voice_method"] == "POST"
    assert number["voice_fallback_url"] == f"{BASE}/voice/fallback"
    assert number["voice_fallback_method"] == "POST"
    assert number["status_callback"] == f"{BASE}/voice/status"
    assert number["status_callback_method"] == "POST"
    assert number["sms_url"] == f"{BASE}/sms/inbound" and number["sms_method"] == "POST"
    assert other["voice_url"] == ""  # the other number is left alone
    out = result.output
    assert f"Twilio number {NUMBER} ({number['sid']}) -> {BASE}" in out
    assert f"voice_url               https://old.example.org/answer -> {BASE}/voice" in out
    assert "voice_method            GET -> POST" in out
    assert f"voice_fallback_url      (none) -> {BASE}/voice/fallback" in out
    assert f"status_callback         (none) -> {BASE}/voice/status" in out
    assert f"sms_url                 (none) -> {BASE}/sms/inbound" in out
    assert "sms_method              POST (unchanged)" in out
    assert "Changed 5 setting(s)." in out
    (update,) = updates(fake_twilio)
    assert update.auth_ok and set(update.form) == {"VoiceUrl", "VoiceMethod", "VoiceFallbackUrl",
                                                    "StatusCallback", "SmsUrl"}
    # The list asked for exactly this number.
    (listing,) = [r for r in fake_twilio.requests if r.method == "GET"]
    assert listing.query["PhoneNumber"] == NUMBER


def test_a_second_run_has_nothing_to_change(configure, fake_twilio):
    fake_twilio.add_phone_number(NUMBER)
    assert configure("--number", NUMBER).exit_code == 0
    again = configure("--number", NUMBER)
    assert again.exit_code == 0
    assert "Nothing to change: the number already points at this deployment." in again.output
    assert len(updates(fake_twilio)) == 1


def test_dry_run_shows_the_changes_and_makes_none(configure, fake_twilio):
    number = fake_twilio.add_phone_number(NUMBER, voice_url="https://old.example.org/answer")
    result = configure("--number", NUMBER, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"https://old.example.org/answer -> {BASE}/voice" in result.output
    assert "Dry run: 4 setting(s) would change; nothing was changed." in result.output
    assert updates(fake_twilio) == []
    assert number["voice_url"] == "https://old.example.org/answer"


def test_a_number_in_national_form_is_found(configure, fake_twilio):
    number = fake_twilio.add_phone_number(NUMBER)
    result = configure("--number", "0113 496 0000")
    assert result.exit_code == 0, result.output
    assert number["voice_url"] == f"{BASE}/voice"


def test_an_application_on_the_number_is_cleared_so_the_urls_are_used(configure, fake_twilio):
    fake_twilio.add_phone_number(NUMBER, voice_application_sid="AP" + "1" * 32)
    result = configure("--number", NUMBER)
    assert result.exit_code == 0, result.output
    assert f"voice_application_sid   AP{'1' * 32} -> (none)" in result.output
    (update,) = updates(fake_twilio)
    assert update.form["VoiceApplicationSid"] == ""
    assert "SmsApplicationSid" not in update.form


def test_wrong_credentials_get_a_clear_message_and_exit_1(configure, fake_twilio):
    number = fake_twilio.add_phone_number(NUMBER)
    result = configure("--number", NUMBER, TWILIO_AUTH_TOKEN="not-the-token")
    assert result.exit_code == 1
    assert "Twilio refused the credentials (error 20003): check TWILIO_ACCOUNT_SID and " \
           "TWILIO_AUTH_TOKEN." in result.output
    assert "Traceback" not in result.output
    assert updates(fake_twilio) == [] and number["voice_url"] == ""


@pytest.mark.parametrize("base", ["http://line.example.org", "https://localhost:5000",
                                  "https://127.0.0.1", "https://10.0.0.5"])
def test_a_base_url_twilio_cannot_use_is_refused_before_any_request(configure, fake_twilio, base):
    fake_twilio.add_phone_number(NUMBER)
    result = configure("--number", NUMBER, PUBLIC_BASE_URL=base)
    assert result.exit_code == 2
    assert "PUBLIC_BASE_URL" in result.output
    assert fake_twilio.requests == []


def test_no_base_url_is_refused_before_any_request(configure, fake_twilio):
    result = configure("--number", NUMBER, PUBLIC_BASE_URL=None)
    assert result.exit_code == 2 and "PUBLIC_BASE_URL is not set" in result.output
    assert fake_twilio.requests == []


def test_no_account_is_refused_before_any_request(configure, fake_twilio):
    result = configure("--number", NUMBER, TWILIO_ACCOUNT_SID=None)
    assert result.exit_code == 2
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set" in result.output
    assert fake_twilio.requests == []


def test_a_number_not_in_the_account_is_named(configure, fake_twilio):
    fake_twilio.add_phone_number("+441134960099")
    result = configure("--number", "+441134960009")
    assert result.exit_code == 1
    assert "+441134960009 is not a number of this Twilio account" in result.output


def test_a_partial_match_is_not_taken_for_the_number(configure, fake_twilio):
    longer = fake_twilio.add_phone_number(NUMBER + "1")  # Twilio's filter matches partly
    result = configure("--number", NUMBER)
    assert result.exit_code == 1 and longer["voice_url"] == ""


def test_not_a_number_is_a_usage_error(configure, fake_twilio):
    result = configure("--number", "call me")
    assert result.exit_code == 2 and "is not a phone number" in result.output
    assert fake_twilio.requests == []


def test_twilio_trouble_is_reported_not_a_traceback(configure, fake_twilio):
    fake_twilio.add_phone_number(NUMBER)
    fake_twilio.rate_limit_next(1)
    result = configure("--number", NUMBER)
    assert result.exit_code == 1
    assert "Twilio refused to list the account's numbers: HTTP 429, error 20429" in result.output


def test_a_messaging_service_gets_a_note_about_incoming_texts(configure, fake_twilio):
    fake_twilio.add_phone_number(NUMBER)
    result = configure("--number", NUMBER, TWILIO_MESSAGING_SERVICE_SID="MG" + "2" * 32)
    assert result.exit_code == 0 and "Defer to sender's webhook" in result.output


def test_twilio_out_of_reach_is_reported_not_a_traceback(configure, fake_twilio):
    fake_twilio.add_phone_number(NUMBER)
    fake_twilio.drop_next(1)
    result = configure("--number", NUMBER)
    assert result.exit_code == 1
    assert "Could not reach Twilio to list the account's numbers" in result.output
