"""/simulator: the staff page and the small JSON API behind it.

The page posts each key, phrase, silence or hang-up to the API, which plays
it on a SimulatedCall: real signed webhooks into this same app, followed by
ivr.caller.Caller exactly as Twilio would. The page only shows and speaks
what comes back.
"""
from __future__ import annotations

import collections
import secrets
import threading
import time
from dataclasses import dataclass, field

from flask import Blueprint, current_app, jsonify, render_template, request, session, url_for

from .. import staff
from ..caller import SIMULATED_FROM
from .call import KEYS, ScriptError, SimulatedCall, local_transport

bp = Blueprint("simulator", __name__, url_prefix="/simulator", template_folder="templates",
               static_folder="static", static_url_path="/static")
bp.after_request(staff.secure_headers)

MAX_SPEECH = 500  # characters: more than anyone says at a menu


@dataclass
class Held:
    call: SimulatedCall
    owner: str
    touched: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CallStore:
    """Practice calls in this process's memory, by a random id.

    A staff tool's trade-off, on purpose: no table, nothing to clean up, no
    phone data kept. The cost: a call lives only in the web process that
    started it (with several gunicorn workers a request can land in another
    and is told to start a new call), calls idle for EXPIRY seconds are
    dropped, and at most CAP are kept (the oldest go first).
    """

    CAP = 100
    EXPIRY = 30 * 60

    def __init__(self, cap: int = CAP, expiry: float = EXPIRY, clock=time.monotonic):
        self.cap, self.expiry, self.clock = cap, expiry, clock
        self._calls: collections.OrderedDict[str, Held] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _prune(self) -> None:
        now = self.clock()
        for call_id in [k for k, held in self._calls.items() if now - held.touched > self.expiry]:
            del self._calls[call_id]
        while len(self._calls) > self.cap:
            self._calls.popitem(last=False)

    def add(self, call: SimulatedCall, owner: str) -> str:
        call_id = secrets.token_urlsafe(18)
        with self._lock:
            self._calls[call_id] = Held(call, owner, self.clock())
            self._prune()
        return call_id

    def get(self, call_id: str, owner: str) -> Held | None:
        with self._lock:
            self._prune()
            held = self._calls.get(call_id)
            if held is None or not secrets.compare_digest(held.owner, owner):
                return None
            held.touched = self.clock()
            self._calls.move_to_end(call_id)
            return held

    def __len__(self) -> int:
        return len(self._calls)


def calls() -> CallStore:
    return current_app.extensions["calm_line.simulator_calls"]


def _owner() -> str:
    owner = session.get("sim_owner")
    if not owner:
        owner = session["sim_owner"] = secrets.token_urlsafe(18)
    return owner


def _state(call_id: str, call: SimulatedCall) -> dict:
    state = call.summary()
    state.pop("call_sid", None)
    state["id"] = call_id
    state["node"] = call.node
    state["accepts"] = _accepts(call)
    return state


def _accepts(call: SimulatedCall) -> list[str]:
    pending = call.caller.pending
    if call.ended or pending is None:
        return []
    inputs = pending.get("input", "dtmf")
    return [kind for kind, name in (("keys", "dtmf"), ("words", "speech")) if name in inputs]


def _problem(message: str, status: int):
    return jsonify(error=message), status


# -- the page -------------------------------------------------------------------------


@bp.get("")
@staff.login_required
def page():
    return render_template(
        "simulator/page.html",
        numbers=[(kind, number) for kind, number in SIMULATED_FROM.items()],
        api=url_for("simulator.start_call"),
        current=session.get("sim_call", ""),
    )


@bp.get("/diagram")
@staff.login_required
def diagram():
    """The flow as a diagram (ivr graph): SVG with Graphviz, else Mermaid text."""
    from .. import graph

    flows, prompts = current_app.config["FLOWS_FILE"], current_app.config["PROMPTS_DIR"]
    try:
        return current_app.response_class(graph.from_files(flows, prompts, "svg"),
                                          mimetype="image/svg+xml")
    except graph.GraphvizMissing:
        return current_app.response_class(graph.from_files(flows, prompts, "mermaid"),
                                          mimetype="text/plain")


# -- the API --------------------------------------------------------------------------


@bp.post("/api/calls")
@staff.login_required
def start_call():
    data = request.get_json(silent=True) or {}
    choice = str(data.get("from") or "mobile")
    if choice not in SIMULATED_FROM:
        return _problem(f"Choose the caller's number from: {', '.join(SIMULATED_FROM)}.", 400)
    from .. import content
    from . import texts

    app = current_app._get_current_object()
    owner = _owner()
    previous = calls().get(session.get("sim_call", ""), owner)
    if previous is not None:
        with previous.lock:
            previous.call.hang_up()  # a new call hangs up the one still on the line
    call = SimulatedCall(local_transport(app), choice, flow=content.flow(),
                         text_reader=texts.after_call)
    call_id = calls().add(call, owner)
    session["sim_call"] = call_id
    held = calls().get(call_id, owner)
    with held.lock:
        call.start()
        return jsonify(_state(call_id, call)), 201


@bp.get("/api/calls/<call_id>")
@staff.login_required
def show_call(call_id):
    held = calls().get(call_id, _owner())
    if held is None:
        return _problem("That practice call has ended or expired. Start a new call.", 404)
    with held.lock:
        return jsonify(_state(call_id, held.call))


@bp.post("/api/calls/<call_id>/actions")
@staff.login_required
def act(call_id):
    held = calls().get(call_id, _owner())
    if held is None:
        return _problem("That practice call has ended or expired. Start a new call.", 404)
    data = request.get_json(silent=True) or {}
    action, value = str(data.get("do") or ""), data.get("value")
    value = "" if value is None else str(value)
    if not held.lock.acquire(timeout=30):
        return _problem("The line is still answering the last action. Try again.", 409)
    try:
        call = held.call
        if action == "key":
            if value not in KEYS:
                return _problem("Press one key: 0-9, * or #.", 400)
            entries = call.key(value)
        elif action == "say":
            if len(value) > MAX_SPEECH:
                return _problem(f"Say at most {MAX_SPEECH} characters.", 400)
            entries = call.say(value)
        elif action == "silence":
            entries = call.silence()
        elif action == "hang_up":
            entries = call.hang_up()
        else:
            return _problem("Unknown action: use key, say, silence or hang_up.", 400)
        state = _state(call_id, call)
        state["new"] = len(entries)
        return jsonify(state)
    except ScriptError as exc:
        return _problem(str(exc), 400)
    finally:
        held.lock.release()


def init_app(app) -> None:
    app.extensions["calm_line.simulator_calls"] = CallStore()
    app.register_blueprint(bp)
    staff.add_page(app, "Simulator", "simulator.page")
    staff.add_page(app, "Flow diagram", "simulator.diagram")
