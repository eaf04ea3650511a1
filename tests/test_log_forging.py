"""No request can forge or split a log line: ours (text and JSON) and gunicorn's access log.

The app is driven as Twilio (or an attacker) would: unsigned posts to paths with
%0A, %0D, %00 and right-to-left marks in them. The access log is read from the
Procfile's own web line, run with gunicorn.
"""
from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import time

import pytest
from conftest import AUTH_TOKEN
from servers import free_port, procfile_command, wait_until_up

from ivr import logs
from ivr.config import REPO_ROOT

FORGED_LINE = "2026-01-01 00:00:00,000 CRITICAL ivr.worker: FORGED"
NASTY_PATHS = [
    "/voice/x%0A2026-01-01%2000:00:00,000%20CRITICAL%20ivr.worker:%20FORGED",
    "/voice/x%0D%0A2026-01-01%2000:00:00,000%20CRITICAL%20ivr.worker:%20FORGED",
    "/voice/x%00FORGED",
    "/voice/x%E2%80%AEDEGROF",  # right-to-left override
    "/voice/x%E2%80%A82026-01-01%20FORGED",  # line separator
    "/voice/x%C2%85FORGED",  # next line (NEL)
    "/voice/x%E2%80%8BFORGED",  # zero-width space
    '/voice/x%22%20200%200.1s%0AFORGED',  # a quote: would end the quoted request early
]
BAD_CHARACTERS = ["\x00", "\r", "\u202e", "\u2028", "\x85", "\u200b"]


def _lines(text: str) -> list[str]:
    return text.split("\n")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_our_log_lines_escape_what_a_request_sent(client, fmt):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if fmt == "json" else
                         logs.MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        for path in NASTY_PATHS:
            assert client.post(path, data={"CallSid": "CA1"}).status_code == 403
    finally:
        root.removeHandler(handler)
    written = stream.getvalue()
    assert "refused POST /voice/x" in written  # the lines are there...
    for line in filter(None, _lines(written)):
        assert not line.startswith("2026-01-01")  # ...and none was forged
        if fmt == "json":
            json.loads(line)
    for char in BAD_CHARACTERS:
        assert char not in written
    assert "\\x0a2026-01-01" in written or "\\\\x0a2026-01-01" in written


def test_a_traceback_keeps_its_lines_but_none_at_the_margin():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.MaskingFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test.forging")
    logger.addHandler(handler)
    logs.install_masking()
    try:
        try:
            raise ValueError("bad\n" + FORGED_LINE + "\x00\u202e")
        except ValueError:
            logger.exception("it failed\n" + FORGED_LINE)
    finally:
        logger.removeHandler(handler)
    lines = _lines(stream.getvalue().rstrip("\n"))
    assert lines[0].startswith("ERROR test.forging: it failed\\x0a2026")
    assert all(line.startswith("    ") for line in lines[1:])
    assert len(lines) > 2 and "\x00" not in stream.getvalue() and "\u202e" not in stream.getvalue()


def test_escape_leaves_ordinary_words_alone():
    text = "call 3f2a: text queued to +44*******456 (2 segments), café, naïve, 'quoted'"
    assert logs.escape(text) == text
    assert logs.escape("a\tb\nc\x00\u202e") == "a\\x09b\\x0ac\\x00\\u202e"


def _raw_post(port: int, path: str) -> None:
    """Send the path as it is (urllib would refuse some of these)."""
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
               "Connection: close\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        while sock.recv(4096):
            pass


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_procfiles_access_log_cannot_be_split(tmp_path, fmt):
    port = free_port()
    output = tmp_path / "web.log"
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1", "LOG_FORMAT": fmt,
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "SECRET_KEY": "forging-test",
           "INSTANCE_PATH": str(tmp_path / "instance"),
           "DATABASE_URL": "sqlite:///" + str(tmp_path / "line.sqlite"),
           "PATH": str(REPO_ROOT / ".venv" / "bin") + os.pathsep + os.environ.get("PATH", "")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(output, "wb") as sink, open(output, "rb") as reader:
        server = subprocess.Popen(["sh", "-c", "exec " + procfile_command("web")], env=env,
                                  cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT)
        server.stdout = reader  # for wait_until_up's message if it dies
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, server)
            for path in NASTY_PATHS:
                _raw_post(port, path)
            _raw_post(port, "/voice/after-the-nasty-ones")
            deadline = time.monotonic() + 30
            while b"after-the-nasty-ones" not in output.read_bytes():
                assert time.monotonic() < deadline, "the access log never showed the request"
                time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(timeout=30)
    written = output.read_bytes().decode("utf-8", errors="replace")
    access = [line for line in _lines(written) if '"POST /voice/' in line]
    assert len(access) >= len(NASTY_PATHS)
    for line in _lines(written):
        assert not line.startswith("2026-01-01") and not line.startswith("FORGED"), line
    for char in BAD_CHARACTERS:
        assert char not in written


def test_the_access_log_fields_the_format_reads_are_escaped_as_it_reads_them():
    """gunicorn's access-log fields are escaped lazily (only the few the format uses): each
    still comes escaped, quotes too, a header in any case, "-" for what is missing."""
    atoms = logs.GunicornLogger.atoms_wrapper_class(
        {"U": '/voice/x"\n\u202eFORGED', "m": "POST", "{x-twilio-signature}i": "abc", "s": 200})
    line = '%(h)s "%(m)s %(U)s" %(s)s %({X-Twilio-Signature}i)s' % atoms  # noqa: UP031 (as gunicorn formats)
    assert line == '- "POST /voice/x\\x22\\x0a\\u202eFORGED" 200 abc'
