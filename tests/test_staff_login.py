"""Staff login: password, session cookie, CSRF, rate limit, reuse by other pages."""
from __future__ import annotations

import os
import re
import shutil
import stat

import pytest
from conftest import make_app
from flask import session

from ivr.staff import login as staff

PASSWORD = "a long staff password 42"


@pytest.fixture
def staff_app(tmp_path):
    app = make_app(tmp_path, STAFF_PASSWORD=PASSWORD)

    @app.route("/test-staff-page", methods=["GET", "POST"])
    @staff.login_required
    def test_staff_page():
        return "staff only"

    return app


@pytest.fixture
def web(staff_app):
    return staff_app.test_client()


def csrf_from(response) -> str:
    html = response.get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(web, password=PASSWORD, next_page="/simulator", **kwargs):
    token = csrf_from(web.get("/staff/login"))
    return web.post("/staff/login", data={"csrf_token": token, "password": password,
                                          "next": next_page}, **kwargs)


def test_the_login_page_has_a_labelled_password_field_and_a_csrf_token(web):
    response = web.get("/staff/login")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<label for="password">' in html and 'id="password"' in html
    assert 'type="password"' in html and 'autocomplete="current-password"' in html
    assert csrf_from(response)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_staff_pages_send_a_browser_to_login_and_an_api_call_gets_401(web):
    page = web.get("/simulator")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/staff/login?next=/simulator")
    api = web.post("/simulator/api/calls", json={"from": "mobile"})
    assert api.status_code == 401
    assert api.get_json()["login"] == "/staff/login"


def test_the_right_password_logs_in_with_a_safe_session_cookie(web):
    response = log_in(web)
    assert response.status_code == 302
    assert response.headers["Location"] == "/simulator"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http locally
    assert web.get("/simulator").status_code == 200
    assert web.get("/test-staff-page").get_data(as_text=True) == "staff only"


def test_a_wrong_password_is_refused(web):
    response = log_in(web, password="not it")
    assert response.status_code == 401
    assert "That password is not right" in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert web.get("/simulator").status_code == 302


def test_the_cookie_is_secure_when_the_public_address_is_https(tmp_path):
    app = make_app(tmp_path, STAFF_PASSWORD=PASSWORD, PUBLIC_BASE_URL="https://line.example.org")
    response = log_in(app.test_client())
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_login_and_logout_need_the_csrf_token(web):
    web.get("/staff/login")
    refused = web.post("/staff/login", data={"password": PASSWORD, "csrf_token": "forged"})
    assert refused.status_code == 400
    assert web.get("/simulator").status_code == 302
    log_in(web)
    assert web.post("/staff/logout").status_code == 403
    assert web.get("/simulator").status_code == 200
    token = csrf_from(web.get("/simulator"))
    out = web.post("/staff/logout", data={"csrf_token": token})
    assert out.status_code == 302
    assert web.get("/simulator").status_code == 302


def test_staff_posts_need_the_csrf_token_from_the_session(web):
    log_in(web)
    assert web.post("/test-staff-page").status_code == 403
    assert web.post("/test-staff-page", headers={"X-CSRF-Token": "forged"}).status_code == 403
    token = csrf_from(web.get("/simulator"))
    assert web.post("/test-staff-page", headers={"X-CSRF-Token": token}).status_code == 200
    assert web.post("/test-staff-page", data={"csrf_token": token}).status_code == 200


def test_login_renews_the_csrf_token(web):
    before = csrf_from(web.get("/staff/login"))
    log_in(web)
    after = csrf_from(web.get("/simulator"))
    assert before != after


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", ""])
def test_login_never_leads_off_the_site(web, target):
    response = log_in(web, next_page=target)
    assert response.headers["Location"] == "/simulator"


def test_failed_logins_are_limited_per_client(web):
    for _ in range(staff.FAILURES_PER_CLIENT):
        assert log_in(web, password="guess").status_code == 401
    blocked = log_in(web)  # even the right password, while the limit holds
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many wrong passwords" in blocked.get_data(as_text=True)
    assert web.get("/simulator").status_code == 302
    # Another address is not blocked by this one's failures.
    other = log_in(web, environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other.status_code == 302


def test_the_waits_grow_and_are_forgotten_after_a_quiet_day():
    now = [1000.0]
    limit = staff.FailureLimit(per_client=3, first_wait=60, max_wait=300, forget=86400,
                               clock=lambda: now[0])
    for _ in range(3):
        assert limit.wait("a") == 0
        limit.failed("a")
    assert 59 <= limit.wait("a") <= 61
    assert limit.wait("b") == 0  # nobody else is held up
    now[0] += 61
    assert limit.wait("a") == 0
    limit.failed("a")
    assert 119 <= limit.wait("a") <= 121  # doubled
    for _ in range(5):
        now[0] += 1000
        limit.failed("a")
    assert 299 <= limit.wait("a") <= 301  # capped
    now[0] += 86400 + 301
    limit.failed("a")
    assert limit.wait("a") == 0  # a quiet day: the count started again
    limit.succeeded("a")
    assert limit.wait("a") == 0


def test_the_password_is_compared_in_constant_time(staff_app, monkeypatch):
    calls = []
    real = staff.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(staff.hmac, "compare_digest", spy)
    with staff_app.test_request_context():
        assert staff.password_ok(PASSWORD)
        assert not staff.password_ok("x")
    assert calls == [(32, 32), (32, 32)]  # digests: the length of a guess does not show


def test_a_generated_password_is_kept_in_the_instance_folder(tmp_path):
    app = make_app(tmp_path)
    password, generated = staff.password_for(app)
    assert generated and len(password) >= 16
    assert staff.password_for(app) == (password, True)
    path = os.path.join(app.instance_path, staff.PASSWORD_FILE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    response = log_in(app.test_client(), password=password)
    assert response.status_code == 302

    configured = make_app(tmp_path / "other", STAFF_PASSWORD=PASSWORD)
    assert staff.password_for(configured) == (PASSWORD, False)


def test_changing_the_password_logs_everyone_out(web, staff_app):
    log_in(web)
    assert web.get("/simulator").status_code == 200
    staff_app.config["STAFF_PASSWORD"] = "a brand new staff password"
    assert web.get("/simulator").status_code == 302


def test_a_login_lasts_one_working_day(web):
    log_in(web)
    with web.session_transaction() as stored:
        stored["staff_until"] = 1  # long ago
    assert web.get("/simulator").status_code == 302


def test_logged_in_helper_needs_a_session(staff_app):
    with staff_app.test_request_context():
        assert not staff.logged_in()
        session["staff"] = "made up"
        session["staff_until"] = 10**12
        assert not staff.logged_in()


def test_the_diagram_is_behind_login_and_shows_every_step(web, staff_app):
    assert web.get("/simulator/diagram").status_code in (302, 401)
    log_in(web)
    page = web.get("/simulator")
    assert 'href="/simulator/diagram"' in page.get_data(as_text=True)
    assert web.get("/simulator/diagram").mimetype == "text/html"  # the page: test_diagram.py
    response = web.get("/simulator/diagram.svg")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    expected = "image/svg+xml" if shutil.which("dot") else "text/plain"
    assert response.mimetype == expected
    for node in ("welcome", "main", "urgent", "removal", "talk", "finish"):
        assert node in body
