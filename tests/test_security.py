"""Only Twilio may call the webhooks, also behind a proxy or a tunnel."""
from __future__ import annotations

import pytest
from conftest import AUTH_TOKEN, make_app, sign
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

PARAMS = {"CallSid": "CA" + "a" * 32, "From": "+447400123456", "To": "+441134960000"}
WEBHOOKS = ["/voice", "/voice/answer/main", "/voice/status", "/voice/fallback",
            "/voice/step/main", "/voice/number/number_entry", "/voice/dialled/dial_nspcc",
            "/sms/inbound", "/sms/status"]


@pytest.mark.parametrize("path", WEBHOOKS)
def test_a_request_without_a_signature_is_refused(client, path):
    assert client.post(path, data=PARAMS).status_code == 403


@pytest.mark.parametrize("path", WEBHOOKS)
def test_a_wrong_signature_is_refused(client, path):
    headers = {"X-Twilio-Signature": sign(path, PARAMS, token="not-the-token")}
    assert client.post(path, data=PARAMS, headers=headers).status_code == 403


def test_a_signed_request_replayed_to_another_url_is_refused(client):
    headers = {"X-Twilio-Signature": sign("/voice/answer/main", {**PARAMS, "Digits": "1"})}
    response = client.post("/voice/answer/urgent", data={**PARAMS, "Digits": "1"}, headers=headers)
    assert response.status_code == 403


def test_changed_parameters_are_refused(client):
    headers = {"X-Twilio-Signature": sign("/voice/answer/main", {**PARAMS, "Digits": "1"})}
    response = client.post("/voice/answer/main", data={**PARAMS, "Digits": "9"}, headers=headers)
    assert response.status_code == 403


def test_the_refusal_shows_no_stack_trace_and_logs_why(client, caplog):
    response = client.post("/voice", data=PARAMS)
    assert b"Traceback" not in response.data
    assert "missing X-Twilio-Signature" in caplog.text
    assert "+447400123456" not in caplog.text


def test_a_correct_signature_is_accepted(twilio_post):
    assert twilio_post("/voice", PARAMS).status_code == 200


def test_behind_a_tls_proxy_the_public_base_url_is_what_twilio_signed(tmp_path):
    app = make_app(tmp_path, PUBLIC_BASE_URL="https://line.example.org")
    client = app.test_client()
    public = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://line.example.org/voice/answer/main?t=1", {**PARAMS, "Digits": "1"})
    response = client.post("/voice/answer/main?t=1", data={**PARAMS, "Digits": "1"},
                           headers={"X-Twilio-Signature": public})
    assert response.status_code == 200
    inner = sign("/voice/answer/main?t=1", {**PARAMS, "Digits": "1"})  # http://localhost
    response = client.post("/voice/answer/main?t=1", data={**PARAMS, "Digits": "1"},
                           headers={"X-Twilio-Signature": inner})
    assert response.status_code == 403


def _forwarded(client, path="/voice"):
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://line.example.org" + path, PARAMS)
    return client.post(path, data=PARAMS, headers={
        "X-Twilio-Signature": signature,
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "line.example.org",
        "X-Forwarded-For": "203.0.113.9"})


def test_forwarded_headers_are_trusted_only_from_a_configured_proxy(tmp_path):
    trusting = make_app(tmp_path / "a", TRUSTED_PROXIES=1)
    assert _forwarded(trusting.test_client()).status_code == 200
    not_trusting = make_app(tmp_path / "b")
    assert _forwarded(not_trusting.test_client()).status_code == 403


def test_with_no_auth_token_the_local_run_makes_one_and_still_checks(tmp_path):
    app = make_app(tmp_path, TWILIO_AUTH_TOKEN=None)
    token = app.config["TWILIO_AUTH_TOKEN"]
    assert token and token != AUTH_TOKEN
    assert (tmp_path / "instance" / "local_auth_token").read_text().strip() == token
    client = app.test_client()
    assert client.post("/voice", data=PARAMS).status_code == 403
    signature = RequestValidator(token).compute_signature("http://localhost/voice", PARAMS)
    assert client.post("/voice", data=PARAMS,
                       headers={"X-Twilio-Signature": signature}).status_code == 200
    # The same token again on the next start, so the simulator can sign.
    assert make_app(tmp_path, TWILIO_AUTH_TOKEN=None).config["TWILIO_AUTH_TOKEN"] == token


@pytest.mark.parametrize("path", ["/voice", "/voice/answer/main", "/voice/fallback"])
def test_webhooks_answer_only_post(client, path):
    response = client.get(path)
    assert response.status_code == 405
    assert b"Traceback" not in response.data


def test_health_needs_no_signature(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["status"] == "ok"


# -- the fast check (one HMAC over the raw body's pairs) and its fallback -----------------


def test_twilio_s_port_variant_is_accepted_by_the_fallback(tmp_path):
    # Twilio sometimes signs https://host:443/...; the fast check misses, RequestValidator does not.
    app = make_app(tmp_path, PUBLIC_BASE_URL="https://line.example.org")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://line.example.org:443/voice", PARAMS)
    response = app.test_client().post("/voice", data=PARAMS, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def test_repeated_fields_and_blank_values_are_signed_as_twilio_signs_them(client):
    body = "CallSid=CA1&From=%2B447400123456&Digits=&Extra=b&Extra=a&Extra=b"
    params = MultiDict([("CallSid", "CA1"), ("From", "+447400123456"), ("Digits", ""),
                        ("Extra", "b"), ("Extra", "a"), ("Extra", "b")])
    signature = sign("/voice", params)  # twilio-python's own computation
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    assert client.post("/voice", data=body, headers=headers).status_code == 200
    changed = body.replace("Extra=a", "Extra=c")
    assert client.post("/voice", data=changed, headers=headers).status_code == 403


def test_the_view_sees_the_form_the_check_parsed(twilio_post):
    # The menu answer is read from the form the signature check filled in.
    turn = twilio_post("/voice/answer/main", {**PARAMS, "Digits": "9"})
    assert turn.status_code == 200 and turn.headers["X-Calm-Line-Steps"].startswith("urgent")


def test_a_body_that_is_not_utf8_is_refused_not_crashed(client):
    headers = {"X-Twilio-Signature": sign("/voice", {}),
               "Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/voice", data=b"CallSid=\xff\xfe", headers=headers)
    assert response.status_code in (200, 403)  # read as no fields, as werkzeug reads it
    assert b"Traceback" not in response.data


# -- the fast parser and the untouched session (issue J) -------------------------------------


@pytest.mark.parametrize("text", [
    "", "a", "a=", "=b", "&&a=1&&", "a=1&a=2", "a+b=c+d", "From=%2B447400123456&To=%2B44",
    "bad=%ZZ%e9", "k=%C3%A9&%=%", "a==b", "a=b=c&+=+", "%FF=%FE", "SpeechResult=how+do+I%3F"])
def test_parse_pairs_gives_what_werkzeug_would(text):
    from urllib.parse import parse_qsl

    from ivr.security import parse_pairs

    assert parse_pairs(text) == parse_qsl(text, keep_blank_values=True,
                                          errors="werkzeug.url_quote")


def test_the_form_and_query_the_views_see_are_werkzeugs(app):
    from flask import Request

    from ivr.security import form_pairs

    body = "Digits=1&SpeechResult=a+b%2Cc&Empty=&Digits=2"
    with app.test_request_context("/voice/answer/main?h=a%2Cb&t=1", method="POST", data=body,
                                  content_type="application/x-www-form-urlencoded") as ctx:
        form_pairs()
        plain = Request(ctx.request.environ.copy())
        assert ctx.request.args.to_dict() == {"h": "a,b", "t": "1"}
        assert ctx.request.form.getlist("Digits") == ["1", "2"]
        assert ctx.request.form["SpeechResult"] == "a b,c" and ctx.request.form["Empty"] == ""
        assert ctx.request.args.to_dict(flat=False) == plain.args.to_dict(flat=False)


def test_a_webhook_never_builds_a_session_cookie_signer(app, monkeypatch):
    from flask.sessions import SecureCookieSessionInterface

    def refused(*args, **kwargs):
        raise AssertionError("a webhook touched the cookie session")

    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", refused)
    client = app.test_client()
    headers = {"X-Twilio-Signature": sign("/voice/answer/main", {**PARAMS, "Digits": "1"})}
    response = client.post("/voice/answer/main", data={**PARAMS, "Digits": "1"}, headers=headers)
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")


def test_the_webhooks_form_answers_get_as_werkzeugs_does():
    """WebhookForm only skips werkzeug's exception for a missing field: same answers."""
    from werkzeug.datastructures import ImmutableMultiDict

    from ivr.security import WebhookForm

    pairs = [("Digits", "1"), ("Digits", "2"), ("Blank", ""), ("Confidence", "0.5"),
             ("Odd", "x")]
    ours, theirs = WebhookForm(pairs), ImmutableMultiDict(pairs)
    for key in ("Digits", "Blank", "Confidence", "Odd", "SpeechResult"):
        for kwargs in ({}, {"default": "d"}, {"type": float}, {"default": -1.0, "type": float}):
            assert ours.get(key, **kwargs) == theirs.get(key, **kwargs), (key, kwargs)
    assert ours.getlist("Digits") == ["1", "2"] and dict(ours) == dict(theirs)
    with pytest.raises(TypeError):
        ours["Digits"] = "3"  # still immutable
