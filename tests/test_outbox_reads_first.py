"""What the text's webhooks answer without SQLite's write lock, and what they log.

A yes that was already decided (Twilio retrying the webhook, a caller pressing yes
twice), a caller whose number takes no texts, a number confirmed twice: each is
answered from a plain read, so it never queues behind the single writer. Shown by
holding the write lock from another connection, as another worker process would:
a request that needed the lock could only fail with "database is locked" there.
"""
from __future__ import annotations

import logging
import sqlite3

import pytest
import sqlalchemy as sa
from conftest import make_app

from ivr import store
from ivr.call.caller import SIMULATED_FROM
from ivr.texts import body as textbody
from ivr.texts import outbox

MOBILE = "+447400123456"
LANDLINE = "+442079460123"


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)  # SQLite: the lock below is SQLite's


@pytest.fixture
def locked(app, tmp_path):
    """Hold SQLite's write lock from a connection of its own, as another process would."""
    other = sqlite3.connect(str(tmp_path / "calmline.sqlite"), isolation_level=None, timeout=60)
    holding = []

    def hold():
        other.execute("BEGIN IMMEDIATE")
        holding.append(True)

    yield hold
    if holding:
        other.execute("ROLLBACK")
    other.close()


def rows(app):
    with app.app_context(), store.read() as conn:
        return conn.execute(sa.select(store.outbox).order_by(store.outbox.c.id)).all()


def test_a_repeated_yes_is_answered_while_another_process_holds_the_write_lock(app, locked):
    with app.app_context():
        assert outbox.request_text("CA-again", MOBILE, ["removal"]) == "queued"
        before = rows(app)
        locked()
        assert outbox.request_text("CA-again", MOBILE, ["removal"]) == "queued"
        assert outbox.request_text("CA-again", MOBILE, ["talk"]) == "queued"
    assert rows(app) == before  # nothing written, and still one row


def test_a_landline_yes_asks_for_a_mobile_without_the_write_lock(app, locked):
    locked()
    with app.app_context():
        assert outbox.request_text("CA-land", LANDLINE, ["talk"]) == "need_number"
        assert outbox.request_text("CA-land", "anonymous", ["talk"]) == "need_number"
    assert rows(app) == []


def test_a_number_confirmed_twice_is_answered_while_the_lock_is_held(app, locked):
    with app.app_context():
        outbox.stage_number("CA-key", "+447911123456", ["talk"])
        assert outbox.confirm_number("CA-key") == "queued"
        locked()
        assert outbox.confirm_number("CA-key") == "queued"
    [row] = rows(app)
    assert row.status == outbox.HELD


def test_a_fresh_yes_still_waits_for_the_lock_and_writes_its_row(app):
    with app.app_context():
        assert outbox.request_text("CA-new", MOBILE, ["removal"]) == "queued"
    [row] = rows(app)
    assert (row.status, row.to_number) == (outbox.HELD, MOBILE)


def test_the_same_branches_in_two_languages_each_get_their_own_words(app):
    """The texts are composed once per language and branches, never shared between them."""
    flow = app.extensions["calm_line.flow"]
    polish = flow.in_language("pl-PL")
    with app.app_context():
        outbox.request_text("CA-en", MOBILE, ["removal"])
        outbox.request_text("CA-pl", "+447400123457", ["removal"], language="pl-PL")
        outbox.request_text("CA-en2", "+447400123458", ["removal"])
    english, in_polish, english_again = rows(app)
    assert english.body == "\n\n".join(textbody.compose_parts(flow, ["removal"]))
    assert in_polish.body == "\n\n".join(textbody.compose_parts(polish, ["removal"]))
    assert english.body != in_polish.body
    assert english_again.body == english.body


def test_a_confirm_after_the_call_ended_says_sorry_and_logs_no_trace(app, call, twilio_post,
                                                                    caplog):
    caller = call(SIMULATED_FROM["withheld"])
    for key in ("#", "1", "07911123456"):
        turn = caller.press(key)
    assert "0 7 9 1 1, 1 2 3, 4 5 6" in turn.text
    confirm_url = caller._gather().get("action")  # where the "1" to confirm goes
    assert "number_confirm" in confirm_url
    confirm = {"CallSid": caller.call_sid, "From": caller.from_number, "To": caller.to_number,
               "Digits": "1", "CallStatus": "in-progress"}
    caller.hang_up()  # the number is forgotten
    with caplog.at_level(logging.INFO):
        late = twilio_post(confirm_url, confirm)  # Twilio retrying the confirm, late
    words = late.get_data(as_text=True)
    assert late.status_code == 200
    assert "Sorry, we could not arrange the text" in words
    assert "If a child is in immediate danger, call 9 9 9" in words
    [warned] = [r for r in caplog.records if "no keyed-in number to confirm" in r.getMessage()]
    assert warned.levelno == logging.WARNING and warned.exc_info is None
    assert not [r for r in caplog.records if r.exc_info]
    assert [row.status for row in rows(app)] == [outbox.ABANDONED]


def test_staging_a_number_returns_what_the_line_reads_back(app):
    """The number webhook reads back what stage_number kept, without reading it again:
    the new number, or the one already confirmed when a late number comes in."""
    with app.app_context():
        assert outbox.stage_number("CA-back", "+447911123456", ["talk"]) == "+447911123456"
        assert outbox.stage_number("CA-back", MOBILE, ["talk"]) == MOBILE  # keyed in again
        assert outbox.confirm_number("CA-back") == "queued"
        assert outbox.stage_number("CA-back", "+447911123456", ["talk"]) == MOBILE
        assert outbox.staged_number("CA-back") == MOBILE
