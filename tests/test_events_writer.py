"""The anonymous events' writer: what it stores, and how long it holds SQLite's one writer.

A batch is written CHUNK_ROWS rows to a transaction, each chunk one statement on
SQLite (json_each), made before the transaction begins, so a webhook that writes
(a yes to the text) waits for at most one short chunk.
"""
from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from conftest import make_app

from ivr import store
from ivr.call import events

AT = datetime(2026, 11, 30, 22)


def rows(count: int) -> list[dict]:
    odd = ["x'\"y", None, "ż ó", "a,b"]
    return [dict(at=AT, call_key=f"{index:032d}" if index % 3 else None, kind="step",
                 step=f"s{index}", detail=odd[index % 4], via="key" if index % 2 else None,
                 value=index if index % 5 else None, simulated=bool(index % 7 == 0))
            for index in range(count)]


def stored(app) -> list[tuple]:
    columns = [c for c in events.events.c if c.name != "id"]
    with app.app_context(), store.read() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*columns).order_by(events.events.c.id))]


@pytest.fixture
def app(tmp_path, database_url):
    return make_app(tmp_path, DATABASE_URL=database_url)


def test_a_batch_larger_than_a_chunk_is_written_whole_and_in_order(app):
    writer = app.extensions[events.EXTENSION]
    count = events.CHUNK_ROWS * 2 + 7
    assert writer.write(rows(count))
    got = stored(app)
    assert len(got) == count and writer.written == count
    assert [r[3] for r in got] == [f"s{index}" for index in range(count)]  # step, in order
    assert got[1] == (AT, f"{1:032d}", "step", "s1", None, "key", 1, False)
    assert got[7][-1] is True and got[0][1] is None and got[0][6] is None


def test_one_statement_stores_exactly_what_executemany_stored(tmp_path, monkeypatch):
    """SQLite: the single json_each INSERT and the driver's executemany give the same
    bytes in every column (SQLAlchemy's text for the time, 0 and 1, NULLs, quotes)."""
    if not events.ONE_STATEMENT:
        pytest.skip("this SQLite has no JSON functions; executemany is used")
    raw = []
    for one in (True, False):
        monkeypatch.setattr(events, "ONE_STATEMENT", one)
        app = make_app(tmp_path / str(one))
        assert app.extensions[events.EXTENSION].write(rows(30))
        with app.app_context(), store.engine().connect() as conn:
            raw.append(conn.exec_driver_sql(
                "SELECT at, typeof(at), call_key, kind, step, detail, via, value, typeof(value),"
                " simulated, typeof(simulated) FROM events ORDER BY id").all())
    assert raw[0] == raw[1] and len(raw[0]) == 30
    assert raw[0][0][:2] == ("2026-11-30 22:00:00.000000", "text")
