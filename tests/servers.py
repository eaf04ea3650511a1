"""Real processes for the tests that run the line as it is deployed: the Procfile's lines,
free loopback ports, waiting until a server answers, stopping a process group."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ivr.config import REPO_ROOT

BIN = Path(sys.executable).parent  # the venv's gunicorn and ivr


def procfile_command(kind: str) -> str:
    """The Procfile's command for `kind`, as written there; web bound to loopback only."""
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            return command.strip().replace("0.0.0.0:", "127.0.0.1:")
    raise AssertionError(f"no {kind}: line in the Procfile")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(tmp: Path, **settings: str) -> dict:
    """os.environ with the venv first on PATH and these settings; no inherited metrics folder.

    TMPDIR is the test's own folder: what a process leaves in its temporary
    directory (gunicorn's metrics folder, if it is killed) stays with the test.
    """
    (tmp / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "TMPDIR": str(tmp / "tmp")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each gunicorn makes (and removes) its own...
    return {**env, **settings}  # ...unless the test sets one


def start(kind: str, env: dict, log: Path | None = None) -> subprocess.Popen:
    """The Procfile's `kind` line in a process group of its own (so it can be killed whole)."""
    with open(log or os.devnull, "wb") as out:  # the child keeps its own copy
        return subprocess.Popen(["sh", "-c", "exec " + procfile_command(kind)], env=env,
                                cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_until_up(base: str, process: subprocess.Popen, timeout: float = 180) -> None:
    """Wait for /healthz; generous, since a loaded machine starts gunicorn slowly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}"
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{base} did not answer in {timeout:.0f} s")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the process's whole group (gunicorn and its workers); wait; SIGKILL if it hangs."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)
