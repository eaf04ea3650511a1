"""The database: SQLite by default (a file in the instance folder), PostgreSQL via DATABASE_URL.

The tables are SQLAlchemy Core; their history is Alembic's, in
ivr/migrations (shipped inside the package). ``upgrade()`` creates them or
brings them up to date, and is safe to run again or from several processes.

Times are stored as naive UTC datetimes, the same on both databases.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import logging
import os
import sqlite3
import threading
import time
from collections import namedtuple
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
EXTENSION = "calm_line.engine"
# Any fixed number: the PostgreSQL advisory lock that serialises upgrades.
_UPGRADE_LOCK = 7_310_412_001
SQLITE_BUSY_MS = 5000

metadata = sa.MetaData()

# One row per text the caller said yes to (or a keyed-in number awaiting
# confirmation). The number is kept only while it may still be needed for
# sending; to_hash stays so that STOP can be matched.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_key", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("to_number", sa.String(20), nullable=True),
    sa.Column("to_hash", sa.String(64), nullable=False, index=True),
    sa.Column("branches", sa.String(1000), nullable=False, server_default=""),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("segments", sa.Integer, nullable=False),
    # A text too long for one message: its parts (JSON list), sent in order, and
    # how many Twilio took (the worker sends parts[parts_sent] next).
    sa.Column("parts", sa.Text, nullable=True),
    sa.Column("parts_sent", sa.Integer, nullable=False, server_default="0"),
    # The caller's language (pl-PL): the text was composed in it; NULL for rows from before.
    sa.Column("language", sa.String(16), nullable=True),
    sa.Column("simulated", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("lease_until", sa.DateTime, nullable=True),
    sa.Column("claim_token", sa.String(32), nullable=True),
    sa.Column("message_sid", sa.String(64), nullable=True),
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("released_at", sa.DateTime, nullable=True),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    # Set when a text failed because it kept failing for SMS_GIVE_UP_AFTER (for alerts).
    sa.Column("gave_up_at", sa.DateTime, nullable=True),
    sa.UniqueConstraint("call_key", name="uq_outbox_call_key"),
    sa.UniqueConstraint("message_sid", name="uq_outbox_message_sid"),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
    sa.Index("ix_outbox_created", "created_at"),  # the hourly ceiling (texts/limits.py)
)

# Calls whose outbox row was purged: the keyed hash of the CallSid only, so a
# replayed "yes" (a signed request never expires) cannot send a second text.
spent_calls = sa.Table(
    "spent_calls",
    metadata,
    sa.Column("call_key", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# Texts that came in, by Twilio's MessageSid: a replayed request changes nothing.
# Nothing personal: the SID and what the message asked for (stop/start/help/other).
inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("message_sid", sa.String(64), primary_key=True),
    sa.Column("keyword", sa.String(16), nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False, index=True),
)

# Numbers that said STOP (or that Twilio told us are unsubscribed), as keyed hashes.
opt_outs = sa.Table(
    "opt_outs",
    metadata,
    sa.Column("number_hash", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# What the local sender "sent": the simulator and a local run show these.
local_texts = sa.Table(
    "local_texts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("outbox_id", sa.Integer, nullable=True),
    sa.Column("call_key", sa.String(64), nullable=True, index=True),
    sa.Column("to_masked", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("segments", sa.Integer, nullable=False),
    sa.Column("simulated", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
)

# Delivery reports that arrived before the worker had stored the message SID.
message_events = sa.Table(
    "message_events",
    metadata,
    sa.Column("message_sid", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("received_at", sa.DateTime, nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- engine ---------------------------------------------------------------


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// (as hosts give them) -> the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_setup(engine: sa.Engine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for writes.

    pysqlite's deferred BEGIN lets two writers both read, then fail to
    upgrade their locks with "database is locked" without waiting; an
    immediate BEGIN takes the write lock first and so waits its turn.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN DEFERRED")
        elif not _begin_immediate_soon(conn.connection.dbapi_connection):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's own wait, up to the busy timeout


SOON_SECONDS = 0.5  # how long _begin_immediate_soon tries before SQLite's own wait takes over


def _begin_immediate_soon(raw) -> bool:
    """Take SQLite's write lock on a pooled connection (its busy timeout set to 0 for the
    polling, then back): see _poll_begin. False: the caller waits SQLite's own way."""
    try:
        raw.execute("PRAGMA busy_timeout = 0")
    except sqlite3.Error:
        return False
    try:
        return _poll_begin(raw)
    finally:
        with contextlib.suppress(sqlite3.Error):
            raw.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")


def _poll_begin(raw) -> bool:
    """BEGIN IMMEDIATE on a connection whose busy timeout is 0, tried again in steps of a
    fraction of a millisecond (_polled). False when the lock did not come within
    SOON_SECONDS (or on an error other than a lock): the caller then waits the old way,
    up to the full busy timeout, and meets the error there."""
    try:
        return _polled(lambda: raw.execute("BEGIN IMMEDIATE")) is not _NOT_NOW
    except sqlite3.OperationalError:
        return False


_NOT_NOW = object()  # _polled: the lock did not come within SOON_SECONDS


def _polled(attempt):
    """attempt()'s result, tried again while another process holds SQLite's lock (on a
    connection whose busy timeout is 0, so SQLite refuses at once, having done nothing);
    _NOT_NOW after SOON_SECONDS. Another error is raised.

    When another process holds the lock (the other web worker, an `ivr worker`),
    SQLite's own busy handler sleeps in steps that grow to 100 ms, so a webhook that
    met a lock by a hair waited tens of milliseconds: the recorded mix's p99. Here
    the steps stay under 2 ms.
    """
    deadline, pause = time.monotonic() + SOON_SECONDS, 0.0001
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        if time.monotonic() > deadline:
            return _NOT_NOW
        time.sleep(pause)
        pause = min(pause * 2, 0.002)


def _in_sqlites_wait(driver, attempt):
    """attempt() with SQLite's own wait (the full busy timeout) on a connection whose
    busy timeout is otherwise 0: after _polled gave up."""
    driver.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
    try:
        return attempt()
    finally:
        driver.execute("PRAGMA busy_timeout = 0")


def make_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_a_file = database not in ("", ":memory:") and \
            "memory" not in str(parsed.query.get("mode", ""))
        if in_a_file:
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        _sqlite_setup(engine)
        # Threads of one process take turns here rather than in SQLite's busy
        # handler, which sleeps in steps of up to 100 ms (the webhooks' p99).
        engine.info_write_lock = threading.Lock()  # type: ignore[attr-defined]
        if in_a_file:  # connections of their own (an in-memory database is one per connection)
            engine.info_writer = _SqliteWriter(engine)  # type: ignore[attr-defined]
            _own_readers(engine)
        return engine
    postgres = parsed.get_backend_name() == "postgresql"
    engine = sa.create_engine(url, pool_pre_ping=True,
                              connect_args={"connect_timeout": 5} if postgres else {})
    if postgres:
        _own_readers(engine)
    return engine


def _own_readers(eng: sa.Engine) -> None:
    """Connections of the engine's own, outside the pool (first_row's per thread, and on
    SQLite begin_plain's): Engine.dispose() lets them go too, as it does the pool's. The
    writer's is closed in its turn; each thread's reader at its next read (another
    thread's connection is never touched)."""
    eng.info_readers = threading.local()  # type: ignore[attr-defined]
    eng.info_generation = 0  # type: ignore[attr-defined]

    @sa.event.listens_for(eng, "engine_disposed")
    def _disposed(engine):
        engine.info_generation += 1
        writer = getattr(engine, "info_writer", None)
        if writer is not None:
            with write_turn(engine):
                writer.forget()


def answers(url: str) -> bool:
    """Whether a database at url accepts a connection now (for tests and the benchmarks)."""
    engine = make_engine(url)
    try:
        with engine.connect():
            return True
    except Exception:
        return False
    finally:
        engine.dispose()


def init_app(app) -> None:
    app.extensions[EXTENSION] = make_engine(app.config["DATABASE_URL"])


def engine(app=None) -> sa.Engine:
    return (app or current_app).extensions[EXTENSION]


def is_postgres(eng: sa.Engine | None = None) -> bool:
    return (eng or engine()).dialect.name == "postgresql"


def write_turn(eng: sa.Engine):
    """This process's turn at SQLite's single writer (nothing on PostgreSQL): its threads
    wait on a lock, woken when it is free, rather than polling SQLite's."""
    return getattr(eng, "info_write_lock", None) or nullcontext()


@contextmanager
def begin():
    """A write transaction (committed on success, rolled back on error)."""
    eng = engine()
    with write_turn(eng), eng.begin() as conn:
        yield conn


@contextmanager
def read():
    """A read-only transaction: on SQLite it does not take the write lock."""
    with engine().connect().execution_options(readonly=True) as conn, conn.begin():
        yield conn


@functools.lru_cache(maxsize=64)
def _plain(statement, dialect) -> tuple[str, tuple[str, ...] | None, dict, dict]:
    """A statement's SQL for this dialect, its parameters' order, its constants and each
    parameter's bind processor (once). The processors store values as SQLAlchemy would
    (SQLite: a time as its text, a boolean as 0 or 1), so the two paths read alike."""
    compiled = statement.compile(dialect=dialect)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("an IN list is expanded per execution: write it with or_()")
    convert = {}
    for name, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            convert[name] = processor
    return (compiled.string, compiled.positiontup,
            dict(compiled.construct_params(_check=False)), convert)


def _driver_args(statement, dialect, values: dict) -> tuple[str, tuple | dict]:
    sql, order, constants, convert = _plain(statement, dialect)
    params = {**constants, **values}
    for name, processor in convert.items():
        if name in params:
            params[name] = processor(params[name])
    return sql, tuple(params[name] for name in order) if order is not None else params


@functools.lru_cache(maxsize=64)
def _row_type(names: tuple[str, ...]):
    return namedtuple("Row", names, rename=True)


class PlainResult:
    """What a PlainConnection's statement gave: rows (as named tuples) and rowcount."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list, rowcount: int):
        self.rows, self.rowcount = rows, rowcount

    def first(self):
        return self.rows[0] if self.rows else None

    def scalar(self):
        return self.rows[0][0] if self.rows else None

    def all(self) -> list:
        return self.rows


class PlainConnection:
    """The driver's own connection inside a write transaction (begin_plain), running
    statements built once with bindparam() and compiled once per dialect.

    It answers execute(statement, params) with first(), scalar(), all() and rowcount,
    as SQLAlchemy's Connection does, so the outbox's and the limits' functions take
    either. Measured in-process: SQLAlchemy's transaction and its work per execution
    cost about 140 us each, several times the statements themselves, and the webhooks
    that take a caller's yes run three to five of them while holding SQLite's one
    writer. Rows come back as the driver gives them (SQLite: a time as text, a boolean
    as 0 or 1): read only strings and numbers. Build every statement at import: each
    distinct statement object is compiled and kept.
    """

    def __init__(self, raw, dialect):
        self.raw, self.dialect = raw, dialect
        self._errors = dialect.loaded_dbapi.Error
        self._savepoints = 0

    def execute(self, statement, params: dict | None = None) -> PlainResult:
        sql, args = _driver_args(statement, self.dialect, params or {})
        try:
            cursor = self.raw.cursor()
            try:
                cursor.execute(sql, args)
                rows = cursor.fetchall() if cursor.description else []
                if rows:
                    kind = _row_type(tuple(column[0] for column in cursor.description))
                    rows = [kind(*row) for row in rows]
                return PlainResult(rows, cursor.rowcount)
            finally:
                cursor.close()
        except self._errors as exc:  # as SQLAlchemy raises it (IntegrityError, ...)
            raise sa.exc.DBAPIError.instance(sql, args, exc, self._errors) from exc

    @contextmanager
    def begin_nested(self):
        """A savepoint: an error inside undoes only what was done inside."""
        self._savepoints += 1
        name = f"calm_line_{self._savepoints}"
        self._driver_sql(f"SAVEPOINT {name}")
        try:
            yield self
        except BaseException:
            self._driver_sql(f"ROLLBACK TO SAVEPOINT {name}")
            self._driver_sql(f"RELEASE SAVEPOINT {name}")
            raise
        self._driver_sql(f"RELEASE SAVEPOINT {name}")

    def _driver_sql(self, sql: str) -> None:
        self.exec_driver_sql(sql)

    def exec_driver_sql(self, sql: str, params: tuple | dict = ()) -> int:
        """SQL written for this driver (as SQLAlchemy's Connection.exec_driver_sql): the
        rows it changed. Errors come as SQLAlchemy raises them."""
        try:
            cursor = self.raw.cursor()
            try:
                cursor.execute(sql, params)
                return cursor.rowcount
            finally:
                cursor.close()
        except self._errors as exc:
            raise sa.exc.DBAPIError.instance(sql, params, exc, self._errors) from exc


class _SqliteWriter:
    """This process's own connection for SQLite's write transactions (begin_plain).

    Taken from the pool once (again after a fork) and kept out of it, with its busy
    timeout 0 for good: _poll_begin waits for the lock in short steps, and a pooled
    connection had to set the timeout to 0 and back around every BEGIN, two more
    statements a write, each giving up the GIL and waiting for it back while other
    webhooks waited for the lock (BENCHMARKS.md). Used only in write_turn, so by one
    thread at a time; inside a transaction that holds the write lock nothing waits.
    """

    def __init__(self, eng: sa.Engine):
        self.engine = eng
        self.pid, self.raw = 0, None

    def connection(self):
        if self.raw is None or self.pid != os.getpid():  # a fork's copy is never used
            raw = _detached(self.engine)
            raw.execute("PRAGMA busy_timeout = 0")
            self.pid, self.raw = os.getpid(), raw
        return self.raw

    def begin(self, driver) -> None:
        if not _poll_begin(driver):  # SQLite's own wait, up to the busy timeout
            _in_sqlites_wait(driver, lambda: driver.execute("BEGIN IMMEDIATE"))

    def alone(self, sql: str, params: tuple | dict) -> int:
        """One statement as its own transaction (SQLite's autocommit): the rows it changed.
        While another process holds the lock it is tried again as BEGIN is (_polled); after
        SOON_SECONDS, with SQLite's own wait."""
        driver = self.connection()
        changed = _polled(lambda: _run_alone(driver, sql, params))
        if changed is _NOT_NOW:
            changed = _in_sqlites_wait(driver, lambda: _run_alone(driver, sql, params))
        return changed

    def forget(self) -> None:
        """After a failed rollback, or Engine.dispose(): the next write starts on a fresh
        connection."""
        raw, self.raw = self.raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.close()


def _run_alone(driver, sql: str, params: tuple | dict) -> int:
    cursor = driver.execute(sql, params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def write_alone(statement, params: tuple | dict, eng: sa.Engine | None = None) -> int:
    """One statement that is a whole write on its own: the rows it changed. The statement
    is the driver's SQL with its parameters (the events' INSERT of a chunk), or one built
    with bindparam() as for PlainConnection, with a dict.

    On SQLite it runs as its own transaction, in this process's write turn, on its writer
    connection: the lock is then held only inside SQLite's own step of it, while the thread
    has let the GIL go. In a transaction (begin_plain) the lock was also held while the
    thread waited for the GIL back after BEGIN and after the statement, up to a switch
    interval each, and every webhook that writes, in every process, waited behind it.
    Elsewhere (PostgreSQL, an in-memory SQLite) it is a transaction of one statement.
    """
    eng = eng or engine()
    if isinstance(statement, str):
        sql, args = statement, params
    else:
        sql, args = _driver_args(statement, eng.dialect, dict(params))
    writer = getattr(eng, "info_writer", None)
    if writer is None:
        with begin_plain(eng) as conn:
            return conn.exec_driver_sql(sql, args)
    errors = eng.dialect.loaded_dbapi.Error
    with write_turn(eng):
        try:
            return writer.alone(sql, args)
        except errors as exc:
            if not isinstance(exc, sqlite3.IntegrityError):  # maybe the connection: a new one
                writer.forget()
            raise sa.exc.DBAPIError.instance(sql, args, exc, errors) from exc


@contextmanager
def begin_plain(eng: sa.Engine | None = None):
    """A write transaction on the driver's connection (PlainConnection): committed on
    success, rolled back on error, in this process's turn at SQLite's writer. On SQLite
    it runs on the process's own writer connection (_SqliteWriter); on PostgreSQL on one
    from the pool."""
    eng = eng or engine()
    errors = eng.dialect.loaded_dbapi.Error
    writer = getattr(eng, "info_writer", None)
    with write_turn(eng):
        raw = writer.connection() if writer is not None else _pooled(eng)
        try:
            if writer is not None:
                writer.begin(raw)
            # PostgreSQL: the driver begins a transaction at the first statement.
            yield PlainConnection(raw, eng.dialect)
            raw.commit()
        except BaseException as exc:
            try:
                raw.rollback()
            except Exception:
                if writer is not None:
                    writer.forget()
            if isinstance(exc, errors):
                raise sa.exc.DBAPIError.instance(None, None, exc, errors) from exc
            raise
        finally:
            if writer is None:
                raw.close()  # back to the pool


def _pooled(eng: sa.Engine):
    """The driver's connection from the pool; failing to connect raises as SQLAlchemy does
    everywhere else (OperationalError), which the webhooks' callers catch."""
    errors = eng.dialect.loaded_dbapi.Error
    try:
        return eng.raw_connection()
    except errors as exc:
        raise sa.exc.DBAPIError.instance(None, None, exc, errors) from exc


def first_value(statement, **values):
    """The first column of the first row of a read-only statement (None: no row), through
    the driver on a pooled connection.

    For the webhooks' hottest reads (a status callback asks whether its call has a text;
    most have none): SQLAlchemy's work for each execution (a transaction, the result's
    machinery) cost several times the query itself. The statement is built once, at
    import, with bindparam() for what varies, and compiled once per dialect. No IN (its
    list is expanded per execution): use or_().
    """
    row = first_row(statement, **values)
    return None if row is None else row[0]


def first_row(statement, **values):
    """The first row of a read-only statement as the driver gives it (None: no row); as
    first_value. Errors come as SQLAlchemy raises them (PlainConnection.execute).

    Each thread reads on a connection of its own (_thread_reader): on SQLite the pool's
    checkout and check-in cost about 60 us, as much as the read; on PostgreSQL they were
    two more round trips (the ping, the rollback). A read is safe to try twice: a
    connection that failed (the server restarted, closed it when idle, which the pool's
    ping used to catch) is dropped and the read tried once more on a fresh one."""
    eng = engine()
    readers = getattr(eng, "info_readers", None)
    if readers is None:  # an in-memory SQLite: the pool's one connection
        connection = _pooled(eng)
        try:
            return PlainConnection(connection, eng.dialect).execute(statement, values).first()
        finally:
            connection.close()  # back to the pool, which ends any transaction the read began
    for attempt in (1, 2):
        raw = _thread_reader(eng, readers)
        try:
            # No transaction is left open (the driver's autocommit; the statement is
            # finished when its cursor closes), so nothing is held up by an idle reader.
            return PlainConnection(raw, eng.dialect).execute(statement, values).first()
        except Exception as exc:
            readers.raw = None  # the next read starts on a fresh connection
            with contextlib.suppress(Exception):
                raw.close()
            if attempt == 2 or not isinstance(exc, sa.exc.OperationalError):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _thread_reader(eng: sa.Engine, readers: threading.local):
    """This thread's own connection for plain reads, taken from the pool once (again after
    a fork) and kept out of it, in autocommit; closed when the thread ends."""
    generation = eng.info_generation  # type: ignore[attr-defined]
    raw = getattr(readers, "raw", None)
    if raw is not None and readers.pid == os.getpid():  # a fork's copy is never used
        if readers.generation == generation:
            return raw
        with contextlib.suppress(Exception):
            raw.close()  # the engine was disposed of since
    raw = _detached(eng)
    if eng.dialect.name == "postgresql":
        raw.autocommit = True  # SQLite's are already (isolation_level None)
    readers.raw, readers.pid, readers.generation = raw, os.getpid(), generation
    return raw


def _detached(eng: sa.Engine):
    """The driver's connection, taken from the pool and kept out of it from now on (the
    engine's own: _SqliteWriter's, _thread_reader's); closed when dropped."""
    pooled = _pooled(eng)
    pooled.detach()
    return pooled.dbapi_connection


# -- keyed hashes ---------------------------------------------------------


def keyed_hash(kind: str, value: str) -> str:
    """HMAC-SHA256 of value under the app's secret, per kind (number, call)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def number_hash(e164: str) -> str:
    return keyed_hash("number", e164)


def call_key(call_sid: str) -> str:
    return keyed_hash("call", call_sid)


# -- schema ---------------------------------------------------------------


def alembic_config(connection=None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(revision: str = "head") -> None:
    """Create the tables or bring them up to date (idempotent). Needs an app context."""
    from alembic import command

    # Alembic's own INFO lines (plugins, "context impl") say nothing an operator needs.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    eng = engine()
    before = current_revision()
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            # Two processes starting at once must not both create the tables.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        command.upgrade(alembic_config(conn), revision)
    after = current_revision()
    if after != before:
        log.info("database schema upgraded from %s to %s", before or "empty", after)


def current_revision() -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine().connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
