"""Requests the line refuses, and how: forged or replayed signatures, oversized bodies, other methods.

Every refusal is a short status page: no stack trace, nothing of the request
echoed back, and the view (the flow, the database) never runs.
"""
from __future__ import annotations

import pytest
from conftest import AUTH_TOKEN, make_app, sign
from twilio.request_validator import RequestValidator

from ivr.texts import outbox

PARAMS = {"CallSid": "CA" + "c" * 32, "From": "+447400123456", "To": "+441134960000",
          "AccountSid": "AC" + "0" * 32, "CallStatus": "in-progress"}
VOICE = ["/voice", "/voice/answer/main", "/voice/step/main", "/voice/number/number_entry",
         "/voice/dialled/dial_nspcc", "/voice/status", "/voice/fallback", "/voice/no/such/step"]
WEBHOOKS = [*VOICE, "/sms/inbound", "/sms/status"]
LIMIT = 64 * 1024  # the default MAX_CONTENT_LENGTH


def assert_bare_refusal(response, status: int) -> None:
    assert response.status_code == status
    text = response.get_data(as_text=True)
    for sign_of_a_leak in ("Traceback", "File \"", "Werkzeug Debugger", "+447400123456",
                           "<Response", "<Say"):
        assert sign_of_a_leak not in text


@pytest.fixture
def never_touches_the_outbox(monkeypatch):
    """The refused request must not reach the view: any outbox call fails the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a refused request reached the outbox")

    for name in ("request_text", "stage_number", "confirm_number", "release_call", "opt_out",
                 "opt_in"):
        monkeypatch.setattr(outbox, name, forbidden)


# -- signatures ------------------------------------------------------------------------------


def forged(path: str, params: dict) -> dict[str, str]:
    validator = RequestValidator(AUTH_TOKEN)
    other = {**params, "Digits": "9"}
    return {
        "another token": RequestValidator(AUTH_TOKEN + "x").compute_signature(
            "http://localhost" + path, params),
        "another path": validator.compute_signature("http://localhost/voice/answer/urgent", params),
        "another query": validator.compute_signature(f"http://localhost{path}?t=2", params),
        "https instead of http": validator.compute_signature("https://localhost" + path, params),
        "another host": validator.compute_signature("http://attacker.example" + path, params),
        "other parameters": validator.compute_signature("http://localhost" + path, other),
        "no parameters": validator.compute_signature("http://localhost" + path, {}),
        "empty": "",
        "not base64": "!!not a signature!!",
        "very long": "A" * 8000,
        "non-ascii": "sïgnätüre",
    }


@pytest.mark.parametrize("path", WEBHOOKS)
def test_forged_signatures_are_refused_with_403(client, path, never_touches_the_outbox):
    for how, signature in forged(path, PARAMS).items():
        response = client.post(path, data=PARAMS, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 403, how
        assert_bare_refusal(response, 403)


def test_a_signed_request_replayed_to_other_urls_is_refused(client, twilio_post,
                                                            never_touches_the_outbox):
    params = {**PARAMS, "Digits": "1"}
    signature = sign("/voice/answer/main?t=1", params)
    assert twilio_post("/voice/answer/main?t=1", params).status_code == 200  # where it belongs
    for elsewhere in ["/voice/answer/main", "/voice/answer/main?t=2", "/voice/answer/finish?t=1",
                      "/voice/number/main?t=1", "/sms/inbound?t=1", "/voice/answer/main?t=1&h=talk"]:
        response = client.post(elsewhere, data=params, headers={"X-Twilio-Signature": signature})
        assert_bare_refusal(response, 403)


def test_a_signature_with_or_without_the_default_port_is_accepted(client):
    """Twilio may sign https://host/... or https://host:443/...: both are the same URL."""
    validator = RequestValidator(AUTH_TOKEN)
    for url in ("http://localhost/voice", "http://localhost:80/voice"):
        signature = validator.compute_signature(url, PARAMS)
        response = client.post("/voice", data=PARAMS, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, url


def test_percent_escapes_are_checked_as_twilio_sent_them(client):
    """Twilio signs the URL exactly as it requested it, escapes and all."""
    for path in ("/voice/answer/main?h=talk%2Curgent", "/voice/answer/m%61in",
                 "/voice/answer/main?h=%C3%A9"):
        response = client.post(path, data=PARAMS, headers={"X-Twilio-Signature": sign(path, PARAMS)})
        assert response.status_code == 200, path


# -- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WEBHOOKS)
def test_a_body_over_the_limit_is_refused_with_413(client, path, never_touches_the_outbox):
    params = {**PARAMS, "SpeechResult": "words " * (LIMIT // 6 + 10)}
    response = client.post(path, data=params, headers={"X-Twilio-Signature": sign(path, params)})
    assert_bare_refusal(response, 413)
    # Unsigned, it is refused before the body is even read.
    assert_bare_refusal(client.post(path, data=params), 403)


def test_a_body_just_under_the_limit_is_heard(twilio_post):
    params = {**PARAMS, "SpeechResult": "words " * ((LIMIT - 1024) // 6)}
    response = twilio_post("/voice/answer/main", params)
    assert response.status_code == 200 and b"<Response>" in response.data


def test_the_limit_is_a_setting(tmp_path):
    app = make_app(tmp_path, MAX_CONTENT_LENGTH=4096)
    params = {**PARAMS, "SpeechResult": "x" * 5000}
    response = app.test_client().post("/voice/answer/main", data=params,
                                      headers={"X-Twilio-Signature": sign("/voice/answer/main",
                                                                          params)})
    assert_bare_refusal(response, 413)


def test_thousands_of_form_fields_are_no_trouble(client):
    params = {**PARAMS, **{f"f{i}": "" for i in range(3000)}}  # 30 KB, under the size limit
    response = client.post("/voice/answer/main", data=params,
                           headers={"X-Twilio-Signature": sign("/voice/answer/main", params)})
    assert response.status_code == 200 and b"<Gather" in response.data


# -- methods ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WEBHOOKS)
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "TRACE"])
def test_methods_other_than_post_are_refused_with_405(client, path, method,
                                                      never_touches_the_outbox):
    headers = {"X-Twilio-Signature": sign(path, {})}
    response = client.open(path, method=method, headers=headers, query_string=PARAMS)
    assert_bare_refusal(response, 405)
    assert response.headers["Allow"].split(", ") and "GET" not in response.headers["Allow"]


@pytest.mark.parametrize("path", WEBHOOKS)
def test_options_is_answered_by_flask_alone_with_no_body(client, path, never_touches_the_outbox):
    """OPTIONS never reaches a webhook: Flask answers it with the Allow header and no body."""
    response = client.open(path, method="OPTIONS")
    assert response.status_code == 200 and response.data == b""
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


# -- error pages in production -----------------------------------------------------------------


def test_an_unexpected_error_outside_the_webhooks_shows_no_stack_trace(tmp_path):
    app = make_app(tmp_path, TESTING=False, DEBUG=False, PROPAGATE_EXCEPTIONS=False)

    @app.get("/_boom")
    def boom():
        raise RuntimeError("secret detail +447400123456")

    response = app.test_client().get("/_boom")
    assert_bare_refusal(response, 500)
    assert "secret detail" not in response.get_data(as_text=True)
    assert_bare_refusal(app.test_client().get("/no/such/page"), 404)
