"""Staff login: one shared password, a signed session cookie, CSRF on every form.

Reusable by any staff page (the simulator now, a stats page later):

    from ivr.staff import login as staff

    @bp.get("/")
    @staff.login_required
    def page(): ...

``add_page(app, "Simulator", "simulator.page")`` lists a page in the top bar.
``login_required`` sends a browser to the login page (or answers a JSON
request with 401) and, on anything but GET/HEAD/OPTIONS, checks the
session's CSRF token, sent as the form field ``csrf_token`` or the header
``X-CSRF-Token``. Templates get ``csrf_token()``; staff pages can extend
``staff/base.html`` (kept with the simulator's templates) and
``secure_headers`` is an after_request hook for their blueprints.

The password is STAFF_PASSWORD, compared in constant time; a local run
without one gets a generated password kept in the instance folder, which
``password_for(app)`` returns for the ``ivr serve`` banner. Failed logins
are limited per client address (or per browser that logged in before) with
growing waits, never overall (see FailureLimit), in this process's memory:
with several web processes each keeps its own count (a staff tool, not a bank).
Logins live on the server (staff_sessions): logging out ends them.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ivr import metrics, store

log = logging.getLogger(__name__)

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="simulator/templates",
               static_folder="simulator/static", static_url_path="/static")

PASSWORD_FILE = "staff_password"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_HOURS = 8  # a login lasts one working day
FAILURES_PER_CLIENT = 5  # free tries per address (or known browser), then a wait ...
FIRST_WAIT = 60  # ... of a minute, doubling with each further failure ...
MAX_WAIT = 60 * 60  # ... up to an hour
FORGET = 24 * 60 * 60  # a day without failures and the count starts again
DEVICE_COOKIE = "calm_line_staff_device"  # a browser that has logged in before
DEVICE_DAYS = 90
MIN_PASSWORD_LENGTH = 12
LIMIT_EXTENSION = "calm_line.staff_limit"
PAGES_EXTENSION = "calm_line.staff_pages"
# Logins that are live, by a keyed hash of the random id in the session cookie.
# Logging out deletes the row, so a copy of the cookie taken before is refused after.
staff_sessions = sa.Table(
    "staff_sessions",
    store.metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.DateTime, nullable=False, index=True),  # naive UTC
)
# Easy to read aloud and type from a terminal: no 0/o, 1/l/i.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


# -- the password ---------------------------------------------------------------


def _generate() -> str:
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)  # 16 characters from 31: about 79 bits


def _generated_password(instance_path: str) -> str:
    """Made on first use and kept (mode 0600), so every process of a local run agrees."""
    path = Path(instance_path) / PASSWORD_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    value = _generate()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def password_for(app) -> tuple[str, bool]:
    """(the staff password, whether it was generated because STAFF_PASSWORD is not set)."""
    configured = app.config.get("STAFF_PASSWORD")
    if configured:
        return configured, False
    return _generated_password(app.instance_path), True


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def password_ok(candidate: str) -> bool:
    """Constant time, whatever the lengths (both sides are hashed first)."""
    expected, _ = password_for(current_app)
    return hmac.compare_digest(_digest(candidate or ""), _digest(expected))


def _fingerprint() -> str:
    """Ties a login to the password it used: changing STAFF_PASSWORD logs everyone out."""
    expected, _ = password_for(current_app)
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"staff-login:" + expected.encode(), hashlib.sha256).hexdigest()[:32]


# -- failed logins ----------------------------------------------------------------


class FailureLimit:
    """Failed logins per key (an address, or a browser that logged in before), with waits
    that grow: FAILURES_PER_CLIENT free tries, then FIRST_WAIT seconds, doubling with each
    further failure up to MAX_WAIT; a key with no failure for FORGET seconds starts afresh.

    There is no limit for everyone together: strangers could use it to lock every
    member of staff out. So the right password from an address with no failures
    always gets in (thread-safe; this process's memory).
    """

    MAX_CLIENTS = 10_000  # keys remembered at once; the oldest are forgotten

    def __init__(self, per_client: int = FAILURES_PER_CLIENT, first_wait: float = FIRST_WAIT,
                 max_wait: float = MAX_WAIT, forget: float = FORGET, clock=time.monotonic):
        self.per_client, self.first_wait, self.max_wait = per_client, first_wait, max_wait
        self.forget, self.clock = forget, clock
        self._clients: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _delay(self, count: int) -> float:
        if count < self.per_client:
            return 0.0
        return min(self.max_wait, self.first_wait * 2 ** (count - self.per_client))

    def _count(self, client: str, now: float) -> tuple[int, float]:
        count, last = self._clients.get(client, (0, now))
        if now - last > max(self.forget, self._delay(count)):
            return 0, now
        return count, last

    def wait(self, client: str) -> int:
        """Seconds until this client may try again (0: it may try now)."""
        now = self.clock()
        with self._lock:
            count, last = self._count(client, now)
        left = last + self._delay(count) - now
        return int(left) + 1 if left > 0 else 0

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            count, _ = self._count(client, now)
            self._clients.pop(client, None)
            self._clients[client] = (count + 1, now)  # most recent last
            while len(self._clients) > self.MAX_CLIENTS:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


def _limit() -> FailureLimit:
    return current_app.extensions[LIMIT_EXTENSION]


def _device_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="staff-device")


def _device() -> str | None:
    """The id of this browser if it logged in here before (a signed cookie), else None."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        value = _device_signer().loads(raw, max_age=DEVICE_DAYS * 24 * 3600)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def _client() -> str:
    """Whose failures count: a browser that logged in before is counted by itself, so
    strangers failing from its address (a shared proxy, a NAT) never lock it out;
    anyone else by address. remote_addr is the proxy's unless TRUSTED_PROXIES is set
    (security.init_app): see the README."""
    device = _device()
    if device:
        return "device:" + device
    return "address:" + (request.remote_addr or "-")


def _remember_device(response) -> None:
    device = _device() or secrets.token_urlsafe(18)
    response.set_cookie(DEVICE_COOKIE, _device_signer().dumps(device),
                        max_age=DEVICE_DAYS * 24 * 3600, httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
                        path=url_for("staff.login"))


# -- sessions and CSRF ----------------------------------------------------------------


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    expected = session.get("csrf") or ""
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    return bool(expected and sent) and hmac.compare_digest(sent.encode(), expected.encode())


def logged_in() -> bool:
    marker = session.get("staff")
    until = session.get("staff_until", 0)
    if not marker or not isinstance(until, int | float) or until < time.time():
        return False
    if not hmac.compare_digest(str(marker).encode(), _fingerprint().encode()):
        return False
    return _session_live(session.get("sid"))


def _session_hash(sid: str) -> str:
    return store.keyed_hash("staff-session", sid)


def _session_live(sid: object) -> bool:
    """The login this cookie carries has not been ended on the server (once per request)."""
    if not isinstance(sid, str) or not sid:
        return False
    cached = g.get("calm_line_staff_live")
    if cached is not None and cached[0] == sid:
        return cached[1]
    try:
        with store.read() as conn:
            live = conn.execute(sa.select(staff_sessions.c.id_hash).where(
                staff_sessions.c.id_hash == _session_hash(sid),
                staff_sessions.c.expires_at > store.utcnow())).first() is not None
    except sa.exc.SQLAlchemyError as exc:
        log.warning("staff session could not be checked (%s): treated as logged out",
                    type(exc).__name__)
        live = False
    g.calm_line_staff_live = (sid, live)
    return live


def _start_session() -> str:
    """A new server-side login; expired ones are swept away at the same time."""
    sid, now = secrets.token_urlsafe(32), store.utcnow()
    with store.begin() as conn:
        conn.execute(sa.delete(staff_sessions).where(staff_sessions.c.expires_at <= now))
        conn.execute(sa.insert(staff_sessions).values(
            id_hash=_session_hash(sid), expires_at=now + timedelta(hours=SESSION_HOURS)))
    return sid


def _end_session(sid: object) -> None:
    if isinstance(sid, str) and sid:
        with store.begin() as conn:
            conn.execute(sa.delete(staff_sessions)
                         .where(staff_sessions.c.id_hash == _session_hash(sid)))


def _wants_json() -> bool:
    return (request.is_json or "/api/" in request.path
            or request.accept_mimetypes.best == "application/json")


def login_required(view):
    """Logged-in staff only; unsafe methods must also carry the session's CSRF token."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        if not logged_in():
            if _wants_json():
                return jsonify(error="Please log in again.", login=url_for("staff.login")), 401
            return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
        if request.method not in SAFE_METHODS and not csrf_ok():
            log.warning("refused %s %s: missing or wrong CSRF token", request.method, request.path)
            if _wants_json():
                return jsonify(error="This page is out of date. Please reload it."), 403
            abort(403)
        return view(*args, **kwargs)

    return guarded


def secure_headers(response):
    """For staff pages: no framing, no inline script, nothing cached, no referrer."""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "microphone=(self), camera=(), geolocation=()")
    if response.mimetype in ("text/html", "application/json"):
        response.headers["Cache-Control"] = "no-store"
    return response


bp.after_request(secure_headers)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never //elsewhere or a full URL."""
    if target:
        parts = urlsplit(target)
        if (not parts.scheme and not parts.netloc and target.startswith("/")
                and not target.startswith("//") and "\\" not in target):
            return target
    return home_url()


def add_page(app, label: str, endpoint: str) -> None:
    """List a staff page in the top bar (the first one is where login leads)."""
    app.extensions.setdefault(PAGES_EXTENSION, []).append((label, endpoint))


def staff_pages() -> list[tuple[str, str]]:
    return list(current_app.extensions.get(PAGES_EXTENSION, []))


def home_url() -> str:
    pages = staff_pages()
    return url_for(pages[0][1]) if pages else "/"


# -- the pages --------------------------------------------------------------------


def _login_page(error: str | None = None, status: int = 200, wait: int = 0):
    response = current_app.make_response((render_template(
        "staff/login.html", error=error, next=request.values.get("next", ""),
        generated=password_for(current_app)[1] and not current_app.config.get("TESTING"),
    ), status))
    if wait:
        response.headers["Retry-After"] = str(wait)
    return response


@bp.get("/login")
def login():
    if logged_in():
        return redirect(_safe_next(request.args.get("next")))
    return _login_page()


@bp.post("/login")
def login_post():
    client = _client()
    wait = _limit().wait(client)
    if wait:
        log.warning("staff login refused: too many failed tries (wait %d s)", wait)
        minutes = max(1, (wait + 59) // 60)
        return _login_page(f"Too many wrong passwords. Please wait {minutes} minute"
                           f"{'s' if minutes != 1 else ''} and try again.", 429, wait)
    if not csrf_ok():
        return _login_page("The form had expired. Please enter the password again.", 400)
    if not password_ok(request.form.get("password", "")):
        _limit().failed(client)
        log.warning("staff login failed")
        return _login_page("That password is not right. Please try again.", 401)
    _limit().succeeded(client)
    target = _safe_next(request.form.get("next"))
    try:
        sid = _start_session()
    except sa.exc.SQLAlchemyError as exc:
        log.warning("staff login: the database did not answer (%s)", type(exc).__name__)
        return _login_page("The staff pages cannot reach their database just now. "
                           "Please try again in a moment.", 503)
    session.clear()  # a fresh session (and CSRF token) after login
    session.permanent = True
    session["sid"] = sid
    session["staff"] = _fingerprint()
    session["staff_until"] = int(time.time()) + SESSION_HOURS * 3600
    csrf_token()
    log.info("staff logged in")
    response = redirect(target)
    _remember_device(response)
    return response


@bp.post("/logout")
def logout():
    if not csrf_ok():
        abort(403)
    try:
        _end_session(session.get("sid"))  # a copy of the cookie is refused from now on
    except sa.exc.SQLAlchemyError as exc:
        log.warning("staff logout: the database did not answer (%s)", type(exc).__name__)
        session.clear()
        return _login_page("You are logged out of this browser, but the line could not "
                           "reach its database to end the login everywhere. Log in and out "
                           "again when it is back.", 503)
    session.clear()
    log.info("staff logged out")
    return redirect(url_for("staff.login", out=1))


# -- set-up ---------------------------------------------------------------------------


def init_app(app) -> None:
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if (app.config.get("PUBLIC_BASE_URL") or "").startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.extensions[LIMIT_EXTENSION] = FailureLimit()
    app.extensions[metrics.STAFF_CHECK] = logged_in  # /metrics asks this, without importing staff
    app.jinja_env.globals.setdefault("csrf_token", csrf_token)
    app.jinja_env.globals.setdefault("staff_logged_in", logged_in)
    app.jinja_env.globals.setdefault("staff_pages", staff_pages)
    app.register_blueprint(bp)
    configured = app.config.get("STAFF_PASSWORD")
    if not configured:
        # Only worth a warning where others can reach the app; a local run prints it.
        level = logging.WARNING if app.config.get("PUBLIC_BASE_URL") else logging.INFO
        log.log(level, "STAFF_PASSWORD is not set: staff log in with the password generated in %s "
                    "(`ivr serve` prints it); set STAFF_PASSWORD where others can reach the app",
                    os.path.join(app.instance_path, PASSWORD_FILE))
    elif len(configured) < MIN_PASSWORD_LENGTH:
        log.warning("STAFF_PASSWORD is shorter than %d characters: choose a longer one",
                    MIN_PASSWORD_LENGTH)
