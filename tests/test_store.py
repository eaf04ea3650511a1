"""The store: schema by migration on SQLite and PostgreSQL, engine settings, keyed hashes."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import make_app, wait_for

from ivr import cli, store

TABLES = {"outbox", "opt_outs", "local_texts", "message_events", "spent_calls", "staff_sessions",
          "inbound_messages", "alembic_version"}


def head_revision() -> str:
    return ScriptDirectory.from_config(store.alembic_config()).get_current_head()


def test_upgrade_creates_every_table_and_can_run_again(tmp_path, database_url):
    app = make_app(tmp_path, DATABASE_URL=database_url)  # runs store.upgrade() once
    with app.app_context():
        store.upgrade()
        store.upgrade()
        assert store.current_revision() == head_revision()
        assert set(sa.inspect(store.engine()).get_table_names()) >= TABLES


def test_the_migrations_build_exactly_the_tables_the_code_uses(tmp_path, database_url):
    app = make_app(tmp_path, DATABASE_URL=database_url)
    with app.app_context(), store.engine().connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), store.metadata)
    assert differences == []


def test_the_outbox_call_key_is_unique_in_the_schema(tmp_path, database_url):
    """One text per call rests on this constraint (a retried yes, two webhooks at once)."""
    app = make_app(tmp_path, DATABASE_URL=database_url)
    with app.app_context():
        inspector = sa.inspect(store.engine())
        unique = [c["column_names"] for c in inspector.get_unique_constraints("outbox")]
        unique += [i["column_names"] for i in inspector.get_indexes("outbox") if i["unique"]]
        assert ["call_key"] in unique
        now = store.utcnow()
        row = dict(call_key="k", status="held", to_hash="h", body="b", segments=1,
                   next_attempt_at=now, created_at=now, updated_at=now)
        with store.begin() as conn:
            conn.execute(sa.insert(store.outbox).values(**row))
        with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
            conn.execute(sa.insert(store.outbox).values(**row))


def test_the_cli_upgrades_the_database(tmp_path, database_url):
    app = make_app(tmp_path, DATABASE_URL=database_url)
    result = app.test_cli_runner().invoke(cli.main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


@pytest.mark.postgres
def test_on_postgres_everything_goes_into_the_connections_own_schema(tmp_path, postgres_url):
    app = make_app(tmp_path, DATABASE_URL=postgres_url)
    with app.app_context(), store.engine().connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
        assert schema.startswith("t_")
        found = set(conn.execute(sa.text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
            {"s": schema}).scalars())
        version = conn.execute(sa.text(f"SELECT version_num FROM {schema}.alembic_version")
                               ).scalar()
    assert found >= TABLES
    assert version == head_revision()


@pytest.mark.postgres
def test_upgrades_started_together_do_not_collide(tmp_path, postgres_url):
    apps = [make_app(tmp_path / str(i), DATABASE_URL=postgres_url) for i in range(2)]
    # Drop everything the first upgrade made, then upgrade from two threads at once.
    with apps[0].app_context(), store.engine().begin() as conn:
        for name in sa.inspect(conn).get_table_names():
            conn.execute(sa.text(f"DROP TABLE {name} CASCADE"))
    errors, barrier = [], threading.Barrier(2)

    def upgrade(app):
        with app.app_context():
            barrier.wait()
            try:
                store.upgrade()
            except Exception as exc:  # pragma: no cover - the failure we look for
                errors.append(exc)

    threads = [threading.Thread(target=upgrade, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with apps[1].app_context():
        assert store.current_revision() == head_revision()


def test_sqlite_uses_wal_and_waits_for_locks(tmp_path):
    app = make_app(tmp_path)
    with app.app_context(), store.engine().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == store.SQLITE_BUSY_MS


def test_by_default_the_database_is_a_file_in_the_instance_folder(tmp_path):
    app = make_app(tmp_path, DATABASE_URL=None, INSTANCE_PATH=str(tmp_path / "fresh" / "inst"))
    path = Path(app.instance_path) / "calmline.sqlite"
    assert app.config["DATABASE_URL"] == "sqlite:///" + str(path)
    assert path.exists()


def test_sqlite_creates_the_folder_of_its_file(tmp_path):
    app = make_app(tmp_path, DATABASE_URL="sqlite:///" + str(tmp_path / "a" / "b" / "line.db"))
    with app.app_context():
        assert store.current_revision() == head_revision()
    assert (tmp_path / "a" / "b" / "line.db").exists()


def test_each_app_has_its_own_engine(tmp_path):
    first = make_app(tmp_path / "1")
    second = make_app(tmp_path / "2")
    assert store.engine(first) is not store.engine(second)
    assert str(store.engine(first).url) != str(store.engine(second).url)


@pytest.mark.parametrize(("given", "expected"), [
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
])
def test_host_style_postgres_urls_use_psycopg3(given, expected):
    assert store.normalise_url(given) == expected


def test_keyed_hashes_depend_on_the_secret_and_never_show_the_number(tmp_path):
    number = "+447400123456"
    hashes = []
    for secret in ("one secret", "another secret"):
        app = make_app(tmp_path / secret.replace(" ", "_"), SECRET_KEY=secret)
        with app.app_context():
            hashes.append(store.number_hash(number))
            assert store.number_hash(number) == store.number_hash(number)
            assert store.call_key("CA1") != store.number_hash("CA1")  # kinds do not collide
    assert hashes[0] != hashes[1]
    assert all(len(h) == 64 and "7400123456" not in h for h in hashes)


# -- statements on the driver's connection (store.begin_plain) -------------------------

_PLAIN_INSERT = sa.insert(store.outbox).values(
    {name: sa.bindparam(name) for name in ("call_key", "status", "to_hash", "body", "segments",
                                           "simulated", "next_attempt_at", "created_at",
                                           "updated_at")})
_PLAIN_STATUS = sa.update(store.outbox).where(
    store.outbox.c.call_key == sa.bindparam("key")).values(status=sa.bindparam("v_status"))
_PLAIN_ROW = sa.select(store.outbox.c.status, store.outbox.c.segments).where(
    store.outbox.c.call_key == sa.bindparam("key"))


def _plain_row(key: str, when) -> dict:
    return dict(call_key=key, status="held", to_hash="h", body="b", segments=2, simulated=False,
                next_attempt_at=when, created_at=when, updated_at=when)


def test_a_plain_transaction_stores_what_sqlalchemy_stores_and_reads_back_rows(tmp_path,
                                                                                database_url):
    """The webhooks' writes go through the driver; a row must be the same, byte for byte,
    as SQLAlchemy's own INSERT would make it (the time's text on SQLite, booleans)."""
    app = make_app(tmp_path, DATABASE_URL=database_url)
    with app.app_context():
        when = store.utcnow().replace(microsecond=0)  # the case a plain adapter writes short
        with store.begin() as conn:
            conn.execute(sa.insert(store.outbox).values(**_plain_row("by-sqlalchemy", when)))
        with store.begin_plain() as conn:
            assert conn.execute(_PLAIN_INSERT, _plain_row("by-driver", when)).rowcount == 1
            changed = conn.execute(_PLAIN_STATUS, {"key": "by-driver", "v_status": "queued"})
            assert changed.rowcount == 1
            row = conn.execute(_PLAIN_ROW, {"key": "by-driver"}).first()
            assert (row.status, row.segments) == ("queued", 2)
            assert conn.execute(_PLAIN_ROW, {"key": "nobody"}).first() is None
        with store.engine().connect() as conn:
            stored = {key: conn.execute(sa.text(
                "SELECT CAST(created_at AS TEXT), CAST(next_attempt_at AS TEXT), "
                "CAST(simulated AS TEXT), segments FROM outbox WHERE call_key = :k"),
                {"k": key}).one() for key in ("by-sqlalchemy", "by-driver")}
        assert stored["by-driver"] == stored["by-sqlalchemy"]
        assert store.first_value(_PLAIN_ROW, key="by-driver") == "queued"
        assert tuple(store.first_row(_PLAIN_ROW, key="by-driver")) == ("queued", 2)


def test_a_plain_transaction_rolls_back_on_error_and_raises_as_sqlalchemy_does(tmp_path,
                                                                              database_url):
    app = make_app(tmp_path, DATABASE_URL=database_url)
    with app.app_context():
        when = store.utcnow()
        with store.begin_plain() as conn:
            conn.execute(_PLAIN_INSERT, _plain_row("kept", when))
        with pytest.raises(sa.exc.IntegrityError), store.begin_plain() as conn:
            conn.execute(_PLAIN_INSERT, _plain_row("undone", when))
            conn.execute(_PLAIN_INSERT, _plain_row("kept", when))  # call_key is unique
        with store.begin_plain() as conn:  # a savepoint undoes only what it holds
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(_PLAIN_INSERT, _plain_row("kept", when))
            conn.execute(_PLAIN_STATUS, {"key": "kept", "v_status": "queued"})
        with store.read() as conn:
            keys = dict(conn.execute(sa.select(store.outbox.c.call_key,
                                               store.outbox.c.status)).all())
        assert keys == {"kept": "queued"}


def test_a_statement_with_an_in_list_is_refused_on_the_plain_path(tmp_path):
    """An IN list is expanded per execution: compiled once it would send a placeholder."""
    app = make_app(tmp_path)
    statement = sa.select(store.outbox.c.id).where(store.outbox.c.status.in_(("held", "queued")))
    with app.app_context(), pytest.raises(ValueError, match="IN list"):
        store.first_value(statement)


def test_the_plain_path_raises_a_database_that_is_down_as_sqlalchemy_does(tmp_path):
    """The webhooks catch SQLAlchemy's OperationalError (the caller still hears 999 and
    the NSPCC): a refused connection on the driver's path must come the same way."""
    app = make_app(tmp_path, upgrade=False,
                   DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with app.app_context():
        with pytest.raises(sa.exc.OperationalError, match="127.0.0.1"):
            store.first_row(_PLAIN_ROW, key="any")
        with pytest.raises(sa.exc.OperationalError, match="127.0.0.1"), store.begin_plain() as conn:
            conn.execute(_PLAIN_STATUS, {"key": "any", "v_status": "queued"})


# -- SQLite: the process's own writer connection ------------------------------------------


def test_sqlite_writes_run_on_one_connection_of_the_process_that_never_sleeps_in_sqlite(tmp_path):
    """begin_plain's connection keeps a busy timeout of 0 (the lock is polled in short steps,
    store._poll_begin); the pooled ones keep SQLite's own wait for everything else."""
    app = make_app(tmp_path)
    with app.app_context():
        seen = set()
        for key in ("first", "second"):
            with store.begin_plain() as conn:
                conn.execute(_PLAIN_INSERT, _plain_row(key, store.utcnow()))
                seen.add(id(conn.raw))
                assert conn.raw.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        assert len(seen) == 1
        with store.engine().connect() as pooled:
            assert pooled.exec_driver_sql("PRAGMA busy_timeout").scalar() == store.SQLITE_BUSY_MS
        with store.read() as conn:
            keys = conn.execute(sa.select(store.outbox.c.call_key)).scalars().all()
        assert sorted(keys) == ["first", "second"]


def _in_a_transaction(row: dict) -> None:
    with store.begin_plain() as conn:
        conn.execute(_PLAIN_INSERT, row)


def _on_its_own(row: dict) -> None:
    store.write_alone(_PLAIN_INSERT, row)


@pytest.mark.parametrize("write_row", [_in_a_transaction, _on_its_own],
                         ids=["begin_plain", "write_alone"])
def test_a_write_waits_for_another_process_holding_the_lock_then_goes_through(tmp_path,
                                                                              write_row):
    """SQLite refuses it while another process writes; it is tried again until the lock is
    free, then commits: the other process can write straight after."""
    import sqlite3

    app = make_app(tmp_path)
    other = sqlite3.connect(str(tmp_path / "calmline.sqlite"), isolation_level=None, timeout=60)
    other.execute("BEGIN IMMEDIATE")  # as the other worker would
    done = threading.Event()

    def write():
        with app.app_context():
            write_row(_plain_row("after-the-wait", store.utcnow()))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    # It polls in steps under 2 ms for SOON_SECONDS, then waits in SQLite: still not through.
    assert not done.wait(store.SOON_SECONDS + 0.5)
    other.execute("ROLLBACK")
    writer.join(120)
    assert done.is_set()
    other.execute("PRAGMA busy_timeout = 0")
    other.execute("BEGIN IMMEDIATE")  # at once: the write left no lock behind
    assert other.execute("SELECT call_key FROM outbox").fetchall() == [("after-the-wait",)]
    other.execute("ROLLBACK")
    other.close()


def test_a_broken_writer_connection_costs_one_write_not_every_write_after_it(tmp_path):
    app = make_app(tmp_path)
    with app.app_context():
        with store.begin_plain() as conn:
            broken = conn.raw
        broken.close()  # as a connection lost under it would be
        with pytest.raises(sa.exc.ProgrammingError), store.begin_plain() as conn:
            conn.execute(_PLAIN_INSERT, _plain_row("lost", store.utcnow()))
        with store.begin_plain() as conn:
            assert conn.raw is not broken
            conn.execute(_PLAIN_INSERT, _plain_row("kept", store.utcnow()))
        assert store.first_value(_PLAIN_ROW, key="kept") == "held"


def test_a_forked_process_writes_and_reads_on_connections_of_its_own(tmp_path):
    """A SQLite connection must not cross a fork: the child opens its own."""
    import multiprocessing

    app = make_app(tmp_path)
    with app.app_context(), store.begin_plain() as conn:
        conn.execute(_PLAIN_INSERT, _plain_row("parent", store.utcnow()))

    with app.app_context():  # the parent's own reading connection, before the fork
        assert store.first_value(_PLAIN_ROW, key="parent") == "held"

    def child():
        with app.app_context():
            with store.begin_plain() as conn:
                conn.execute(_PLAIN_INSERT, _plain_row("child", store.utcnow()))
            if store.first_value(_PLAIN_ROW, key="child") != "held":
                raise SystemExit(3)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(120)
    assert process.exitcode == 0
    with app.app_context():
        with store.begin_plain() as conn:  # the parent's own connection still works
            conn.execute(_PLAIN_INSERT, _plain_row("parent-again", store.utcnow()))
        with store.read() as conn:
            keys = conn.execute(sa.select(store.outbox.c.call_key)).scalars().all()
    assert sorted(keys) == ["child", "parent", "parent-again"]


def _backend_state(pid: int) -> str | None:
    with store.engine().connect() as other:
        return other.exec_driver_sql(
            "SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).scalar()


def _one_row_written_and_read(key: str):
    """One row written on the plain path and read back: this thread's reading connection."""
    with store.begin_plain() as conn:
        conn.execute(_PLAIN_INSERT, _plain_row(key, store.utcnow()))
    assert store.first_value(_PLAIN_ROW, key=key) == "held"
    return store.engine().info_readers.raw


def test_reads_run_on_a_connection_of_each_thread_left_out_of_any_transaction(tmp_path,
                                                                            database_url):
    app = make_app(tmp_path, DATABASE_URL=database_url)
    with app.app_context():
        mine = _one_row_written_and_read("seen")
        assert store.first_row(_PLAIN_ROW, key="seen") == ("held", 2)
        assert store.engine().info_readers.raw is mine  # kept, not taken from the pool each time
        with store.begin_plain() as conn:  # a later commit is read at once (no snapshot kept)
            conn.execute(_PLAIN_STATUS, {"key": "seen", "v_status": "queued"})
        assert store.first_value(_PLAIN_ROW, key="seen") == "queued"
        if store.is_postgres():  # idle, not "idle in transaction": no snapshot, no lock held
            assert _backend_state(mine.info.backend_pid) == "idle"
        else:
            assert mine.in_transaction is False
    others = []

    def read_elsewhere():
        with app.app_context():
            others.append((store.first_value(_PLAIN_ROW, key="seen"),
                           store.engine().info_readers.raw))

    thread = threading.Thread(target=read_elsewhere)
    thread.start()
    thread.join(120)
    assert others[0][0] == "queued" and others[0][1] is not mine


def test_a_failed_read_leaves_the_thread_a_fresh_connection(tmp_path):
    app = make_app(tmp_path)
    with app.app_context():
        assert store.first_value(_PLAIN_ROW, key="none") is None
        broken = store.engine().info_readers.raw
        broken.close()
        with pytest.raises(sa.exc.ProgrammingError):
            store.first_value(_PLAIN_ROW, key="none")
        assert store.first_value(_PLAIN_ROW, key="none") is None
        assert store.engine().info_readers.raw is not broken


def test_an_in_memory_sqlite_keeps_to_the_pool_and_reads_what_it_wrote(tmp_path):
    """An in-memory database is one per connection: no connections of its own there."""
    app = make_app(tmp_path, upgrade=False, DATABASE_URL="sqlite://")
    with app.app_context():
        assert not hasattr(store.engine(), "info_writer")
        store.engine().pool.dispose()
        with store.begin() as conn:
            store.metadata.create_all(conn)
        with store.begin_plain() as conn:
            conn.execute(_PLAIN_INSERT, _plain_row("in-memory", store.utcnow()))
        assert store.first_value(_PLAIN_ROW, key="in-memory") == "held"


@pytest.mark.postgres
def test_a_reader_the_server_closed_is_replaced_and_the_read_answers(tmp_path, postgres_url):
    """What the pool's ping caught before: a restart, an idle connection closed by the server."""
    app = make_app(tmp_path, DATABASE_URL=postgres_url)
    with app.app_context():
        assert store.first_value(_PLAIN_ROW, key="nobody") is None
        reader = store.engine().info_readers.raw
        pid = reader.info.backend_pid
        with store.engine().connect() as other:
            other.exec_driver_sql("SELECT pg_terminate_backend(%s)", (pid,))
        wait_for(lambda: _backend_state(pid) is None, "the reader's backend to end")
        assert store.first_value(_PLAIN_ROW, key="nobody") is None  # tried again on a new one
        assert store.engine().info_readers.raw is not reader


def test_disposing_of_the_engine_lets_its_own_connections_go_too(tmp_path, database_url):
    """As Engine.dispose() closes the pool's: the next read and write open new ones."""
    app = make_app(tmp_path, DATABASE_URL=database_url)
    with app.app_context():
        reader = _one_row_written_and_read("before")
        writer = getattr(store.engine(), "info_writer", None)
        written_on = writer.raw if writer else None
        store.engine().dispose()
        assert store.first_value(_PLAIN_ROW, key="before") == "held"
        assert store.engine().info_readers.raw is not reader
        with pytest.raises(store.engine().dialect.loaded_dbapi.Error):  # closed for good
            reader.cursor().execute("SELECT 1")
        with store.begin_plain() as conn:
            conn.execute(_PLAIN_INSERT, _plain_row("after", store.utcnow()))
        if writer is not None:  # SQLite: the process's writer connection
            assert writer.raw is not written_on
        assert store.first_value(_PLAIN_ROW, key="after") == "held"


# -- a write on its own (store.write_alone) -------------------------------------------------


def test_a_write_on_its_own_stores_what_sqlalchemy_stores_and_raises_as_it_does(tmp_path,
                                                                               database_url):
    app = make_app(tmp_path, DATABASE_URL=database_url)
    with app.app_context():
        when = store.utcnow().replace(microsecond=0)
        with store.begin() as conn:
            conn.execute(sa.insert(store.outbox).values(**_plain_row("by-sqlalchemy", when)))
        assert store.write_alone(_PLAIN_INSERT, _plain_row("alone", when)) == 1
        assert store.write_alone(_PLAIN_STATUS, {"key": "alone", "v_status": "queued"}) == 1
        assert store.write_alone(_PLAIN_STATUS, {"key": "nobody", "v_status": "queued"}) == 0
        with pytest.raises(sa.exc.IntegrityError):
            store.write_alone(_PLAIN_INSERT, _plain_row("alone", when))  # call_key is unique
        with store.engine().connect() as conn:
            stored = {key: conn.execute(sa.text(
                "SELECT CAST(created_at AS TEXT), CAST(simulated AS TEXT), segments "
                "FROM outbox WHERE call_key = :k"), {"k": key}).one()
                for key in ("by-sqlalchemy", "alone")}
        assert stored["alone"] == stored["by-sqlalchemy"]
        assert store.first_value(_PLAIN_ROW, key="alone") == "queued"


def test_a_broken_connection_costs_a_write_on_its_own_one_write(tmp_path):
    app = make_app(tmp_path)
    with app.app_context():
        with store.begin_plain() as conn:
            broken = conn.raw
        broken.close()
        with pytest.raises(sa.exc.ProgrammingError):
            store.write_alone(_PLAIN_INSERT, _plain_row("lost", store.utcnow()))
        store.write_alone(_PLAIN_INSERT, _plain_row("kept", store.utcnow()))
        assert store.first_value(_PLAIN_ROW, key="kept") == "held"
