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
    page.goto(site + "/staff/login")
    assert _scroll_width(page) <= 390
    _log_in(page, site)
    for path in STAFF_PAGES[1:]:
        page.goto(site + path)
        page.wait_for_load_state("load")
        assert _scroll_width(page) <= 390, path
