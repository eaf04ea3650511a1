"""POST /sms/inbound (STOP, START, HELP, anything else) and POST /sms/status (delivery reports)."""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa
from conftest import make_app, sign

from ivr import store
from ivr.texts import outbox, sms, worker

MOBILE = "+447400123456"


@pytest.fixture
def app(tmp_path, database_url, twilio_settings):
    return make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)


def reply_of(response) -> str:
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.get_data(as_text=True))
    assert root.tag == "Response"
    [message] = root.findall("Message")
    return message.text


def inbound(twilio_post, body, number=MOBILE, sid=None):
    """A text coming in; each has a MessageSid of its own, as Twilio's do."""
    sid = sid or "SM" + uuid.uuid4().hex
    return twilio_post("/sms/inbound", {"From": number, "To": "+441632960001", "Body": body,
                                        "MessageSid": sid, "AccountSid": "AC" + "0" * 32})


def report(twilio_post, sid, status, error_code=None):
    return twilio_post("/sms/status", {"MessageSid": sid, "MessageStatus": status,
                                       "ErrorCode": error_code, "AccountSid": "AC" + "0" * 32})


def sent_text(app, call_sid="CA-sms", number=MOBILE):
    """Queue, release and send one text through the fake; returns its message SID."""
    with app.app_context():
        assert outbox.request_text(call_sid, number, ["talk"]) == "queued"
        outbox.release_call(call_sid, "completed")
        worker.Worker(app).run_once()
        with store.read() as conn:
            return conn.execute(sa.select(store.outbox.c.message_sid)
                                .where(store.outbox.c.call_key == store.call_key(call_sid))
                                ).scalar()


def status_of(app, sid):
    with app.app_context(), store.read() as conn:
        return conn.execute(sa.select(store.outbox.c.status, store.outbox.c.error_code)
                            .where(store.outbox.c.message_sid == sid)).one()


# -- signatures --


@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status"])
def test_unsigned_or_wrongly_signed_requests_get_403(client, path):
    data = {"From": MOBILE, "Body": "STOP", "MessageSid": "SM1", "MessageStatus": "delivered"}
    assert client.post(path, data=data).status_code == 403
    wrong = sign(path, data, token="not-the-token")
    assert client.post(path, data=data, headers={"X-Twilio-Signature": wrong}).status_code == 403
    other = sign(path, {**data, "Body": "START"})
    assert client.post(path, data=data, headers={"X-Twilio-Signature": other}).status_code == 403


def test_a_refused_stop_changes_nothing(app, client):
    client.post("/sms/inbound", data={"From": MOBILE, "Body": "STOP"})
    with app.app_context():
        assert not outbox.number_opted_out(MOBILE)


# -- inbound --


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop. ", "STOPALL", "UNSUBSCRIBE", "cancel",
                                  "END", "quit", "Stop texting me"])
def test_opt_out_words_stop_all_texts_to_that_number(app, twilio_post, flow, word):
    assert reply_of(inbound(twilio_post, word)) == flow.written(flow.sms["stopped_reply"])
    with app.app_context():
        assert outbox.number_opted_out(MOBILE)
        assert outbox.request_text("CA-after", MOBILE, ["talk"]) == "opted_out"


def test_stop_from_a_number_written_nationally_matches_the_e164_texts(app, twilio_post):
    inbound(twilio_post, "STOP", number="07400 123456")
    with app.app_context():
        assert outbox.number_opted_out(MOBILE)


def test_stop_cancels_a_text_still_waiting(app, twilio_post, fake_twilio):
    with app.app_context():
        outbox.request_text("CA-wait", MOBILE, ["talk"])
    inbound(twilio_post, "STOP")
    with app.app_context():
        outbox.release_call("CA-wait", "completed")
        worker.Worker(app).run_once()
    assert fake_twilio.requests == []


def test_a_repeated_stop_is_harmless(app, twilio_post, flow):
    for _ in range(2):
        assert reply_of(inbound(twilio_post, "STOP")) == flow.written(flow.sms["stopped_reply"])
    with app.app_context(), store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.opt_outs)).scalar() == 1


@pytest.mark.parametrize("word", ["START", "yes", "Unstop"])
def test_start_words_opt_back_in(app, twilio_post, flow, word):
    inbound(twilio_post, "STOP")
    assert reply_of(inbound(twilio_post, word)) == flow.written(flow.sms["started_reply"])
    with app.app_context():
        assert not outbox.number_opted_out(MOBILE)
        assert outbox.request_text("CA-again", MOBILE, ["talk"]) == "queued"


@pytest.mark.parametrize("word", ["HELP", "help", "Info?"])
def test_help_gets_the_helpline_number(twilio_post, flow, word):
    text = reply_of(inbound(twilio_post, word))
    assert text == flow.written(flow.sms["help_reply"])
    assert flow.numbers["nspcc"] in text and "999" in text


@pytest.mark.parametrize("body", ["", "Thank you", "what do I do now?", "help me please",
                                  "start again", "\U0001F600"])
def test_anything_else_points_to_the_line_999_and_the_nspcc(app, twilio_post, flow, body):
    text = reply_of(inbound(twilio_post, body))
    assert text == flow.written(flow.sms["other_reply"])
    assert flow.numbers["nspcc"] in text and "999" in text
    with app.app_context():
        assert not outbox.number_opted_out(MOBILE)


def test_replies_are_plain_gsm7_single_texts(flow):
    from ivr.texts import body as textbody

    for name in ("help_reply", "other_reply", "stopped_reply", "started_reply"):
        text = flow.written(flow.sms[name])
        assert textbody.is_gsm7(text) and textbody.segments(text) == 1, name


@pytest.mark.parametrize(("body", "expected"), [
    ("STOP", "stop"), ("stop please", "stop"), ("  QUIT!", "stop"), ("START", "start"),
    ("yes", "start"), ("HELP", "help"), ("info", "help"), ("help me", None),
    ("yes please", None), ("", None), (None, None), ("please stop", "stop"),
])
def test_keyword(body, expected):
    assert sms.keyword(body) == expected


# -- delivery reports --


@pytest.mark.parametrize("final", ["delivered", "undelivered", "failed"])
def test_delivery_reports_are_recorded(app, twilio_post, fake_twilio, final):
    sid = sent_text(app)
    assert status_of(app, sid).status == outbox.ACCEPTED
    assert report(twilio_post, sid, "sent").status_code == 200
    assert status_of(app, sid).status == outbox.SENT
    code = "30003" if final != "delivered" else None
    response = report(twilio_post, sid, final, code)
    assert (response.status_code, response.get_data()) == (200, b"")
    assert tuple(status_of(app, sid)) == (final, int(code) if code else None)


def test_repeated_reports_change_nothing(app, twilio_post, fake_twilio):
    sid = sent_text(app)
    for _ in range(3):
        assert report(twilio_post, sid, "delivered").status_code == 200
    assert status_of(app, sid).status == outbox.DELIVERED


def test_a_late_sent_never_undoes_delivered(app, twilio_post, fake_twilio):
    sid = sent_text(app)
    report(twilio_post, sid, "delivered")
    report(twilio_post, sid, "sent")
    report(twilio_post, sid, "queued")
    assert status_of(app, sid).status == outbox.DELIVERED


def test_a_report_before_the_worker_stored_the_sid_is_applied_later(app, twilio_post):
    with app.app_context():
        outbox.request_text("CA-early", MOBILE, ["talk"])
        outbox.release_call("CA-early", "completed")
        one = worker.Worker(app)
        row = one.claim()
    early_sid = "SM" + "e" * 32
    report(twilio_post, early_sid, "sent")
    report(twilio_post, early_sid, "delivered")
    report(twilio_post, early_sid, "sent")  # out of order: still delivered
    with app.app_context():
        with store.read() as conn:
            [event] = conn.execute(sa.select(store.message_events)).all()
        assert event.status == "delivered"
        # The worker now stores the SID Twilio gave it (as process() does) ...
        one._finish(row, status=outbox.ACCEPTED, message_sid=early_sid, to_number=None)
        one.apply_events(early_sid)
        with store.read() as conn:
            assert conn.execute(sa.select(store.message_events)).all() == []
    assert status_of(app, early_sid).status == outbox.DELIVERED


def test_an_early_report_missed_at_send_time_is_applied_by_the_next_sweep(app, twilio_post):
    with app.app_context():
        outbox.request_text("CA-sweep", MOBILE, ["talk"])
        outbox.release_call("CA-sweep", "completed")
        one = worker.Worker(app)
        row = one.claim()
        sid = "SM" + "f" * 32
        one._finish(row, status=outbox.ACCEPTED, message_sid=sid, to_number=None)
    # Counted as "not stored yet" (raced the worker): kept as an event.
    with app.app_context(), store.begin() as conn:
        sms._keep_early(conn, sid, "undelivered", 30005)
    with app.app_context():
        worker.Worker(app).run_once()
    assert tuple(status_of(app, sid)) == (outbox.UNDELIVERED, 30005)


def test_reports_for_unknown_or_missing_sids_are_answered(twilio_post):
    assert report(twilio_post, "SM" + "0" * 32, "delivered").status_code == 200
    assert twilio_post("/sms/status", {"MessageStatus": "delivered"}).status_code == 200
    assert report(twilio_post, "SM" + "1" * 32, "no-such-status").status_code == 200


def test_a_21610_in_a_delivery_report_opts_the_number_out(app, twilio_post, fake_twilio):
    sid = sent_text(app)
    report(twilio_post, sid, "failed", "21610")
    with app.app_context():
        assert outbox.number_opted_out(MOBILE)


def test_stop_from_a_number_phonenumbers_does_not_know_still_counts(app, twilio_post):
    unknown = "+88299912345"
    inbound(twilio_post, "STOP", number=unknown)
    with app.app_context(), store.read() as conn:
        hashes = set(conn.execute(sa.select(store.opt_outs.c.number_hash)).scalars())
        assert hashes == {store.number_hash(unknown)}
