"""The baseline: a bare Flask app answering every POST with one constant TwiML document.

No signature check, no flow, no database: the floor a webhook cannot beat
under the same gunicorn settings. The document is valid TwiML padded to
BASELINE_BYTES (the mean size of the line's answers on the recorded paths),
so both servers write the same amount.

    gunicorn ... 'bench.baseline:create_app()'
"""
from __future__ import annotations

import os

from flask import Flask, Response

HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-GB" voice="Polly.Amy-Neural">'
TAIL = "</Say></Response>"


def document(size: int) -> str:
    filler = "Stay calm. " * (max(size - len(HEAD) - len(TAIL), 0) // 11 + 1)
    body = filler[: max(size - len(HEAD) - len(TAIL), 0)]
    return HEAD + body + TAIL


def create_app(size: int | None = None) -> Flask:
    app = Flask(__name__)
    xml = document(size or int(os.environ.get("BASELINE_BYTES", "1500")))

    @app.post("/", defaults={"path": ""})
    @app.post("/<path:path>")
    def answer(path):
        return Response(xml, status=200, mimetype="text/xml")

    return app
