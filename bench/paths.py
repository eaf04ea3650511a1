"""Real paths through the line, recorded as the requests Twilio would send.

A Caller (ivr.call.caller) plays scripted calls against an in-process app; every
request it makes (path and form, redirects and <Dial> actions included) is
recorded, so a load generator can replay exactly what Twilio would post,
signed for the server it is pointed at.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from ivr.call.caller import SIMULATED_FROM, Caller, FlaskTransport

# What callers do: (caller kind, actions). Each action is (method, argument).
SCRIPTS: list[tuple[str, list[tuple[str, str | None]]]] = [
    # Steps, more steps, school, back home, finish, yes to the text.
    ("mobile", [("press", "1"), ("press", "1"), ("press", "3"), ("press", "0"),
                ("press", "#"), ("press", "1")]),
    # Removal by voice, more, urgent, talk, finish, no text.
    ("mobile", [("say", "how do I get it removed"), ("press", "1"), ("press", "9"),
                ("press", "4"), ("press", "#"), ("press", "2")]),
    # A silent caller: asked again, then the essentials, then goodbye.
    ("mobile", [("silence", None)] * 6),
    # Wrong keys, repeat, then school and talk; finishes with a no.
    ("mobile", [("press", "7"), ("press", "*"), ("press", "3"), ("press", "4"),
                ("press", "#"), ("say", "no thanks")]),
    # A landline: keys in a mobile for the text, confirms it.
    ("landline", [("press", "2"), ("press", "#"), ("press", "1"),
                  ("press", "07400123456"), ("press", "1")]),
    # Straight to urgent by voice, then talk, finish, yes.
    ("mobile", [("say", "my child is in danger"), ("press", "4"), ("press", "#"),
                ("press", "1")]),
]


@dataclass(frozen=True)
class Request:
    path: str
    params: tuple[tuple[str, str], ...]

    @property
    def body(self) -> str:
        return urlencode(self.params)

    def signature(self, base: str, token: str) -> str:
        return RequestValidator(token).compute_signature(base + self.path, dict(self.params))


class RecordingTransport(FlaskTransport):
    def __init__(self, app, record: list):
        super().__init__(app)
        self.record = record

    def post(self, path, params, signature):
        status, headers, body = super().post(path, params, signature)
        self.record.append((Request(path, tuple(params.items())), status, len(body.encode())))
        return status, headers, body


def _mobile(index: int) -> str:
    """A distinct valid UK mobile number per index (07400 1xxxxx, as the tests use)."""
    return f"+4474001{index % 100000:05d}"


def record_calls(calls: int = 60, app=None) -> list[tuple[Request, int, int]]:
    """Play `calls` scripted calls (cycling through SCRIPTS), each with its own CallSid.

    Returns (request, status, response size) for every request, in order.
    """
    from ivr import create_app, store

    own = app is None
    tmp = tempfile.mkdtemp(prefix="calmline-bench-") if own else None
    if own:
        app = create_app({
            "TESTING": True, "SECRET_KEY": "bench", "TWILIO_AUTH_TOKEN": "bench-token",
            "INSTANCE_PATH": os.path.join(tmp, "instance"),
            "DATABASE_URL": "sqlite:///" + os.path.join(tmp, "record.sqlite"),
            "LOG_LEVEL": "WARNING",
        })
        with app.app_context():
            store.upgrade()
    record: list = []
    transport = RecordingTransport(app, record)
    for index in range(calls):
        kind, actions = SCRIPTS[index % len(SCRIPTS)]
        number = _mobile(index) if kind == "mobile" else SIMULATED_FROM[kind]
        caller = Caller(transport, from_number=number, call_sid="CA" + secrets.token_hex(16))
        caller.dial()
        for method, arg in actions:
            if caller.ended:
                break
            getattr(caller, method)(*([arg] if arg is not None else []))
        caller.hang_up()
    return record


def consent_requests(count: int, base: str, token: str) -> list[tuple[Request, str]]:
    """`count` distinct consent steps (the "yes" to the text) plus each call's end.

    Returns [(consent, signature), (status, signature)] pairs flattened in order.
    """
    out = []
    for index in range(count):
        call_sid = "CA" + secrets.token_hex(16)
        common = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": _mobile(index),
                  "To": "+441134960000", "CallStatus": "in-progress", "Direction": "inbound",
                  "ApiVersion": "2010-04-01"}
        consent = Request("/voice/answer/finish?h=nspcc%2Csteps",
                          tuple({**common, "Digits": "1"}.items()))
        ended = Request("/voice/status", tuple({**common, "CallStatus": "completed",
                                                "CallDuration": "95"}.items()))
        out.append((consent, consent.signature(base, token)))
        out.append((ended, ended.signature(base, token)))
    return out
