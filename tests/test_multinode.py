"""More than one machine: two web nodes behind HAProxy, one PostgreSQL, one node killed mid-call.

Each node is what one machine runs: the Procfile's web line (gunicorn) on a
port of its own, and its own `ivr worker`. HAProxy (Debian's package) sends
requests to the two in turn and names the node that answered in a response
header. Calls are played over HTTP as Twilio plays them, signed for the one
public address (HAProxy's), in lock-step so that each call's requests land on
both nodes; some say yes to the text on one node, some on the other. Then one
node (web and worker) is killed with SIGKILL, mid-call: every call must still
complete through the other node, and every text must go out exactly once.
Everything listens on 127.0.0.1.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import servers
import sqlalchemy as sa
from conftest import AUTH_TOKEN

from ivr.call.caller import Caller, HttpTransport

pytestmark = [pytest.mark.multinode, pytest.mark.postgres]

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NODE_HEADER = "X-Calm-Line-Node"
# An odd number of calls played in lock-step: consecutive requests of one call are
# CALLS requests apart, so with two nodes in turn they land on alternate nodes.
CALLS = 7
BEFORE_KILL = 4  # these calls say yes before the kill, the others after
DEADLINE = 90.0  # seconds to wait for a condition; generous for a busy CI machine

HAPROXY_CONFIG = """
global
    maxconn 200
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
frontend line
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /healthz
    http-response set-header {header} %[srv_name]
    server a 127.0.0.1:{a} check inter 300ms fall 2 rise 1
    server b 127.0.0.1:{b} check inter 300ms fall 2 rise 1
"""


class RecordingTransport(HttpTransport):
    """Posts through HAProxy and notes which node answered each request."""

    def __init__(self, base: str):
        super().__init__(base, AUTH_TOKEN, timeout=30)
        self.served: list[tuple[str, str]] = []  # (CallSid, node)

    def post(self, path, params, signature):
        status, headers, body = super().post(path, params, signature)
        self.served.append((params["CallSid"], headers.get(NODE_HEADER, "?")))
        return status, headers, body


def mobile(index: int) -> str:
    return f"+4474009{index:05d}"


@pytest.fixture
def line(tmp_path, postgres_url, fake_twilio):
    """Two nodes (web + worker each) and HAProxy; yields (public base, {node: processes})."""
    if not Path(HAPROXY).exists():
        pytest.fail("haproxy is not installed (python3 dev.py test installs it)")
    front, ports = servers.free_port(), {"a": servers.free_port(), "b": servers.free_port()}
    public = f"http://127.0.0.1:{front}"
    shared = {  # what every node must share (README: "More than one machine")
        "DATABASE_URL": postgres_url, "SECRET_KEY": "multinode-secret",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": public,
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid, "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "TWILIO_FROM_NUMBER": "+441134960000", "STAFF_PASSWORD": "multinode-staff",
        "SMS_RATE_PER_SECOND": "50", "LOG_LEVEL": "INFO",
    }
    subprocess.run(["ivr", "db", "upgrade"], env=servers.process_env(tmp_path, **shared), cwd=tmp_path,
                   check=True, capture_output=True, timeout=120)
    nodes: dict[str, list[subprocess.Popen]] = {}
    (tmp_path / "haproxy.cfg").write_text(HAPROXY_CONFIG.format(
        port=front, header=NODE_HEADER, a=ports["a"], b=ports["b"]))
    proxy = None
    try:
        for name, port in ports.items():
            env = servers.process_env(tmp_path, **shared, PORT=str(port), WEB_CONCURRENCY="1",
                                      INSTANCE_PATH=str(tmp_path / f"instance-{name}"))
            nodes[name] = [servers.start("web", env, tmp_path / f"web-{name}.log"),
                           servers.start("worker", env, tmp_path / f"worker-{name}.log")]
            servers.wait_until_up(f"http://127.0.0.1:{port}", nodes[name][0])
        proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(tmp_path / "haproxy.cfg")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        _wait_for_both_nodes(public, proxy)
        yield public, nodes
    finally:
        for processes in nodes.values():
            for process in processes:
                servers.stop(process)
        if proxy is not None:
            servers.stop(proxy)


def _wait_for_both_nodes(public: str, proxy: subprocess.Popen) -> None:
    """HAProxy is up and has seen both nodes pass their health check."""
    seen: set[str] = set()
    deadline = time.monotonic() + DEADLINE
    while seen != {"a", "b"} and time.monotonic() < deadline:
        assert proxy.poll() is None, "haproxy exited"
        try:
            with urllib.request.urlopen(public + "/healthz", timeout=5) as response:
                seen.add(response.headers.get(NODE_HEADER, "?"))
        except OSError:
            time.sleep(0.2)
    assert seen == {"a", "b"}, f"HAProxy reached only {seen}"


def _outbox(url: str) -> list[sa.Row]:
    from ivr import store

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(store.outbox.c.to_number, store.outbox.c.status)))
    finally:
        engine.dispose()


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"waited {DEADLINE:.0f} s for {what}"
        time.sleep(0.2)


def test_two_nodes_one_killed_mid_call_every_call_completes_every_text_once(
        line, postgres_url, fake_twilio):
    public, nodes = line
    transport = RecordingTransport(public)
    callers = [Caller(transport, from_number=mobile(i)) for i in range(CALLS)]

    def each(action, *args, calls=range(CALLS)):
        for index in calls:
            turn = getattr(callers[index], action)(*args)
            assert turn.status == 200, (index, action, turn.xml)

    each("dial")
    each("press", "1")  # the next steps
    each("press", "#")  # to the end: the offer of a text
    yes_at = len(transport.served)
    each("press", "1", calls=range(BEFORE_KILL))  # yes to the text, on both nodes
    yes_nodes = {node for _, node in transport.served[yes_at:]}
    before = list(transport.served)

    for process in nodes["a"]:  # node a is lost: its web and its worker, at once
        servers.stop(process, signal.SIGKILL)
    after_at = len(transport.served)
    each("press", "1", calls=range(BEFORE_KILL, CALLS))  # mid-call: only node b is left
    for caller in callers:
        assert caller.hang_up() == 200  # the status callback releases the text

    # Every call was whole: each went to the end (the text queued, the line hung up).
    assert all(caller.ended and caller.last.steps == ["text_queued"] for caller in callers)
    # Before the kill the requests went to the nodes in turn: each call used both, and
    # the yes to the text was said on both.
    assert set(Counter(node for _, node in before)) == {"a", "b"}
    for caller in callers:
        assert {node for sid, node in before if sid == caller.call_sid} == {"a", "b"}
    assert yes_nodes == {"a", "b"}
    assert {node for _, node in transport.served[after_at:]} == {"b"}

    numbers = {mobile(i) for i in range(CALLS)}
    _wait(lambda: {m["to"] for m in fake_twilio.messages} >= numbers, "every text to reach Twilio")
    _wait(lambda: all(status in ("accepted", "sent", "delivered")
                      for _, status in _outbox(postgres_url)), "every text to be stored as sent")
    sent = Counter(m["to"] for m in fake_twilio.messages)
    assert sent == dict.fromkeys(numbers, 1)  # each text exactly once
    assert len(_outbox(postgres_url)) == CALLS
