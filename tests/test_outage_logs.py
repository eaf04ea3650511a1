"""While the database is down the worker logs one line when it starts failing, a summary a
minute, one line when it works again: never a traceback at every look."""
from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa
from conftest import make_app

from ivr import logs, store
from ivr.texts import worker


def _wait_for(condition, what: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"never: {what}"
        time.sleep(0.01)


def _rename(app, old: str, new: str) -> None:
    with app.app_context(), store.engine().begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))


def test_a_worker_in_an_outage_logs_one_traceback_then_one_line_when_it_ends(tmp_path, caplog):
    app = make_app(tmp_path)
    _rename(app, "outbox", "outbox_away")  # every look now fails, as with the database down
    stop = threading.Event()
    with app.app_context():
        sender = worker.Worker(app)
    caplog.set_level(logging.INFO, logger="ivr.texts.worker")

    def run():
        with app.app_context():
            sender.run_forever(stop, idle=0.01, outage_idle=0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: sender.outage.failures >= 50, "fifty failed looks")
        _rename(app, "outbox_away", "outbox")
        _wait_for(lambda: not sender.outage.ongoing, "the worker working again")
    finally:
        stop.set()
        thread.join(30)
    records = [r for r in caplog.records if r.name == "ivr.texts.worker"]
    with_traceback = [r for r in records if r.exc_info or r.exc_text]
    assert len(with_traceback) == 1 and "failing" in with_traceback[0].getMessage()
    assert len([r for r in records if r.levelno >= logging.WARNING]) == 2
    assert "working again" in records[-1].getMessage()
    assert "failure(s)" in records[-1].getMessage()


def test_a_long_outage_gets_one_summary_a_minute():
    now = [0.0]
    logger = logging.getLogger("test.outage")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        outage = logs.OutageLog(logger, "sending", every=60, clock=lambda: now[0])
        for _ in range(5 * 60 * 4):  # five minutes of four looks a second
            outage.failed(ConnectionError("connection refused\nmore detail"))
            now[0] += 0.25
        outage.succeeded()
        outage.succeeded()  # already over: nothing more
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in seen]
    assert len(messages) == 1 + 4 + 1, messages  # start, a summary each minute after, the end
    assert messages[0].startswith("sending: failing (ConnectionError: connection refused)")
    assert "still failing after 60 s (240 failure(s)" in messages[1]
    assert messages[-1] == "sending: working again after 300 s (1200 failure(s))"
    assert sum(1 for r in seen if r.exc_info) == 1
