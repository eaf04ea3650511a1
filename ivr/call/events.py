"""Anonymous events: what happened on the line, never who called.

Each voice webhook is read from the outside, after it has answered (the
metrics' one after-request hook notes its endpoint, form and
``X-Calm-Line-Steps`` header), and turned into a few rows of the ``events`` table:

    call_started   POST /voice
    step           each step the caller entered (step = the node id)
    choice         a menu answered (step, detail = the key, via = key|voice)
    no_choice      silence, a wrong key, words not understood (detail says which)
    too_many_tries the caller's tries ran out at that step
    text_offered   the finish step (the offer of a text) was played
    text_accepted  the caller said yes to the text
    ended          a goodbye step was played (detail = goodbye | too_many_tries)
    call_ended     Twilio's status callback (detail = CallStatus, value = CallDuration)
    error          a voice webhook failed and answered with the safety message
    fallback       Twilio used the fallback URL

What is kept: a keyed hash of the CallSid (HMAC under SECRET_KEY, of a kind of
its own, so events never join the outbox's rows and the number hashes there),
the hour (not the minute), node ids, keys, counts. What is never kept: a phone
number, the CallSid, speech (a spoken answer is kept only as the key it
matched). Simulator calls are marked (``simulated``) and left out of the
figures. The table is apart from the outbox: purging numbers never touches it,
and ``ivr purge --events-older-than`` trims it.

Recording must never break a webhook and barely slow one: the request thread
appends one tuple to the metrics' deque; the metrics' fold (run by every 64th
webhook, about a hundred microseconds, or within 0.25 s by a timer) hands the
batch here, the voice webhooks are copied into
``Seen`` tuples and queued, once a batch, for a writer thread (under gunicorn
in the recorder's process, ivr.call.recorder; else in this one),
which works out the rows (the engine's reading of the answer, the keyed hash,
remembered per call) and inserts them in batches. A database error drops that
batch (logged, counted) and pauses recording for a while, so an outage costs the line nothing.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import operator
import os
import queue
import sqlite3
import threading
import time
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import current_app

from ivr import store
from ivr.call import engine as flow_engine

log = logging.getLogger(__name__)

EXTENSION = "calm_line.events"
READERS = "calm_line.webhook_readers"  # ivr.metrics.READERS (which imports this module)
METRICS = "calm_line.metrics"  # ivr.metrics.EXTENSION: its fold() hands over what is noted
CALL_KEY_KIND = "event-call"  # not store.call_key's kind: events must not join the outbox
# Voice webhooks that answer with steps; without the header they sent the safety message.
STEP_ENDPOINTS = frozenset({"voice.incoming", "voice.step", "voice.answer", "voice.number",
                            "voice.dialled", "voice.unknown_step"})

QUEUE_SIZE = 10_000  # rows waiting to be written, per process; more are dropped (and counted)
BATCH_SIZE = 500  # webhooks gathered for one write
CHUNK_ROWS = 200  # rows per transaction: how long a webhook may wait for SQLite's writer
PAUSE_SECONDS = 30.0  # after a database error, rows are dropped (not queued) this long
IDLE_SECONDS = 10.0  # the writer thread ends after this long with nothing to write
LINGER_SECONDS = 0.25  # rows are gathered this long before one INSERT writes them all

events = sa.Table(
    "events",
    store.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),  # UTC, to the hour
    sa.Column("call_key", sa.String(32), nullable=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("step", sa.String(64), nullable=True),
    sa.Column("detail", sa.String(32), nullable=True),
    sa.Column("via", sa.String(8), nullable=True),
    sa.Column("value", sa.Integer, nullable=True),
    sa.Column("simulated", sa.Boolean, nullable=False, server_default=sa.false()),
    # By time only: the figures read a window and group by call in Python. An index on
    # call_key (a random hash) cost each row a write to a random page (migration 0010).
    sa.Index("ix_events_at", "at"),
)

KINDS = ("call_started", "step", "choice", "no_choice", "too_many_tries", "text_offered",
         "text_accepted", "ended", "call_ended", "error", "fallback", "language")


def hour(now: datetime | None = None) -> datetime:
    """The coarse time kept with an event: UTC, to the hour."""
    return (now or store.utcnow()).replace(minute=0, second=0, microsecond=0)


def event_call_key(call_sid: str) -> str:
    """A keyed hash of the CallSid: joins one call's events, shows nothing of the SID."""
    return store.keyed_hash(CALL_KEY_KIND, call_sid)[:32]


# -- turning a webhook into rows ------------------------------------------------------------


MAX_VALUE = 7 * 24 * 3600  # a call's seconds: more is not a real call (and may not fit the column)


def _int(raw: str | None) -> int | None:
    """A count from Twilio, or None for junk or a value out of range (a warning): one bad
    field must not fail the batch and pause the events for everyone."""
    try:
        value = max(int(raw), 0) if raw not in (None, "") else None
    except ValueError:
        return None
    if value is not None and value > MAX_VALUE:
        log.warning("events: ignored a value out of range (%d digits)", len(str(raw)))
        return None
    return value


def rows_for(flow, endpoint: str | None, view_args: dict, form, steps_header: str | None,
             call_key: str, simulated: bool, at: datetime, chosen: str | None = None,
             heard: tuple | None = None) -> list[dict]:
    """The events one voice webhook stands for (pure: no I/O, no Flask).

    heard: (kind, key, via) of a menu answer as the webhook understood it; without it
    the answer is understood again here, the same way."""
    rows: list[dict] = []

    def add(kind, step=None, detail=None, via=None, value=None):
        rows.append({"at": at, "call_key": call_key, "kind": kind, "step": step,
                     "detail": detail, "via": via, "value": value, "simulated": simulated})

    if endpoint == "voice.status":
        status = (form.get("CallStatus") or "").strip()
        if status in flow_engine.FINAL_CALL_STATUSES:
            add("call_ended", detail=status, value=_int(form.get("CallDuration")))
        return rows
    if endpoint == "voice.fallback":
        add("fallback")
        return rows
    if endpoint not in STEP_ENDPOINTS:
        return rows
    if endpoint == "voice.incoming":
        add("call_started")
    node_id = view_args.get("node_id")
    if steps_header is None:  # the webhook failed and sent the safety message
        add("error", step=node_id if node_id in flow.nodes else None)
        return rows
    steps = [s for s in steps_header.split(",") if s in flow.nodes]
    if chosen:  # the caller pressed a language's key (7): the call goes on in it, from the start
        add("language", detail=chosen)
        for step_id in steps:
            add("step", step=step_id)
        return rows
    node = flow.nodes.get(node_id) if node_id else None
    gave_up = retried = False
    if endpoint == "voice.answer" and node is not None and node.type == "menu":
        if heard is None:
            understood = flow_engine.understand(flow, node, form.get("Digits"),
                                                form.get("SpeechResult"))
            heard = (understood.kind, understood.key, understood.via)
        kind, key, how = heard
        via = "voice" if how == "speech" else "key"
        if kind == "key":
            add("choice", step=node.id, detail=key, via=via)
            target = next((c.to for c in node.choices if c.key == key), None)
            if target in flow.nodes and flow.nodes[target].type == "text_request":
                add("text_accepted", step=node.id, via=via)
        else:
            add("no_choice", step=node.id, detail=kind, via=None if kind == "silence" else via)
            gave_up = bool(steps) and steps[0] != node.id
            retried = not gave_up
    elif endpoint == "voice.number" and node is not None and node.type == "number_entry":
        give_up_to = node.target("on_give_up")
        gave_up = bool(steps) and steps[0] == give_up_to and give_up_to != node.target("next")
        retried = steps == [node.id]
    if gave_up and node is not None:
        add("too_many_tries", step=node.id)
    if retried:  # asked again: no new step was entered
        return rows
    for step_id in steps:
        add("step", step=step_id)
        if step_id == flow.finish:
            add("text_offered")
        if flow.nodes[step_id].type == "goodbye":
            add("ended", step=step_id, detail="too_many_tries" if gave_up else "goodbye")
    return rows


class Seen(NamedTuple):
    """What the hook keeps of one voice webhook: copied fields, turned into rows later."""

    at: float  # time.time() when it answered
    endpoint: str | None
    node_id: str | None
    digits: str | None
    speech: str | None
    call_status: str | None
    call_duration: str | None
    steps_header: str | None
    call_sid: str
    simulated: bool
    language: str | None = None  # the call's language (l= in the URL, or chosen now)
    chosen: str | None = None  # a language chosen in this request
    heard: tuple | None = None  # (kind, key, via): a menu answer as the webhook understood it


def _read_noted(writer: Writer, batch) -> None:
    """Take the voice webhooks of a batch the metrics' fold hands over (its timer thread).

    The request thread only appended one tuple (``ivr.metrics.Noted``); the
    fields are copied here, and everything that costs (the engine's
    understand(), the keyed hash of the CallSid, the rows) is done by the
    writer's thread.
    """
    seen: list[Seen] = []
    for noted in batch:
        webhook, view_args, status, steps, form, at = (noted.webhook, noted.view_args, noted.status,
                                                       noted.steps, noted.form, noted.at)
        if status != 200 or form is None or not webhook.startswith("voice."):
            continue
        call_sid = form.get("CallSid")
        if not call_sid:
            continue
        language, _, chosen = (getattr(noted, "language", None) or "").partition(";")
        seen.append(Seen(at, webhook, view_args.get("node_id") if view_args else None,
                         form.get("Digits"), form.get("SpeechResult"), form.get("CallStatus"),
                         form.get("CallDuration"), steps, call_sid,
                         form.get("CalmLineSimulated") == "1", language or None,
                         language if chosen else None, getattr(noted, "heard", None)))
    if seen:
        writer.put(seen)


@functools.lru_cache(maxsize=4)
def _hour_at(hours: int) -> datetime:
    """The hour kept with an event, from time.time() // 3600 (a batch spans one or two)."""
    return datetime.fromtimestamp(hours * 3600, UTC).replace(tzinfo=None)


CALL_KEYS_KEPT = 4096  # the writer remembers this many calls' keys (a call is ~10 webhooks)


def rows_of(flow, seen: Seen, call_keys: dict[str, str] | None = None) -> list[dict]:
    """The rows one noted webhook stands for (needs the app context: the keyed hash).

    call_keys: the writer's memory of recent CallSids' keys, so one call's
    webhooks cost one HMAC between them, not one each.
    """
    form = {"Digits": seen.digits, "SpeechResult": seen.speech, "CallStatus": seen.call_status,
            "CallDuration": seen.call_duration}
    at = _hour_at(int(seen.at // 3600))
    key = call_keys.get(seen.call_sid) if call_keys is not None else None
    if key is None:
        key = event_call_key(seen.call_sid)
        if call_keys is not None:
            if len(call_keys) >= CALL_KEYS_KEPT:
                call_keys.clear()  # crude, and enough: at worst one more HMAC per call
            call_keys[seen.call_sid] = key
    # A Polish call's words are understood as the Polish line understood them.
    flow = (flow.in_language(seen.language) if hasattr(flow, "in_language") else None) or flow
    return rows_for(flow, seen.endpoint, {"node_id": seen.node_id}, form, seen.steps_header,
                    key, seen.simulated, at, seen.chosen, seen.heard)


# -- the writer -------------------------------------------------------------------------------


class Writer:
    """Writes event rows from a background thread of this process, in batches.

    put() never blocks: a full queue or a paused writer drops the rows and
    counts them (``dropped``). The thread is started on first use (so after
    gunicorn forks) and ends when idle.
    """

    def __init__(self, app, *, pause: float = PAUSE_SECONDS, idle: float = IDLE_SECONDS,
                 linger: float = LINGER_SECONDS, maxsize: int = QUEUE_SIZE):
        self._app = weakref.ref(app)
        self.pause, self.idle, self.linger = pause, idle, linger
        self._urgent = threading.Event()  # flush(): write what is gathered now
        self.queue: queue.Queue[list[dict] | list[Seen] | Seen] = queue.Queue(maxsize=maxsize)
        self.dropped = 0  # rows dropped (full queue, paused, or a failed write)
        self.written = 0
        self.paused_until = 0.0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._call_keys: dict[str, str] = {}  # CallSid -> key; the writer's thread only
        self.shipper: Any = None  # under gunicorn, ivr.call.recorder's Shipper (its init_app)
        _WRITERS.add(self)

    def accepting(self) -> bool:
        return time.monotonic() >= self.paused_until

    def put(self, item: list[dict] | list[Seen] | Seen) -> None:
        """Queue rows, or noted webhooks (each Seen counted as one row if dropped). Under
        gunicorn noted webhooks go to the recorder's process (ivr.call.recorder); only when
        it cannot take them are they written here."""
        shipper = self.shipper
        if shipper is not None and isinstance(item, list) and item and isinstance(item[0], Seen):
            item = shipper.send(item)  # what it could not send
            if not item:
                return
        if not self.accepting():  # the database failed a moment ago: do not queue up
            self.dropped += _size(item)
            return
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.dropped += _size(item)
            return
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            self._ensure_thread()

    def _ensure_thread(self) -> None:
        # Under the lock: the thread decides to end under it too, so a row put
        # just as it ends is never left behind.
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="calm-line-events",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=self.idle)
            except queue.Empty:
                with self._lock:
                    # Say we are gone before looking: put() checks without the lock,
                    # after queueing, so a row queued now either is seen here or
                    # finds no thread and starts one.
                    me, self._thread = self._thread, None
                    if self.queue.empty():
                        return
                    self._thread = me
                continue
            # Gather for a moment: one INSERT for many webhooks costs the
            # process far less than one each (and the webhooks' threads wait
            # less for the GIL). Short enough that one call's requests, which
            # come seconds apart, are written in order by any process.
            items, taken = [first], 1
            deadline = time.monotonic() + self.linger
            while len(items) < BATCH_SIZE and not self._urgent.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    items.append(self.queue.get(timeout=min(left, 0.02)))
                    taken += 1
                except queue.Empty:
                    continue
            try:
                self.write(self._rows(items))
            finally:
                for _ in range(taken):
                    self.queue.task_done()
                if not self.queue.unfinished_tasks:
                    self._urgent.clear()

    def _rows(self, items: list) -> list[dict]:
        """Turn what was queued into rows, here on the writer's thread."""
        app = self._app()
        rows: list[dict] = []
        if app is None:
            return rows
        with app.app_context():
            flow = app.extensions.get("calm_line.flow")
            for item in items:
                for each in (item if isinstance(item, list) else [item]):
                    if not isinstance(each, Seen):
                        rows.append(each)
                        continue
                    try:
                        rows.extend(rows_of(flow, each, self._call_keys))
                    except Exception:  # one odd webhook must not cost the batch
                        self.dropped += 1
                        log.exception("could not record the events of a %s webhook", each.endpoint)
        return rows

    def write(self, rows: list[dict]) -> bool:
        """Insert rows, CHUNK_ROWS to a transaction; on error drop the rest, log once and
        pause. A webhook that writes (a yes to the text) waits for SQLite's one writer
        at most one chunk: 1,300 rows in one went held the lock 21 ms under load."""
        app = self._app()
        if app is None or not rows:
            return False
        eng = store.engine(app)
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start:start + CHUNK_ROWS]
            if not self.accepting():
                self.dropped += len(rows) - start
                return False
            try:
                batch = _batch(eng.dialect, chunk)
                if len(batch) == 1 and isinstance(batch[0][0], str):
                    # SQLite, a chunk in one statement: its own transaction, so SQLite's lock
                    # is held only while SQLite works (store.write_alone).
                    sql, params = batch[0]
                    store.write_alone(sql, params, eng)
                else:
                    # In turn with this process's webhooks, not polling SQLite; on SQLite on
                    # the process's own writer connection, as theirs (store.begin_plain).
                    with _begin(eng) as conn:
                        _insert(conn, batch)
            except Exception as exc:
                self.dropped += len(rows) - start
                self.paused_until = time.monotonic() + self.pause
                log.warning("could not record %d anonymous event(s): %s; recording paused for "
                            "%.0f s", len(rows) - start, type(exc).__name__, self.pause)
                return False
            self.written += len(chunk)
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued row is written (or dropped). True if it got there."""
        deadline = time.monotonic() + timeout
        app = self._app()
        noted = app.extensions.get(METRICS) if app is not None else None
        if noted is not None:  # the webhooks noted and not yet handed over
            noted.fold()
        if self.queue.unfinished_tasks:
            self._urgent.set()
        while self.queue.unfinished_tasks:
            if self._pid != os.getpid() or self._thread is None:
                self._ensure_thread()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True


COLUMNS = ("at", "call_key", "kind", "step", "detail", "via", "value", "simulated")


# Rows in one INSERT ... VALUES (...), (...): a whole chunk (1,600 parameters) where SQLite
# takes up to 32,766 (3.32 and later), so a chunk is one statement and gives up the GIL
# once; 100 rows (800) under the 999 that older ones allow.
ROWS_PER_STATEMENT = CHUNK_ROWS if sqlite3.sqlite_version_info >= (3, 32) else 100


@functools.lru_cache(maxsize=8)
def _plain_insert(dialect) -> tuple[str, str, list]:
    """The start of a many-row INSERT for this dialect, one row's placeholders, and each
    column's bind processor (None: as is)."""
    compiled = sa.insert(events).compile(dialect=dialect, column_keys=list(COLUMNS))
    order = compiled.positiontup or list(COLUMNS)
    # dialect_impl: the generic DateTime's processor for this dialect (SQLite's text form)
    return (f"INSERT INTO events ({', '.join(order)}) VALUES ",
            "(" + ", ".join("?" * len(order)) + ")",
            [(name, events.c[name].type.dialect_impl(dialect).bind_processor(dialect))
             for name in order])


@functools.lru_cache(maxsize=8)
def _many_rows(dialect, count: int) -> str:
    head, one, _ = _plain_insert(dialect)
    return head + ", ".join([one] * count)


def _batch(dialect, rows: list[dict]) -> list[tuple]:
    """The statements and parameters that insert rows, made before the transaction begins.

    SQLite has one writer at a time, and the webhooks that write (a yes to the text, a
    keyed-in number, a call's end) wait for it. Everything Python does for the batch is
    done here, outside the lock. Then each statement inserts ROWS_PER_STATEMENT rows,
    every value bound as a parameter: executemany stepped SQLite once a row and let go
    of the GIL at every step (under load each step waited up to a switch interval for
    it back: a 1,400-row batch held the write lock 36 ms); one json_each statement read
    each row's JSON again for every column. Measured: 5.8 us a row with json_each, 3.6
    with VALUES (bench notes in BENCHMARKS.md).
    """
    if dialect.name != "sqlite":  # PostgreSQL: SQLAlchemy batches the VALUES itself
        return [(sa.insert(events), rows)]
    # Plain values; the columns' own bind processors keep what is stored the same (the
    # time as SQLAlchemy's text, booleans as 0 and 1).
    columns = _plain_insert(dialect)[2]
    names = tuple(name for name, _ in columns)
    pick = operator.itemgetter(*names)  # a row's values in one call, in C
    values: list = []
    for row in rows:
        try:
            values.extend(pick(row))
        except KeyError:  # a row made elsewhere, without every column
            values.extend([row.get(name) for name in names])
    # Then each converted column at once: a batch holds few distinct values of one (one or
    # two hours, two booleans), each converted once, not once a row.
    width = len(columns)
    for index, (_, convert) in enumerate(columns):
        if convert is not None:
            memo: dict = {}
            values[index::width] = [memo[value] if value in memo else
                                    memo.setdefault(value, convert(value))
                                    for value in values[index::width]]
    step = ROWS_PER_STATEMENT
    # Tuples: SQLAlchemy would take a list of values for many parameter sets.
    return [(_many_rows(dialect, min(step, len(rows) - start)),
             tuple(values[start * width:(start + step) * width]))
            for start in range(0, len(rows), step)]


@contextlib.contextmanager
def _begin(eng):
    """The events' write transaction: SQLite's on the driver's connection (each statement is
    already plain SQL, _batch); PostgreSQL's through SQLAlchemy, which batches the rows."""
    if eng.dialect.name == "sqlite":
        with store.begin_plain(eng) as conn:
            yield conn
    else:
        with store.write_turn(eng), eng.begin() as conn:
            yield conn


def _insert(conn, batch: list[tuple]) -> None:
    for statement, params in batch:
        if isinstance(statement, str):
            conn.exec_driver_sql(statement, params)
        else:
            conn.execute(statement, params)


def _size(item: list[dict] | list[Seen] | Seen) -> int:
    return 1 if isinstance(item, Seen) else len(item)


_WRITERS: weakref.WeakSet[Writer] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:  # pragma: no cover - runs at interpreter exit
    for writer in list(_WRITERS):
        writer.flush(timeout=2.0)


def writer(app=None) -> Writer | None:
    return (app or current_app).extensions.get(EXTENSION)


def flush(app=None, timeout: float = 5.0) -> bool:
    """Write what this process still holds (the figures and tests call this first)."""
    found = writer(app)
    return found.flush(timeout) if found is not None else True


# -- reading and trimming --------------------------------------------------------------------


def load(since: datetime, until: datetime | None = None, *, simulated: bool = False) -> list:
    """Events from ``since`` (inclusive) to ``until`` (exclusive), oldest first."""
    query = sa.select(events).where(events.c.at >= since, events.c.simulated == simulated)
    if until is not None:
        query = query.where(events.c.at < until)
    with store.read() as conn:
        return conn.execute(query.order_by(events.c.id)).all()


def purge(older_than: timedelta, now: datetime | None = None) -> int:
    """Delete events older than that. Returns how many."""
    cutoff = (now or store.utcnow()) - older_than
    with store.begin() as conn:
        deleted = conn.execute(sa.delete(events).where(events.c.at < cutoff)).rowcount
    log.info("purged %d anonymous event(s) older than %s", deleted, older_than)
    return deleted


def init_app(app) -> None:
    app.extensions[EXTENSION] = Writer(app)
    # The metrics' one after-request hook notes every webhook; we read its batches.
    app.extensions.setdefault(READERS, []).append(functools.partial(_read_noted, app.extensions[EXTENSION]))
