"""Over-long or out-of-range fields from Twilio: 200, a warning, nothing the database refuses.

Signed as Twilio would sign them (a leaked token, or Twilio sending something
odd); on SQLite and PostgreSQL, which refuses NUL and numbers beyond an integer.
"""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from conftest import make_app
from test_sms import MOBILE, inbound, report, sent_text, status_of

from ivr import store
from ivr.call import events


@pytest.fixture
def app(tmp_path, database_url, twilio_settings):
    return make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)


def stored_reports(app) -> list:
    with app.app_context(), store.read() as conn:
        return conn.execute(sa.select(store.message_events)).all()


@pytest.mark.parametrize("sid", ["SM" + "a" * 100, "SM\x00" + "a" * 31, "SM'; DROP", "SM\u202eab"])
def test_a_status_report_with_an_odd_message_sid_is_ignored_with_a_warning(
        app, twilio_post, caplog, sid):
    with caplog.at_level(logging.WARNING, logger="ivr.texts.sms"):
        assert report(twilio_post, sid, "delivered").status_code == 200
    assert "not a Twilio SID" in caplog.text
    assert stored_reports(app) == []


@pytest.mark.parametrize("code", ["99999999999999999999", "2147483648", "-5", "1" * 5000, "4e4"])
def test_an_error_code_beyond_an_integer_is_dropped_with_a_warning(
        app, twilio_post, fake_twilio, caplog, code):
    sid = sent_text(app)
    with caplog.at_level(logging.WARNING, logger="ivr.texts.sms"):
        assert report(twilio_post, sid, "undelivered", error_code=code).status_code == 200
    assert status_of(app, sid) == ("undelivered", None)
    with caplog.at_level(logging.WARNING, logger="ivr.texts.sms"):
        early = report(twilio_post, "SM" + "e" * 32, "failed", error_code=code)
    assert early.status_code == 200
    assert [(r.status, r.error_code) for r in stored_reports(app)] == [("failed", None)]
    assert "ErrorCode" in caplog.text


def test_an_inbound_text_with_an_odd_message_sid_still_counts_but_is_not_stored(
        app, twilio_post, flow):
    from ivr.texts import outbox

    response = inbound(twilio_post, "STOP", sid="SM\x00" + "b" * 200)
    assert response.status_code == 200
    with app.app_context():
        assert outbox.number_opted_out(MOBILE)
        with store.read() as conn:
            assert conn.execute(sa.select(store.inbound_messages)).all() == []


def test_a_huge_call_duration_is_dropped_and_the_events_go_on(app, twilio_post, caplog):
    with caplog.at_level(logging.WARNING):
        for duration in ("9" * 40, "2147483648", "60"):
            assert twilio_post("/voice/status", {"CallSid": f"CA{duration[:6]}{len(duration)}",
                                                 "CallStatus": "completed",
                                                 "CallDuration": duration}).status_code == 200
        with app.app_context():
            assert events.flush(app)
            with store.read() as conn:
                values = sorted(conn.execute(sa.select(events.events.c.value).where(
                    events.events.c.kind == "call_ended")).scalars(), key=str)
    assert values == [60, None, None]
    assert "recording paused" not in caplog.text
    assert events.writer(app).accepting
