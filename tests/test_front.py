"""The front page at `/` (issue 14): what the line is, links for staff, nothing personal."""
from __future__ import annotations

import re
from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.headings, self.lang, self._in = [], [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        if tag == "a":
            self.links.append(attrs.get("href"))
        if tag in ("h1", "h2"):
            self._in = tag

    def handle_data(self, data):
        if self._in:
            self.headings.append((self._in, data.strip()))
            self._in = None


def test_the_front_page_says_what_the_line_is_and_links_staff_pages(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = Page()
    page.feed(html)
    assert page.lang == "en-GB"
    assert page.headings[0] == ("h1", "Calm Line")
    assert ("h2", "For helpline staff") in page.headings
    assert {"/staff/login", "/simulator", "/staff/stats"} <= set(page.links)
    assert "nude or sexual image" in html and "call 999" in html and "0808 800 5000" in html
    for followed in ("/staff/login", "/simulator", "/staff/stats"):  # each answers, or asks for login
        assert client.get(followed).status_code in (200, 302)
    assert client.get("/front/front.css").status_code == 200


def test_the_front_page_holds_no_secret_or_personal_data(app, client):
    html = client.get("/").get_data(as_text=True)
    for secret in (app.config["SECRET_KEY"], app.config["TWILIO_AUTH_TOKEN"]):
        assert secret not in html
    assert not re.search(r"\+44\d{6,}|07\d{9}", html)  # no caller's number
    assert "csrf" not in html.lower()


def test_the_front_page_sends_a_strict_content_policy(client):
    response = client.get("/")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
