"""The front page at `/`: what the line is, and the way in for staff.

Nothing personal and no secrets: the same page for everyone, made from the
app's own routes, so the first address `dev.py run` prints is not a 404.
"""
from __future__ import annotations

from flask import Blueprint, Response, render_template, url_for
from werkzeug.routing import BuildError

bp = Blueprint("front", __name__, template_folder="templates", static_folder="static",
               static_url_path="/front")

# (label, endpoint, what it is for): listed only when the app has the page.
STAFF_LINKS = (
    ("Staff login", "staff.login", "for helpline staff"),
    ("Practice call simulator", "simulator.page", "play the real line, key by key"),
    ("Figures", "stats.page", "anonymous counts of calls and texts"),
)


def _numbers() -> dict[str, str]:
    """999 and the NSPCC number, from the words the line says (never typed twice)."""
    from ivr.call import content

    numbers = dict(content.flow().numbers)
    return {"emergency": numbers.get("emergency", "999"), "nspcc": numbers.get("nspcc", "")}


def _links() -> list[tuple[str, str, str]]:
    links = []
    for label, endpoint, what in STAFF_LINKS:
        try:
            links.append((label, url_for(endpoint), what))
        except BuildError:  # a page this app was built without
            continue
    return links


@bp.get("/")
def index() -> Response:
    response = Response(render_template("front/index.html", links=_links(),
                                        numbers=_numbers()))
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
