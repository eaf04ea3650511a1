"""The outbox: texts the caller said yes to, held until the call ends.

The voice webhooks call the functions here; each is one short transaction
and never talks to Twilio. ``ivr worker`` (worker.py) sends what is due.

A text's life (outbox.status):

    staged    a keyed-in number waiting for the caller's "yes, that's right"
    held      consented; waits for the call to end (or TEXT_HOLD_MINUTES)
    queued    the call ended: due at next_attempt_at (later after a failure)
    sending   claimed by a worker until lease_until
    accepted  Twilio took it (message_sid); then sent / delivered /
              undelivered / failed as Twilio's delivery reports say
    sent      (also: the local sender recorded it)
    failed    Twilio refused it for good, or every retry failed
    opted_out the number said STOP before it went
    abandoned a keyed-in number the caller never confirmed

Once a text will never be sent again (accepted or later, failed, opted out,
abandoned) its number is wiped; only the keyed hash stays, for STOP.
"""
from __future__ import annotations

import functools
import json
import logging
import re
import sqlite3
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from ivr import store
from ivr.logs import hash_call_sid, mask_number
from ivr.texts import body as textbody
from ivr.texts import limits, phones

log = logging.getLogger(__name__)

STAGED, HELD, QUEUED, SENDING = "staged", "held", "queued", "sending"
ACCEPTED, SENT, DELIVERED, UNDELIVERED = "accepted", "sent", "delivered", "undelivered"
FAILED, OPTED_OUT, ABANDONED = "failed", "opted_out", "abandoned"
PENDING = (HELD, QUEUED, SENDING)  # consented and not yet with Twilio
FINISHED = (ACCEPTED, SENT, DELIVERED, UNDELIVERED, FAILED, OPTED_OUT, ABANDONED)

WORKER_EXTENSION = "calm_line.local_worker"


# -- helpers ----------------------------------------------------------------


def _region() -> str:
    return current_app.config.get("DEFAULT_REGION", "GB")


def textable(raw: str | None) -> tuple[str | None, str]:
    """(E.164, phones.OK) when this number may get a text from the line, else (None, why)."""
    config = current_app.config
    return phones.textable(raw, _region(), config.get("TEXT_REGIONS") or (_region(),))


def _hold() -> timedelta:
    return timedelta(minutes=float(current_app.config.get("TEXT_HOLD_MINUTES", 10)))


def _flow(language: str | None = None):
    """The flow in the caller's language (the first language's when unknown)."""
    first = current_app.extensions["calm_line.flow"]
    return first.in_language(language) or first


# The webhooks' statements, built once: building one cost more than running it.
_ROW_FOR_CALL = sa.select(store.outbox).where(store.outbox.c.call_key == sa.bindparam("key"))
_OPTED_OUT = sa.select(store.opt_outs.c.number_hash).where(
    store.opt_outs.c.number_hash == sa.bindparam("number_hash"))
_SPENT = sa.select(store.spent_calls.c.call_key).where(
    store.spent_calls.c.call_key == sa.bindparam("key"))
_STATUS = sa.select(store.outbox.c.status).where(store.outbox.c.call_key == sa.bindparam("key"))
_WAITING = sa.select(store.outbox.c.id, store.outbox.c.simulated).where(
    store.outbox.c.call_key == sa.bindparam("key"),
    sa.or_(store.outbox.c.status == HELD, store.outbox.c.status == STAGED)).limit(1)


# The columns stage_number writes: a new row, or one it may replace (staged or abandoned).
_STAGED_COLUMNS = ("call_key", "to_number", "to_hash", "simulated", "branches", "body", "parts",
                   "parts_sent", "segments", "language", "status", "attempts", "next_attempt_at",
                   "created_at", "updated_at")
# INSERT ... ON CONFLICT ... RETURNING: SQLite 3.35 and later, PostgreSQL.
_UPSERT_SQLITE = sqlite3.sqlite_version_info >= (3, 35, 0)


def _set(*names: str) -> dict:
    """SET name = :v_name (an UPDATE's values may not reuse its columns' own names)."""
    return {name: sa.bindparam(f"v_{name}") for name in names}


# The writes of the webhooks that take a caller's yes, built once: they run on the
# driver's connection (store.begin_plain), inside SQLite's one writer.
_ROW_ID = store.outbox.c.id == sa.bindparam("row_id")
_INSERT_ROW = sa.insert(store.outbox).values(
    {name: sa.bindparam(name) for name in _STAGED_COLUMNS})
_REPLACE_ROW = sa.update(store.outbox).where(
    _ROW_ID, store.outbox.c.status == sa.bindparam("row_status")).values(
    _set(*(name for name in _STAGED_COLUMNS if name != "call_key")))
_HOLD_ROW = sa.update(store.outbox).where(_ROW_ID).values(
    status=HELD, **_set("next_attempt_at", "updated_at"))
# Opted out or refused: the number goes with the decision.
_CLOSE_ROW = sa.update(store.outbox).where(_ROW_ID).values(
    to_number=None, **_set("status", "updated_at"))
_QUEUE_HELD = sa.update(store.outbox).where(
    store.outbox.c.call_key == sa.bindparam("key"), store.outbox.c.status == HELD).values(
    status=QUEUED, **_set("next_attempt_at", "released_at", "updated_at"))
# Everything a yes is decided by, in one statement inside SQLite's one writer: each
# statement there lets go of the GIL and waits for it back behind the other threads.
# For a yes on the caller's own number: the call's text so far, an opt-out, the counts.
_FACTS_FOR_NUMBER = sa.select(
    sa.select(store.outbox.c.status).where(store.outbox.c.call_key == sa.bindparam("key"))
    .scalar_subquery().label("status"),
    sa.exists().where(store.opt_outs.c.number_hash == sa.bindparam("number_hash"))
    .label("opted_out"),
    limits.today_column(sa.bindparam("number_hash")), limits.last_hour_column())
# For a keyed-in number's confirmation: its row, and the same facts for its number.
_FACTS_FOR_ROW = sa.select(
    store.outbox.c.id, store.outbox.c.status, store.outbox.c.to_hash, store.outbox.c.to_number,
    store.outbox.c.simulated,
    sa.exists().where(store.opt_outs.c.number_hash == store.outbox.c.to_hash)
    .label("opted_out"),
    limits.today_column(store.outbox.c.to_hash), limits.last_hour_column(),
).where(store.outbox.c.call_key == sa.bindparam("key"))
_ABANDON_STAGED = sa.update(store.outbox).where(
    store.outbox.c.call_key == sa.bindparam("key"), store.outbox.c.status == STAGED).values(
    status=ABANDONED, to_number=None, **_set("updated_at"))


@functools.lru_cache(maxsize=4)
def _stage_statement(dialect_name: str):
    """One statement that keeps a keyed-in number: inserts the call's row, or replaces it
    while it is staged or abandoned, and returns it (no row: the text was decided).
    Built once: the two reads, the savepoint and the statement built per request that it
    replaces cost about 700 us of a 770 us webhook (bench.profile)."""
    from sqlalchemy.dialects import postgresql, sqlite

    table = store.outbox
    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert(table)
    insert = insert.values({name: sa.bindparam(name) for name in _STAGED_COLUMNS})
    return insert.on_conflict_do_update(
        index_elements=[table.c.call_key],
        set_={name: insert.excluded[name] for name in _STAGED_COLUMNS if name != "call_key"},
        where=sa.or_(table.c.status == STAGED, table.c.status == ABANDONED),
    ).returning(table.c.status, table.c.to_number, table.c.segments)


def _row_for_call(conn, key: str):
    return conn.execute(_ROW_FOR_CALL, {"key": key}).first()


def is_opted_out(conn, number_hash: str) -> bool:
    return conn.execute(_OPTED_OUT, {"number_hash": number_hash}).first() is not None


def opted_out_now(number_hash: str) -> bool:
    """Whether the number said STOP, read at once (a plain read, no transaction): the
    worker asks just before each text goes."""
    return store.first_value(_OPTED_OUT, number_hash=number_hash) is not None


PARTS_KEPT = 256  # (language, branches heard) -> the text; callers hear few combinations


def _composed(flow, heard: list[str]) -> dict:
    """The text's columns for these branches, worked out once per app and combination:
    composing it (segments counted, both alphabets tried) and its JSON cost as much as
    the database step itself."""
    kept = current_app.extensions.setdefault("calm_line.text_parts", {})
    key = (flow.code, tuple(heard))
    fields = kept.get(key)
    if fields is None:
        parts = textbody.compose_parts(flow, heard)
        fields = {
            "branches": json.dumps(heard),
            "body": "\n\n".join(parts),
            "parts": json.dumps(parts) if len(parts) > 1 else None,
            "parts_sent": 0,
            "segments": sum(textbody.segments(part) for part in parts),
            "language": flow.code,
        }
        if len(kept) < PARTS_KEPT:
            kept[key] = fields
    return fields


def _text_fields(number: str, branches: list[str], simulated: bool,
                 language: str | None = None) -> dict:
    flow = _flow(language)
    heard = sorted({b for b in branches or () if isinstance(b, str) and b in flow.nodes})
    return {"to_number": number, "to_hash": store.number_hash(number),
            "simulated": bool(simulated), **_composed(flow, heard)}


def text_parts(row) -> list[str]:
    """The texts of an outbox row, in the order they are sent."""
    return json.loads(row.parts) if row.parts else [row.body]


def _answer_for(row) -> str | None:
    """What an earlier request for this call decided, if it decided anything."""
    return _answer_for_status(None if row is None else row.status)


def _answer_for_status(status: str | None) -> str | None:
    if status is None or status in (STAGED, ABANDONED):
        return None
    return "opted_out" if status == OPTED_OUT else "queued"


def _status_now(key: str) -> str | None:
    """The call's text's status, read without a transaction or the write lock. A decided
    status never goes back to undecided, so a request that finds one (Twilio retrying a
    webhook, a caller pressing yes twice) is answered from it without queueing for
    SQLite's single writer behind the other webhooks."""
    return store.first_value(_STATUS, key=key)


def _keep_row(conn, key: str, values: dict):
    """Insert the call's row, or replace it while it is staged or abandoned (values: every
    column of _STAGED_COLUMNS but call_key). Returns the row as it is afterwards (status,
    to_number and segments at least): a decided text is left as it is.

    One INSERT ... ON CONFLICT DO UPDATE where the database has it; otherwise a read, then
    an insert or an update. Either way the unique call_key makes two concurrent requests
    for one call (a retried webhook) end with one row.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql" or (dialect == "sqlite" and _UPSERT_SQLITE):
        kept = conn.execute(_stage_statement(dialect), dict(values, call_key=key)).first()
        return kept or _row_for_call(conn, key)  # not replaced: decided, read as it is
    row = _row_for_call(conn, key)
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(_INSERT_ROW, dict(values, call_key=key))
        except sa.exc.IntegrityError:
            pass  # the other request won; we read its row below
    elif row.status in (STAGED, ABANDONED):
        conn.execute(_REPLACE_ROW, {"row_id": row.id, "row_status": row.status,
                                    **{f"v_{name}": value for name, value in values.items()}})
    return _row_for_call(conn, key)


# -- the interface the voice webhooks use ---------------------------------------


def request_text(call_sid: str, caller: str | None, branches: list[str], *,
                 simulated: bool = False, language: str | None = None) -> str:
    """The caller said yes. Returns "queued", "need_number", "abroad" (a mobile we do
    not text: ask for another, saying why), "opted_out" or "limited" (too many texts).

    Idempotent per call: a retried webhook gets the same answer and never a
    second text. Raises if the database cannot be reached.
    """
    key = store.call_key(call_sid)
    tag = hash_call_sid(call_sid)
    mobile, why = textable(caller)
    if mobile is None:
        earlier = _said_before(_status_now(key), tag)
        if earlier:
            return earlier
        if _replayed(key, tag):
            return "queued"
        log.info("call %s: caller's number %s cannot get texts (%s); asking for a mobile",
                 tag, mask_number(caller) or "(withheld)", why)
        return "abroad" if why == phones.ABROAD else "need_number"
    fields = _text_fields(mobile, branches, simulated, language)
    now = store.utcnow()
    facts = {"key": key, "number_hash": fields["to_hash"], **limits.count_since(now)}
    # Read first, without the write lock: a decided answer, a spent call, an opt-out, a
    # limit reached (a flood of yeses, as in SMS pumping) need no write, and leave SQLite's
    # one writer to the texts themselves. A yes that may go is decided again under it.
    answer = _decided(store.first_row(_FACTS_FOR_NUMBER, **facts), tag, mobile, simulated)
    if answer:
        return answer
    if _replayed(key, tag):
        return "queued"
    with store.begin_plain() as conn:
        answer = _decided(conn.execute(_FACTS_FOR_NUMBER, facts).first(), tag, mobile,
                          simulated)
        if answer:  # decided since the read above
            return answer
        row = _keep_row(conn, key, dict(fields, status=HELD, attempts=0,
                                        next_attempt_at=now + _hold(), created_at=now,
                                        updated_at=now))
    log.info("call %s: text to %s held until the call ends (%d segments)",
             tag, mask_number(mobile), row.segments)
    return _answer_for(row) or "queued"


def _replayed(key: str, tag: str) -> bool:
    """A yes for a call whose text was dealt with (and purged) long ago: nothing is sent."""
    if not _spent_now(key):
        return False
    log.warning("call %s: its text was dealt with long ago; a replayed request sends nothing",
                tag)
    return True


def _said_before(status: str | None, tag: str) -> str | None:
    """The answer given when this call's yes was decided, if it was ("queued", "opted_out")."""
    earlier = _answer_for_status(status)
    if earlier:  # Twilio asking again: said once, when it was decided (DEBUG here)
        log.debug("call %s: text already %s (repeated request)", tag, earlier)
    return earlier


def _decided(facts, tag: str, mobile: str, simulated: bool) -> str | None:
    """A yes's answer from its facts (_FACTS_FOR_NUMBER) when they decide it: "queued" or
    "opted_out" said before, an opt-out, a limit reached. None: the text may go."""
    status, opted_out, today, last_hour = facts
    earlier = _said_before(status, tag)
    if earlier:
        return earlier
    if opted_out:
        log.info("call %s: %s has opted out of texts", tag, mask_number(mobile))
        return "opted_out"
    refused = None if simulated else limits.refusal(today, last_hour)
    if refused:
        log.warning("call %s: no text to %s: %s", tag, mask_number(mobile), refused)
        return "limited"
    return None


def stage_number(call_sid: str, number_e164: str, branches: list[str], *,
                 simulated: bool = False, language: str | None = None) -> str | None:
    """Keep a keyed-in mobile number until the caller confirms it (replaces an earlier one).

    Returns the number now kept for the call, to read back (None: nothing is): the
    webhook says it without reading it again. Raises ValueError for a number the line
    does not text (the webhook checks first).
    """
    if textable(number_e164)[0] != number_e164:
        raise ValueError("not a mobile number the line texts")
    key = store.call_key(call_sid)
    now = store.utcnow()
    fields = _text_fields(number_e164, branches, simulated, language)
    if _spent_now(key):
        log.warning("call %s: its text was dealt with long ago; keyed-in number ignored",
                    hash_call_sid(call_sid))
        return None
    values = dict(fields, status=STAGED, attempts=0, next_attempt_at=now + _hold(),
                  created_at=now, updated_at=now)
    with store.begin_plain() as conn:
        row = _keep_row(conn, key, values)
    if row.status != STAGED:
        log.info("call %s: text already %s; keyed-in number ignored",
                 hash_call_sid(call_sid), row.status)
    return _number_to_read_back(row)


def staged_number(call_sid: str) -> str | None:
    """The number the caller keyed in (for the read-back), or None."""
    with store.read() as conn:
        row = _row_for_call(conn, store.call_key(call_sid))
    return _number_to_read_back(row)


def _number_to_read_back(row) -> str | None:
    if row is None or row.status not in (STAGED, HELD, QUEUED):
        return None
    return row.to_number


def confirm_number(call_sid: str) -> str:
    """The caller confirmed the keyed-in number: "queued", "opted_out" or "limited" (idempotent).

    Raises LookupError when no number was keyed in for this call.
    """
    key = store.call_key(call_sid)
    tag = hash_call_sid(call_sid)
    status = _status_now(key)
    if status is None or status == ABANDONED:
        raise LookupError("no keyed-in number for this call")
    if status != STAGED:
        return _answer_for_status(status) or "queued"
    now = store.utcnow()
    with store.begin_plain() as conn:
        row = conn.execute(_FACTS_FOR_ROW, {"key": key, **limits.count_since(now)}).first()
        if row is None or row.status == ABANDONED:
            raise LookupError("no keyed-in number for this call")
        if row.status != STAGED:
            return _answer_for(row) or "queued"
        if row.opted_out:
            conn.execute(_CLOSE_ROW, {"row_id": row.id, "v_status": OPTED_OUT,
                                      "v_updated_at": now})
            log.info("call %s: keyed-in %s has opted out of texts", tag,
                     mask_number(row.to_number))
            return "opted_out"
        refused = None if row.simulated else limits.refusal(row.today, row.last_hour)
        if refused:
            conn.execute(_CLOSE_ROW, {"row_id": row.id, "v_status": ABANDONED,
                                      "v_updated_at": now})
            log.warning("call %s: no text to keyed-in %s: %s", tag,
                        mask_number(row.to_number), refused)
            return "limited"
        conn.execute(_HOLD_ROW, {"row_id": row.id, "v_next_attempt_at": now + _hold(),
                                 "v_updated_at": now})
    log.info("call %s: text to keyed-in %s held until the call ends", tag,
             mask_number(row.to_number))
    return "queued"


def release_call(call_sid: str, call_status: str) -> int:
    """The call ended: its held text becomes due now. Returns how many were released.

    A keyed-in number the caller never confirmed is forgotten. A simulated
    call's text goes straight to the local record (nothing to wait for, and
    the simulator shows it at once). Safe to call again, late, or for a call
    that asked for nothing.
    """
    key = store.call_key(call_sid)
    waiting = _waiting(key)
    if waiting is None:
        return 0
    now = store.utcnow()
    if waiting[1]:  # a practice call: its text is recorded here and now
        with store.begin() as conn:
            released = _release_simulated(conn, key, now) + _queue_and_forget(conn, key, now)
    else:
        with store.begin_plain() as conn:
            released = _queue_and_forget(conn, key, now)
    if released:
        log.info("call %s ended (%s): text released", hash_call_sid(call_sid), call_status)
        background = current_app.extensions.get(WORKER_EXTENSION)
        if background is not None:
            background.wake()
    return released


def _waiting(key: str):
    """The call's text if it is held or its number staged: (id, simulated), else None.
    Most calls ask for no text: one plain read, no transaction and no write lock for them.
    A call has one row at most (call_key is unique)."""
    return store.first_row(_WAITING, key=key)


def text_waiting(call_sid: str) -> bool:
    """Whether the call's end has anything to release (a held text, a keyed-in number)."""
    return _waiting(store.call_key(call_sid)) is not None


def _queue_and_forget(conn, key: str, now) -> int:
    """The call's held text due now; a keyed-in number never confirmed forgotten."""
    released = conn.execute(_QUEUE_HELD, {"key": key, "v_next_attempt_at": now,
                                          "v_released_at": now, "v_updated_at": now}).rowcount
    conn.execute(_ABANDON_STAGED, {"key": key, "v_updated_at": now})
    return released


def _release_simulated(conn, key: str, now) -> int:
    """A practice call's held text, recorded by the local sender (or stopped: opted out)."""
    from ivr.texts import sender

    table, released = store.outbox, 0
    simulated = conn.execute(sa.select(table).where(
        table.c.call_key == key, table.c.status == HELD, table.c.simulated)).all()
    for row in simulated:
        blocked = is_opted_out(conn, row.to_hash)
        taken = conn.execute(
            sa.update(table).where(table.c.id == row.id, table.c.status == HELD)
            .values(status=OPTED_OUT if blocked else SENT, to_number=None, released_at=now,
                    sent_at=None if blocked else now, updated_at=now)
        ).rowcount
        for part in (text_parts(row) if taken and not blocked else ()):
            sender.record_local(conn, to=row.to_number, body=part, outbox_id=row.id,
                                call_key=key, simulated=True)
        released += taken
    return released


# -- opt-outs -------------------------------------------------------------------


def opt_out(number_e164: str, source: str = "sms") -> int:
    """No text will ever go to this number again. Returns how many waiting texts were stopped."""
    return opt_out_hash(store.number_hash(number_e164), source)


def opt_out_hash(number_hash: str, source: str = "sms") -> int:
    with store.begin() as conn:
        return opt_out_in(conn, number_hash, source)


def opt_out_in(conn, number_hash: str, source: str = "sms") -> int:
    """opt_out inside the caller's transaction (with the inbound message's record)."""
    now = store.utcnow()
    if not is_opted_out(conn, number_hash):
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(store.opt_outs).values(
                    number_hash=number_hash, source=source, created_at=now))
        except sa.exc.IntegrityError:
            pass  # a repeated STOP got there first
    return conn.execute(
        sa.update(store.outbox)
        .where(store.outbox.c.to_hash == number_hash,
               store.outbox.c.status.in_((STAGED, HELD, QUEUED)))
        .values(status=OPTED_OUT, to_number=None, updated_at=now)
    ).rowcount


def language_of(conn, number_hash: str) -> str | None:
    """The language of the latest text the line sent or queued to this number (a practice
    call's, or a keyed-in number never confirmed, does not count); None: none kept."""
    table = store.outbox
    row = conn.execute(
        sa.select(table.c.language)
        .where(table.c.to_hash == number_hash, table.c.simulated == sa.false(),
               table.c.status.notin_((STAGED, ABANDONED)))
        .order_by(table.c.id.desc()).limit(1)
    ).first()
    return row.language if row is not None else None


def opt_in(number_e164: str) -> bool:
    """START: texts may go to this number again. True if it had opted out."""
    with store.begin() as conn:
        return opt_in_in(conn, store.number_hash(number_e164))


def opt_in_in(conn, number_hash: str) -> bool:
    return conn.execute(
        sa.delete(store.opt_outs).where(store.opt_outs.c.number_hash == number_hash)
    ).rowcount > 0


def number_opted_out(number_e164: str) -> bool:
    with store.read() as conn:
        return is_opted_out(conn, store.number_hash(number_e164))


# -- what the local sender "sent" -------------------------------------------------


def local_sent(call_sid: str | None = None, limit: int = 50) -> list[dict]:
    """Texts the local sender recorded, newest first: to (masked), body, segments, created.

    With call_sid, only that call's. The simulator and a local run show these.
    """
    table = store.local_texts
    query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
    if call_sid is not None:
        query = query.where(table.c.call_key == store.call_key(call_sid))
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "to": row.to_masked,
            "body": row.body,
            "segments": row.segments,
            "created": row.created_at.isoformat(timespec="seconds") + "Z",
            "simulated": bool(row.simulated),
        }
        for row in rows
    ]


# -- set-up ---------------------------------------------------------------------------


# -- retention ----------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '90m' -> a timedelta (ValueError otherwise)."""
    found = _DURATION.match(text or "")
    if not found:
        raise ValueError(f"{text!r} is not an age like 30d, 12h or 90m")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def _remember_spent(conn, rows, now) -> None:
    """Keep the keyed call hashes of the rows about to go (nothing else: no number)."""
    table, spent = store.outbox, store.spent_calls
    conn.execute(sa.insert(spent).from_select(
        ["call_key", "created_at"],
        sa.select(table.c.call_key, sa.literal(now, sa.DateTime)).where(
            rows, table.c.call_key.is_not(None),
            table.c.call_key.not_in(sa.select(spent.c.call_key)))))


def _spent_now(key: str) -> bool:
    """A call whose text was arranged (and purged) long ago: a replayed yes sends nothing.
    Read without a transaction or the write lock: a spent call stays spent."""
    return store.first_value(_SPENT, key=key) is not None


def purge(older_than: timedelta, now=None) -> dict[str, int]:
    """Delete finished texts, local records and stray delivery reports older than that.

    Texts still waiting to be sent are kept, whatever their age; so are
    opt-outs (keyed hashes), without which STOP could not be honoured.
    """
    now = now or store.utcnow()
    cutoff = now - older_than
    table = store.outbox
    with store.begin() as conn:
        # Belt and braces: no finished text keeps a number, whatever its age.
        conn.execute(sa.update(table)
                     .where(table.c.status.in_(FINISHED), table.c.to_number.is_not(None))
                     .values(to_number=None))
        old = sa.and_(table.c.status.in_(FINISHED), table.c.updated_at < cutoff)
        _remember_spent(conn, old, now)
        counts = {
            "texts": conn.execute(sa.delete(table).where(old)).rowcount,
            "local_texts": conn.execute(sa.delete(store.local_texts).where(
                store.local_texts.c.created_at < cutoff)).rowcount,
            "delivery_reports": conn.execute(sa.delete(store.message_events).where(
                store.message_events.c.received_at < cutoff)).rowcount,
            # STOP and START are kept: a replayed START must never undo a later STOP.
            "inbound_messages": conn.execute(sa.delete(store.inbound_messages).where(
                store.inbound_messages.c.received_at < cutoff,
                store.inbound_messages.c.keyword.not_in(("stop", "start")))).rowcount,
        }
    log.info("purged rows older than %s: %s", older_than, counts)
    return counts


