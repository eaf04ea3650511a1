"""The text a practice call leads to: sent by the local sender, read back for show.

When a simulated call ends, its status callback releases the held text.
Simulated texts always go to the local sender (worker.Worker sends rows
marked simulated through sender.LocalSender), never to Twilio. Here we send
this call's text at once, in this process, instead of waiting for a worker,
and read back what the local sender recorded.
"""
from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from flask import current_app

from ivr import store
from ivr.texts import outbox

MAX_PARTS = 4  # parts of one text sent here before giving up (a text has at most two)
WAIT_SECONDS = 3.0  # for another process's worker (`ivr serve`'s thread, `--url`)

NOTES = {
    None: "No text was arranged on this call.",
    outbox.OPTED_OUT: "No text: this number had replied STOP to an earlier text.",
    outbox.ABANDONED: "No text: the keyed-in number was never confirmed.",
    outbox.FAILED: "The text could not be sent.",
    outbox.STAGED: "No text: the keyed-in number was never confirmed.",
}


def _row(key: str):
    with store.read() as conn:
        return conn.execute(
            sa.select(store.outbox.c.id, store.outbox.c.status, store.outbox.c.simulated)
            .where(store.outbox.c.call_key == key)
        ).first()


def _send_now(key: str) -> None:
    """Claim and send this call's simulated text now, if it is due and still unclaimed.

    Only this call's row, and only if marked simulated: a real caller's text
    is never touched from here. The claim is the worker's (status, token,
    lease, attempt), so a worker thread running beside us cannot send it twice.
    """
    from ivr.texts import worker as workers

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    sender = workers.Worker(app)
    table, now = store.outbox, store.utcnow()
    with store.begin() as conn:
        row = conn.execute(
            sa.update(table)
            .where(table.c.call_key == key, table.c.simulated.is_(True),
                   table.c.status.in_((outbox.HELD, outbox.QUEUED)),
                   table.c.next_attempt_at <= now)
            .values(status=outbox.SENDING, claim_token=uuid.uuid4().hex,
                    lease_until=now + sender.lease, attempts=table.c.attempts + 1,
                    updated_at=now)
            .returning(*table.c)
        ).first()
    if row is not None:
        sender.process(row)


def _shown(parts: list[dict]) -> dict:
    """The text as staff see it: its parts in order, a blank line between them."""
    count = len(parts)
    note = "Not really sent: a practice call's text is only shown here."
    if count > 1:
        note = f"Sent as {count} texts, in this order. " + note
    return {
        # A practice text is never sent: "shown" says there is a body to show.
        "sent": False, "shown": True, "to": parts[0]["to"], "body": "\n\n".join(p["body"] for p in parts),
        "segments": sum(p["segments"] for p in parts), "parts": count,
        "characters": sum(len(p["body"]) for p in parts),
        "simulated": parts[0]["simulated"], "note": note,
    }


def after_call(call_sid: str, send: bool = True, wait: float = WAIT_SECONDS) -> dict | None:
    """What followed the call: None when no text was asked for, else a dict with
    sent (always False: a practice text is never sent), shown (True with a body),
    to (masked), body, segments, characters and a note for staff."""
    key = store.call_key(call_sid)
    deadline = time.monotonic() + wait
    while True:
        row = _row(key)
        if row is None:
            return None
        for _part in range(MAX_PARTS):  # a long text goes as two: one part a claim
            if not (send and row.status in (outbox.HELD, outbox.QUEUED)):
                break
            _send_now(key)
            row = _row(key)
        sent = outbox.local_sent(call_sid)
        if sent and (row.status not in outbox.PENDING or time.monotonic() >= deadline):
            return _shown(list(reversed(sent)))  # oldest first: the order they went in
        if row.status not in outbox.PENDING or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    note = NOTES.get(row.status)
    if note is None:
        note = ("The text is still waiting to be sent." if row.status in outbox.PENDING
                else f"The text is {row.status.replace('_', ' ')}.")
    return {"sent": False, "shown": False, "status": row.status, "note": note}
