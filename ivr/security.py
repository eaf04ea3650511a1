"""Only Twilio may call the webhooks; proxies are trusted only when configured."""
from __future__ import annotations

import functools
import hmac
import logging

from flask import abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
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
    app.session_interface = LazySessionInterface()


class LazySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building a signer for requests with no cookie.

    Twilio's webhooks never carry a session cookie, yet Flask built an
    itsdangerous serializer for every one of them (a tenth of a webhook's
    time). Staff pages with a cookie get exactly Flask's behaviour.
    """

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def _raw_target() -> str | None:
    """The path and query exactly as the client sent them (gunicorn, werkzeug: RAW_URI)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw or not raw.startswith("/"):
        return None
    try:  # WSGI hands raw bytes over as latin-1; Twilio signed the UTF-8 text
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def _rebuilt_url() -> str:
    """The URL as Flask rebuilds (and decodes) it: what the check used before the raw target."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return request.url
    query = request.query_string.decode("latin-1")
    return base + request.path + (f"?{query}" if query else "")


def public_url() -> str:
    """The URL Twilio signed: the request target exactly as sent, on our public address.

    Twilio signs the URL exactly as it requested it, percent-escapes and
    all; request.url is rebuilt and decoded (?h=a%2Cb becomes ?h=a,b). With
    PUBLIC_BASE_URL set, it stands for the scheme and host: behind a
    TLS-terminating proxy or a tunnel the app sees http:// and an inner
    host, while Twilio signed the https address it called.
    """
    raw = _raw_target()
    if raw is None:
        return _rebuilt_url()
    return (current_app.config.get("PUBLIC_BASE_URL") or f"{request.scheme}://{request.host}") + raw


def public_urls() -> list[str]:
    """The URLs Twilio may have signed for this request, the likeliest first."""
    first, rebuilt = public_url(), _rebuilt_url()
    return [first] if first == rebuilt else [first, rebuilt]


def signature_ok() -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator: RequestValidator = current_app.extensions["calm_line.validator"]
    params = request.form if request.method == "POST" else {}
    if params is request.form:
        # Fast path: one HMAC over the URL exactly as Twilio requested it.
        # validate() parses the URL and always computes two signatures (with
        # and without the port), which was a third of a webhook's time.
        expected = validator.compute_signature(public_url(), params)
        if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return True
    # Anything else (a port added or left out, a bad signature) gets the full check.
    return any(validator.validate(url, params, signature) for url in public_urls())


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
