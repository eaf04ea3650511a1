"""The staff pages in a real browser (Debian's Chromium): the flow diagram inside the staff
pages, the figures' practice switch, and pages that work for everyone (axe-core, keyboard
alone, a 390 px phone). The browser fixtures are the simulator's (test_simulator_web.py)."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from test_simulator_web import (  # noqa: F401 (fixtures)
    PASSWORD,
    Staff,
    _log_in,
    _page,
    browser,
    sim_app,
    site,
)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz is not installed (CI installs it)")


# -- the flow diagram, through the test client ---------------------------------------------


@needs_dot
def test_the_diagram_page_has_the_staff_header_the_svg_and_every_step(sim_app):  # noqa: F811
    staff = Staff(sim_app)
    page = staff.web.get("/simulator/diagram")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert 'aria-label="Staff pages"' in body and 'aria-current="page"' in body
    assert "<svg" in body and "<?xml" not in body and "<!DOCTYPE svg" not in body
    data = json.loads(re.search(r'<script id="steps-data" type="application/json">(.*?)</script>',
                                body, re.S).group(1))
    ids = [step["id"] for step in data]
    assert ids[:3] == ["welcome", "main", "urgent"]
    urgent = data[2]
    assert urgent["name"] == "If a child is at immediate risk"
    assert any("999" in sentence for sentence in urgent["heard"])
    for step in data:
        assert f'data-step="{step["id"]}"' in body


# -- the flow diagram, in the browser ------------------------------------------------------


@needs_dot
def test_browser_diagram_fits_the_width_zooms_and_shows_a_steps_words(browser, site):  # noqa: F811
    page = _page(browser, width=1280)
    _log_in(page, site)
    page.get_by_role("link", name="Flow diagram").click()
    page.wait_for_selector("#diagram svg")
    box = page.locator("#diagram")
    fits = page.evaluate("""() => {
        const box = document.getElementById('diagram');
        const svg = box.querySelector('svg');
        return [svg.getBoundingClientRect().width, box.clientWidth, box.scrollWidth];
    }""")
    assert fits[0] <= fits[1] and fits[2] <= fits[1] + 1  # the whole width is in view
    first = page.locator('#diagram g.node[data-step="welcome"]')
    assert first.is_visible()
    page.get_by_role("button", name="Zoom in").click()
    page.get_by_role("button", name="Zoom in").click()
    wider = page.evaluate("document.querySelector('#diagram svg').getBoundingClientRect().width")
    assert wider > fits[0] * 1.4
    assert page.evaluate("document.getElementById('diagram').scrollWidth") > fits[1]
    page.get_by_role("button", name="Fit to width").click()
    # Click the urgent step: its words appear beside the diagram.
    page.locator('#diagram g.node[data-step="urgent"]').click()
    assert page.locator("#step-title").inner_text() == "3. If a child is at immediate risk"
    assert "999" in page.locator("#step-heard").inner_text()
    # The keyboard reaches a step too: Tab to it, Enter.
    page.locator('#diagram g.node[data-step="school"]').focus()
    page.keyboard.press("Enter")
    assert "school" in page.locator("#step-title").inner_text().lower()
    assert page.evaluate("document.activeElement.id") == "step-title"
    # And the list under the diagram.
    page.get_by_role("button", name="The main menu", exact=True).click()
    assert "press 9" in page.locator("#step-heard").inner_text()
    assert box.is_visible()


# -- no sideways scroll on a phone --------------------------------------------------------

STAFF_PAGES = ["/staff/login", "/simulator", "/staff/stats", "/staff/stats?practice=1",
               "/simulator/diagram"]


def _scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_browser_no_page_scrolls_sideways_on_a_390_px_phone(browser, site):  # noqa: F811
    page = _page(browser, width=390, height=844)
    for public in ("/", "/staff/login"):  # the front page and the login need no session
        page.goto(site + public)
        assert _scroll_width(page) <= 390, public
    _log_in(page, site)
    for path in STAFF_PAGES[1:]:
        page.goto(site + path)
        page.wait_for_load_state("load")
        assert _scroll_width(page) <= 390, path


# -- no axe-core violations at WCAG 2.1 AA ----------------------------------------------------

WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def _axe_violations(page) -> list[str]:
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.skip("axe-playwright-python is not installed (pip install -e '.[dev]')")
    results = Axe().run(page, options=WCAG_21_AA)
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} element(s): "
            f"{[n['target'] for n in v['nodes']][:3]})"
            for v in results.response["violations"]]


@pytest.mark.parametrize("width", [1280, 390])
def test_browser_every_staff_page_passes_axe_at_wcag_21_aa(browser, site, width):  # noqa: F811
    page = _page(browser, width=width, height=900)
    page.goto(site + "/")
    found = {"/": _axe_violations(page)}  # the front page (issue 14), public
    page.goto(site + "/staff/login")
    found["/staff/login"] = _axe_violations(page)
    _log_in(page, site)
    for path in STAFF_PAGES[1:]:
        page.goto(site + path)
        page.wait_for_load_state("load")
        found[path] = _axe_violations(page)
    # The simulator during and after a call: the transcript, the text, "Save as a path test".
    page.goto(site + "/simulator")
    page.get_by_role("button", name="Start a call").click()
    page.wait_for_selector("#transcript li")
    found["/simulator (on a call)"] = _axe_violations(page)
    page.get_by_role("button", name="hash").click()
    page.wait_for_selector("#transcript li:nth-child(2)")
    page.get_by_role("button", name="1", exact=True).click()
    page.wait_for_selector("#ended:not([hidden])")
    found["/simulator (ended)"] = _axe_violations(page)
    assert {path: v for path, v in found.items() if v} == {}


# -- a whole practice call with the keyboard alone ---------------------------------------


def _tab_to(page, name: str, limit: int = 60) -> None:
    """Press Tab until the focused control is called name (its label, text or aria-label)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => {
            const el = document.activeElement;
            if (!el) return '';
            const label = el.labels && el.labels.length ? el.labels[0].innerText : '';
            return (el.getAttribute('aria-label') || label || el.innerText || '').trim();
        }""")
        if focused == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


def test_browser_a_whole_practice_call_with_the_keyboard_alone(browser, site):  # noqa: F811
    page = _page(browser, width=1280)
    page.goto(site + "/simulator")
    _tab_to(page, "Staff password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#start-form")
    _tab_to(page, "Start a call")
    page.keyboard.press("Enter")
    page.wait_for_selector("#transcript li")
    _tab_to(page, "2")  # the keypad's 2: getting an image removed
    page.keyboard.press("Enter")
    page.wait_for_selector("#transcript li:nth-child(2)")
    assert "Report Remove" in page.locator("#transcript li").nth(1).inner_text()
    _tab_to(page, "What the caller says")
    page.keyboard.type("finish")
    page.keyboard.press("Enter")
    page.wait_for_selector("#transcript li:nth-child(3)")
    _tab_to(page, "1")
    page.keyboard.press("Space")
    page.wait_for_selector("#ended:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "ended-title"  # told, not left behind
    assert "report-remove" in page.locator("#text-body").inner_text()
    _tab_to(page, "Save as a path test")
    assert page.evaluate("document.activeElement.getAttribute('href')").endswith("/path")
