"""Shared pieces: gunicorn started as the Procfile says, wrk, tables."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
TOKEN = "bench-auth-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_command(kind: str = "web") -> str:
    """The Procfile's command for `kind`, as written there."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            return command.strip()
    raise LookupError(f"no {kind}: line in the Procfile")


def web_command(app_spec: str | None = None) -> str:
    """The Procfile's web command, bound to 127.0.0.1 only, optionally serving another app.

    Everything else (workers, threads, access log and its format) is the
    Procfile's own, so the line and the baseline run under the same settings.
    """
    command = procfile_command("web").replace("0.0.0.0:", "127.0.0.1:")
    if app_spec:
        command = command.replace("'ivr:create_app()'", shlex.quote(app_spec))
    return command


@dataclass
class Server:
    """A gunicorn started from the Procfile's web line; stopped by its own pid."""

    name: str
    env: dict
    app_spec: str | None = None
    log_dir: Path | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Server:
        env = {**os.environ, **self.env, "PORT": str(self.port),
               "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
        log_file = self.log_dir / f"{self.name}.log" if self.log_dir else os.devnull
        with open(log_file, "wb") as out:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(["bash", "-c", "exec " + web_command(self.app_spec)],
                                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn exited ({self.process.returncode});"
                                   f" see {self.log_dir}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers (the baseline has no /healthz)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name}: gunicorn did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: gunicorn and its workers
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- wrk --------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()
    return float(number) * _UNITS[unit]


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors + non-2xx/3xx answers
    raw: str = ""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, requests_file: Path, *, seconds: float, connections: int,
            threads: int = 1, timeout: float = 10) -> WrkResult:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(int(seconds), 1)}s",
               f"--timeout={int(timeout)}s", "--latency", "-s", str(BENCH / "requests.lua"),
               url, "--", str(requests_file)]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          timeout=seconds + timeout + 30)
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = 0
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if found:
        errors += sum(int(n) for n in found.groups())
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if found:
        errors += int(found.group(1))
    return WrkResult(rps, p50, p99, total, errors, out)


def write_requests(path: Path, signed: list[tuple]) -> None:
    """[(Request, signature)] -> wrk's request file."""
    with open(path, "w") as handle:
        for request, signature in signed:
            handle.write(f"{request.path}\t{signature}\t{request.body}\n")


# -- tables -----------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table (reads fine in a terminal too)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "| " + " | ".join("-" * w for w in widths) + " |",
                      *(line(r) for r in rows)])
