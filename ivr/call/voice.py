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

from flask import Blueprint, Response, current_app, g, request
from werkzeug.routing import PathConverter

from ivr.call import answers, content, engine, hours
from ivr.call.engine import CallState, Heard, Step
from ivr.call.flow import Flow
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


MAX_TRIES_IN_URL = 10


TWIML_TYPE = "text/xml; charset=utf-8"  # what mimetype="text/xml" works out, once


def _twiml(xml: str, step: Step | None = None, flow: Flow | None = None,
           heard: Heard | None = None) -> Response:
    """The TwiML answer. X-Calm-Line-Steps and X-Calm-Line-Language are for the simulator's
    transcript (Twilio ignores them); the same facts ride on the response object
    (`calm_line`), where the metrics hook reads them without parsing headers."""
    headers = [("Content-Type", TWIML_TYPE)]  # given whole: werkzeug need not work it out
    if step is not None:
        steps = ",".join(step.play if step.node in step.play else (*step.play, step.node))
        headers.append(("X-Calm-Line-Steps", steps))
        language = flow.url_language if flow is not None else None
        if language:  # for the figures by language: "pl-PL", or "pl-PL;chosen" when chosen now
            language += ";chosen" if g.get("calm_line_language") else ""
            headers.append(("X-Calm-Line-Language", language))
    response = Response(xml, status=200, headers=headers)
    if step is not None:
        response.calm_line = (steps, language, _heard_fields(heard))  # type: ignore[attr-defined]
    return response


def _heard_fields(heard: Heard | None) -> tuple[str, str | None, str] | None:
    """How a menu answer was understood, for the events (so the writer need not ask again)."""
    return None if heard is None else (heard.kind, heard.key, heard.via)


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


def _state(flow: Flow, node_id: str, args) -> CallState:
    """The call's state from the URL; anything odd is dropped, never trusted."""
    try:
        tries = min(max(int(args.get("t", 0)), 0), MAX_TRIES_IN_URL)
    except ValueError:
        tries = 0
    heard = frozenset(h for h in args.get("h", "").split(",")
                      if h in flow.nodes and engine.adds_to_text(flow, flow.nodes[h]))
    candidate = args.get("c")  # at the confirm step: only a step with confirm words
    if candidate not in flow.nodes or f"confirm.{candidate}" not in flow.prompts:
        candidate = None
    return CallState(node_id, tries, heard, candidate)


def _confidence(form) -> float | None:
    """Twilio's Confidence for SpeechResult (0 to 1); missing or odd: unknown."""
    try:
        value = float(form.get("Confidence", ""))
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def _simulated() -> bool:
    return request.form.get("CalmLineSimulated") == "1"


def _carry_out(flow: Flow, step: Step) -> Step:
    """Action steps (the text the caller said yes to) need the database."""
    call_sid = request.form.get("CallSid", "")
    while step.action:
        kind = flow.nodes[step.action].type
        try:
            if kind == "text_request":
                outcome = outbox.request_text(call_sid, request.form.get("From"),
                                              sorted(step.state.heard), simulated=_simulated(),
                                              language=flow.code)
            else:
                outcome = outbox.confirm_number(call_sid)
        except LookupError:  # the call ended or the number was refused: no trace to log
            log.warning("call %s: no keyed-in number to confirm", _call_tag())
            outcome = "fail"
        except Exception:
            log.exception("could not arrange a text for call %s", _call_tag())
            outcome = "fail"
        # DEBUG: the outbox has said at INFO what it decided, and why (one line, not two).
        log.debug("call %s: text %s", _call_tag(), outcome)
        if outcome == "abroad":  # a mobile we do not text: ask for another, saying why
            step = _cannot_text(flow, engine.after_action(flow, step, "need_number"))
        else:
            step = engine.after_action(flow, step, outcome)
    return step


def _cannot_text(flow: Flow, step: Step) -> Step:
    """Tell the caller first that the line texts only the allowed countries' mobiles."""
    notice = flow.notices.get("cannot_text")
    return replace(step, notice=notice) if notice else step


def _read_back(number: str | None = None) -> str:
    """The number this caller keyed in, digit by digit, as they would say it (number: as
    this request kept it, so it is not read again)."""
    number = number or outbox.staged_number(request.form.get("CallSid", ""))
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


def _closed(flow: Flow, step: Step) -> Step:
    """A dial step outside its hours: on to on_closed (the number read out), never dialled."""
    node = flow.nodes.get(step.node)
    if node is None or node.type != "dial" or node.hours is None:
        return step
    if hours.is_open(node.hours, _now(), flow.settings.get("BANK_HOLIDAYS")):
        return step
    target = node.target("on_closed") or node.target("on_fail")
    return engine.enter(flow, target, step.state.heard, play=step.play[:-1])


def _respond(flow: Flow, step: Step, heard: Heard | None = None, keep: bool = False,
             kept_number: str | None = None) -> Response:
    """Carry out what the step needs, then answer with its TwiML (rendered once, at start,
    for every step that reads nothing back). `flow` is the call's language's flow, worked
    out once per request. keep: the answer may be kept for the next caller who sends the
    same path, query and key, if it depends on nothing else (answers.py)."""
    keep = keep and answers.repeatable(flow, step, request.form, _simulated(),
                                       content.reads_back(step.play))
    if step.action:
        step = _carry_out(flow, step)
    step = _closed(flow, step)
    entered = None
    if content.reads_back(step.play):
        try:
            entered = _read_back(kept_number)
        except Exception as exc:
            if isinstance(exc, LookupError):  # nothing kept for this call: no trace to log
                log.warning("call %s: no keyed-in number to read back", _call_tag())
            else:
                log.exception("could not read back the keyed-in number for call %s",
                              _call_tag())
            node = flow.nodes[step.node]
            step = engine.enter(flow, node.target("on_give_up") or flow.give_up, step.state.heard)
    response = _twiml(content.renderer(flow).render(step, entered), step, flow, heard)
    if keep:
        answers.answers_of(current_app).keep(request, response)
    return response


@bp.post("")
@twilio_signed
@never_fail
def incoming():
    log.debug("call %s started", _call_tag())  # DEBUG: an INFO line per call costs every call
    flow = content.flow()
    return _respond(flow, engine.start(flow), keep=True)


@bp.post("/step/<node_id>")
@twilio_signed
@never_fail
def step(node_id):
    flow = content.flow()
    return _respond(flow, engine.enter(flow, node_id, _state(flow, node_id, request.args).heard),
                    keep=True)


def _chosen_language(flow: Flow, node_id: str, digits: str | None) -> str | None:
    """The language the caller chose (engine.chosen_language): its key (7 for Polish) at a
    menu that does not use it, or its words ("po polsku") at the main menu; None otherwise,
    and None for urgent words, which the menu answers first (in the call's language)."""
    node = flow.nodes.get(node_id)
    if node is None:
        return None
    return engine.chosen_language(flow, node, digits, request.form.get("SpeechResult"))


@bp.post("/answer/<node_id>")
@twilio_signed
@never_fail
def answer(node_id):
    form, flow = request.form, content.flow()
    state = _state(flow, node_id, request.args)
    chosen = _chosen_language(flow, node_id, form.get("Digits")) if flow.offers else None
    if chosen:  # from here on every URL carries l=<code>: the whole call is in that language
        content.choose(chosen)
        # DEBUG, as every step: the figures count the languages chosen (events).
        log.debug("call %s chose %s", _call_tag(), chosen)
        flow = content.flow()
        return _respond(flow, engine.enter(flow, flow.start, state.heard))
    node = flow.nodes.get(node_id)
    heard = None
    if node is not None and node.type == "menu":  # understood once: the events keep it too
        heard = engine.understand(flow, node, form.get("Digits"), form.get("SpeechResult"),
                                  _confidence(form))
    return _respond(flow, engine.answer(flow, state, None, None, heard=heard), heard, keep=True)


@bp.post("/number/<node_id>")
@twilio_signed
@never_fail
def number(node_id):
    flow = content.flow()
    state = _state(flow, node_id, request.args)
    digits = (request.form.get("Digits") or "").strip()
    mobile, why = outbox.textable(digits) if digits else (None, phones.NOT_MOBILE)
    kept = None
    if mobile:
        try:
            kept = outbox.stage_number(request.form.get("CallSid", ""), mobile,
                                       sorted(state.heard), simulated=_simulated(),
                                       language=flow.code)
        except Exception:
            log.exception("could not keep the keyed-in number for call %s", _call_tag())
            node = flow.nodes.get(node_id)
            return _respond(flow, engine.enter(
                flow, node.target("on_give_up") if node else flow.give_up, state.heard))
        log.info("call %s keyed in %s", _call_tag(), mask_number(mobile))
    keyed = engine.number_keyed(flow, state, valid=bool(mobile), silent=not digits)
    return _respond(flow, _cannot_text(flow, keyed) if why == phones.ABROAD else keyed,
                    kept_number=kept)


@bp.post("/dialled/<node_id>")
@twilio_signed
@never_fail
def dialled(node_id):
    flow = content.flow()
    return _respond(flow, engine.dialled(flow, _state(flow, node_id, request.args),
                                         request.form.get("DialCallStatus")))


@bp.post("/<any_tail:unknown>")
@twilio_signed
@never_fail
def unknown_step(unknown):
    flow = content.flow()
    return _respond(flow, engine.enter(flow, flow.home, notice=flow.notices.get("went_wrong")))


@bp.post("/status")
@twilio_signed
def status():
    """Twilio's call status callback: may come late, twice, or out of order."""
    call_status = request.form.get("CallStatus", "")
    log.debug("call %s ended: %s (%s s)", _call_tag(), call_status or "-",
              request.form.get("CallDuration", "-"))
    if call_status in engine.FINAL_CALL_STATUSES:
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
