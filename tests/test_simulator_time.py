"""The simulator shows time, and a key during a long step cuts it (issue 14)."""
from __future__ import annotations

import pytest
from conftest import make_app
from test_hours import DIAL, with_hours
from test_simulator_web import PASSWORD, Staff, _log_in, _page, browser, site  # noqa: F401

from ivr.call import engine, speech
from ivr.config import REPO_ROOT
from ivr.flowtools.validate import load

FLOW, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")


@pytest.fixture
def staff(tmp_path):
    return Staff(make_app(tmp_path, STAFF_PASSWORD=PASSWORD))


def act(staff, action, value="", after=None, expect=200):
    response = staff.web.post(f"/simulator/api/calls/{staff.call_id}/actions",
                              json={"do": action, "value": value, "after": after},
                              headers={"X-CSRF-Token": staff.csrf})
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def test_each_sentence_has_its_seconds_into_the_call_by_the_check_estimate(staff):
    first = staff.start()["turns"][0]
    assert first["times"][0] == 0 and first["times"] == sorted(first["times"])
    assert len(first["times"]) == len(first["said"])
    assert first["opens_at"] == pytest.approx(speech.fastest(FLOW, [])[0], abs=0.1)
    step = engine.start(FLOW)
    assert first["length"] == pytest.approx(
        sum(speech.part_seconds(FLOW, p) for p in speech.playlist.parts(FLOW, step)), abs=0.2)


def test_a_key_during_the_welcome_cuts_it_there(staff):
    staff.start()
    data = act(staff, "key", "4", after=10)
    welcome, talk = data["turns"][0], data["turns"][1]
    assert welcome["cut_at"] == 10
    assert talk["steps"] == ["talk"] and talk["at"] == 10 and talk["times"][0] == 10
    heard = [s for s, t in zip(welcome["said"], welcome["times"], strict=True) if t < 10]
    assert "hang up now and call 9 9 9" in heard[0] and len(heard) < len(welcome["said"])
    number = next(t for s, t in zip(talk["said"], talk["times"], strict=True) if "0 8 0 8" in s)
    assert number < speech.NSPCC_GOAL


def test_a_key_before_the_999_sentence_ends_waits_for_it(staff):
    opens = staff.start()["turns"][0]["opens_at"]
    data = act(staff, "key", "4", after=1)
    assert data["turns"][0]["cut_at"] == opens and data["turns"][1]["at"] == opens


def test_acting_after_the_line_finished_cuts_nothing(staff):
    first = staff.start()["turns"][0]
    data = act(staff, "key", "4")
    assert data["turns"][0]["cut_at"] is None
    assert data["turns"][1]["at"] == pytest.approx(first["length"], abs=0.1)
    data = act(staff, "silence")  # the Gather's timeout passes too
    talk = data["turns"][1]
    assert data["turns"][2]["at"] == pytest.approx(talk["at"] + talk["length"] + 6, abs=0.1)


def test_an_odd_after_is_ignored(staff):
    staff.start()
    data = act(staff, "key", "4", after="soon")
    assert data["turns"][0]["cut_at"] is None


def test_the_simulator_plays_the_line_as_if_at_a_time(tmp_path):
    flows, prompts = with_hours(tmp_path, "    hours:\n      closed: [\"2026-12-25\"]\n")
    staff = Staff(make_app(tmp_path, STAFF_PASSWORD=PASSWORD, NSPCC_DIAL_NUMBER=DIAL,
                           FLOWS_FILE=str(flows), PROMPTS_DIR=str(prompts.parent)))
    bad = staff.web.post("/simulator/api/calls", json={"from": "mobile", "at": "Christmas"},
                         headers={"X-CSRF-Token": staff.csrf})
    assert bad.status_code == 400 and "2026-12-25 23:00" in bad.get_json()["error"]
    for at, closed in (("2026-12-25T23:00", True), ("2026-12-01T10:00", False)):
        response = staff.web.post("/simulator/api/calls", json={"from": "mobile", "at": at},
                                  headers={"X-CSRF-Token": staff.csrf})
        staff.call_id = response.get_json()["id"]
        act(staff, "key", "4")
        turn = act(staff, "key", "1")["turns"][-1]
        assert (turn["steps"][0] == "dial_closed") is closed
        assert any("dialling" in s for s in turn["said"]) is not closed


@pytest.mark.browser
def test_browser_shows_times_and_a_quick_key_cuts_the_welcome(browser, site):  # noqa: F811
    from playwright.sync_api import expect

    page = _page(browser)
    _log_in(page, site)
    page.get_by_label("Read the line's words aloud").uncheck()
    page.get_by_role("button", name="Start a call").click()
    expect(page.locator("#transcript .turn__time").first).to_have_text("0:00")
    page.get_by_role("button", name="4", exact=True).click()  # long before the welcome ends
    expect(page.locator("#transcript > li").last.locator(".step")).to_have_text(["talk"])
    welcome = page.locator("#transcript > li").first
    expect(welcome.locator(".turn__cut").first).to_be_visible()
    assert "9 9 9" in welcome.locator(".turn__said p").first.inner_text()
    assert welcome.locator(".turn__said p").first.get_attribute("class") != "turn__cut"
