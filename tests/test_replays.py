"""Signed requests replayed: an inbound text acts once (by MessageSid), and a call that
had its text stays remembered after `ivr purge`, so a replayed yes sends nothing.

A Twilio signature never expires, so anyone who captured a request can send it
again. These tests capture real signed requests and send them again.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import make_app
from test_followup_calls import MOBILE, QUEUED_WORDS, to_finish
from test_sms import inbound, reply_of

from ivr import store
from ivr.call.caller import Caller, FlaskTransport
from ivr.texts import outbox, worker


@pytest.fixture
def app(tmp_path, database_url, twilio_settings):
    return make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)


class Recording(FlaskTransport):
    """Posts into the app and keeps every signed request, to replay it later."""

    def __init__(self, app):
        super().__init__(app)
        self.sent: list[tuple[str, dict, str]] = []

    def post(self, path: str, params: dict, signature: str):
        self.sent.append((path, dict(params), signature))
        return super().post(path, params, signature)

    def replay(self, index: int):
        path, params, signature = self.sent[index]
        return super().post(path, params, signature)


def test_a_replayed_start_never_undoes_a_later_stop(app, twilio_post, flow):
    inbound(twilio_post, "STOP", sid="SM" + "1" * 32)
    inbound(twilio_post, "START", sid="SM" + "2" * 32)
    inbound(twilio_post, "STOP", sid="SM" + "3" * 32)
    replayed = inbound(twilio_post, "START", sid="SM" + "2" * 32)
    assert reply_of(replayed) == flow.written(flow.sms["started_reply"])  # same answer...
    with app.app_context():
        assert outbox.number_opted_out(MOBILE)  # ...and nothing changed
        assert outbox.request_text("CA-after-replay", MOBILE, ["talk"]) == "opted_out"


def test_a_replayed_stop_after_a_later_start_changes_nothing(app, twilio_post):
    inbound(twilio_post, "STOP", sid="SM" + "4" * 32)
    inbound(twilio_post, "START", sid="SM" + "5" * 32)
    inbound(twilio_post, "STOP", sid="SM" + "4" * 32)
    with app.app_context():
        assert not outbox.number_opted_out(MOBILE)


def test_start_and_stop_are_remembered_through_a_purge(app, twilio_post):
    inbound(twilio_post, "STOP", sid="SM" + "6" * 32)
    inbound(twilio_post, "START", sid="SM" + "7" * 32)
    inbound(twilio_post, "STOP", sid="SM" + "8" * 32)
    with app.app_context():
        outbox.purge(timedelta(days=30), now=store.utcnow() + timedelta(days=400))
    inbound(twilio_post, "START", sid="SM" + "7" * 32)
    with app.app_context():
        assert outbox.number_opted_out(MOBILE)


def test_after_a_purge_a_replayed_yes_and_status_callback_send_nothing(app, fake_twilio):
    transport = Recording(app)
    caller = Caller(transport, from_number=MOBILE)
    caller.dial()
    to_finish(caller)
    assert QUEUED_WORDS in caller.press("1").text
    yes = len(transport.sent) - 1
    caller.hang_up()
    status = len(transport.sent) - 1
    with app.app_context():
        assert worker.Worker(app).run_once() == 1
        counts = outbox.purge(timedelta(days=30), now=store.utcnow() + timedelta(days=31))
        assert counts["texts"] == 1
        with store.read() as conn:
            assert conn.execute(sa.select(store.outbox)).all() == []
            [spent] = conn.execute(sa.select(store.spent_calls)).all()
            assert MOBILE[3:] not in str(tuple(spent))  # a keyed hash, no number
    code, _, body = transport.replay(yes)
    assert code == 200
    assert transport.replay(status)[0] == 200
    with app.app_context():
        assert worker.Worker(app).run_once() == 0
    assert len(fake_twilio.messages) == 1


def test_the_same_inbound_message_twice_is_recorded_once(app, twilio_post):
    for _ in range(2):
        inbound(twilio_post, "hello", sid="SM" + "9" * 32)
    with app.app_context(), store.read() as conn:
        rows = conn.execute(sa.select(store.inbound_messages)).all()
    assert [(r.message_sid, r.keyword) for r in rows] == [("SM" + "9" * 32, "other")]
