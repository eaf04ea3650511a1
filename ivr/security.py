"""Only Twilio may call the webhooks; proxies are trusted only when configured."""
from __future__ import annotations

import functools
import logging

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator
from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)


def init_app(app) -> None:
    # X-Forwarded-* are believed only from as many proxies as the operator
    # says sit in front of us: never from anyone.
    proxies = app.config.get("TRUSTED_PROXIES") or 0
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies,
                                x_port=proxies)
    app.extensions["calm_line.validator"] = RequestValidator(app.config["TWILIO_AUTH_TOKEN"])


def public_url() -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL + path + query when set.

    Behind a TLS-terminating proxy or a tunnel the app sees http:// and an
    inner host; Twilio signed the https address it called.
    """
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return request.url
    query = request.query_string.decode("latin-1")
    return base + request.path + (f"?{query}" if query else "")


def signature_ok() -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator: RequestValidator = current_app.extensions["calm_line.validator"]
    params = request.form if request.method == "POST" else {}
    return validator.validate(public_url(), params, signature)


def twilio_signed(view):
    """403 unless the request carries Twilio's valid signature for this URL."""

    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not signature_ok():
            log.warning("refused %s %s: %s X-Twilio-Signature (check PUBLIC_BASE_URL "
                        "and TWILIO_AUTH_TOKEN)", request.method, request.path,
                        "wrong" if request.headers.get("X-Twilio-Signature") else "missing")
            abort(403)
        return view(*args, **kwargs)

    return checked
