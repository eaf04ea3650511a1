"""Texts off the request path: the consent step's latency with Twilio answering at once, then slowly.

The line runs under gunicorn (the Procfile's web line) and `ivr worker`
(the Procfile's worker line) beside it, both pointed at the tests' fake
Twilio API. Concurrent callers each say yes to the text (the measured
request) and then hang up (the call's status callback releases the text,
and the worker sends it). The same server and worker are used for both
phases, which alternate: Twilio answering at once (the baseline), then
Twilio taking `slow` seconds per request. If sending were on the request
path, the slow phase's p99 would grow by seconds.
"""
from __future__ import annotations

import http.client
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import ROOT, TOKEN, VENV_BIN, Server, percentile
from bench.paths import consent_requests
from bench.twilio_fake import FakeTwilio, creates, twilio_env
from bench.webhooks import line_env, upgrade


@dataclass
class Phase:
    latency: float
    consent_ms: list[float]
    status_ms: list[float]
    errors: int
    seconds: float

    @property
    def p50(self) -> float:
        return percentile(self.consent_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.consent_ms, 99)

    @property
    def rps(self) -> float:
        return (len(self.consent_ms) + len(self.status_ms)) / self.seconds


@dataclass
class ConsentResult:
    fast: Phase
    slow: Phase
    rounds: list[tuple[Phase, Phase]]
    texts_sent: int

    @property
    def ratio(self) -> float:
        return self.slow.p99 / self.fast.p99


def _drive(base: str, pairs: list, callers: int,
           calls_per_second: float | None = None) -> tuple[list[float], list[float], int, float]:
    """`callers` threads, each with a keep-alive connection, working through the calls.

    With calls_per_second, call i starts no earlier than i / calls_per_second
    after the start (a steady evening, not a flood); without, as fast as they go.
    """
    host = urlsplit(base)
    lock = threading.Lock()
    todo = iter(range(0, len(pairs), 2))
    consent_ms, status_ms, errors = [], [], [0]
    begin = time.perf_counter()

    def caller():
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        while True:
            with lock:
                index = next(todo, None)
            if index is None:
                break
            if calls_per_second:
                wait = begin + (index // 2) / calls_per_second - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            for (request, signature), bucket in ((pairs[index], consent_ms),
                                                 (pairs[index + 1], status_ms)):
                started = time.perf_counter()
                try:
                    connection.request("POST", request.path, body=request.body, headers={
                        "X-Twilio-Signature": signature,
                        "Content-Type": "application/x-www-form-urlencoded"})
                    response = connection.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
                    ok = False
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    bucket.append(elapsed)
                    errors[0] += not ok
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return consent_ms, status_ms, errors[0], time.perf_counter() - started


def run(*, calls: int = 300, callers: int = 8, calls_per_second: float = 40.0, slow: float = 5.0,
        rounds: int = 2, rate: float = 20.0, database_url: str | None = None,
        out: Path | None = None, log=print) -> ConsentResult:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake's request log
    tmp = Path(tempfile.mkdtemp(prefix="calmline-bench-consent-"))
    out = out or tmp
    fake = FakeTwilio(auth_token=TOKEN).start()
    line = Server("consent-line", {}, log_dir=out)
    env = {**line_env(tmp, database_url), **twilio_env(fake, rate, line.base)}
    line.env = env
    upgrade(env)
    worker = None
    log(f"consent: {calls} calls per phase at {calls_per_second:g} calls/s from {callers} "
        "concurrent callers (each: yes to the text, then the call ends), "
        f"fake Twilio at 0 s then {slow:g} s, `ivr worker` at {rate:g} texts/s, {rounds} round(s)")
    try:
        line.start()
        with open(out / "consent-worker.log", "wb") as worker_log:
            worker = subprocess.Popen([str(VENV_BIN / "ivr"), "worker"], cwd=ROOT,
                                      env={**os.environ, **env}, start_new_session=True,
                                      stdout=worker_log, stderr=subprocess.STDOUT)
        _drive(line.base, consent_requests(40, line.base, TOKEN), callers)  # warm up
        done = []
        for index in range(rounds):
            phases = {}
            for latency in ((0.0, slow) if index % 2 == 0 else (slow, 0.0)):
                fake.set_latency(latency)
                consent, status, errors, seconds = _drive(
                    line.base, consent_requests(calls, line.base, TOKEN), callers, calls_per_second)
                phases[latency] = Phase(latency, consent, status, errors, seconds)
            if any(phase.errors for phase in phases.values()):
                raise RuntimeError(f"consent: requests failed; see {out}/consent-line.log")
            done.append((phases[0.0], phases[slow]))
            log(f"  round {index + 1}: consent p99 {phases[0.0].p99:.1f} ms with Twilio at once, "
                f"{phases[slow].p99:.1f} ms with Twilio at {slow:g} s")
        sent = len(creates(fake))
    finally:
        fake.set_latency(0)
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        line.stop()
        fake.stop()
    fast = Phase(0.0, [m for f, _ in done for m in f.consent_ms], [m for f, _ in done for m in f.status_ms],
                 sum(f.errors for f, _ in done), sum(f.seconds for f, _ in done))
    slow_phase = Phase(slow, [m for _, s in done for m in s.consent_ms],
                       [m for _, s in done for m in s.status_ms], sum(s.errors for _, s in done),
                       sum(s.seconds for _, s in done))
    return ConsentResult(fast, slow_phase, done, sent)
