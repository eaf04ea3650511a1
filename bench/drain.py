"""Outbox drain: N queued texts, 1 and then 2 `ivr worker` processes on PostgreSQL at a set rate.

Texts are put in the outbox (held, as a call would leave them), the workers
are started and left idle, then every text is released at once (as if all
those calls ended together). The figure is the time from the release to the
fake Twilio receiving the last text, against the ideal count / (workers x
SMS_RATE_PER_SECOND); duplicates are messages beyond one per outbox row.
"""
from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bench.common import ROOT, TOKEN, VENV_BIN
from bench.twilio_fake import FakeTwilio, creates, twilio_env

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class DrainResult:
    workers: int
    count: int
    rate: float  # per worker
    seconds: float
    sent: int
    duplicates: int
    lost: int
    attempts: int

    @property
    def ideal(self) -> float:
        return self.count / (self.rate * self.workers)

    @property
    def ratio(self) -> float:
        return self.seconds / self.ideal


def _number(index: int) -> str:
    return f"+4474002{index:05d}"


class Schema:
    """A PostgreSQL schema of this run's own, dropped afterwards."""

    def __init__(self, url: str):
        self.admin = sa.create_engine(url)
        self.name = "bench_" + uuid.uuid4().hex[:10]
        sep = "&" if "?" in url else "?"
        self.url = f"{url}{sep}options=-csearch_path%3D{self.name}"

    def __enter__(self) -> Schema:
        with self.admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {self.name}"))
        return self

    def __exit__(self, *exc) -> None:
        with self.admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {self.name} CASCADE"))
        self.admin.dispose()


def _wait_for(predicate, timeout: float, what: str, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"drain: timed out waiting for {what}")
        time.sleep(poll)


def ceilings(count: int) -> dict:
    """The line's abuse limits, set for the drain only: it measures sending, and its texts
    would meet TEXTS_PER_HOUR (100 by default) long before the 500th."""
    return {"TEXTS_PER_HOUR": str(max(count, 100))}


def hold_texts(count: int) -> None:
    """count texts held in the outbox, as count calls that said yes leave them (in an app
    context); a refusal says what refused it."""
    from ivr.texts import outbox

    for index in range(count):
        answer = outbox.request_text(f"CA-drain-{index}", _number(index), ["talk"])
        if answer != "queued":
            raise RuntimeError(f"drain: text {index + 1} of {count} was not held: {answer} "
                               "(the line's limits: TEXTS_PER_HOUR, TEXTS_PER_NUMBER_PER_DAY)")


def run_once(*, workers: int, count: int, rate: float, database_url: str, out: Path,
             log=print) -> DrainResult:
    from ivr import create_app, store
    from ivr.texts import outbox

    fake = FakeTwilio(auth_token=TOKEN).start()
    processes = []
    try:
        with Schema(database_url) as schema:
            env = {"DATABASE_URL": schema.url, "SECRET_KEY": "bench-secret",
                   "TWILIO_AUTH_TOKEN": TOKEN, "STAFF_PASSWORD": "bench-staff-password",
                   "INSTANCE_PATH": str(out / "instance"), "LOG_LEVEL": "INFO",
                   **ceilings(count), **twilio_env(fake, rate, "http://127.0.0.1:9")}
            app = create_app({**{k: v for k, v in env.items() if k != "SMS_RATE_PER_SECOND"},
                              "SMS_RATE_PER_SECOND": rate, "LOG_LEVEL": "WARNING"})
            with app.app_context():
                store.upgrade()
                hold_texts(count)
            logs = []
            for index in range(workers):
                log_file = out / f"drain-{workers}w-{index}.log"
                logs.append(log_file)
                with open(log_file, "wb") as worker_log:
                    processes.append(subprocess.Popen(
                        [str(VENV_BIN / "ivr"), "worker"], cwd=ROOT, env={**os.environ, **env},
                        stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True))
            _wait_for(lambda: all("sending texts through" in f.read_text(errors="replace")
                                  for f in logs), 60, "the workers to start")
            time.sleep(1.5)  # idle, polling: as they would be before a busy moment
            with app.app_context(), store.begin() as conn:
                now = store.utcnow()
                conn.execute(sa.update(store.outbox).where(store.outbox.c.status == outbox.HELD)
                             .values(status=outbox.QUEUED, next_attempt_at=now, released_at=now,
                                     updated_at=now))
            released = time.monotonic()
            ideal = count / (rate * workers)
            _wait_for(lambda: len({m["to"] for m in list(fake.messages)}) >= count,
                      ideal * 5 + 30, f"{count} texts to reach the fake Twilio")
            last = max(r.time for r in creates(fake))
            time.sleep(0.5)  # a duplicate would show up now
            store.engine(app).dispose()
            per_number = Counter(m["to"] for m in list(fake.messages))
            result = DrainResult(
                workers=workers, count=count, rate=rate, seconds=last - released,
                sent=len(per_number), duplicates=sum(n - 1 for n in per_number.values()),
                lost=count - len(per_number), attempts=len(creates(fake)))
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        fake.stop()
    log(f"  {workers} worker(s): {count} texts in {result.seconds:.2f} s "
        f"(ideal {result.ideal:.2f} s, x{result.ratio:.2f}), {result.duplicates} duplicate(s)")
    return result


def run(*, count: int = 500, rate: float = 50.0, workers: tuple[int, ...] = (1, 2),
        database_url: str | None = None, out: Path | None = None, log=print) -> list[DrainResult]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    database_url = database_url or POSTGRES_URL
    out = out or Path(tempfile.mkdtemp(prefix="calmline-bench-drain-"))
    log(f"drain: {count} texts, SMS_RATE_PER_SECOND={rate:g} per worker, "
        f"PostgreSQL ({database_url.rsplit('@', 1)[-1]}), fake Twilio answering at once")
    return [run_once(workers=n, count=count, rate=rate, database_url=database_url, out=out, log=log)
            for n in workers]
