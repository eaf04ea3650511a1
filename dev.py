#!/usr/bin/env python3
"""Calm Line's two commands, for a fresh machine with only Python 3.11+.

    python3 dev.py run     run the line locally (SQLite, simulator, no Twilio account)
    python3 dev.py test    run the whole test suite
    python3 dev.py bench   run the benchmarks (python -m bench; arguments pass through)

Each makes .venv (once), installs the project into it (again only when
pyproject.toml changes) and then does its job.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
# Debian packages the tests use: a browser for the simulator's page test,
# Graphviz for the flow diagram, HAProxy for the two-node test. Installed only
# where we may (root + apt).
DEBIAN_PACKAGES = {"chromium": "/usr/bin/chromium", "graphviz": "/usr/bin/dot",
                   "haproxy": "/usr/sbin/haproxy"}
BENCH_PACKAGES = {"wrk": "/usr/bin/wrk"}  # the benchmarks' load generator


def run(*args: str, **kwargs) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, cwd=ROOT, **kwargs)


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs before the venv exists)
        sys.exit("Calm Line needs Python 3.11 or newer")
    if not (BIN / "python").exists():
        run(sys.executable, "-m", "venv", str(VENV))
        run(str(BIN / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    stamp = VENV / f".installed-{extras or 'base'}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != want:
        target = f".[{extras}]" if extras else "."
        run(str(BIN / "python"), "-m", "pip", "install", "--quiet", "-e", target)
        stamp.write_text(want)


def ensure_debian_packages(packages: dict[str, str] = DEBIAN_PACKAGES) -> None:
    missing = [name for name, path in packages.items() if not Path(path).exists()]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"note: {', '.join(missing)} not installed (needs root and apt-get); "
              "the tests that need them are skipped", flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "run":
        ensure_venv("")
        run(str(BIN / "ivr"), "db", "upgrade")
        os.execv(str(BIN / "ivr"), [str(BIN / "ivr"), "serve", *argv[2:]])
    if command == "test":
        ensure_venv("dev")
        ensure_debian_packages()
        run(str(BIN / "ruff"), "check", ".")
        run(str(BIN / "mypy"))  # the types of ivr/ (settings in pyproject.toml)
        result = subprocess.run([str(BIN / "python"), "-m", "pytest", *argv[2:]], cwd=ROOT)
        return result.returncode
    if command == "bench":
        ensure_venv("dev")
        ensure_debian_packages(BENCH_PACKAGES)
        return subprocess.run([str(BIN / "python"), "-m", "bench", *argv[2:]], cwd=ROOT).returncode
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
