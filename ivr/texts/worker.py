"""`ivr worker`: send the texts that are due, once each, politely.

Each text is claimed before it is sent: one UPDATE moves it to "sending"
with a claim token and a lease. On PostgreSQL the row is picked with
``FOR UPDATE SKIP LOCKED``, so workers never wait on each other or take the
same row; on SQLite the single UPDATE is atomic (one writer at a time).
A claim whose worker died is taken again once its lease has run out.

Then: the opt-out list is checked again, the text goes through the sender
(Twilio, or the local record), and the result is stored only if the claim
token still matches. 429, 5xx and network errors come back later with
exponential backoff and jitter; Twilio's other 4xx are final (21610 also
opts the number out).
"""
from __future__ import annotations

import logging
import math
import random
import signal
import threading
import time
import uuid
from datetime import datetime, timedelta

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from ivr import store
from ivr.config import SettingError
from ivr.logs import OutageLog, mask_number
from ivr.texts import outbox as ob
from ivr.texts import sender as senders

log = logging.getLogger(__name__)

DEFAULTS = {
    "SMS_RATE_PER_SECOND": 1.0,      # texts a second, per worker process
    "SMS_MAX_ATTEMPTS": 0,           # tries before a text is given up (0: SMS_GIVE_UP_AFTER)
    "SMS_GIVE_UP_AFTER": 86400.0,    # a text still failing this long after it was due fails
    "SMS_RETRY_BASE_SECONDS": 2.0,   # the first retry waits about this long...
    "SMS_RETRY_MAX_SECONDS": 300.0,  # ...doubling each time, up to this
    "SMS_LEASE_SECONDS": 120.0,      # a claim older than this is taken again
    "SMS_EVENT_KEEP_HOURS": 24.0,    # unmatched delivery reports are dropped after this
}

# Twilio's message statuses, as ours, ranked: a report never moves a text back.
DELIVERY = {
    "accepted": ob.ACCEPTED, "scheduled": ob.ACCEPTED, "queued": ob.ACCEPTED,
    "sending": ob.ACCEPTED, "sent": ob.SENT, "delivered": ob.DELIVERED, "read": ob.DELIVERED,
    "undelivered": ob.UNDELIVERED, "failed": ob.FAILED, "canceled": ob.FAILED,
}
OUTAGE_IDLE = 1.0  # seconds between looks while the database (or anything) keeps failing
FINISH_TRIES = 8  # about 20 s of database trouble before a result is given up on
FINISH_PAUSES = tuple(min(0.25 * 2 ** k, 5.0) for k in range(FINISH_TRIES - 1))
# The longest storing a result can take: the pauses, and each try waiting out the
# database's own timeout (PostgreSQL's connect timeout, SQLite's busy timeout: 5 s).
FINISH_BUDGET = sum(FINISH_PAUSES) + FINISH_TRIES * store.SQLITE_BUSY_MS / 1000
RANK = {ob.ACCEPTED: 1, ob.SENT: 2, ob.DELIVERED: 3, ob.UNDELIVERED: 3, ob.FAILED: 3}


def lease_floor(config) -> float:
    """The shortest lease that works: one request to Twilio plus the tries to store its
    answer. Shorter, and a second worker takes the text while the first is still
    sending it or storing Twilio's answer: the caller gets it twice, or more."""
    return float(config.get("SMS_HTTP_TIMEOUT") or senders.HTTP_TIMEOUT) + FINISH_BUDGET


def check_settings(config) -> None:
    """Settings that cannot work together: refused at start, naming the variable."""
    lease = float(config.get("SMS_LEASE_SECONDS") or DEFAULTS["SMS_LEASE_SECONDS"])
    floor = lease_floor(config)
    if lease < floor:
        raise SettingError("SMS_LEASE_SECONDS", (
            f"{lease:g} s is shorter than one request to Twilio "
            f"({float(config.get('SMS_HTTP_TIMEOUT') or senders.HTTP_TIMEOUT):g} s) plus the "
            f"retries to store its result ({FINISH_BUDGET:g} s): set at least {math.ceil(floor)}, "
            "or a text can be sent more than once"))
    give_up = float(config.get("SMS_GIVE_UP_AFTER") or DEFAULTS["SMS_GIVE_UP_AFTER"])
    cap_wait = float(config.get("SMS_RETRY_MAX_SECONDS") or DEFAULTS["SMS_RETRY_MAX_SECONDS"])
    if give_up < cap_wait:
        raise SettingError("SMS_GIVE_UP_AFTER", (
            f"{give_up:g} s is shorter than the longest wait between tries "
            f"(SMS_RETRY_MAX_SECONDS, {cap_wait:g} s): a text would get a try or two at most"))
    base = float(config.get("SMS_RETRY_BASE_SECONDS") or DEFAULTS["SMS_RETRY_BASE_SECONDS"])
    cap = float(config.get("SMS_RETRY_MAX_SECONDS") or DEFAULTS["SMS_RETRY_MAX_SECONDS"])
    if cap < base:
        raise SettingError("SMS_RETRY_MAX_SECONDS", (
            f"{cap:g} s is shorter than SMS_RETRY_BASE_SECONDS ({base:g} s): the longest wait "
            "between tries must be at least the first"))


def setting(app, name: str) -> float:
    value = app.config.get(name)
    return float(DEFAULTS[name] if value is None else value)


def backoff(attempt: int, base: float, cap: float, rand=random.random) -> float:
    """Seconds before try ``attempt + 1``: exponential, capped, with "equal jitter".

    Half the exponential delay is fixed and half is random, so retries from
    many texts spread out but none comes back at once.
    """
    # The exponent is capped too: a text retried for a day makes hundreds of attempts,
    # and 2 ** 1024 is more than a float can hold.
    ceiling = min(cap, base * (2 ** min(max(attempt - 1, 0), 64)))
    return ceiling / 2 + rand() * ceiling / 2


class RateLimiter:
    """At most ``per_second`` sends a second (evenly spaced) from this worker."""

    def __init__(self, per_second: float, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / per_second
        self.clock, self.sleep = clock, sleep
        self.next_at: float | None = None

    def wait(self) -> None:
        now = self.clock()
        if self.next_at is not None and now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


_EARLY = sa.select(store.message_events.c.message_sid).where(
    store.message_events.c.message_sid == sa.bindparam("message_sid"))


def _due(now: datetime):
    table = store.outbox
    return sa.and_(table.c.status.in_((ob.HELD, ob.QUEUED)), table.c.next_attempt_at <= now)


class Worker:
    """Claims and sends due texts. Use it inside an app context."""

    def __init__(self, app, sender=None, *, limiter: RateLimiter | None = None,
                 clock=store.utcnow, rand=random.random, sleep=time.sleep):
        self.app = app
        self.sleep = sleep
        self.sender = sender or app.extensions.get(senders.EXTENSION) or senders.build(app.config)
        self.local = senders.LocalSender()
        self.limiter = limiter or RateLimiter(setting(app, "SMS_RATE_PER_SECOND"))
        self.clock, self.rand = clock, rand
        self.max_attempts = int(setting(app, "SMS_MAX_ATTEMPTS"))
        # The lease covers the wait for the rate limit and one request to Twilio.
        self.lease = timedelta(seconds=setting(app, "SMS_LEASE_SECONDS") + self.limiter.interval)
        self.outage = OutageLog(log, "worker: sending texts")

    # -- one text -------------------------------------------------------------

    def claim(self):
        """Take the next due text for this worker, or None. Counts an attempt.

        One statement: mark as ours, with a fresh token and a lease, the first due row
        (PostgreSQL: its pick is FOR UPDATE SKIP LOCKED, so a row another worker is
        claiming is passed over, not waited for; SQLite: the transaction began
        IMMEDIATE and so holds the only write lock). A pick, then an update, was one
        more round trip a text, and with the others the work between two texts came
        to more than a text's turn at 50 a second (BENCHMARKS.md, the drain).
        """
        table, now = store.outbox, self.clock()
        pick = (
            sa.select(table.c.id)
            .where(_due(now))
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with store.begin() as conn:
            return conn.execute(
                sa.update(table)
                .where(table.c.id == pick, _due(now))
                .values(status=ob.SENDING, claim_token=uuid.uuid4().hex,
                        lease_until=now + self.lease, attempts=table.c.attempts + 1,
                        updated_at=now)
                .returning(*table.c)
            ).first()

    def _finish(self, row, **values) -> bool:
        """Store the outcome if our claim still holds. False if someone took it over.

        A database hiccup here, after Twilio took the text, would leave the
        claim to run out and the text to go again: so keep trying for a while.
        """
        table = store.outbox
        values.setdefault("updated_at", self.clock())
        statement = (
            sa.update(table)
            .where(table.c.id == row.id, table.c.claim_token == row.claim_token)
            .values(claim_token=None, lease_until=None, **values)
        )
        for attempt in range(FINISH_TRIES):
            try:
                with store.begin() as conn:
                    done = conn.execute(statement).rowcount
                break
            except sa.exc.OperationalError:
                if attempt == FINISH_TRIES - 1:
                    log.critical("text %s: could not store its result (%s); it may be sent "
                                 "again when its claim runs out", row.id, values.get("status"))
                    raise
                log.warning("text %s: database error storing its result; trying again", row.id)
                self.sleep(FINISH_PAUSES[attempt])
        if not done:
            log.error("text %s: our claim was taken over before the result was stored", row.id)
        return bool(done)

    def process(self, row) -> str:
        """Send one claimed text. Returns its new status."""
        if not row.to_number:
            self._finish(row, status=ob.FAILED)
            log.error("text %s has no number to send to", row.id)
            return ob.FAILED
        if ob.opted_out_now(row.to_hash):
            self._finish(row, status=ob.OPTED_OUT, to_number=None)
            log.info("text %s not sent: %s opted out", row.id, mask_number(row.to_number))
            return ob.OPTED_OUT
        sender = self.local if row.simulated else self.sender
        parts, index = ob.text_parts(row), row.parts_sent or 0
        try:
            if sender.kind == "twilio":
                self.limiter.wait()
            result = sender.send(row.to_number, parts[index], outbox_id=row.id,
                                 call_key=row.call_key, simulated=row.simulated)
        except Exception as exc:  # every failure is classified: retry or not
            return self._failed(row, senders.classify(exc))
        if index + 1 < len(parts):
            return self._part_sent(row, index, len(parts))
        status = ob.ACCEPTED if result.sid else ob.SENT
        now = self.clock()
        segments = row.segments if len(parts) > 1 else result.segments
        if self._finish(row, status=status, message_sid=result.sid, sent_at=now,
                        to_number=None, error_code=None, segments=segments):
            log.info("text %s to %s %s (%s, %d segments, attempt %d)", row.id,
                     mask_number(row.to_number), status, sender.kind, result.segments,
                     row.attempts)
        if result.sid:
            try:
                self.apply_events(result.sid)
            except Exception:  # the next sweep applies them
                log.exception("text %s: could not apply early delivery reports yet", row.id)
        return status

    def _part_sent(self, row, index: int, count: int) -> str:
        """One part of a long text went: the next is due at once, with fresh tries.

        Stored under our claim, like a whole text: the part is never sent twice
        unless the worker dies between Twilio's answer and this write. Only the
        last part's SID is kept (delivery reports follow the last part).
        """
        self._finish(row, status=ob.QUEUED, parts_sent=index + 1, attempts=0,
                     error_code=None, next_attempt_at=self.clock())
        log.info("text %s to %s: part %d of %d taken", row.id, mask_number(row.to_number),
                 index + 1, count)
        return ob.QUEUED

    def _failed(self, row, error: senders.SendError) -> str:
        masked = mask_number(row.to_number)
        if error.opted_out:
            ob.opt_out_hash(row.to_hash, source="twilio")
            self._finish(row, status=ob.OPTED_OUT, to_number=None, error_code=error.code)
            log.warning("text %s: Twilio says %s unsubscribed (21610); opted out", row.id, masked)
            return ob.OPTED_OUT
        gave_up = error.retryable and self._give_up(row)
        if not error.retryable or gave_up:
            self._finish(row, status=ob.FAILED, to_number=None, error_code=error.code,
                         gave_up_at=self.clock() if gave_up else None)
            if error.code == 20003:
                log.error("text %s failed: Twilio refused our credentials (20003): check "
                          "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN", row.id)
            elif gave_up:
                log.error("text %s to %s given up after %d attempt(s) over %s: %s "
                          "(SMS_GIVE_UP_AFTER, SMS_MAX_ATTEMPTS)", row.id, masked, row.attempts,
                          self._age(row), error)
            else:
                log.error("text %s to %s failed for good after %d attempt(s): %s", row.id,
                          masked, row.attempts, error)
            return ob.FAILED
        delay = backoff(row.attempts, setting(self.app, "SMS_RETRY_BASE_SECONDS"),
                        setting(self.app, "SMS_RETRY_MAX_SECONDS"), self.rand)
        self._finish(row, status=ob.QUEUED, error_code=error.code,
                     next_attempt_at=self.clock() + timedelta(seconds=delay))
        log.warning("text %s to %s: %s; retry %d in %.1f s", row.id, masked, error,
                    row.attempts + 1, delay)
        return ob.QUEUED

    def _age(self, row) -> timedelta:
        """How long the text has been due: since its call ended (or it was queued)."""
        return self.clock() - (row.released_at or row.created_at)

    def _give_up(self, row) -> bool:
        """Through a Twilio outage of up to SMS_GIVE_UP_AFTER (a day) a text keeps trying."""
        if self.max_attempts and row.attempts >= self.max_attempts:
            return True
        return self._age(row) >= timedelta(seconds=setting(self.app, "SMS_GIVE_UP_AFTER"))

    # -- housekeeping -----------------------------------------------------------

    def apply_events(self, message_sid: str | None = None) -> int:
        """Apply delivery reports that came before their message SID was stored. For one
        message (just sent): a plain read first, as one seldom has any."""
        events = store.message_events
        if message_sid and store.first_value(_EARLY, message_sid=message_sid) is None:
            return 0
        with store.begin() as conn:
            query = sa.select(events).join(
                store.outbox, store.outbox.c.message_sid == events.c.message_sid)
            if message_sid:
                query = query.where(events.c.message_sid == message_sid)
            found = conn.execute(query).all()
            for event in found:
                record_delivery(conn, event.message_sid, event.status, event.error_code)
                conn.execute(sa.delete(events).where(events.c.message_sid == event.message_sid))
            if message_sid is None:
                cutoff = self.clock() - timedelta(hours=setting(self.app, "SMS_EVENT_KEEP_HOURS"))
                conn.execute(sa.delete(events).where(events.c.received_at < cutoff))
        return len(found)

    def sweep(self) -> None:
        """Take back claims whose worker died; forget keyed-in numbers nobody confirmed;
        apply early delivery reports."""
        table, now = store.outbox, self.clock()
        with store.begin() as conn:
            stale = conn.execute(
                sa.update(table)
                .where(table.c.status == ob.SENDING, table.c.lease_until <= now)
                .values(status=ob.QUEUED, claim_token=None, lease_until=None,
                        next_attempt_at=now, updated_at=now)
                .returning(table.c.id)
            ).scalars().all()
            conn.execute(
                sa.update(table)
                .where(table.c.status == ob.STAGED, table.c.next_attempt_at <= now)
                .values(status=ob.ABANDONED, to_number=None, updated_at=now)
            )
        for text_id in stale:
            # Its worker stopped between claiming and storing the result: if
            # Twilio had already taken the text, this sends it a second time.
            log.warning("text %s: its worker stopped mid-send; it will be tried again", text_id)
        self.apply_events()

    # -- loops ---------------------------------------------------------------------

    def run_once(self, limit: int | None = None) -> int:
        """Send everything due now (up to ``limit`` texts); returns how many were tried."""
        self.sweep()
        tried = 0
        while limit is None or tried < limit:
            row = self.claim()
            if row is None:
                break
            self.process(row)
            tried += 1
        return tried

    def run_forever(self, stop: threading.Event, idle: float = 0.25,
                    outage_idle: float = OUTAGE_IDLE) -> None:
        # A quarter of a second between looks when idle: a released text waits
        # little, for one indexed query four times a second. While the database is
        # down: a look a second, and one log line a minute (self.outage), not a
        # traceback at every look.
        batch = 100
        while not stop.is_set():
            try:
                tried = self.run_once(limit=batch)
                self.outage.succeeded()
                if tried >= batch:
                    continue  # more may be due: no idle wait between full batches
            except Exception as exc:
                self.outage.failed(exc)
            stop.wait(outage_idle if self.outage.ongoing else idle)


def record_delivery(conn, message_sid: str, twilio_status: str, error_code: int | None = None):
    """Apply one delivery report to its text, never moving it back.

    Returns the text's row (id, status before, to_hash), or None when no
    text has that SID (yet).
    """
    table = store.outbox
    ours = DELIVERY.get((twilio_status or "").lower())
    row = conn.execute(sa.select(table.c.id, table.c.status, table.c.to_hash)
                       .where(table.c.message_sid == message_sid)).first()
    if row is None or ours is None:
        return row
    lower = [status for status, rank in RANK.items() if rank < RANK[ours]]
    values: dict[str, object] = {"status": ours, "to_number": None, "updated_at": store.utcnow()}
    if error_code:
        values["error_code"] = error_code
    conn.execute(sa.update(table).where(table.c.id == row.id, table.c.status.in_(lower))
                 .values(**values))
    return row


def run(app, once: bool = False) -> int:
    """The `ivr worker` command's body (inside an app context)."""
    worker = Worker(app)
    if once:
        tried = worker.run_once()
        log.info("worker: %d text(s) tried", tried)
        return tried
    stop = threading.Event()

    def _stop(signum, _frame):
        log.info("worker: signal %s, stopping after the current text", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    log.info("worker: sending texts through %s",
             "Twilio" if worker.sender.kind == "twilio" else "the local record (no Twilio account)")
    worker.run_forever(stop)
    return 0


class Background:
    """The local run's sender: a thread in the web process (no second process needed)."""

    def __init__(self, app, interval: float = 1.0):
        self.app, self.interval = app, interval
        self._wake, self._stop = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name="calm-line-texts", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        with self.app.app_context():
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            worker = Worker(app)
            worker.outage.what = "local sender"
            while not self._stop.is_set():
                try:
                    worker.run_once(limit=100)
                    worker.outage.succeeded()
                except Exception as exc:
                    worker.outage.failed(exc)
                self._wake.wait(self.interval)
                self._wake.clear()


def start_local_worker(app) -> threading.Thread:
    """Send due texts from a thread of this process (the local run: no second process)."""
    existing = app.extensions.get(ob.WORKER_EXTENSION)
    if existing is not None:
        return existing.thread
    background = Background(app)
    app.extensions[ob.WORKER_EXTENSION] = background
    background.start()
    return background.thread



@click.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@with_appcontext
def worker_command(once):
    """Send the texts callers asked for (Procfile: worker: ivr worker)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    tried = run(app, once=once)
    if once:
        click.echo(f"{tried} text(s) tried")
