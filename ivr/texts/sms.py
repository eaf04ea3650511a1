"""Texts coming in (STOP, START, HELP, anything else) and Twilio's delivery reports.

Both webhooks are signed by Twilio. Replies are TwiML <MessagingResponse>,
with words from prompts (the flow's ``sms:`` section).
"""
from __future__ import annotations

import logging
import re

import phonenumbers
import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from ivr import store
from ivr.logs import mask_number
from ivr.security import twilio_signed
from ivr.texts import body as textbody
from ivr.texts import keywords, outbox, phones, worker

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")


def init_app(app) -> None:
    app.register_blueprint(bp)


def keyword(body: str | None) -> str | None:
    """What an incoming text asks for: "stop", "start", "help" or None (see keywords.py)."""
    return keywords.keyword(body)


def _number(raw: str | None) -> str | None:
    """The sender's number as E.164 (as our texts were addressed), or None.

    A number phonenumbers does not know (a range newer than its data) is
    still taken as written when it looks like +digits: STOP must count.
    """
    parsed = phones.parse(raw, current_app.config.get("DEFAULT_REGION", "GB"))
    if parsed is not None:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    digits = re.sub(r"[\s\-.()]", "", raw or "")
    return digits if re.fullmatch(r"\+\d{6,15}", digits) else None


def _reply(prompt: str, language: str | None = None) -> Response:
    first = current_app.extensions["calm_line.flow"]
    twiml = MessagingResponse()
    twiml.message(textbody.reply(first.in_language(language) or first, prompt))
    return Response(str(twiml), status=200, mimetype="text/xml")


def _language(conn, number: str | None, body: str | None) -> str | None:
    """The language to answer in: the text's own, when it is a word of one language only
    (POMOC), else the language of the latest text the line sent this number, else None
    (the first language). An inbound text carries no call: this is all the line knows."""
    said = keywords.language(body)
    if said or not number:
        return said
    try:
        with conn.begin_nested():  # a failure here leaves the transaction usable for STOP
            return outbox.language_of(conn, store.number_hash(number))
    except Exception:  # a reply in English beats no reply: STOP must still be acted on
        log.exception("sms: could not look up the language of a number; answering in English")
        return None


REPLIES = {"stop": "stopped_reply", "start": "started_reply", "help": "help_reply",
           None: "other_reply"}
_SID = re.compile(r"[A-Za-z0-9]{1,64}")  # Twilio's are 34: two letters, 32 hex digits


def twilio_sid(raw: str | None, field: str) -> str | None:
    """A SID as Twilio writes them, or None (with a warning) for anything the database
    could refuse: over-long, a NUL, other odd characters."""
    if not raw:
        return None
    if _SID.fullmatch(raw):
        return raw
    log.warning("sms: ignored a %s that is not a Twilio SID (%d characters)", field, len(raw))
    return None


def _first_time(conn, sid: str, wants: str | None) -> bool:
    """Remember this inbound message; False when it was already handled (a replay)."""
    table = store.inbound_messages
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(table).values(message_sid=sid, keyword=wants or "other",
                                                 received_at=store.utcnow()))
    except sa.exc.IntegrityError:
        return False
    return True


@bp.post("/inbound")
@twilio_signed
def inbound():
    """STOP, START, HELP or anything else. Each MessageSid is acted on once: a replayed
    START (signatures never expire) cannot undo a later STOP."""
    number = _number(request.form.get("From"))
    wants = keyword(request.form.get("Body"))
    masked = mask_number(request.form.get("From"))
    sid = twilio_sid(request.form.get("MessageSid") or request.form.get("SmsSid"), "MessageSid")
    with store.begin() as conn:
        language = _language(conn, number, request.form.get("Body"))
        if sid and not _first_time(conn, sid, wants):
            log.warning("sms from %s: message already handled (a repeat or a replay); "
                        "nothing changed", masked)
            return _reply(REPLIES[wants], language)
        _act(conn, wants, number, masked)
    return _reply(REPLIES[wants], language)


def _act(conn, wants: str | None, number: str | None, masked: str) -> None:
    if wants == "stop":
        if number:
            stopped = outbox.opt_out_in(conn, store.number_hash(number), source="sms")
            log.info("sms from %s: opted out (%d waiting text(s) stopped)", masked, stopped)
        else:
            log.warning("sms STOP from an unreadable number %s", masked)
    elif wants == "start":
        if number:
            outbox.opt_in_in(conn, store.number_hash(number))
        log.info("sms from %s: opted back in", masked)
    elif wants == "help":
        log.info("sms from %s: help", masked)
    else:
        log.info("sms from %s: not a keyword; pointed to the line", masked)


MAX_ERROR_CODE = 2**31 - 1  # the column is an INTEGER; Twilio's codes have five digits


def _error_code(raw: str | None) -> int | None:
    """Twilio's ErrorCode, or None (with a warning) for junk or a number out of range."""
    try:
        code = int(raw) if raw else None
    except ValueError:
        code = -1
    if code is not None and not 0 <= code <= MAX_ERROR_CODE:
        log.warning("sms status: ignored an ErrorCode that is not a Twilio error code "
                    "(%d characters)", len(raw or ""))
        return None
    return code


def _keep_early(conn, message_sid: str, status: str, error_code: int | None) -> None:
    """A report for a message whose SID the worker has not stored yet: keep the furthest."""
    events = store.message_events
    ours = worker.DELIVERY.get(status)
    if ours is None:
        return
    row = conn.execute(sa.select(events).where(events.c.message_sid == message_sid)).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(events).values(
                    message_sid=message_sid, status=status, error_code=error_code,
                    received_at=store.utcnow()))
            return
        except sa.exc.IntegrityError:
            row = conn.execute(sa.select(events)
                               .where(events.c.message_sid == message_sid)).first()
    earlier = worker.DELIVERY.get(row.status)
    if earlier is None or worker.RANK[ours] > worker.RANK[earlier]:
        conn.execute(sa.update(events).where(events.c.message_sid == message_sid)
                     .values(status=status, error_code=error_code))


@bp.post("/status")
@twilio_signed
def status():
    """Twilio's delivery report: may come twice, late, or before "sent"."""
    sid = twilio_sid(request.form.get("MessageSid") or request.form.get("SmsSid"), "MessageSid")
    state = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").lower()
    code = _error_code(request.form.get("ErrorCode"))
    if not sid:  # nothing to match it to; 200, or Twilio would only send it again
        return Response("", status=200)
    with store.begin() as conn:
        row = worker.record_delivery(conn, sid, state, code)
        if row is None:
            _keep_early(conn, sid, state, code)
    if row is not None and code == 21610:
        outbox.opt_out_hash(row.to_hash, source="twilio")
    log.info("text %s: %s%s", row.id if row is not None else "(not yet stored)", state[:24] or "-",
             f" (error {code})" if code else "")
    return Response("", status=200)
