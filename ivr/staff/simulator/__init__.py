"""The staff simulator: `ivr simulate` in a terminal and /simulator in a browser.

Both play calls through ivr.call.caller.Caller (signed webhooks, TwiML followed as
Twilio would), so what staff try is what callers get.
"""
from __future__ import annotations


def init_app(app) -> None:
    from ivr.staff.simulator import web

    web.init_app(app)
