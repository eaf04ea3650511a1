"""/simulator: the staff page and the small JSON API behind it.

The page posts each key, phrase, silence or hang-up to the API, which plays
it on a SimulatedCall: real signed webhooks into this same app, followed by
ivr.call.caller.Caller exactly as Twilio would. The page only shows and speaks
what comes back.
"""
from __future__ import annotations

import logging
import secrets
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, render_template, request, session, url_for

from ivr import store
from ivr.call.caller import SIMULATED_FROM
from ivr.staff import login as staff
from ivr.staff.simulator import saved
from ivr.staff.simulator.call import KEYS, ScriptError, SimulatedCall, local_transport

log = logging.getLogger(__name__)

bp = Blueprint("simulator", __name__, url_prefix="/simulator", template_folder="templates",
               static_folder="static", static_url_path="/static")
bp.after_request(staff.secure_headers)

MAX_SPEECH = 500  # characters: more than anyone says at a menu

# One row per practice call, so that any web process (gunicorn runs several)
# can serve its next request. ``data`` is the SimulatedCall as JSON (saved.py), never a
# pickle: write access to the database must not become code execution.
simulator_calls = sa.Table(
    "simulator_calls",
    store.metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the random call id
    sa.Column("owner", sa.String(64), nullable=False),  # the session's sim_owner
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("touched", sa.DateTime(timezone=True), nullable=False),  # UTC
    sa.Index("ix_simulator_calls_touched", "touched"),
)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Held:
    call: SimulatedCall
    owner: str
    touched: datetime = field(default_factory=_now)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CallStore:
    """Practice calls in the database (the ``simulator_calls`` table), by a random id.

    Any web process can serve any request of a call: get() loads it (one
    SELECT) and re-attaches what is not stored (the transport into this app,
    the flow, the text reader); the view saves it back after each action
    (one UPDATE). Calls idle for EXPIRY seconds are refused (and their rows
    deleted by the next add()), and at most CAP rows are kept (the least
    recently used go first). A row holds a practice call's transcript: the
    made-up caller's number, and any number staff key in, until it goes.

    lock(call_id) serialises the actions on one call within this process;
    across processes the page itself sends one action at a time.
    """

    CAP = 100
    EXPIRY = 30 * 60

    def __init__(self, cap: int = CAP, expiry: float = EXPIRY, clock=_now):
        self.cap, self.expiry, self.clock = cap, expiry, clock  # clock(): an aware UTC datetime
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = \
            weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def lock(self, call_id: str) -> threading.Lock:
        """This process's lock for one call (kept while anyone holds a reference to it)."""
        with self._lock:
            found = self._locks.get(call_id)
            if found is None:
                found = self._locks[call_id] = threading.Lock()
            return found

    def _cutoff(self) -> datetime:
        return self.clock() - timedelta(seconds=self.expiry)

    def add(self, call: SimulatedCall, owner: str) -> str:
        table, call_id, now = simulator_calls, secrets.token_urlsafe(18), self.clock()
        data = saved.dumps(call)
        # The newest others, up to CAP - 1: this call makes CAP.
        others = (sa.select(table.c.id).where(table.c.id != call_id)
                  .order_by(table.c.touched.desc(), table.c.id).offset(max(self.cap - 1, 0)))
        with store.begin() as conn:
            conn.execute(sa.delete(table).where(table.c.touched < self._cutoff()))
            conn.execute(sa.insert(table).values(id=call_id, owner=owner, data=data, touched=now))
            conn.execute(sa.delete(table).where(table.c.id.in_(others)))
        return call_id

    def get(self, call_id: str, owner: str) -> Held | None:
        if not call_id:
            return None
        table = simulator_calls
        with store.read() as conn:
            row = conn.execute(
                sa.select(table.c.owner, table.c.data, table.c.touched)
                .where(table.c.id == call_id, table.c.touched >= self._cutoff())
            ).first()
        if row is None or not secrets.compare_digest(row.owner.encode(), owner.encode()):
            return None
        try:
            call = saved.loads(row.data)
        except Exception as exc:  # written by another release, or not by us: the call is over
            log.warning("a practice call could not be restored (%s): start a new one",
                        type(exc).__name__)
            return None
        if not isinstance(call, SimulatedCall):
            return None
        from ivr.call import content
        from ivr.staff.simulator import texts

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        call.attach(local_transport(app), flow=content.flow(), text_reader=texts.after_call)
        touched = row.touched if row.touched.tzinfo else row.touched.replace(tzinfo=UTC)  # SQLite
        return Held(call, row.owner, touched, self.lock(call_id))

    def save(self, call_id: str, held: Held) -> None:
        """Store the call after an action, and count it as in use now."""
        table, now = simulator_calls, self.clock()
        data = saved.dumps(held.call)
        with store.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == call_id, table.c.owner == held.owner)
                         .values(data=data, touched=now))
            # A practice call may hold a number staff keyed in: expired calls go
            # at every action, not only when a new call starts.
            conn.execute(sa.delete(table).where(table.c.touched < self._cutoff()))
        held.touched = now

    def prune(self) -> int:
        """Delete expired practice calls (they may hold a number staff keyed in)."""
        with store.begin() as conn:
            return conn.execute(sa.delete(simulator_calls)
                                .where(simulator_calls.c.touched < self._cutoff())).rowcount

    def __len__(self) -> int:
        """Calls not yet expired."""
        table = simulator_calls
        with store.read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)
                                .where(table.c.touched >= self._cutoff())).scalar_one()


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


def _seconds(value) -> float | None:
    """How far into the line's last answer the caller acted (the page's clock), or None."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < 3600 else None


def _problem(message: str, status: int):
    return jsonify(error=message), status


# -- the page -------------------------------------------------------------------------


@bp.get("")
@staff.login_required
def page():
    from ivr.call import content

    return render_template(
        "simulator/page.html",
        numbers=[(kind, number) for kind, number in SIMULATED_FROM.items()],
        api=url_for("simulator.start_call"),
        current=session.get("sim_call", ""),
        languages=[(flow.code, flow.code) for flow in content.first_flow().all_languages],
    )


@bp.get("/diagram")
@staff.login_required
def diagram():
    """The flow diagram inside the staff pages: fit to the width, zoom, pan, and a step's
    words when it is clicked (or chosen from the list under it)."""
    from ivr.flowtools import graph

    flows, prompts = current_app.config["FLOWS_FILE"], current_app.config["PROMPTS_DIR"]
    svg, mermaid = None, None
    try:
        svg = graph.inline_svg(graph.from_files(flows, prompts, "svg"))
    except graph.GraphvizMissing:
        mermaid = graph.from_files(flows, prompts, "mermaid")
    return render_template("simulator/diagram.html", svg=svg, mermaid=mermaid,
                           steps=graph.steps_in_words(flows, prompts))


@bp.get("/diagram.svg")
@staff.login_required
def diagram_file():
    """The diagram alone (ivr graph): SVG with Graphviz, else Mermaid text."""
    from ivr.flowtools import graph

    flows, prompts = current_app.config["FLOWS_FILE"], current_app.config["PROMPTS_DIR"]
    try:
        return current_app.response_class(graph.from_files(flows, prompts, "svg"),
                                          mimetype="image/svg+xml")
    except graph.GraphvizMissing:
        return current_app.response_class(graph.from_files(flows, prompts, "mermaid"),
                                          mimetype="text/plain")


# -- the API --------------------------------------------------------------------------


@bp.errorhandler(sa.exc.SQLAlchemyError)
def _database_failed(exc):
    log.error("the simulator could not use the database: %s", exc, exc_info=exc)
    return _problem("The simulator cannot reach its database just now. Try again in a moment.",
                    503)


@bp.post("/api/calls")
@staff.login_required
def start_call():
    data = request.get_json(silent=True) or {}
    choice = str(data.get("from") or "mobile")
    if choice not in SIMULATED_FROM:
        return _problem(f"Choose the caller's number from: {', '.join(SIMULATED_FROM)}.", 400)
    from ivr.call import content, hours
    from ivr.staff.simulator import texts

    at = str(data.get("at") or "").strip() or None
    if at:
        try:
            at = hours.parse_moment(at).isoformat()
        except ValueError:
            return _problem("Give the time as a date and a time, like 2026-12-25 23:00.", 400)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    owner = _owner()
    previous_id = session.get("sim_call", "")
    if previous_id:
        with calls().lock(previous_id):
            previous = calls().get(previous_id, owner)
            if previous is not None and not previous.call.ended:
                previous.call.hang_up()  # a new call hangs up the one still on the line
                calls().save(previous_id, previous)
    call = SimulatedCall(local_transport(app), choice, flow=content.flow(),
                         text_reader=texts.after_call, at=at)
    call.start()  # no one else knows this call yet: it is stored once it has answered
    language = str(data.get("lang") or "").strip()
    if language and language != content.first_flow().code:
        try:  # as a caller does: the language's key during the welcome
            call.choose_language(language)
        except ScriptError as exc:
            return _problem(str(exc), 400)
    call_id = calls().add(call, owner)
    session["sim_call"] = call_id
    return jsonify(_state(call_id, call)), 201


@bp.get("/api/calls/<call_id>")
@staff.login_required
def show_call(call_id):
    held = calls().get(call_id, _owner())  # a copy of its own: no lock needed to read it
    if held is None:
        return _problem("That practice call has ended or expired. Start a new call.", 404)
    return jsonify(_state(call_id, held.call))


@bp.get("/api/calls/<call_id>/path")
@staff.login_required
def save_path(call_id):
    """The practice call as a path test (paths/*.yaml) that `ivr paths` plays back."""
    from ivr.flowtools import paths

    held = calls().get(call_id, _owner())
    if held is None:
        return _problem("That practice call has ended or expired. Start a new call.", 404)
    call = held.call
    summary = call.summary()
    body = paths.to_yaml(call.from_kind, summary["turns"], "A practice call",
                         text=call.text, ended=call.ended)
    response = current_app.response_class(body, mimetype="application/yaml")
    response.headers["Content-Disposition"] = 'attachment; filename="practice-call.yaml"'
    return response


@bp.post("/api/calls/<call_id>/actions")
@staff.login_required
def act(call_id):
    owner = _owner()
    data = request.get_json(silent=True) or {}
    action, value = str(data.get("do") or ""), data.get("value")
    value = "" if value is None else str(value)
    lock = calls().lock(call_id)
    if not lock.acquire(timeout=30):
        return _problem("The line is still answering the last action. Try again.", 409)
    try:
        # Loaded under the lock: the state the last action in this process saved.
        held = calls().get(call_id, owner)
        if held is None:
            return _problem("That practice call has ended or expired. Start a new call.", 404)
        call = held.call
        call.acting_at(_seconds(data.get("after")))
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
        calls().save(call_id, held)
        state = _state(call_id, call)
        state["new"] = len(entries)
        return jsonify(state)
    except ScriptError as exc:
        return _problem(str(exc), 400)
    finally:
        lock.release()


def init_app(app) -> None:
    app.extensions["calm_line.simulator_calls"] = CallStore()
    app.register_blueprint(bp)
    staff.add_page(app, "Simulator", "simulator.page")
    staff.add_page(app, "Flow diagram", "simulator.diagram")
