"""The Twilio fake, driven through the real twilio-python client."""

from __future__ import annotations

import json
import re
import time
from email.utils import parsedate_to_datetime

import pytest
import requests
from fake_twilio import BaseUrlHttpClient, FakeTwilio, count_segments
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

TO = "+447700900123"
FROM = "+441632960001"
MESSAGES_PATH = "/2010-04-01/Accounts/{}/Messages.json"
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")

# The properties of api.v2010.account.message in twilio_api_v2010.json.
MESSAGE_FIELDS = {
    "account_sid", "api_version", "body", "date_created", "date_sent", "date_updated",
    "direction", "error_code", "error_message", "from", "messaging_service_sid",
    "num_media", "num_segments", "price", "price_unit", "sid", "status",
    "subresource_uris", "to", "uri",
}  # fmt: skip


@pytest.fixture
def fake():
    with FakeTwilio() as running:
        yield running


@pytest.fixture
def client(fake):
    return Client(fake.account_sid, fake.auth_token, http_client=BaseUrlHttpClient(fake.base_url))


def send(client, **overrides):
    fields = {"to": TO, "from_": FROM, "body": "Hello from Calm Line"} | overrides
    return client.messages.create(**fields)


def raw_post(fake, path, auth, **form):
    """A request twilio-python would never make (no or mismatched auth)."""
    return requests.post(fake.base_url + path, data=form, auth=auth, timeout=5)


def rest_error(call):
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


# -- creating messages ----------------------------------------------------


def test_create_returns_a_queued_message_shaped_like_the_spec(fake, client):
    message = send(client)

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert (message.to, message.from_, message.body) == (TO, FROM, "Hello from Calm Line")
    assert message.account_sid == fake.account_sid
    assert message.direction == "outbound-api"
    assert (message.num_segments, message.num_media) == ("1", "0")
    assert message.price is None and message.error_code is None
    assert message.uri == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{message.sid}.json"
    raw = client.http_client._test_only_last_response
    assert raw.status_code == 201
    returned = json.loads(raw.text)
    assert set(returned) == MESSAGE_FIELDS
    for stamp in ("date_created", "date_updated", "date_sent"):
        assert RFC2822.match(returned[stamp])
        parsedate_to_datetime(returned[stamp])


def test_create_is_recorded_with_its_form(fake, client):
    message = send(client, status_callback="https://calm.example/sms/status")

    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", MESSAGES_PATH.format(fake.account_sid))
    assert request.form == {
        "To": TO,
        "From": FROM,
        "Body": "Hello from Calm Line",
        "StatusCallback": "https://calm.example/sms/status",
    }
    assert request.auth_ok and request.status == 201
    (stored,) = fake.messages
    assert stored["sid"] == message.sid
    assert stored["status_callback"] == "https://calm.example/sms/status"
    assert stored["form"] == request.form


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),  # GSM-7 fits one segment
        ("a" * 161, "2"),  # split: 153 septets a part
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("€" * 80, "1"),  # extension characters cost two septets
        ("€" * 81, "2"),
        ("Ж" * 70, "1"),  # UCS-2: 70 code units, then 67 a part
        ("Ж" * 71, "2"),
        ("Ж" * 135, "3"),
        ("👍" * 35, "1"),  # a surrogate pair is two code units
        ("👍" * 36, "2"),
    ],
)
def test_num_segments_follows_the_encoding(client, body, segments):
    assert send(client, body=body).num_segments == segments


def test_count_segments_never_splits_an_escape_pair():
    # 152 septets + "€" (2) would overflow a 153-septet part by one.
    assert count_segments("a" * 152 + "€" + "a" * 10) == 2
    assert count_segments("a" * 152 + "€" + "a" * 152) == 3


def test_messaging_service_without_from_is_accepted(client):
    message = send(client, from_=None, messaging_service_sid="MG" + "a" * 32)

    assert message.status == "accepted"
    assert message.from_ is None
    assert message.messaging_service_sid == "MG" + "a" * 32


def test_fetch_returns_the_stored_message(client):
    sid = send(client).sid

    assert client.messages(sid).fetch().body == "Hello from Calm Line"


def test_fetch_unknown_message_is_404(client):
    error = rest_error(lambda: client.messages("SM" + "0" * 32).fetch())

    assert (error.status, error.code) == (404, 20404)


# -- errors -------------------------------------------------------------------


def test_bad_credentials_are_401_20003(fake):
    wrong = Client(fake.account_sid, "not-the-token", http_client=BaseUrlHttpClient(fake.base_url))

    error = rest_error(lambda: send(wrong))

    assert (error.status, error.code) == (401, 20003)
    assert fake.messages == []
    assert fake.requests[0].auth_ok is False


def test_missing_auth_is_401_with_twilio_error_body(fake):
    answer = raw_post(fake, MESSAGES_PATH.format(fake.account_sid), None, To=TO, Body="x")

    assert answer.status_code == 401
    assert answer.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_account_in_path_must_match_credentials(fake):
    other = "AC" + "f" * 32
    auth = (fake.account_sid, fake.auth_token)

    answer = raw_post(fake, MESSAGES_PATH.format(other), auth, To=TO, From=FROM, Body="x")

    assert (answer.status_code, answer.json()["code"]) == (401, 20003)


@pytest.mark.parametrize(("missing", "code"), [("to", 21604), ("body", 21602), ("from_", 21603)])
def test_missing_required_field_is_400(fake, client, missing, code):
    error = rest_error(lambda: send(client, **{missing: None}))

    assert (error.status, error.code) == (400, code)
    assert fake.messages == []


def test_fail_next_fails_that_many_creates_then_succeeds(fake, client):
    fake.fail_next(2)

    for _ in range(2):
        error = rest_error(lambda: send(client))
        assert (error.status, error.code) == (500, 20500)
    assert send(client).status == "queued"
    assert [r.status for r in fake.requests] == [500, 500, 201]
    assert len(fake.messages) == 1


def test_fail_next_takes_another_status(fake, client):
    fake.fail_next(1, status=503, code=20503)

    error = rest_error(lambda: send(client))

    assert (error.status, error.code) == (503, 20503)


def test_rate_limit_next_is_429_20429(fake, client):
    fake.rate_limit_next(1)

    error = rest_error(lambda: send(client))

    assert (error.status, error.code) == (429, 20429)
    assert send(client).status == "queued"


@pytest.mark.parametrize("code", [21610, 21211, 21614])
def test_rejected_number_is_400_with_its_code(fake, client, code):
    fake.reject_number(TO, code)

    error = rest_error(lambda: send(client))

    assert (error.status, error.code) == (400, code)
    assert send(client, to="+447700900999").status == "queued"


def test_unknown_path_is_404_20404(fake):
    auth = (fake.account_sid, fake.auth_token)

    answer = requests.get(f"{fake.base_url}/2010-04-01/Nope.json", auth=auth, timeout=5)

    assert answer.status_code == 404
    assert answer.json()["code"] == 20404
    assert answer.json()["more_info"] == "https://www.twilio.com/docs/errors/20404"


# -- connection trouble ---------------------------------------------------


def test_latency_delays_the_answer(fake, client):
    fake.set_latency(0.3)

    started = time.monotonic()
    send(client)

    assert time.monotonic() - started >= 0.3


def test_drop_next_is_a_connection_error_on_the_client(fake, client):
    fake.drop_next(1)

    # twilio-python does not wrap transport errors: requests' own surfaces.
    with pytest.raises(requests.exceptions.ConnectionError):
        send(client)

    assert fake.messages == []
    assert fake.requests[0].status is None
    assert send(client).status == "queued"  # the next request is answered


def test_a_proxy_in_the_environment_does_not_intercept_the_fake(monkeypatch, client):
    # Port 9 (discard) is closed: a request sent via this proxy would fail.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    assert send(client).status == "queued"


# -- IncomingPhoneNumbers -------------------------------------------------


def test_list_phone_numbers_by_number(fake, client):
    ours = fake.add_phone_number("+441632960001")
    fake.add_phone_number("+441632960002")

    (found,) = client.incoming_phone_numbers.list(phone_number="+441632960001")

    assert re.fullmatch(r"PN[0-9a-f]{32}", found.sid)
    assert found.sid == ours["sid"]
    assert found.phone_number == "+441632960001"
    assert fake.requests[0].query["PhoneNumber"] == "+441632960001"


def test_list_follows_next_page_uri_through_the_fake(fake, client):
    for n in range(5):
        fake.add_phone_number(f"+44163296000{n}")

    numbers = client.incoming_phone_numbers.list(page_size=2)

    assert len(numbers) == 5
    assert [r.query.get("Page") for r in fake.requests] == [None, "1", "2"]


def test_update_phone_number_webhooks(fake, client):
    sid = fake.add_phone_number(FROM)["sid"]

    updated = client.incoming_phone_numbers(sid).update(
        voice_url="https://calm.example/voice",
        voice_method="POST",
        voice_fallback_url="https://calm.example/fallback",
        status_callback="https://calm.example/voice/status",
        sms_url="https://calm.example/sms",
    )

    assert updated.voice_url == "https://calm.example/voice"
    stored = fake.phone_numbers[sid]
    assert stored["voice_url"] == "https://calm.example/voice"
    assert stored["voice_fallback_url"] == "https://calm.example/fallback"
    assert stored["status_callback"] == "https://calm.example/voice/status"
    assert stored["sms_url"] == "https://calm.example/sms"
    assert client.incoming_phone_numbers(sid).fetch().voice_url == "https://calm.example/voice"


def test_update_unknown_phone_number_is_404(client):
    error = rest_error(lambda: client.incoming_phone_numbers("PN" + "0" * 32).update(voice_url="x"))

    assert (error.status, error.code) == (404, 20404)


def test_add_phone_number_rejects_unknown_fields(fake):
    with pytest.raises(ValueError, match="VoiceUrl"):
        fake.add_phone_number(FROM, VoiceUrl="https://calm.example/voice")


# -- the fake itself ------------------------------------------------------


def test_reset_forgets_traffic_and_injections(fake, client):
    send(client)
    fake.fail_next(1)
    fake.add_phone_number(FROM)

    fake.reset()

    assert (fake.requests, fake.messages, fake.phone_numbers) == ([], [], {})
    assert send(client).status == "queued"


def test_base_url_client_keeps_path_and_query():
    http = BaseUrlHttpClient("http://127.0.0.1:8080")
    edge = "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/AC1/Messages.json?Page=2"

    assert (
        http.rewrite_url(edge)
        == "http://127.0.0.1:8080/2010-04-01/Accounts/AC1/Messages.json?Page=2"
    )
