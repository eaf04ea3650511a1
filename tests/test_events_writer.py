"""The anonymous events' writer: what it stores, and how long it holds SQLite's one writer.

A batch is written CHUNK_ROWS rows to a transaction, made before the transaction
begins (on SQLite, INSERTs of ROWS_PER_STATEMENT rows, every value a parameter), so a
webhook that writes (a yes to the text) waits for at most one short chunk.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime

import pytest
import sqlalchemy as sa
from conftest import make_app

from ivr import store
from ivr.call import events

AT = datetime(2026, 11, 30, 22)


def rows(count: int) -> list[dict]:
    """Rows with quotes, NULLs and both booleans."""
    odd = ["x'\"y", None, "ż ó", "a,b"]
    made = [dict(at=AT, call_key=f"{index:032d}" if index % 3 else None, kind="step",
                 step=f"s{index}", detail=odd[index % 4], via="key" if index % 2 else None,
                 value=index if index % 5 else None, simulated=bool(index % 7 == 0))
            for index in range(count)]
    return made


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


def test_many_row_inserts_store_exactly_what_sqlalchemys_insert_stores(tmp_path):
    """SQLite: the VALUES lists give the same bytes in every column as SQLAlchemy's own
    INSERT of the same rows (its text for the time, 0 and 1, NULLs, quotes)."""
    count = events.ROWS_PER_STATEMENT + 3  # two statements, the second short
    raw = []
    for ours in (True, False):
        app = make_app(tmp_path / str(ours))
        if ours:
            assert app.extensions[events.EXTENSION].write(rows(count))
        else:
            with app.app_context(), store.begin() as conn:
                conn.execute(sa.insert(events.events), rows(count))
        with app.app_context(), store.engine().connect() as conn:
            raw.append(conn.exec_driver_sql(
                "SELECT at, typeof(at), call_key, kind, step, detail, via, value, typeof(value),"
                " simulated, typeof(simulated) FROM events ORDER BY id").all())
    assert raw[0] == raw[1] and len(raw[0]) == count
    assert raw[0][0][:2] == ("2026-11-30 22:00:00.000000", "text")


def test_no_statement_binds_more_parameters_than_this_sqlite_takes(tmp_path):
    """A chunk is one statement where SQLite takes 32,766 parameters (3.32 and later: one
    GIL hand-over while the write lock is held); under 999 a statement on older ones."""
    limit = sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    app = make_app(tmp_path)
    with app.app_context():
        batch = events._batch(store.engine().dialect, rows(events.CHUNK_ROWS))
    assert len(batch) == -(-events.CHUNK_ROWS // events.ROWS_PER_STATEMENT)
    assert all(sql.count("?") == len(params) <= limit for sql, params in batch)
    assert sum(len(params) for _, params in batch) == events.CHUNK_ROWS * len(events.COLUMNS)
    if sqlite3.sqlite_version_info >= (3, 32):
        assert len(batch) == 1
    else:
        assert events.ROWS_PER_STATEMENT * len(events.COLUMNS) <= 999


def test_events_are_not_indexed_by_call_and_the_downgrade_puts_the_index_back(
        tmp_path, database_url):
    """Migration 0010: nothing reads events by call, so no row pays for that index."""
    from alembic import command

    app = make_app(tmp_path, DATABASE_URL=database_url)
    with app.app_context():
        def indexed() -> set[str]:
            return {ix["name"] for ix in sa.inspect(store.engine()).get_indexes("events")}

        assert indexed() == {"ix_events_at"}
        with store.engine().begin() as conn:
            command.downgrade(store.alembic_config(conn), "0009_text_language")
        assert indexed() == {"ix_events_at", "ix_events_call_key"}
        store.upgrade()
        assert indexed() == {"ix_events_at"}


def test_a_row_without_its_optional_columns_stores_nulls_there(tmp_path):
    """Every row the line makes has every column (rows_for); one made elsewhere without some
    is stored with NULLs, not refused with the whole batch."""
    app = make_app(tmp_path)
    made = rows(3)
    for optional in ("detail", "via", "value"):
        made[1].pop(optional)
    assert app.extensions[events.EXTENSION].write(made)
    got = stored(app)
    assert [row[3] for row in got] == ["s0", "s1", "s2"]  # step
    assert got[1][4:7] == (None, None, None)  # detail, via, value
    assert got[2][4:7] == ("ż ó", None, 2)
