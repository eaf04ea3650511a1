"""Only Twilio may call the webhooks; proxies are trusted only when configured."""
from __future__ import annotations

import base64
import functools
import hashlib
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


def public_urls() -> list[str]:
    """The URLs Twilio may have signed for this request, the likeliest first.

    Twilio signs the URL exactly as it requested it, percent-escapes and
    all; request.url is rebuilt and decoded (?h=a%2Cb becomes ?h=a,b), so
    the raw request target comes first, then the rebuilt URL as before.
    With PUBLIC_BASE_URL set, it stands for the scheme and host (behind a
    TLS-terminating proxy or a tunnel the app sees http:// and an inner host;
    Twilio signed the https address it called).
    """
    base = current_app.config.get("PUBLIC_BASE_URL")
    raw = _raw_target()
    if base:
        query = request.query_string.decode("latin-1")
        rebuilt = base + request.path + (f"?{query}" if query else "")
        first = base + raw if raw else rebuilt
    else:
        rebuilt = request.url
        first = f"{request.scheme}://{request.host}{raw}" if raw else rebuilt
    return [first] if first == rebuilt else [first, rebuilt]


def public_url() -> str:
    """The URL Twilio signed (the likeliest form; see public_urls)."""
    return public_urls()[0]


def _exact_signature(token: bytes, url: str, params) -> str:
    """Twilio's HMAC-SHA1 over the URL exactly as given plus the sorted params.

    The same computation as RequestValidator.compute_signature, for one URL
    only: validate() parses the URL and always computes two signatures (with
    and without the port), which was a third of a webhook's time.
    """
    data = url + "".join(name + value for name in sorted(params.keys())
                         for value in sorted(set(params.getlist(name))))
    return base64.b64encode(hmac.new(token, data.encode("utf-8"), hashlib.sha1).digest()).decode()


def signature_ok() -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator: RequestValidator = current_app.extensions["calm_line.validator"]
    params = request.form if request.method == "POST" else {}
    urls = public_urls()
    if params is request.form:  # fast path: the URL exactly as Twilio requested it
        expected = _exact_signature(validator.token, urls[0], params)
        if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return True
    # Anything else (a port added or left out, a bad signature) gets the full check.
    return any(validator.validate(url, params, signature) for url in urls)


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
