"""/simulator: its JSON API (through the test client) and the page in a real browser."""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import conftest
import pytest
import sqlalchemy as sa
from conftest import make_app
from werkzeug.serving import make_server

from ivr import store
from ivr.staff.simulator import saved
from ivr.staff.simulator.call import SimulatedCall, local_transport
from ivr.staff.simulator.web import CallStore, simulator_calls
from ivr.texts import body as textbody

PASSWORD = "simulator staff password"
ROOT = Path(__file__).resolve().parent.parent
NINE_NINE_NINE = re.compile(r"\b9\W{0,3}9\W{0,3}9\b")


@pytest.fixture
def sim_app(tmp_path):
    return make_app(tmp_path, STAFF_PASSWORD=PASSWORD)


class Staff:
    """A logged-in member of staff using the simulator's API."""

    def __init__(self, app):
        self.web = app.test_client()
        page = self.web.get("/staff/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        done = self.web.post("/staff/login", data={"csrf_token": token, "password": PASSWORD})
        assert done.status_code == 302
        page = self.web.get("/simulator").get_data(as_text=True)
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        self.call_id = None

    def start(self, number="mobile"):
        response = self.web.post("/simulator/api/calls", json={"from": number},
                                 headers={"X-CSRF-Token": self.csrf})
        assert response.status_code == 201, response.get_json()
        data = response.get_json()
        self.call_id = data["id"]
        return data

    def do(self, action, value="", expect=200):
        response = self.web.post(f"/simulator/api/calls/{self.call_id}/actions",
                                 json={"do": action, "value": value},
                                 headers={"X-CSRF-Token": self.csrf})
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    def keys(self, keys):
        data = None
        for key in keys:
            data = self.do("key", key)
        return data


@pytest.fixture
def staff(sim_app):
    return Staff(sim_app)


# -- the API ------------------------------------------------------------------------------------


def test_a_call_starts_with_the_999_message_and_the_main_menu(staff):
    data = staff.start()
    assert data["steps"] == ["welcome", "main"]
    assert data["node"] == "main" and data["waiting"] == "menu"
    assert data["accepts"] == ["keys", "words"]
    assert NINE_NINE_NINE.search(data["turns"][0]["said"][0])
    assert data["turns"][0]["did"] == "Called the line"
    assert data["ended"] is None and data["text"] is None
    assert "call_sid" not in data


def test_key_9_says_999(staff):
    staff.start()
    data = staff.do("key", "9")
    assert data["new"] == 1
    assert data["turns"][-1]["steps"] == ["urgent"]
    assert NINE_NINE_NINE.search(data["turns"][-1]["said"][0])


def test_the_removal_branch_by_speech_ends_with_the_text(staff):
    staff.start()
    assert staff.do("say", "how do I get the picture removed")["node"] == "removal"
    assert staff.do("say", "finish")["node"] == "finish"
    data = staff.do("say", "yes please")
    assert data["ended"]["how"] == "goodbye" and data["ended"]["node"] == "text_queued"
    assert data["accepts"] == [] and data["waiting"] is None
    text = data["text"]
    assert text["shown"] and "report-remove" in text["body"]
    assert text["segments"] == textbody.segments(text["body"])


def test_a_number_is_collected_until_hash_as_twilio_does(staff):
    staff.start("withheld")
    staff.keys("#1")
    assert staff.do("say", "hello")["turns"][-1]["refused"] == "this step listens for keys only"
    for index, key in enumerate("07400123456", start=1):
        data = staff.do("key", key)
        assert data["new"] == 0 and data["buffer"] == "07400123456"[:index]
    data = staff.do("key", "#")
    assert data["buffer"] == ""
    assert data["turns"][-1]["value"] == "07400123456"
    assert data["turns"][-1]["did"] == "Keyed in 07400123456"
    assert data["node"] == "number_confirm"
    data = staff.do("key", "1")
    assert data["text"]["shown"] and data["text"]["to"] == "+44*******456"


def test_silence_sends_the_keys_so_far_like_a_timeout(staff):
    staff.start("landline")
    staff.keys("#1")
    staff.keys("0740012")
    data = staff.do("silence")
    assert data["turns"][-1]["value"] == "0740012"
    assert data["node"] == "number_entry"  # not a mobile number: asked again


def test_hanging_up_ends_the_call_and_says_so(staff):
    staff.start()
    data = staff.do("hang_up")
    assert data["ended"]["how"] == "hung up"
    assert data["turns"][-1]["did"] == "Hung up"
    refused = staff.do("key", "1")
    assert refused["turns"][-1]["refused"] == "the line had already hung up"


def test_a_new_call_hangs_up_the_old_one(staff):
    first = staff.start()
    second = staff.start()
    assert first["id"] != second["id"]
    old = staff.web.get(f"/simulator/api/calls/{first['id']}").get_json()
    assert old["ended"]["how"] == "hung up"


def test_a_reload_finds_the_call(staff):
    data = staff.start()
    staff.do("key", "2")
    page = staff.web.get("/simulator").get_data(as_text=True)
    assert f'data-current="{data["id"]}"' in page
    again = staff.web.get(f"/simulator/api/calls/{data['id']}").get_json()
    assert again["node"] == "removal" and len(again["turns"]) == 2


@pytest.mark.parametrize("body, message", [
    ({"do": "key", "value": "12"}, "Press one key"),
    ({"do": "key", "value": "a"}, "Press one key"),
    ({"do": "dance"}, "Unknown action"),
    ({"do": "say", "value": "x" * 501}, "at most 500"),
])
def test_bad_actions_are_refused(staff, body, message):
    staff.start()
    response = staff.web.post(f"/simulator/api/calls/{staff.call_id}/actions", json=body,
                              headers={"X-CSRF-Token": staff.csrf})
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_only_the_known_caller_numbers(staff):
    response = staff.web.post("/simulator/api/calls", json={"from": "+447700900999"},
                              headers={"X-CSRF-Token": staff.csrf})
    assert response.status_code == 400


def test_the_api_needs_login_and_the_csrf_header(sim_app, staff):
    staff.start()
    stranger = sim_app.test_client()
    assert stranger.post("/simulator/api/calls", json={}).status_code == 401
    no_header = staff.web.post(f"/simulator/api/calls/{staff.call_id}/actions",
                               json={"do": "key", "value": "1"})
    assert no_header.status_code == 403
    assert staff.web.post("/simulator/api/calls", json={}).status_code == 403


def test_another_session_cannot_drive_my_call(sim_app, staff):
    staff.start()
    other = Staff(sim_app)
    response = other.web.post(f"/simulator/api/calls/{staff.call_id}/actions",
                              json={"do": "key", "value": "9"},
                              headers={"X-CSRF-Token": other.csrf})
    assert response.status_code == 404
    assert other.web.get(f"/simulator/api/calls/{staff.call_id}").status_code == 404


def test_simulated_calls_are_marked_and_their_texts_kept_locally(sim_app, staff):
    import sqlalchemy as sa

    from ivr import store

    staff.start()
    staff.keys("2#1")
    with sim_app.app_context(), store.read() as conn:
        rows = conn.execute(sa.select(store.outbox.c.simulated, store.outbox.c.status)).all()
        local = conn.execute(sa.select(store.local_texts.c.simulated)).all()
    assert [tuple(row) for row in rows] == [(True, "sent")]
    assert [tuple(row) for row in local] == [(True,)]


def test_the_call_store_has_a_cap_and_an_expiry(tmp_path, database_url):
    sim_app = make_app(tmp_path, DATABASE_URL=database_url)
    now = [datetime(2026, 11, 27, 9, 0, tzinfo=UTC)]

    def later(seconds):
        now[0] += timedelta(seconds=seconds)

    calls = CallStore(cap=2, expiry=60, clock=lambda: now[0])
    with sim_app.app_context():
        def new_call():
            return SimulatedCall(local_transport(sim_app), "mobile")

        first = calls.add(new_call(), "me")
        later(1)
        second = calls.add(new_call(), "me")
        held = calls.get(first, "me")
        assert isinstance(held.call, SimulatedCall) and held.owner == "me"
        assert held.call.caller.transport is not None and held.call.flow is not None
        assert calls.get(first, "someone else") is None
        later(1)
        calls.save(first, held)  # an action: now the most recently used
        later(1)
        third = calls.add(new_call(), "me")  # over the cap: the least recently used goes
        assert len(calls) == 2 and _rows(sim_app) == {first, third}
        assert calls.get(second, "me") is None
        later(61)
        assert calls.get(first, "me") is None and len(calls) == 0
        fourth = calls.add(new_call(), "me")  # an add deletes the expired rows
        assert _rows(sim_app) == {fourth}
        later(61)
        assert calls.prune() == 1 and _rows(sim_app) == set()  # what `ivr purge` calls


def _rows(app) -> set[str]:
    with app.app_context(), store.read() as conn:
        return set(conn.execute(sa.select(simulator_calls.c.id)).scalars())


def _move(staff, client) -> None:
    """The staff member's next request lands in the other process: same browser, same cookie."""
    cookie = staff.web.get_cookie("session")
    client.set_cookie("session", cookie.value)
    staff.web = client


@pytest.fixture
def two_processes(tmp_path, database_url):
    """Two apps over one database (SQLite and PostgreSQL), as gunicorn's two workers: (a, b)."""
    return tuple(make_app(tmp_path / name, STAFF_PASSWORD=PASSWORD, DATABASE_URL=database_url)
                 for name in ("a", "b"))


SCRIPT = [("key", "2"), ("key", "0"), ("key", "9"), ("key", "#"), ("key", "1")]


def test_a_call_goes_on_whichever_process_serves_each_request(sim_app, two_processes):
    alone = Staff(sim_app)
    expected = [alone.start()["steps"]] + [alone.do(*action)["steps"] for action in SCRIPT]

    a, b = two_processes
    staff = Staff(a)
    clients = [staff.web, b.test_client()]
    data = staff.start()
    steps = [data["steps"]]
    assert data["node"] == "main"
    nodes = []
    for index, action in enumerate(SCRIPT):
        _move(staff, clients[(index + 1) % 2])  # b, a, b, a, b
        data = staff.do(*action)
        steps.append(data["steps"])
        nodes.append(data["node"])
    assert nodes == ["removal", "main", "urgent", "finish", "text_queued"]
    assert steps == expected
    assert [turn["did"] for turn in data["turns"]] == [
        "Called the line", "Pressed 2", "Pressed 0", "Pressed 9", "Pressed hash", "Pressed 1"]
    assert data["ended"]["how"] == "goodbye"
    text = data["text"]
    assert text["shown"] and "report-remove" in text["body"]
    _move(staff, clients[0])
    again = staff.web.get(f"/simulator/api/calls/{staff.call_id}").get_json()
    assert again["steps"] == data["steps"] and again["text"] == text
    refused = staff.do("key", "1")
    assert refused["turns"][-1]["refused"] == "the line had already hung up"


def test_hanging_up_in_the_other_process_ends_the_call_with_its_text_note(two_processes):
    a, b = two_processes
    staff = Staff(a)
    clients = {"a": staff.web, "b": b.test_client()}
    staff.start("withheld")
    for where, keys in (("b", "#"), ("a", "1"), ("b", "07400"), ("a", "123456#")):
        _move(staff, clients[where])
        data = staff.keys(keys)
    assert data["node"] == "number_confirm"
    _move(staff, clients["b"])
    data = staff.do("hang_up")
    assert data["ended"]["how"] == "hung up"
    assert data["text"]["sent"] is False and "never confirmed" in data["text"]["note"]
    _move(staff, clients["a"])
    page = staff.web.get("/simulator").get_data(as_text=True)
    assert f'data-current="{staff.call_id}"' in page
    shown = staff.web.get(f"/simulator/api/calls/{staff.call_id}").get_json()
    assert shown["ended"]["how"] == "hung up" and shown["text"] == data["text"]


def test_another_session_cannot_drive_my_call_in_another_process(two_processes):
    a, b = two_processes
    staff = Staff(a)
    staff.start()
    other = Staff(b)  # logged in too, but another session: another sim_owner
    response = other.web.post(f"/simulator/api/calls/{staff.call_id}/actions",
                              json={"do": "key", "value": "9"},
                              headers={"X-CSRF-Token": other.csrf})
    assert response.status_code == 404
    assert "ended or expired" in response.get_json()["error"]
    assert other.web.get(f"/simulator/api/calls/{staff.call_id}").status_code == 404
    _move(staff, b.test_client())
    assert staff.do("key", "9")["node"] == "urgent"  # untouched by the other session


def _idle(app, minutes) -> None:
    with app.app_context(), store.begin() as conn:
        conn.execute(sa.update(simulator_calls)
                     .values(touched=datetime.now(UTC) - timedelta(minutes=minutes)))


def test_a_call_idle_for_30_minutes_has_expired(sim_app, two_processes):
    a, b = two_processes
    staff = Staff(a)
    staff.start()
    _idle(a, 29)
    _move(staff, b.test_client())
    assert staff.do("key", "2")["node"] == "removal"
    with b.app_context(), store.read() as conn:  # the action counts as use
        touched = conn.execute(sa.select(simulator_calls.c.touched)).scalar_one()
    touched = touched if touched.tzinfo else touched.replace(tzinfo=UTC)  # SQLite: naive UTC
    assert abs(datetime.now(UTC) - touched) < timedelta(minutes=1)
    assert staff.web.get(f"/simulator/api/calls/{staff.call_id}").status_code == 200
    _idle(b, 31)
    response = staff.do("key", "0", expect=404)
    assert response["error"] == "That practice call has ended or expired. Start a new call."
    assert staff.web.get(f"/simulator/api/calls/{staff.call_id}").status_code == 404
    assert staff.start()["node"] == "main"  # a new call, and the old row is gone
    assert _rows(b) == {staff.call_id}


def test_the_cap_is_kept_across_processes(two_processes):
    a, b = two_processes
    for app in (a, b):
        app.extensions["calm_line.simulator_calls"].cap = 3
    started = [Staff(app).start()["id"] for app in (a, b, a, b, a)]
    assert _rows(a) == set(started[-3:])


def test_a_stored_call_that_cannot_be_read_is_over(staff, sim_app):
    staff.start()
    with sim_app.app_context(), store.begin() as conn:
        conn.execute(sa.update(simulator_calls).values(data="not a practice call"))
    assert staff.do("key", "9", expect=404)["error"].startswith("That practice call has ended")


def test_a_database_error_is_a_clear_json_error(staff, sim_app):
    staff.start()
    with sim_app.app_context(), store.begin() as conn:
        conn.execute(sa.text("DROP TABLE simulator_calls"))
    for response in (
        staff.web.get(f"/simulator/api/calls/{staff.call_id}"),
        staff.web.post(f"/simulator/api/calls/{staff.call_id}/actions",
                       json={"do": "key", "value": "9"}, headers={"X-CSRF-Token": staff.csrf}),
        staff.web.post("/simulator/api/calls", json={"from": "mobile"},
                       headers={"X-CSRF-Token": staff.csrf}),
    ):
        assert response.status_code == 503
        assert response.is_json
        assert response.get_json() == {
            "error": "The simulator cannot reach its database just now. Try again in a moment."}


def test_a_stored_call_is_json_and_keeps_no_transport_flow_or_token(staff, sim_app):
    staff.start()
    with sim_app.app_context(), store.read() as conn:
        data = conn.execute(sa.select(simulator_calls.c.data)).scalar_one()
    stored = json.loads(data)
    assert stored["version"] == 1
    call = saved.loads(data)
    assert call.flow is None and call.text_reader is None
    assert call.caller.transport is None and call.caller.validator is None
    assert conftest.AUTH_TOKEN not in data
    assert call.node == "main" and call.caller.pending is not None
    assert saved.dumps(call) == data


class _Opens:
    """A pickle that, when loaded, creates a file: what a database writer could plant."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_planted_in_the_database_is_never_run(staff, sim_app, tmp_path):
    staff.start()
    marker = tmp_path / "planted"
    with sim_app.app_context(), store.begin() as conn:
        conn.execute(sa.text("UPDATE simulator_calls SET data = :data"),
                     {"data": pickle.dumps(_Opens(marker))})
    assert staff.do("key", "9", expect=404)["error"].startswith("That practice call has ended")
    assert not marker.exists()


@pytest.mark.parametrize("data", ['{"version": 2, "call": {}, "caller": {}}',
                                  '{"version": 1, "call": {"entries": [{"__class__": 1}]}, '
                                  '"caller": {}}', "[]", '{"version": 1}'])
def test_stored_calls_of_another_shape_are_unreadable(data):
    with pytest.raises(saved.Unreadable):
        saved.loads(data)


# -- the page, as HTML ----------------------------------------------------------------------------


def test_the_page_is_plain_html_with_labels_and_live_regions(staff):
    response = staff.web.get("/simulator")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="en-GB">' in html
    assert 'name="viewport"' in html
    assert '<label for="say-text">What the caller says</label>' in html
    assert 'id="transcript" class="transcript" aria-live="polite"' in html
    assert 'role="status"' in html
    assert html.count('class="key"') == 12
    assert 'aria-label="star"' in html and 'aria-label="hash"' in html
    assert "<legend>Caller's number</legend>" in html
    assert "http://" not in html.replace("http://localhost", "")  # no CDN
    assert "<script>" not in html  # no inline script: the CSP forbids it
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for asset in ("/simulator/static/simulator.js", "/staff/static/staff.css"):
        assert asset in html
        assert staff.web.get(asset).status_code == 200


# -- the page in a real browser -------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "test-output" / "simulator"


def _browser_or_skip():
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "Playwright for Python is not installed (pip install -e '.[dev]')"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests must run in CI: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="module")
def shots():
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    print(f"\nscreenshots of the simulator: {SHOTS}")
    return SHOTS


@pytest.fixture
def site(tmp_path):
    app = make_app(tmp_path, STAFF_PASSWORD=PASSWORD, TESTING=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def browser():
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


def _page(browser, width=1280, height=900):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def _log_in(page, site, password=PASSWORD):
    page.goto(site + "/simulator")
    page.get_by_label("Staff password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _screenshot(page, path):
    page.evaluate("window.scrollTo(0, 0)")  # the keypad is sticky: show it at the top
    page.screenshot(path=str(path), full_page=True)


def _last_turn(page):
    return page.locator("#transcript > li").last


@pytest.mark.browser
def test_browser_wrong_password_is_refused(browser, site, shots):
    from playwright.sync_api import expect

    page = _page(browser)
    _log_in(page, site, password="not the password")
    expect(page.get_by_role("alert")).to_contain_text("That password is not right")
    assert "/staff/login" in page.url
    _screenshot(page, shots / "login-refused.png")
    _log_in(page, site)
    expect(page.get_by_role("heading", name="Practice call")).to_be_visible()


@pytest.mark.browser
def test_browser_press_9_hears_999(browser, site, shots):
    from playwright.sync_api import expect

    page = _page(browser)
    _log_in(page, site)
    page.get_by_role("button", name="Start a call").click()
    expect(page.locator("#transcript .step").first).to_have_text("welcome")
    expect(page.locator("#status")).to_contain_text("waits for a key or words")
    page.get_by_role("button", name="9", exact=True).click()
    last = _last_turn(page)
    expect(last).to_contain_text("Pressed 9")
    expect(last.locator(".step")).to_have_text(["urgent"])
    assert NINE_NINE_NINE.search(last.locator(".turn__said p").first.inner_text())
    _screenshot(page, shots / "urgent-999.png")


@pytest.mark.browser
def test_browser_removal_branch_to_the_text_by_keyboard_and_speech(browser, site, shots):
    from playwright.sync_api import expect

    page = _page(browser)
    _log_in(page, site)
    page.get_by_label("Mobile").check()
    page.get_by_role("button", name="Start a call").click()
    expect(page.locator("#status")).to_contain_text("at step main")
    page.locator("body").press("2")  # keys typed anywhere on the page
    expect(_last_turn(page).locator(".step")).to_have_text(["removal"])
    page.get_by_label("What the caller says").fill("finish")
    page.get_by_role("button", name="Say it").click()
    expect(_last_turn(page)).to_contain_text('Said "finish"')
    expect(_last_turn(page).locator(".turn__understood")).to_have_text("understood as: finish, 1.00 (nav)")
    expect(_last_turn(page).locator(".step")).to_have_text(["finish"])
    page.get_by_role("button", name="1", exact=True).click()  # yes, text me
    ended = page.locator("#ended")
    expect(ended).to_be_visible()
    expect(ended).to_contain_text("The line said goodbye and hung up.")
    expect(page.locator("#text-meta")).to_contain_text(re.compile(r"\d segments?"))
    link = page.locator("#text-body a", has_text="report-remove")
    expect(link).to_have_count(1)
    assert "childline.org.uk" in link.get_attribute("href")
    expect(page.get_by_role("button", name="9", exact=True)).to_be_disabled()
    _screenshot(page, shots / "call-ended-with-text.png")


@pytest.mark.browser
def test_browser_phone_sized_screen_keyed_number(browser, site, shots):
    from playwright.sync_api import expect

    page = _page(browser, width=360, height=780)
    _log_in(page, site)
    page.get_by_label("Withheld").check()
    page.get_by_role("button", name="Start a call").click()
    expect(page.locator("#status")).to_contain_text("at step main")
    page.keyboard.press("#")
    expect(_last_turn(page).locator(".step")).to_have_text(["finish"])
    page.keyboard.press("1")
    expect(page.locator("#status")).to_contain_text("waits for a number")
    for key in "07400123456":
        page.keyboard.press(key)
    expect(page.locator("#keyed")).to_have_text("07400123456")
    page.keyboard.press("#")
    expect(_last_turn(page)).to_contain_text("Keyed in 07400123456")
    expect(_last_turn(page).locator(".step")).to_have_text(["number_confirm"])
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px screen"
    _screenshot(page, shots / "phone-number-entry.png")
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#ended")).to_contain_text("The caller hung up.")
    expect(page.locator("#text-note")).to_contain_text("never confirmed")


def test_each_spoken_turn_says_how_the_line_understood_it(staff):
    staff.start()
    turn = staff.do("say", "it's up on snapchat, can you get it taken off")["turns"][-1]
    assert turn["understood"]["as"] == "removal" and turn["understood"]["layer"] == "match"
    assert 0 < turn["understood"]["score"] <= 1 and turn["steps"][-1] == "removal"
    turn = staff.do("say", "nobody is in danger but he is being blackmailed")["turns"][-1]
    assert turn["understood"]["as"] == "urgent" and turn["understood"]["layer"] == "urgent"
    assert staff.do("key", "0")["turns"][-1]["understood"] is None  # keys are not words
