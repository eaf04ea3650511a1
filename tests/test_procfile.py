"""The Procfile's web line, run as a deployment runs it: gunicorn, two processes, /metrics adding both up."""
from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import servers
from conftest import AUTH_TOKEN, wait_for
from servers import free_port, process_env, wait_until_up
from twilio.request_validator import RequestValidator

CALLS = 40
METRICS_TOKEN = "a-metrics-token-for-the-tests-only"


@pytest.fixture
def web(tmp_path):
    port = free_port()
    env = process_env(tmp_path, PORT=str(port), WEB_CONCURRENCY="2", TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                      SECRET_KEY="procfile-test", INSTANCE_PATH=str(tmp_path / "instance"),
                      DATABASE_URL="sqlite:///" + str(tmp_path / "line.sqlite"),
                      METRICS_TOKEN=METRICS_TOKEN)
    subprocess.run(["ivr", "db", "upgrade"], env=env, cwd=tmp_path, check=True, capture_output=True)
    server = servers.start("web", env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server)
        yield base
    finally:
        servers.stop(server)


def _post_signed(base: str, path: str, params: dict) -> int:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(base + path, params)
    request = urllib.request.Request(base + path, data=urllib.parse.urlencode(params).encode(),
                                     headers={"X-Twilio-Signature": signature})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def _scrape(base: str) -> float:
    request = urllib.request.Request(base + "/metrics",
                                     headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    counted = re.search(r'calm_line_webhook_seconds_count\{[^}]*webhook="voice.incoming"[^}]*\} (\S+)', text)
    assert counted, text[:2000]
    return float(counted.group(1))


def test_the_web_line_serves_calls_and_metrics_count_every_process(web):
    def call(index):
        params = {"CallSid": f"CA{index:032x}", "From": "+447400123456", "To": "+441134960000"}
        return _post_signed(web, "/voice", params)

    with ThreadPoolExecutor(max_workers=8) as pool:  # in parallel, so both processes answer
        assert list(pool.map(call, range(CALLS))) == [200] * CALLS
    # Each process adds its webhooks to the shared files within a moment (off the
    # request path): wait for that, then every scrape, on either process, sees all.
    deadline = time.monotonic() + 30
    while _scrape(web) != CALLS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [_scrape(web) for _ in range(6)] == [CALLS] * 6


def _recorders(master: int) -> list[int]:
    """gunicorn's children that are the events recorder (ivr/call/recorder.py)."""
    found = []
    for child in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        with contextlib.suppress(OSError):
            if b"record-events" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


def _events_written(database: Path) -> dict:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())


def test_the_events_of_both_workers_are_written_by_one_recorder(tmp_path):
    port = free_port()
    database = tmp_path / "line.sqlite"
    env = process_env(tmp_path, PORT=str(port), WEB_CONCURRENCY="2", TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                      SECRET_KEY="procfile-test", INSTANCE_PATH=str(tmp_path / "instance"),
                      DATABASE_URL="sqlite:///" + str(database))
    subprocess.run(["ivr", "db", "upgrade"], env=env, cwd=tmp_path, check=True, capture_output=True)
    log = tmp_path / "web.log"
    server = servers.start("web", env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server)
        recorders = _recorders(server.pid)
        assert len(recorders) == 1
        with ThreadPoolExecutor(max_workers=8) as pool:  # both workers answer
            params = [{"CallSid": f"CA{index:032x}", "From": "+447400123456"}
                      for index in range(CALLS)]
            assert list(pool.map(lambda p: _post_signed(base, "/voice", p), params)) == [200] * CALLS
        wait_for(lambda: _events_written(database).get("call_started") == CALLS,
                 "every call's events")
    finally:
        servers.stop(server)
    assert server.returncode == 0
    assert not Path(f"/proc/{recorders[0]}").exists()  # gone with gunicorn
    assert not list((tmp_path / "tmp").glob("calm-line-events-*"))  # and its folder
    text = log.read_text()
    # Every batch went to the recorder: it listens within a moment of gunicorn's start, a
    # worker first sends after loading the app and answering a call (seconds later).
    assert "did not take a batch" not in text and "Traceback" not in text
    assert _events_written(database)["call_started"] == CALLS  # none twice


def test_gunicorn_removes_its_metrics_folder_when_it_exits(tmp_path):
    port = free_port()
    env = process_env(tmp_path, PORT=str(port), WEB_CONCURRENCY="1", TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                      SECRET_KEY="procfile-test", INSTANCE_PATH=str(tmp_path / "instance"),
                      DATABASE_URL="sqlite:///" + str(tmp_path / "line.sqlite"))
    server = servers.start("web", env)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server)
        made = list((tmp_path / "tmp").glob("calm-line-metrics-*"))
        assert len(made) == 1 and made[0].is_dir()  # the folder /metrics adds up from
    finally:
        servers.stop(server)
    assert server.returncode == 0
    assert not list((tmp_path / "tmp").glob("calm-line-metrics-*"))
    assert not list((tmp_path / "tmp").glob("calm-line-events-*"))  # the recorder's, too


def test_an_operator_s_metrics_folder_is_emptied_at_start_and_kept(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"from an earlier run")
    port = free_port()
    env = process_env(tmp_path, PORT=str(port), WEB_CONCURRENCY="1", TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                      SECRET_KEY="procfile-test", INSTANCE_PATH=str(tmp_path / "instance"),
                      DATABASE_URL="sqlite:///" + str(tmp_path / "line.sqlite"),
                      PROMETHEUS_MULTIPROC_DIR=str(folder))
    server = servers.start("web", env)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server)
        assert not (folder / "counter_123.db").exists()
    finally:
        servers.stop(server)
    assert folder.is_dir() and not list((tmp_path / "tmp").glob("calm-line-metrics-*"))
