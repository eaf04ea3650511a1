"""The `ivr` command as staff meet it: quiet unless something is wrong, our commands only,
and a broken flow explained without a traceback. Run as a real process, as staff run it."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import AUTH_TOKEN

from ivr.config import REPO_ROOT

BROKEN = REPO_ROOT / "tests" / "broken" / "E027-dead-end"


def ivr(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "INSTANCE_PATH": str(tmp_path),
                   "TWILIO_AUTH_TOKEN": AUTH_TOKEN, **env}
    for name in ("LOG_LEVEL", "FLOWS_FILE", "PROMPTS_DIR", "STAFF_PASSWORD"):
        if name not in env:
            environment.pop(name, None)
    return subprocess.run([sys.executable, "-c", "from ivr.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=tmp_path, env=environment,
                          timeout=120)


def test_help_lists_our_commands_only_and_logs_nothing(tmp_path):
    done = ivr(tmp_path, "--help")
    assert done.returncode == 0
    assert done.stderr == ""
    commands = done.stdout.split("Commands:", 1)[1].split()
    for ours in ("serve", "simulate", "check", "paths", "script", "graph", "worker"):
        assert ours in commands
    for flasks in ("run", "routes", "shell"):
        assert flasks not in commands
    assert "--app" not in done.stdout


def test_a_command_logs_nothing_unless_asked(tmp_path):
    done = ivr(tmp_path, "simulate", "--keys", "9")
    assert done.returncode == 0, done.stderr
    assert "[urgent]" in done.stdout
    assert done.stderr == ""
    loud = ivr(tmp_path, "-v", "simulate", "--keys", "9")
    assert loud.returncode == 0 and " INFO ivr" in loud.stderr


def test_something_wrong_is_still_logged(tmp_path):
    # No auth token where Twilio is meant to call: every real call would get 403.
    done = ivr(tmp_path, "simulate", "--keys", "9", TWILIO_AUTH_TOKEN="",
               PUBLIC_BASE_URL="https://line.example.org")
    assert "WARNING ivr: TWILIO_AUTH_TOKEN is not set" in done.stderr


def test_serve_on_a_broken_flow_names_the_problem_and_exits_1(tmp_path):
    done = ivr(tmp_path, "serve", "--port", "9", FLOWS_FILE=str(BROKEN / "flows.yaml"),
               PROMPTS_DIR=str(BROKEN / "prompts"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = (BROKEN / "flows.yaml").read_text().splitlines()
    marked = next(n for n, line in enumerate(lines, 1) if "# expect: E027" in line)
    assert f"flows.yaml:{marked}:5: E027 step 'dial_failed'" in done.stderr
    assert "The line cannot start" in done.stderr


def test_simulate_on_a_broken_flow_too(tmp_path):
    done = ivr(tmp_path, "simulate", "--keys", "9", FLOWS_FILE=str(BROKEN / "flows.yaml"),
               PROMPTS_DIR=str(BROKEN / "prompts"))
    assert done.returncode == 1 and "Traceback" not in done.stderr and " E027 " in done.stderr
