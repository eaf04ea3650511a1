"""GET /healthz (the process is up) and GET /readyz (flow, database, outbox), both cheap."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from conftest import make_app

from ivr import store


@contextmanager
def statements(app):
    """Count the SQL statements run while the block runs."""
    seen = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    engine = store.engine(app)
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def queue_text(app, waited: timedelta, status: str = "queued", key: str = "k1") -> None:
    with app.app_context(), store.begin() as conn:
        now = store.utcnow()
        conn.execute(sa.insert(store.outbox).values(
            call_key=key, status=status, to_hash="x", body="b", segments=1, simulated=False,
            next_attempt_at=now - waited, created_at=now, updated_at=now))


def test_healthz_says_the_process_is_up_without_the_database(app, client):
    with statements(app) as seen:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "flow": True}
    assert seen == []


def test_healthz_answers_even_when_the_database_is_down(tmp_path):
    app = make_app(tmp_path, upgrade=False, DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert app.test_client().get("/healthz").status_code == 200


def test_readyz_is_ready_with_one_query(app, client):
    with statements(app) as seen:
        response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"] == {"flow": "ok", "database": "ok", "outbox": "ok"}
    assert body["outbox"] == {"due": 0, "oldest_due_seconds": 0.0, "limit_seconds": 300.0}
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_fails_when_the_outbox_backs_up(app, client):
    queue_text(app, timedelta(minutes=1))
    assert client.get("/readyz").status_code == 200  # a text due a minute ago is normal
    queue_text(app, timedelta(minutes=20), key="k2")
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "not ready"
    assert body["checks"]["outbox"].startswith("backing up: a text has waited 1200 s")
    assert body["outbox"]["due"] == 2


def test_a_held_text_past_its_hold_counts_as_due_and_a_later_retry_does_not(app, client):
    queue_text(app, timedelta(minutes=30), status="held")
    assert client.get("/readyz").status_code == 503
    with app.app_context(), store.begin() as conn:
        conn.execute(sa.delete(store.outbox))
    queue_text(app, -timedelta(minutes=30))  # a retry waiting for its backoff: not due yet
    assert client.get("/readyz").status_code == 200


def test_the_outbox_limit_is_a_setting(tmp_path):
    app = make_app(tmp_path, READY_OUTBOX_MAX_WAIT_SECONDS=30)
    queue_text(app, timedelta(minutes=1))
    assert app.test_client().get("/readyz").status_code == 503


def test_readyz_fails_when_the_database_does_not_answer(tmp_path):
    app = make_app(tmp_path, upgrade=False, DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["checks"]["database"].startswith("not answering")
    assert body["checks"]["flow"] == "ok" and body["checks"]["outbox"] == "unknown"
    assert "nobody" not in response.get_data(as_text=True)  # no connection details


def test_readyz_fails_when_the_tables_are_missing(tmp_path):
    app = make_app(tmp_path, upgrade=False)
    assert app.test_client().get("/readyz").status_code == 503
