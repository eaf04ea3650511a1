"""Fixtures: a fresh app and database per test, and requests signed like Twilio's."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from ivr import create_app
from ivr.config import REPO_ROOT

AUTH_TOKEN = "test-auth-token-0123456789"
BASE = "http://localhost"
# The machine's PostgreSQL (CI sets TEST_POSTGRES_URL; a local run tries the default).
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def wait_for(condition, what: str, timeout: float = 120.0, every: float = 0.05):
    """Wait until condition() is true, with a deadline generous enough for a loaded machine.

    Tests wait on a condition, never on a fixed sleep or a fixed number of polls:
    the suite runs beside other work on two cores (README, "Tests").
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


def sign(path: str, params: dict, token: str = AUTH_TOKEN, base: str = BASE) -> str:
    return RequestValidator(token).compute_signature(base + path, params)


@pytest.fixture(scope="session")
def postgres_ready():
    from ivr import store

    if not store.answers(POSTGRES_URL):
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}")
        pytest.skip("PostgreSQL is not reachable here")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_ready):
    """A PostgreSQL URL whose tables live in a schema of this test's own."""
    import sqlalchemy

    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sqlalchemy.create_engine(postgres_ready)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_ready else "?"
    yield f"{postgres_ready}{sep}options=-csearch_path%3D{schema}"
    _drop_schema(engine, schema)


def _drop_schema(engine, schema: str) -> None:
    """Drop a test's schema. A thread of the test's app (the events writer, a local
    sender) may still hold a lock on a table there: PostgreSQL then reports a
    deadlock, and the drop is simply tried again until the thread has let go."""
    import sqlalchemy

    def dropped() -> bool:
        try:
            with engine.begin() as conn:
                conn.execute(sqlalchemy.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            return True
        except sqlalchemy.exc.OperationalError as exc:
            if "deadlock" not in str(exc).lower():
                raise
            return False

    wait_for(dropped, f"the test schema {schema} to be dropped", every=0.2)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Both databases: use this (not app) in tests of the store."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "calmline.sqlite")
    return request.getfixturevalue("postgres_url")


def make_app(tmp_path, upgrade=True, **overrides):
    from ivr import store

    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": "sqlite:///" + str(tmp_path / "calmline.sqlite"),
    }
    config.update(overrides)
    app = create_app(config)
    if upgrade:
        with app.app_context():
            store.upgrade()
    return app


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture
def flow(app):
    """The flow the app loaded (follows whichever `app` fixture a module uses)."""
    return app.extensions["calm_line.flow"]


def copy_shipped(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped flow and words to break in a test: (flows.yaml, en-GB.yaml)."""
    (tmp_path / "prompts").mkdir()
    flows = tmp_path / "flows.yaml"
    flows.write_text((REPO_ROOT / "flows.yaml").read_text())
    prompts = tmp_path / "prompts" / "en-GB.yaml"
    prompts.write_text((REPO_ROOT / "prompts" / "en-GB.yaml").read_text())
    return flows, prompts


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def twilio_post(client):
    """POST like Twilio: form-encoded, signed for this exact URL."""

    def post(path: str, data: dict | None = None, **kwargs):
        data = {key: value for key, value in (data or {}).items() if value is not None}
        headers = {"X-Twilio-Signature": sign(path, data)}
        return client.post(path, data=data, headers=headers, **kwargs)

    return post


@pytest.fixture
def call(app):
    """Start a call into the app: call() -> a Caller that has dialled in."""
    from ivr.call.caller import Caller, FlaskTransport

    def start(from_number: str = "+447400123456", **kwargs) -> Caller:
        caller = Caller(FlaskTransport(app), from_number=from_number, **kwargs)
        caller.dial()
        return caller

    return start


# -- Twilio's REST API, faked (tests/fake_twilio.py) -----------------------------

FROM_NUMBER = "+441632960001"


@pytest.fixture
def fake_twilio():
    """The fake Twilio API on a local port; it takes the same auth token as the app."""
    from fake_twilio import FakeTwilio

    with FakeTwilio(auth_token=AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def twilio_settings(fake_twilio):
    """App settings that send texts to the fake, quickly (no rate wait, no backoff wait)."""
    return {
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "PUBLIC_BASE_URL": BASE,
        "SMS_RATE_PER_SECOND": 1000.0,
        "SMS_RETRY_BASE_SECONDS": 0.0,
    }


# -- staff pages (figures, metrics) ----------------------------------------------------


def staff_log_in(client, app) -> None:
    """Log a test client in through the staff login form (the app's own password)."""
    import re

    from ivr.staff import login as staff

    password, _ = staff.password_for(app)
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/staff/login", data={"csrf_token": token, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def staff_client(app):
    """A test client logged in as staff."""
    web = app.test_client()
    staff_log_in(web, app)
    return web


# -- fuzzing (tests/test_fuzz.py) ------------------------------------------------------
# Examples per fuzz test: CI runs 300 per test (2,000+ in all); CALM_LINE_FUZZ_EXAMPLES=2000
# (10,000+ in all) for a deep run. CI is derandomised, so it never fails by luck;
# a local run explores new inputs each time (pytest --hypothesis-seed=N repeats one).

FUZZ_EXAMPLES = int(os.environ.get("CALM_LINE_FUZZ_EXAMPLES") or 300)


def _register_fuzz_profile() -> None:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "calm-line-fuzz",
        max_examples=FUZZ_EXAMPLES,
        deadline=None,  # a shared CI machine is slow now and then; speed is bench/'s job
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture],
        print_blob=True,
    )


_register_fuzz_profile()
