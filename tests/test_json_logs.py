"""LOG_FORMAT=json: one JSON object per line, CallSids hashed, numbers masked."""
from __future__ import annotations

import io
import json
import logging

import pytest
from conftest import make_app

from ivr import logs
from ivr.call.caller import Caller, FlaskTransport

NUMBER = "+447400123456"


@pytest.fixture
def json_lines(tmp_path):
    """An app logging as JSON, and the lines its handler writes."""
    app = make_app(tmp_path, LOG_FORMAT="json", LOG_LEVEL="DEBUG")  # a call's start is DEBUG
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_calm_line", False))
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        yield app, stream
    finally:
        handler.setStream(old)
        logs.configure("INFO", "text")


def parsed(stream) -> list[dict]:
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_the_setting_installs_the_json_formatter(json_lines):
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_calm_line", False))
    assert isinstance(handler.formatter, logs.JsonFormatter)


def test_a_call_logs_json_with_the_call_sid_hashed_and_the_number_masked(json_lines):
    app, stream = json_lines
    caller = Caller(FlaskTransport(app), from_number=NUMBER)
    caller.dial()
    caller.say("my number is 07400 123456")  # heard as maybe "talk": the line asks first
    assert caller.last.steps[-1] == "confirm"
    caller.press("2")  # no: the main menu
    caller.press("#")
    caller.press("1")
    caller.hang_up()
    entries = parsed(stream)
    text = stream.getvalue()
    assert caller.call_sid not in text and caller.call_sid[2:] not in text
    assert "7400123456" not in text and "07400 123456" not in text
    tag = logs.hash_call_sid(caller.call_sid)
    about_call = [e for e in entries if tag in e["message"]]
    assert any(e["message"] == f"call {tag} started" for e in about_call)
    assert any("+44*******456" in e["message"] for e in entries)
    for entry in entries:
        assert set(entry) >= {"time", "level", "logger", "message"}


def test_a_traceback_is_one_json_line_and_masked(json_lines):
    _, stream = json_lines
    try:
        raise ValueError(f"could not text {NUMBER}")
    except ValueError:
        logging.getLogger("ivr.test").exception("failed for %s", NUMBER)
    (entry,) = [e for e in parsed(stream) if e["logger"] == "ivr.test"]
    assert entry["level"] == "ERROR"
    assert entry["message"] == "failed for +44*******456"
    assert "ValueError: could not text +44*******456" in entry["exception"]
    assert NUMBER not in stream.getvalue()
