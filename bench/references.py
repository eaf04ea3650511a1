"""The two references the line is measured against, each a whole Flask app for gunicorn.

"Twilio's sample style" (``sample_app``): what Twilio's own Flask IVR sample
does on every webhook: build a ``VoiceResponse`` with one ``<Gather>`` holding
one ``<Say>``, and check no signature at all.

"The least a correct webhook does" (``least_app``): read ``request.form``,
check ``X-Twilio-Signature`` with twilio-python's ``RequestValidator.validate``
on ``request.url`` (403 if it fails), answer one constant TwiML document.

Both answer any POST path, so the same recorded requests drive them, and both
answer documents of the line's mean size (BASELINE_BYTES), so every server
writes as much as the line. The auth token is TWILIO_AUTH_TOKEN, as for the line.

    gunicorn ... 'bench.references:sample_app()'
    gunicorn ... 'bench.references:least_app()'
"""
from __future__ import annotations

import os

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from bench.baseline import document

VOICE = "Polly.Amy-Neural"
LANGUAGE = "en-GB"


def _size(size: int | None) -> int:
    return size or int(os.environ.get("BASELINE_BYTES", "1500"))


def _sample_words(size: int) -> str:
    """Words that make the sample's document about the line's mean size."""
    empty = _sample_document("", request_path="/voice/answer/main")
    filler = "Press 1 for the next steps. " * (max(size - len(empty), 0) // 28 + 1)
    return filler[: max(size - len(empty), 0)]


def _sample_document(words: str, request_path: str) -> str:
    response = VoiceResponse()
    gather = Gather(input="dtmf speech", action=request_path, method="POST", timeout=5,
                    num_digits=1, language=LANGUAGE)
    gather.say(words, voice=VOICE, language=LANGUAGE)
    response.append(gather)
    response.redirect(request_path, method="POST")
    return str(response)


def sample_app(size: int | None = None) -> Flask:
    """Twilio's sample style: a VoiceResponse built on every request, no signature check."""
    app = Flask(__name__)
    words = _sample_words(_size(size))

    @app.post("/", defaults={"path": ""})
    @app.post("/<path:path>")
    def answer(path):
        return Response(_sample_document(words, "/voice/answer/main"), mimetype="text/xml")

    return app


def least_app(size: int | None = None, token: str | None = None) -> Flask:
    """The least a correct webhook does: form, RequestValidator.validate, a constant document."""
    app = Flask(__name__)
    validator = RequestValidator(token or os.environ["TWILIO_AUTH_TOKEN"])
    xml = document(_size(size))

    @app.post("/", defaults={"path": ""})
    @app.post("/<path:path>")
    def answer(path):
        if not validator.validate(request.url, request.form,
                                  request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        return Response(xml, status=200, mimetype="text/xml")

    return app
