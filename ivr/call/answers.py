"""Voice answers kept once made and sent again without Flask: the welcome, a step, a key
pressed at a menu.

The same key at the same step of the same kind of call (the path and its query:
the step, the tries, the steps heard, the language) always gets the same TwiML:
the engine is pure and every step is rendered at start. So once the answer view
has answered one, a WSGI middleware in front of Flask answers the next one
itself: it reads the body, checks Twilio's signature with the same one-HMAC
check as every webhook, notes the webhook for the metrics and the events, and
sends the kept bytes. Most of what a menu step cost was Flask's machinery and
the engine, not the answer (BENCHMARKS.md).

Kept only for answers that depend on nothing else (`repeatable`): a key or none, no
words (a caller's own words rarely come twice, so keeping them would only
flatter a benchmark), no practice call, no language chosen now, no text
arranged (the database), no number read back, no opening hours (the clock).
Anything the middleware is not sure of goes through Flask as before: a
signature the quick check does not match (ports, proxies: the full check is
Flask's), an odd body or content type, an answer it has not kept. A caller
therefore always gets what the view would have sent, 999 first included.

Twilio's status callback at a call's end is answered here too when there is nothing
to do: an empty 200, after the same signature check, once one read has found no
text waiting for the call (most calls ask for none). A call with a text held or a
number keyed in, a read that fails, anything unsure: Flask's view, as before. The
view cost about 500 us in-process, against 350 for the sample app's answer, and a
call's end is one request in seven of a recorded call.
"""
from __future__ import annotations

import functools
import io
import logging
import time
from typing import NamedTuple

from ivr import security
from ivr.call.engine import FINAL_CALL_STATUSES, Step
from ivr.call.flow import Flow
from ivr.texts import outbox

log = logging.getLogger(__name__)

EXTENSION = "calm_line.answers"
NOTE_SENT = "calm_line.note_sent"  # ivr.metrics.NOTE_SENT: the metrics register it
MAX_KEPT = 4096  # answers kept per process (about 1.5 kB each); all forgotten when full
STATUS_ENDPOINT = "voice.status"


class Kept(NamedTuple):
    endpoint: str  # as Flask routed it ("voice.answer"), for the metrics and the events
    view_args: dict
    body: bytes
    headers: list[tuple[str, str]]
    steps: str
    language: str | None
    heard: tuple | None


def repeatable(flow: Flow, step: Step, form, simulated: bool, reads_back: bool) -> bool:
    """Whether this answer is the same for every call that sends the same path, query and key
    (or no key). The step is the engine's, before any action or opening hours."""
    if simulated or step.action or form.get("SpeechResult") or reads_back:
        return False
    node = flow.nodes.get(step.node)
    return node is not None and not (node.type == "dial" and node.hours is not None)


class Answers:
    """The kept answers of one app, and the middleware that sends them."""

    def __init__(self, app) -> None:
        self.app = app
        self.wsgi_app = app.wsgi_app  # Flask's own, wrapped (ProxyFix, if any, goes outside)
        # (path, query) -> key pressed ("" for none) -> the answer: a request whose path and
        # query have nothing kept (a status callback, words) goes to Flask unread.
        self.kept: dict[tuple[str, str], dict[str, Kept]] = {}
        self.count = 0  # answers kept, all paths together
        self.sent = 0  # answers sent from here, for the tests and the benchmarks

    @functools.cached_property
    def status_path(self) -> str:
        """Where the voice blueprint put the status callback (read at the first request,
        when every blueprint is registered)."""
        return next(rule.rule for rule in self.app.url_map.iter_rules(STATUS_ENDPOINT))

    @functools.cached_property
    def empty_headers(self) -> list[tuple[str, str]]:
        """The headers Flask sends for the view's Response("", status=200)."""
        return self.app.response_class("", status=200).headers.to_wsgi_list()

    def keep(self, request, response) -> None:
        """Keep the view's answer for this path, query and key (response.calm_line: its steps,
        language and how a key was heard, as the view left them)."""
        if self.count >= MAX_KEPT:
            self.kept, self.count = {}, 0  # crude and enough: the common answers come back at once
        steps, language, heard = response.calm_line
        environ = request.environ
        by_key = self.kept.setdefault(
            (environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")), {})
        digits = request.form.get("Digits") or ""
        self.count += digits not in by_key
        by_key[digits] = Kept(request.url_rule.endpoint, dict(request.view_args or {}),
                              response.get_data(), response.headers.to_wsgi_list(), steps,
                              language, heard)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        by_key = self.kept.get((path, query))
        ended = by_key is None and path == self.status_path and not query
        if ((by_key is None and not ended) or environ.get("REQUEST_METHOD") != "POST"
                or environ.get("CONTENT_TYPE") != security.FORM_TYPE):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        body = security.read_body(environ, self.app.config.get("MAX_CONTENT_LENGTH"))
        if body is None:
            return self.wsgi_app(environ, start_response)
        environ["wsgi.input"] = io.BytesIO(body)  # read again by Flask if we pass it on
        if ended:
            sent = self._call_ended(environ, body, start_response, started)
        else:
            sent = self._send(environ, by_key, body, start_response, started)
        return sent if sent is not None else self.wsgi_app(environ, start_response)

    def _signed_form(self, environ, body: bytes) -> dict[str, str] | None:
        """The form, if Twilio's signature matches it by the quick check (else None: Flask's
        full check decides, and answers 403 if it fails)."""
        try:
            pairs = security.parse_pairs(body.decode())
        except ValueError:
            return None
        signatures = self.app.extensions[security.EXTENSION]
        url = security.signed_url(environ, signatures.base)
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
        if not url or not signature or not signatures.fast_match(url, pairs, signature):
            return None
        form: dict[str, str] = {}
        for name, value in pairs:
            form.setdefault(name, value)  # the first of repeated fields, as Flask's form.get
        return form

    def _send(self, environ, by_key: dict[str, Kept], body: bytes, start_response,
              started: float) -> list[bytes] | None:
        form = self._signed_form(environ, body)
        if form is None or form.get("SpeechResult") or "CalmLineSimulated" in form:
            return None
        kept = by_key.get(form.get("Digits") or "")
        if kept is None:
            return None
        start_response("200 OK", list(kept.headers))
        self.sent += 1
        self._note(form, kept.endpoint, kept.view_args, started, kept.steps, kept.language,
                   kept.heard)
        return [kept.body]

    def _call_ended(self, environ, body: bytes, start_response,
                    started: float) -> list[bytes] | None:
        """A status callback with nothing to release, answered as the view answers it."""
        form = self._signed_form(environ, body)
        if form is None:
            return None
        if form.get("CallStatus", "") in FINAL_CALL_STATUSES:
            try:
                with self.app.app_context():
                    if outbox.text_waiting(form.get("CallSid", "")):
                        return None  # the view releases it
            except Exception:
                return None  # the view tries again, and logs what failed
        if log.isEnabledFor(logging.DEBUG):
            log.debug("a call ended: %s (%s s)", form.get("CallStatus") or "-",
                      form.get("CallDuration", "-"))
        start_response("200 OK", list(self.empty_headers))
        self.sent += 1
        self._note(form, STATUS_ENDPOINT, {}, started)
        return [b""]

    def _note(self, form: dict, endpoint: str, view_args: dict, started: float,
              steps: str | None = None, language: str | None = None,
              heard: tuple | None = None) -> None:
        """What the after-request hook notes for a webhook Flask answered: the same tuple."""
        note = self.app.extensions.get(NOTE_SENT)
        if note is not None:
            note(endpoint, view_args, steps, form, time.perf_counter() - started, language,
                 heard)


def init_app(app) -> None:
    """Put the middleware in front of Flask (before security.init_app adds any ProxyFix)."""
    app.extensions[EXTENSION] = answers = Answers(app)
    app.wsgi_app = answers


def answers_of(app) -> Answers:
    return app.extensions[EXTENSION]
