"""Behind PUBLIC_BASE_URL, a signature covers the query string too: a valid signature for
one query sent with another, or with one added, gets 403, on the fast path (the target
exactly as sent: RAW_URI) and on the fallback (the URL as Flask rebuilds it, checked by
twilio's RequestValidator)."""
from __future__ import annotations

import pytest
from conftest import AUTH_TOKEN, make_app
from test_limits import PARAMS
from twilio.request_validator import RequestValidator

PUBLIC = "https://line.example.org"
ANSWER = {**PARAMS, "Digits": "1"}
# (the path Twilio signed, the path the request was sent to)
SWAPS = [
    ("/voice/answer/main?t=1", "/voice/answer/main?t=2"),
    ("/voice/answer/main", "/voice/answer/main?h=urgent"),
    ("/voice/answer/main?t=1", "/voice/answer/main?t=1&h=urgent"),
    ("/voice/answer/main?t=1", "/voice/answer/main"),
]
# The raw target as gunicorn and werkzeug give it; without it the app rebuilds the URL.
PATHS = {"fast path": lambda target: {"RAW_URI": target, "REQUEST_URI": target},
         "fallback path": lambda target: {"RAW_URI": "", "REQUEST_URI": ""}}


@pytest.fixture
def client(tmp_path):
    return make_app(tmp_path, PUBLIC_BASE_URL=PUBLIC).test_client()


def public_signature(path: str, params: dict) -> str:
    return RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path, params)


@pytest.mark.parametrize("way", PATHS)
@pytest.mark.parametrize(("signed", "sent"), SWAPS)
def test_a_signature_for_one_query_is_refused_for_another(client, way, signed, sent):
    environ = PATHS[way](sent)
    right = client.post(signed, data=ANSWER, environ_overrides=PATHS[way](signed),
                        headers={"X-Twilio-Signature": public_signature(signed, ANSWER)})
    assert right.status_code == 200  # where it belongs, it is heard
    wrong = client.post(sent, data=ANSWER, environ_overrides=environ,
                        headers={"X-Twilio-Signature": public_signature(signed, ANSWER)})
    assert wrong.status_code == 403


@pytest.mark.parametrize("way", PATHS)
def test_the_right_query_with_a_port_is_still_heard(client, way):
    """The fallback's RequestValidator also takes https://host:443/...: Twilio may sign either."""
    path = "/voice/answer/main?t=1"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://line.example.org:443" + path, ANSWER)
    response = client.post(path, data=ANSWER, environ_overrides=PATHS[way](path),
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
