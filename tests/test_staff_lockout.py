"""No lockout strangers can aim at staff: limits per address (or known browser), growing
waits, and no limit for everyone together."""
from __future__ import annotations

from conftest import make_app
from test_staff_login import PASSWORD, csrf_from, log_in

from ivr.staff import login as staff

PROXY = "10.0.0.1"


def test_a_hundred_failures_from_other_addresses_never_lock_out_a_fresh_one(tmp_path):
    app = make_app(tmp_path, STAFF_PASSWORD=PASSWORD, TRUSTED_PROXIES=1)
    for n in range(100):
        web = app.test_client()
        failed = log_in(web, password="guess", environ_base={"REMOTE_ADDR": PROXY},
                        headers={"X-Forwarded-For": f"198.51.100.{n}"})
        assert failed.status_code == 401
    fresh = log_in(app.test_client(), environ_base={"REMOTE_ADDR": PROXY},
                   headers={"X-Forwarded-For": "203.0.113.7"})
    assert fresh.status_code == 302


def test_behind_an_untrusted_proxy_strangers_cannot_lock_out_a_known_browser(tmp_path):
    app = make_app(tmp_path, STAFF_PASSWORD=PASSWORD, TRUSTED_PROXIES=0)
    same_address = {"REMOTE_ADDR": PROXY}
    staff_browser = app.test_client()
    assert log_in(staff_browser, environ_base=same_address).status_code == 302
    assert staff_browser.get_cookie(staff.DEVICE_COOKIE, path="/staff/login") is not None
    staff_browser.post("/staff/logout", data={"csrf_token": csrf_from(
        staff_browser.get("/simulator"))}, environ_base=same_address)
    for _ in range(10):
        log_in(app.test_client(), password="guess", environ_base=same_address)
    stranger = log_in(app.test_client(), environ_base=same_address)
    assert stranger.status_code == 429  # the proxy's address is held up (README: TRUSTED_PROXIES)
    assert log_in(staff_browser, environ_base=same_address).status_code == 302


def test_a_forged_device_cookie_counts_as_the_address(tmp_path):
    app = make_app(tmp_path, STAFF_PASSWORD=PASSWORD)
    web = app.test_client()
    web.set_cookie(staff.DEVICE_COOKIE, "made-up.value", path="/staff/login")
    for _ in range(staff.FAILURES_PER_CLIENT):
        assert log_in(web, password="guess").status_code == 401
    assert log_in(app.test_client()).status_code == 429  # same address, no valid cookie


def test_a_known_browser_guessing_is_held_up_too(tmp_path):
    app = make_app(tmp_path, STAFF_PASSWORD=PASSWORD)
    web = app.test_client()
    log_in(web)
    web.post("/staff/logout", data={"csrf_token": csrf_from(web.get("/simulator"))})
    for _ in range(staff.FAILURES_PER_CLIENT):
        assert log_in(web, password="guess").status_code == 401
    assert log_in(web).status_code == 429
