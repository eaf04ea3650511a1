"""Fixtures: a fresh app and database per test, and requests signed like Twilio's."""
from __future__ import annotations

import os
import uuid

import pytest
from twilio.request_validator import RequestValidator

from ivr import create_app

AUTH_TOKEN = "test-auth-token-0123456789"
BASE = "http://localhost"
# The machine's PostgreSQL (CI sets TEST_POSTGRES_URL; a local run tries the default).
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def sign(path: str, params: dict, token: str = AUTH_TOKEN, base: str = BASE) -> str:
    return RequestValidator(token).compute_signature(base + path, params)


def _postgres_available() -> bool:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_ready():
    if not _postgres_available():
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
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
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
    from ivr.caller import Caller, FlaskTransport

    def start(from_number: str = "+447400123456", **kwargs) -> Caller:
        caller = Caller(FlaskTransport(app), from_number=from_number, **kwargs)
        caller.dial()
        return caller

    return start
