"""Settings that cannot work together are refused at start, naming the variable."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_app

from ivr import config
from ivr.texts import worker

IVR = Path(sys.executable).parent / "ivr"


@pytest.mark.parametrize(("settings", "name"), [
    ({"SMS_LEASE_SECONDS": 5}, "SMS_LEASE_SECONDS"),
    ({"SMS_LEASE_SECONDS": 60}, "SMS_LEASE_SECONDS"),  # under 15 s + the tries to store it
    ({"SMS_LEASE_SECONDS": 30, "SMS_HTTP_TIMEOUT": 10}, "SMS_LEASE_SECONDS"),
    ({"SMS_RETRY_BASE_SECONDS": 60, "SMS_RETRY_MAX_SECONDS": 10}, "SMS_RETRY_MAX_SECONDS"),
    ({"TEXT_REGIONS": ("IE",)}, "TEXT_REGIONS"),
])
def test_settings_that_cannot_work_stop_the_app(tmp_path, settings, name):
    with pytest.raises(config.SettingError) as caught:
        make_app(tmp_path, **settings)
    assert caught.value.name == name and name in str(caught.value)


def test_the_lease_floor_is_a_request_plus_the_tries_to_store_its_result():
    assert worker.lease_floor({}) == 15 + worker.FINISH_BUDGET
    assert sum(worker.FINISH_PAUSES) + worker.FINISH_TRIES * 5 <= worker.FINISH_BUDGET
    assert worker.lease_floor({"SMS_HTTP_TIMEOUT": 5}) == 5 + worker.FINISH_BUDGET
    assert worker.lease_floor({}) <= config.from_env({})["SMS_LEASE_SECONDS"]  # defaults work


def test_settings_that_work_together_start(tmp_path):
    floor = worker.lease_floor({})
    make_app(tmp_path, SMS_LEASE_SECONDS=floor, TEXT_REGIONS=("GB", "IE"))


def test_the_worker_command_refuses_a_short_lease_naming_it(tmp_path):
    env = {**os.environ, "SMS_LEASE_SECONDS": "5", "SECRET_KEY": "x",
           "INSTANCE_PATH": str(tmp_path / "instance"),
           "DATABASE_URL": "sqlite:///" + str(tmp_path / "line.sqlite")}
    done = subprocess.run([str(IVR), "worker", "--once"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    assert "SMS_LEASE_SECONDS" in done.stderr + done.stdout
