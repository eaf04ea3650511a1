"""Webhook throughput and latency: the line against a bare Flask app, same gunicorn, same load.

Both run from the Procfile's web line (workers, threads, access log as
written there; bound to 127.0.0.1). wrk replays recorded real calls, every
request signed as Twilio signs it for that server's URL, and cycles through
them from each connection: concurrent callers walking real paths, the
database steps (the text's consent, a keyed-in number, the call's end) included.
"""
from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from bench.common import TOKEN, VENV_BIN, Server, WrkResult, procfile_command, run_wrk, write_requests
from bench.paths import record_calls

DB_PATHS = ("/voice/status", "/voice/number/")


@dataclass
class WebhookResult:
    line: WrkResult
    baseline: WrkResult
    rounds: list[tuple[WrkResult, WrkResult]]
    requests: int
    db_share: float
    mean_bytes: int
    best: dict = field(default_factory=dict)  # (app, request set) -> best round
    each_round: dict = field(default_factory=dict)  # (app, request set) -> every round
    rss_mb: dict = field(default_factory=dict)  # app -> MB after the run
    menu_requests: int = 0

    @property
    def ratio(self) -> float:
        return self.line.rps / self.baseline.rps

    def ratio_to(self, app: str, which: str) -> float:
        """The median over rounds of line / app, each from the same round (back to back):
        steadier than best against best when other work comes and goes on the machine."""
        return self._paired_median(app, which, "rps")

    def p99_ratio_to(self, app: str, which: str) -> float:
        """The median over rounds of the line's p99 / app's, each pair from the same round:
        judged as the req/s are (one app's best round beside another's was a comparison of
        two different moments of the machine)."""
        return self._paired_median(app, which, "p99_ms")

    def _paired_median(self, app: str, which: str, figure: str) -> float:
        paired = zip(self.each_round["line", which], self.each_round[app, which], strict=True)
        return statistics.median(getattr(line, figure) / getattr(other, figure)
                                 for line, other in paired)

    def p99_median(self, app: str, which: str) -> float:
        return statistics.median(result.p99_ms for result in self.each_round[app, which])


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


def _check(server: Server, signed) -> None:
    """Every recorded request answers 200 (a 403 would mean a signing mistake) with TwiML."""
    for request, signature in signed:
        req = urllib.request.Request(server.base + request.path, data=request.body.encode(),
                                     headers={"X-Twilio-Signature": signature})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{server.name}: {request.path} answered {exc.code}") from None
        if body and not _is_twiml(body):
            raise RuntimeError(f"{server.name}: {request.path} did not answer TwiML")


def _is_twiml(body: bytes) -> bool:
    try:
        return ElementTree.fromstring(body).tag == "Response"
    except ElementTree.ParseError:
        return False


def best_result(results: list[WrkResult]) -> WrkResult:
    """The round with the most requests a second (other load on the machine only slows a
    round down, so the best round is the fairest); errors are summed over all rounds."""
    best = max(results, key=lambda r: r.rps)
    return WrkResult(rps=best.rps, p50_ms=best.p50_ms, p99_ms=best.p99_ms,
                     requests=sum(r.requests for r in results),
                     errors=sum(r.errors for r in results))


# The apps, each under the Procfile's web line: (name, gunicorn app spec, what it is).
APPS = [
    ("line", None, "Calm Line"),
    ("sample", "bench.references:sample_app()",
     "Twilio's sample style: a VoiceResponse with a Gather and a Say per request, no signature check"),
    ("least", "bench.references:least_app()",
     "the least a correct webhook does: form + RequestValidator.validate + a constant document"),
    ("constant", "bench.baseline:create_app()", "a constant document, no signature check"),
]
SETS = ("menu", "mix")  # menu-step requests only; the recorded mix of whole calls


def _db_step(request) -> bool:
    form = dict(request.params)
    return (request.path.startswith(DB_PATHS) or "number_confirm" in request.path
            or (request.path.startswith("/voice/answer/finish") and form.get("Digits") == "1"))


def menu_steps(requests: list) -> list:
    """The answers to a menu that need no database: what most of a call's requests are."""
    return [r for r in requests if r.path.startswith("/voice/answer/") and not _db_step(r)]


def rss_mb(pid: int) -> float:
    """Resident memory of a gunicorn (master and its workers), in MB, from /proc."""
    total = 0
    for child in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def balanced(connections: int) -> dict:
    """gunicorn settings that split wrk's connections evenly over the Procfile's workers.

    wrk opens its connections at once and keeps them; the kernel hands them to whichever
    worker wakes first, and a gthread worker accepts all that wait. In about half the
    runs every connection went to one worker and the other sat idle (measured here:
    1,570 against 3,600 req/s for the same app, one worker's CPU at zero). A cap of
    connections per worker (gunicorn's worker_connections) makes the first worker stop
    accepting at its share. It is set for every app alike, for the benchmark only: in
    production a low cap would let a few idle connections hold a worker's door shut.
    """
    workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
    threads = int(re.search(r"--threads (\d+)", procfile_command("web")).group(1))
    share = max(-(-connections // workers), threads + 1)
    return {"GUNICORN_CMD_ARGS": f"--worker-connections {share}"}


def run(*, seconds: float = 8, connections: int = 16, rounds: int = 3, calls: int = 60,
        warmup: float = 2, database_url: str | None = None, out: Path | None = None,
        log=print) -> WebhookResult:
    tmp = Path(tempfile.mkdtemp(prefix="calmline-bench-web-"))
    out = out or tmp
    recorded = record_calls(calls)
    requests = [request for request, _, _ in recorded]
    sizes = [size for _, _, size in recorded]
    mean_bytes = int(statistics.mean(sizes))
    db_share = sum(1 for r in requests if _db_step(r)) / len(requests)
    sets = {"menu": menu_steps(requests), "mix": requests}
    env = line_env(tmp, database_url)
    upgrade(env)
    size = {"BASELINE_BYTES": str(mean_bytes), "TWILIO_AUTH_TOKEN": TOKEN}
    even = balanced(connections)
    servers = {name: Server(name, {**(env if spec is None else size), **even}, spec, log_dir=out)
               for name, spec, _ in APPS}
    log(f"webhooks: {len(requests)} recorded requests from {calls} calls "
        f"({db_share:.0%} touch the database; {len(sets['menu'])} are menu steps), mean answer "
        f"{mean_bytes} bytes; wrk -c{connections} -d{seconds:g}s x {rounds} round(s) each, "
        f"{len(servers)} apps x {len(SETS)} request sets")
    got: dict[tuple[str, str], list[WrkResult]] = {(n, s): [] for n in servers for s in SETS}
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
        files = _request_files(servers, sets, out)
        for name, server in servers.items():
            run_wrk(server.base, files[name, "mix"], seconds=warmup, connections=connections)
        for index in range(rounds):
            # Alternate the order, so no app always gets the cooler machine.
            order = list(servers) if index % 2 == 0 else list(reversed(servers))
            for which in SETS:
                for name in order:
                    got[name, which].append(run_wrk(servers[name].base, files[name, which],
                                                    seconds=seconds, connections=connections))
            log(f"  round {index + 1}: " + "; ".join(
                f"{which} " + ", ".join(f"{n} {got[n, which][-1].rps:.0f}" for n in servers)
                for which in SETS) + f" req/s (load {os.getloadavg()[0]:.1f})")
        rss = {name: rss_mb(server.process.pid) for name, server in servers.items()
               if server.process is not None}
    best = {key: best_result(results) for key, results in got.items()}
    return WebhookResult(line=best["line", "mix"], baseline=best["constant", "mix"],
                         rounds=[], requests=len(requests), db_share=db_share,
                         mean_bytes=mean_bytes, best=best, each_round=got, rss_mb=rss,
                         menu_requests=len(sets["menu"]))


def _request_files(servers: dict, sets: dict, out: Path) -> dict:
    """Sign every request for each server's own URL, check each answers, write wrk's files."""
    files = {}
    for name, server in servers.items():
        for which, chosen in sets.items():
            signed = [(r, r.signature(server.base, TOKEN)) for r in chosen]
            if which == "mix":
                _check(server, signed)
            files[name, which] = out / f"requests-{name}-{which}.txt"
            write_requests(files[name, which], signed)
    return files
