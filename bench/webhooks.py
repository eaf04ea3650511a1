"""Webhook throughput and latency: the line against a bare Flask app, same gunicorn, same load.

Both run from the Procfile's web line (workers, threads, access log as
written there; bound to 127.0.0.1). wrk replays recorded real calls, every
request signed as Twilio signs it for that server's URL, and cycles through
them from each connection: concurrent callers walking real paths, the
database steps (the text's consent, a keyed-in number, the call's end) included.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.common import TOKEN, VENV_BIN, Server, WrkResult, run_wrk, write_requests
from bench.paths import record_calls


@dataclass
class WebhookResult:
    line: WrkResult
    baseline: WrkResult
    rounds: list[tuple[WrkResult, WrkResult]]
    requests: int
    db_share: float
    mean_bytes: int

    @property
    def ratio(self) -> float:
        return self.line.rps / self.baseline.rps


def line_env(tmp: Path, database_url: str | None = None) -> dict:
    return {
        "TWILIO_AUTH_TOKEN": TOKEN,
        "SECRET_KEY": "bench-secret",
        "STAFF_PASSWORD": "bench-staff",
        "INSTANCE_PATH": str(tmp / "instance"),
        "DATABASE_URL": database_url or "sqlite:///" + str(tmp / "bench.sqlite"),
    }


def upgrade(env: dict) -> None:
    subprocess.run([str(VENV_BIN / "ivr"), "db", "upgrade"], env={**os.environ, **env},
                   check=True, capture_output=True)


def _check(server: Server, signed, expect_xml: bool) -> None:
    """Every recorded request answers 200 (a 403 would mean a signing mistake)."""
    for request, signature in signed:
        req = urllib.request.Request(server.base + request.path, data=request.body.encode(),
                                     headers={"X-Twilio-Signature": signature})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{server.name}: {request.path} answered {exc.code}") from None
        if expect_xml and body and not body.startswith(b"<?xml"):
            raise RuntimeError(f"{server.name}: {request.path} did not answer TwiML")


def best_result(results: list[WrkResult]) -> WrkResult:
    """The round with the most requests a second (other load on the machine only slows a
    round down, so the best round is the fairest); errors are summed over all rounds."""
    best = max(results, key=lambda r: r.rps)
    return WrkResult(rps=best.rps, p50_ms=best.p50_ms, p99_ms=best.p99_ms,
                     requests=sum(r.requests for r in results),
                     errors=sum(r.errors for r in results))


def run(*, seconds: float = 8, connections: int = 16, rounds: int = 3, calls: int = 60,
        warmup: float = 2, database_url: str | None = None, out: Path | None = None,
        log=print) -> WebhookResult:
    tmp = Path(tempfile.mkdtemp(prefix="calmline-bench-web-"))
    out = out or tmp
    recorded = record_calls(calls)
    requests = [request for request, _, _ in recorded]
    sizes = [size for _, _, size in recorded]
    mean_bytes = int(statistics.mean(sizes))
    db_paths = ("/voice/status", "/voice/number/")
    db_share = sum(1 for r, _, _ in recorded
                   if r.path.startswith(db_paths) or "number_confirm" in r.path
                   or (r.path.startswith("/voice/answer/finish") and dict(r.params).get("Digits") == "1"
                       )) / len(recorded)
    env = line_env(tmp, database_url)
    upgrade(env)
    line = Server("line", env, log_dir=out)
    baseline = Server("baseline", {"BASELINE_BYTES": str(mean_bytes)}, "bench.baseline:create_app()",
                      log_dir=out)
    log(f"webhooks: {len(requests)} recorded requests from {calls} calls "
        f"({db_share:.0%} touch the database), mean answer {mean_bytes} bytes; "
        f"wrk -c{connections} -d{seconds:g}s x {rounds} round(s) each")
    with line, baseline:
        files = {}
        for server in (line, baseline):
            signed = [(r, r.signature(server.base, TOKEN)) for r in requests]
            _check(server, signed, expect_xml=True)
            files[server.name] = out / f"requests-{server.name}.txt"
            write_requests(files[server.name], signed)
        for server in (baseline, line):
            run_wrk(server.base, files[server.name], seconds=warmup, connections=connections)
        rounds_done = []
        for index in range(rounds):
            # Alternate which goes first, so neither always gets the cooler machine.
            order = (baseline, line) if index % 2 == 0 else (line, baseline)
            got = {s.name: run_wrk(s.base, files[s.name], seconds=seconds,
                                   connections=connections) for s in order}
            rounds_done.append((got["line"], got["baseline"]))
            log(f"  round {index + 1}: line {got['line'].rps:.0f} req/s, "
                f"baseline {got['baseline'].rps:.0f} req/s (load {os.getloadavg()[0]:.1f})")
    result = WebhookResult(
        line=best_result([r[0] for r in rounds_done]),
        baseline=best_result([r[1] for r in rounds_done]),
        rounds=rounds_done, requests=len(requests), db_share=db_share, mean_bytes=mean_bytes,
    )
    return result
