"""Only Twilio may call the webhooks; proxies are trusted only when configured."""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import time
from urllib.parse import unquote

from flask import Request, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import cached_property

log = logging.getLogger(__name__)

EXTENSION = "calm_line.signatures"
FORM_TYPE = "application/x-www-form-urlencoded"


def init_app(app) -> None:
    # X-Forwarded-* are believed only from as many proxies as the operator
    # says sit in front of us: never from anyone.
    proxies = app.config.get("TRUSTED_PROXIES") or 0
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies,
                                x_port=proxies)
    app.extensions[EXTENSION] = Signatures(app.config["TWILIO_AUTH_TOKEN"],
                                           app.config.get("PUBLIC_BASE_URL"))
    app.session_interface = LazySessionInterface()
    app.request_class = WebhookRequest


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """Exactly what urllib's parse_qsl(text, keep_blank_values=True,
    errors="werkzeug.url_quote") gives, as werkzeug parses forms and queries,
    with no unquoting of the fields that need none (most of Twilio's).
    """
    pairs = []
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "%" in name or "+" in name:
            name = unquote(name.replace("+", " "), errors="werkzeug.url_quote")
        if "%" in value or "+" in value:
            value = _unquote_value(value)
        pairs.append((name, value))
    return pairs


def _unquote_value(value: str) -> str:
    # Twilio's numbers (From=%2B4474...) are the usual escapes: one replace, not unquote's
    # split and join; anything else goes through unquote as werkzeug does.
    if "+" not in value and value.count("%") == value.count("%2B"):
        return value.replace("%2B", "+")
    return unquote(value.replace("+", " "), errors="werkzeug.url_quote")


class WebhookForm(ImmutableMultiDict):
    """Werkzeug's ImmutableMultiDict, whose get() of a missing field returns the default
    without raising: werkzeug's get() looks the field up with [] and catches the
    BadRequestKeyError it makes, an HTTP exception built for every field Twilio did not
    send (SpeechResult, Confidence, Digits...), seven a menu answer, about 5 us each."""

    def get(self, key, default=None, type=None):  # noqa: A002 - werkzeug's own signature
        values = dict.get(self, key)
        if not values:
            return default
        if type is None:
            return values[0]
        try:
            return type(values[0])
        except (ValueError, TypeError):
            return default


class WebhookRequest(Request):
    """Flask's request, stamped when it is made (a webhook's time, with no before-request
    hook) and with its query parsed by parse_pairs: the same MultiDict, cheaper."""

    parameter_storage_class = WebhookForm

    def __init__(self, *args, **kwargs) -> None:
        self.started = time.perf_counter()
        super().__init__(*args, **kwargs)

    @cached_property
    def args(self) -> MultiDict[str, str]:
        return self.parameter_storage_class(parse_pairs(self.query_string.decode()))


class LazySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building a signer for requests with no cookie.

    Twilio's webhooks never carry a session cookie, yet Flask built an
    itsdangerous serializer for every one of them (a tenth of a webhook's
    time). Staff pages with a cookie get exactly Flask's behaviour.
    """

    def open_session(self, app, request):
        # No Cookie header at all (every Twilio webhook): not even the cookie parser runs.
        if app.secret_key and ("HTTP_COOKIE" not in request.environ
                               or not request.cookies.get(self.get_cookie_name(app))):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response) -> None:
        # Empty and never touched: Flask would work out the cookie's settings and do nothing.
        if not session and not session.modified and not session.accessed:
            return
        super().save_session(app, session, response)


class Signatures:
    """What the check needs, made once per app: the HMAC key, the validator, the base URL."""

    def __init__(self, token: str, public_base_url: str | None):
        self.validator = RequestValidator(token)
        self._mac = hmac.new(token.encode("utf-8"), digestmod=hashlib.sha1)  # copied per request
        self.base = public_base_url or None  # the scheme and host Twilio calls, if set

    def fast_match(self, url: str, pairs: list[tuple[str, str]], signature: str) -> bool:
        """Twilio's HMAC-SHA1 over the URL and the sorted pairs, compared in constant time.

        The same string RequestValidator.compute_signature builds (each name,
        then its distinct values in order, names sorted), built from the pairs
        as parsed from the body, with one HMAC and no URL parsing.
        """
        mac = self._mac.copy()
        mac.update((url + "".join(k + v for k, v in sorted(set(pairs)))).encode("utf-8"))
        expected = base64.b64encode(mac.digest())
        return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


def _signatures() -> Signatures:
    return current_app.extensions[EXTENSION]


def raw_target(environ) -> str | None:
    """The path and query exactly as the client sent them (gunicorn, werkzeug: RAW_URI)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw or not raw.startswith("/"):
        return None
    try:  # WSGI hands raw bytes over as latin-1; Twilio signed the UTF-8 text
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def signed_url(environ, base: str | None) -> str | None:
    """The URL Twilio signed, from the server's own fields: `base` (PUBLIC_BASE_URL) or the
    scheme and Host header as sent, then the raw target. None when the server gave no raw
    target or no Host: the caller rebuilds the URL as Flask does."""
    raw = raw_target(environ)
    if raw is None:
        return None
    if base is None:  # the host as sent: werkzeug's parsing and checks come with the fallback
        host = environ.get("HTTP_HOST")
        if not host:
            return None
        base = f"{environ['wsgi.url_scheme']}://{host}"
    return base + raw


def read_body(environ, limit: int | None) -> bytes | None:
    """The body, read straight from the server's input when its length is given and within
    limit (werkzeug's stream wrapper cost a fifth of the check); None for anything else
    (no length, chunked, too long): werkzeug reads those, and answers 413 beyond the limit."""
    length = environ.get("CONTENT_LENGTH", "")
    if (length.isdigit() and "HTTP_TRANSFER_ENCODING" not in environ
            and (limit is None or int(length) <= limit)):
        return environ["wsgi.input"].read(int(length))
    return None


def _rebuilt_url() -> str:
    """The URL as Flask rebuilds (and decodes) it: what the check used before the raw target."""
    base = _signatures().base
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
    return signed_url(request.environ, _signatures().base) or _rebuilt_url()


def public_urls() -> list[str]:
    """The URLs Twilio may have signed for this request, the likeliest first."""
    first, rebuilt = public_url(), _rebuilt_url()
    return [first] if first == rebuilt else [first, rebuilt]


def form_pairs() -> list[tuple[str, str]] | None:
    """A url-encoded POST's fields, parsed once from the raw body; Flask's form is made from them.

    Parsed as werkzeug parses a form (parse_pairs: parse_qsl's result, blank values kept, a body
    that is not UTF-8 reads as no fields), so the view sees the same
    request.form, without werkzeug's second pass over the stream.
    None for anything else (GET, multipart): the full check handles those.
    """
    wrapped = request._get_current_object()  # type: ignore[attr-defined]
    if wrapped.method != "POST":
        return None
    # The exact header, as Twilio sends it, needs no parsing; anything else is parsed.
    if wrapped.environ.get("CONTENT_TYPE") != FORM_TYPE and wrapped.mimetype != FORM_TYPE:
        return None
    if "form" in wrapped.__dict__:  # already parsed by someone: use that
        return list(wrapped.form.items(multi=True))
    body = _body(wrapped)
    try:
        pairs = parse_pairs(body.decode())
    except ValueError:  # werkzeug's form parser is silent here too: no fields
        pairs = []
    wrapped.__dict__["form"] = WebhookForm(pairs)
    wrapped.__dict__["files"] = ImmutableMultiDict()
    return pairs


def _body(wrapped: Request) -> bytes:
    body = read_body(wrapped.environ, wrapped.max_content_length)
    if body is None:
        return wrapped.get_data(cache=True)
    wrapped._cached_data = body  # type: ignore[attr-defined]  # get_data() returns it
    return body


def signature_ok() -> bool:
    signature = request.environ.get("HTTP_X_TWILIO_SIGNATURE", "")  # X-Twilio-Signature
    if not signature:
        return False
    signatures = _signatures()
    pairs = form_pairs()
    # Fast path: one HMAC over the URL exactly as Twilio requested it.
    if pairs is not None and signatures.fast_match(public_url(), pairs, signature):
        return True
    # Anything else (a port added or left out, a bad signature) gets twilio-python's
    # full check, which computes two signatures per URL.
    params = request.form if request.method == "POST" else {}
    return any(signatures.validator.validate(url, params, signature) for url in public_urls())


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
