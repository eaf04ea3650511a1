"""The voice webhooks: thin. Parse the request, ask the engine, send the TwiML.

Where the caller is travels in the URLs Twilio follows (/voice/answer/<step>
?t=<tries>&h=<steps heard>), so a call survives a restart or a database
outage; the database is touched only when the caller asks for a text.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import replace
from datetime import UTC, datetime

from flask import Blueprint, Response, g, request
from werkzeug.routing import PathConverter

from ivr.call import content, engine, hours
from ivr.call.engine import CallState, Step
from ivr.call.wording import spoken_digits
from ivr.logs import hash_call_sid, mask_number
from ivr.security import twilio_signed
from ivr.texts import outbox, phones

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")


class AnyTail(PathConverter):
    """Any rest of a path, even "" or one starting with "/", so /voice/ and /voice//x
    get an answer (the main menu) rather than a 404 or a 308 redirect."""

    regex = r"(?s:.*?)"  # newlines too (%0A)
    part_isolating = False


@bp.record_once
def _any_tail(state) -> None:
    state.app.url_map.converters.setdefault("any_tail", AnyTail)


FINAL_CALL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
MAX_TRIES_IN_URL = 10


TWIML_TYPE = "text/xml; charset=utf-8"  # what mimetype="text/xml" works out, once


def _twiml(xml: str, step: Step | None = None) -> Response:
    if step is None:
        return Response(xml, status=200, content_type=TWIML_TYPE)
    # X-Calm-Line-Steps: for the simulator's transcript and the events; Twilio ignores it
    steps = step.play if step.node in step.play else (*step.play, step.node)
    headers = [("X-Calm-Line-Steps", ",".join(steps))]
    language = content.language()
    if language:  # for the figures by language: "pl-PL", or "pl-PL;chosen" when chosen now
        chosen = ";chosen" if g.get("calm_line_language") else ""
        headers.append(("X-Calm-Line-Language", language + chosen))
    return Response(xml, status=200, content_type=TWIML_TYPE, headers=headers)


def _call_tag() -> str:
    return hash_call_sid(request.form.get("CallSid"))


def never_fail(view):
    """Whatever goes wrong, the caller still hears 999 and the NSPCC number."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Exception:
            log.exception("voice webhook %s failed for call %s; sent the safety message",
                          request.path, _call_tag())
            return _twiml(content.safety())

    return guarded


def _state(node_id: str) -> CallState:
    """The call's state from the URL; anything odd is dropped, never trusted."""
    flow = content.flow()
    try:
        tries = min(max(int(request.args.get("t", 0)), 0), MAX_TRIES_IN_URL)
    except ValueError:
        tries = 0
    heard = frozenset(h for h in request.args.get("h", "").split(",")
                      if h in flow.nodes and engine.adds_to_text(flow, flow.nodes[h]))
    candidate = request.args.get("c")  # at the confirm step: only a step with confirm words
    if candidate not in flow.nodes or f"confirm.{candidate}" not in flow.prompts:
        candidate = None
    return CallState(node_id, tries, heard, candidate)


def _confidence() -> float | None:
    """Twilio's Confidence for SpeechResult (0 to 1); missing or odd: unknown."""
    try:
        value = float(request.form.get("Confidence", ""))
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def _simulated() -> bool:
    return request.form.get("CalmLineSimulated") == "1"


def _carry_out(step: Step) -> Step:
    """Action steps (the text the caller said yes to) need the database."""
    flow, call_sid = content.flow(), request.form.get("CallSid", "")
    while step.action:
        kind = flow.nodes[step.action].type
        try:
            if kind == "text_request":
                outcome = outbox.request_text(call_sid, request.form.get("From"),
                                              sorted(step.state.heard), simulated=_simulated(),
                                              language=flow.code)
            else:
                outcome = outbox.confirm_number(call_sid)
        except Exception:
            log.exception("could not arrange a text for call %s", _call_tag())
            outcome = "fail"
        log.info("call %s: text %s", _call_tag(), outcome)
        if outcome == "abroad":  # a mobile we do not text: ask for another, saying why
            step = _cannot_text(engine.after_action(flow, step, "need_number"))
        else:
            step = engine.after_action(flow, step, outcome)
    return step


def _cannot_text(step: Step) -> Step:
    """Tell the caller first that the line texts only the allowed countries' mobiles."""
    notice = content.flow().notices.get("cannot_text")
    return replace(step, notice=notice) if notice else step


def _read_back() -> str:
    """The number this caller keyed in, digit by digit, as they would say it."""
    number = outbox.staged_number(request.form.get("CallSid", ""))
    if not number:
        raise LookupError("no keyed-in number for this call")
    return spoken_digits("0" + number[3:] if number.startswith("+44") else number)


def _now() -> datetime:
    """Now; a practice call may play the line as if at another time (CalmLineAt, signed)."""
    at = request.form.get("CalmLineAt") if _simulated() else None
    if at:
        try:
            return hours.parse_moment(at)
        except ValueError:
            log.warning("practice call %s: CalmLineAt is not a time; using now", _call_tag())
    return datetime.now(UTC)


def _closed(step: Step) -> Step:
    """A dial step outside its hours: on to on_closed (the number read out), never dialled."""
    flow = content.flow()
    node = flow.nodes.get(step.node)
    if node is None or node.type != "dial" or node.hours is None:
        return step
    if hours.is_open(node.hours, _now(), flow.settings.get("BANK_HOLIDAYS")):
        return step
    target = node.target("on_closed") or node.target("on_fail")
    return engine.enter(flow, target, step.state.heard, play=step.play[:-1])


def _respond(step: Step) -> Response:
    step = _closed(_carry_out(step))
    entered = None
    if content.reads_back(step.play):
        try:
            entered = _read_back()
        except Exception:
            log.exception("could not read back the keyed-in number for call %s", _call_tag())
            flow = content.flow()
            node = flow.nodes[step.node]
            step = engine.enter(flow, node.target("on_give_up") or flow.give_up, step.state.heard)
    return _twiml(content.renderer().render(step, entered), step)


@bp.post("")
@twilio_signed
@never_fail
def incoming():
    log.debug("call %s started", _call_tag())  # DEBUG: an INFO line per call costs every call
    return _respond(engine.start(content.flow()))


@bp.post("/step/<node_id>")
@twilio_signed
@never_fail
def step(node_id):
    return _respond(engine.enter(content.flow(), node_id, _state(node_id).heard))


def _chosen_language(node_id: str, digits: str | None) -> str | None:
    """The language the caller chose (engine.chosen_language): its key (7 for Polish) at a
    menu that does not use it, or its words ("po polsku") at the main menu; None otherwise,
    and None for urgent words, which the menu answers first (in the call's language)."""
    flow = content.flow()
    node = flow.nodes.get(node_id)
    if node is None:
        return None
    return engine.chosen_language(flow, node, digits, request.form.get("SpeechResult"))


@bp.post("/answer/<node_id>")
@twilio_signed
@never_fail
def answer(node_id):
    form = request.form
    chosen = _chosen_language(node_id, form.get("Digits"))
    if chosen:  # from here on every URL carries l=<code>: the whole call is in that language
        content.choose(chosen)
        log.info("call %s chose %s", _call_tag(), chosen)
        flow = content.flow()
        return _respond(engine.enter(flow, flow.start, _state(node_id).heard))
    return _respond(engine.answer(content.flow(), _state(node_id), form.get("Digits"),
                                  form.get("SpeechResult"), _confidence()))


@bp.post("/number/<node_id>")
@twilio_signed
@never_fail
def number(node_id):
    flow, state = content.flow(), _state(node_id)
    digits = (request.form.get("Digits") or "").strip()
    mobile, why = outbox.textable(digits) if digits else (None, phones.NOT_MOBILE)
    if mobile:
        try:
            outbox.stage_number(request.form.get("CallSid", ""), mobile, sorted(state.heard),
                                simulated=_simulated(), language=flow.code)
        except Exception:
            log.exception("could not keep the keyed-in number for call %s", _call_tag())
            node = flow.nodes.get(node_id)
            return _respond(engine.enter(flow, node.target("on_give_up") if node else flow.give_up,
                                         state.heard))
        log.info("call %s keyed in %s", _call_tag(), mask_number(mobile))
    keyed = engine.number_keyed(flow, state, valid=bool(mobile), silent=not digits)
    return _respond(_cannot_text(keyed) if why == phones.ABROAD else keyed)


@bp.post("/dialled/<node_id>")
@twilio_signed
@never_fail
def dialled(node_id):
    return _respond(engine.dialled(content.flow(), _state(node_id),
                                   request.form.get("DialCallStatus")))


@bp.post("/<any_tail:unknown>")
@twilio_signed
@never_fail
def unknown_step(unknown):
    flow = content.flow()
    return _respond(engine.enter(flow, flow.home, notice=flow.notices.get("went_wrong")))


@bp.post("/status")
@twilio_signed
def status():
    """Twilio's call status callback: may come late, twice, or out of order."""
    call_status = request.form.get("CallStatus", "")
    log.debug("call %s ended: %s (%s s)", _call_tag(), call_status or "-",
              request.form.get("CallDuration", "-"))
    if call_status in FINAL_CALL_STATUSES:
        try:
            outbox.release_call(request.form.get("CallSid", ""), call_status)
        except Exception:  # the safety net releases it later
            log.exception("could not release the text of call %s", _call_tag())
    return Response("", status=200)


@bp.post("/fallback")
@twilio_signed
def fallback():
    """Twilio's fallback URL: fixed words, no flow logic, no database. Twilio posts the URL
    that failed (ErrorUrl): its l= gives the call's language (pl-PL), else the first one."""
    log.warning("fallback used for call %s (error %s)", _call_tag(),
                request.form.get("ErrorCode", "-"))
    return _twiml(content.safety_for_url(request.form.get("ErrorUrl")))
