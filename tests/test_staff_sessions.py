"""Logging out ends the login on the server: a copy of the cookie taken before is refused after."""
from __future__ import annotations

import pytest
from conftest import make_app
from test_staff_login import PASSWORD, csrf_from, log_in

from ivr import store
from ivr.staff import login as staff


@pytest.fixture
def staff_app(tmp_path, database_url):
    return make_app(tmp_path, STAFF_PASSWORD=PASSWORD, DATABASE_URL=database_url)


def copy_of(web, app):
    """Another client carrying the same session cookie (what a thief would copy)."""
    thief = app.test_client()
    thief.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"),
                     web.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session")).value)
    return thief


def test_a_cookie_copied_before_logout_is_refused_after_it(staff_app):
    web = staff_app.test_client()
    assert log_in(web).status_code == 302
    thief = copy_of(web, staff_app)
    assert thief.get("/simulator").status_code == 200
    assert thief.get("/metrics").status_code == 200
    token = csrf_from(web.get("/simulator"))
    assert web.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    assert thief.get("/simulator").status_code == 302
    assert thief.get("/metrics").status_code == 401
    assert thief.get("/simulator/api/calls/x", headers={"Accept": "application/json"}
                     ).status_code == 401


def test_logging_out_ends_only_that_login(staff_app):
    first, second = staff_app.test_client(), staff_app.test_client()
    log_in(first)
    log_in(second)
    token = csrf_from(first.get("/simulator"))
    first.post("/staff/logout", data={"csrf_token": token})
    assert first.get("/simulator").status_code == 302
    assert second.get("/simulator").status_code == 200


def test_a_session_without_a_server_side_login_is_refused(staff_app):
    web = staff_app.test_client()
    log_in(web)
    with web.session_transaction() as stored:
        stored["sid"] = "made-up"
    assert web.get("/simulator").status_code == 302


def test_the_server_keeps_only_a_keyed_hash_of_the_session_id(staff_app):
    import sqlalchemy as sa

    web = staff_app.test_client()
    log_in(web)
    with web.session_transaction() as stored:
        sid = stored["sid"]
    with staff_app.app_context(), store.read() as conn:
        [row] = conn.execute(sa.select(staff.staff_sessions)).all()
    assert sid not in row.id_hash and len(row.id_hash) == 64


def test_with_the_database_down_login_and_logout_answer_clearly(staff_app):
    import sqlalchemy as sa

    web = staff_app.test_client()
    log_in(web)
    token = csrf_from(web.get("/simulator"))
    with staff_app.app_context(), store.engine().begin() as conn:
        conn.execute(sa.text("ALTER TABLE staff_sessions RENAME TO staff_sessions_away"))
    out = web.post("/staff/logout", data={"csrf_token": token})
    assert out.status_code == 503 and "could not reach its database" in out.get_data(as_text=True)
    refused = log_in(staff_app.test_client())
    assert refused.status_code == 503
    assert "cannot reach their database" in refused.get_data(as_text=True)
