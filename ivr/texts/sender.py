"""Who actually sends a text: Twilio's REST API, or a local record.

With TWILIO_ACCOUNT_SID set, texts go through ``twilio.rest.Client``
(pointed at TWILIO_API_BASE_URL when that is set, e.g. a test double).
Without it, and always for texts from the staff simulator, the LocalSender
stores what would have been sent, so a local run and the simulator can show it.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
import sqlalchemy as sa
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ivr import store
from ivr.logs import mask_number
from ivr.texts import body as textbody

log = logging.getLogger(__name__)

EXTENSION = "calm_line.sender"
HTTP_TIMEOUT = 15  # seconds; well inside a worker's claim lease
# Twilio's codes for a message that will never go, whatever we retry (from Twilio's error list).
OPTED_OUT_CODE = 21610

# twilio-python logs each request's form (the To number) at INFO: keep it quiet.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


@dataclass(frozen=True)
class SendResult:
    sid: str | None
    status: str  # Twilio's status for the new message ("queued", "accepted"), or "sent" locally
    segments: int


class SendError(Exception):
    """A text that did not go. ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, code: int | None = None,
                 status: int | None = None, opted_out: bool = False):
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.status = status
        self.opted_out = opted_out


def classify(exc: BaseException) -> SendError:
    """Twilio's and the network's errors -> retry or not (README's table)."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, TwilioRestException):
        status, code = exc.status, exc.code
        if status == 429 or (status or 0) >= 500:
            return SendError(f"Twilio answered {status} ({code})", retryable=True,
                             code=code, status=status)
        return SendError(f"Twilio refused the text: {status} ({code})", retryable=False,
                         code=code, status=status, opted_out=code == OPTED_OUT_CODE)
    if isinstance(exc, requests.exceptions.RequestException | ConnectionError | TimeoutError):
        return SendError(f"network error: {type(exc).__name__}", retryable=True)
    return SendError(f"unexpected error: {type(exc).__name__}", retryable=True)


# -- Twilio -------------------------------------------------------------------


class BaseUrlHttpClient(TwilioHttpClient):
    """A TwilioHttpClient that sends every request to ``base_url`` instead.

    twilio-python 9 builds absolute URLs (api.twilio.com, or an edge/region
    host) with no setting to change them, so the rewrite happens here: scheme
    and host(:port) come from ``base_url``, path and query are kept. A path
    in ``base_url`` is put in front of the request's path.
    """

    def __init__(self, base_url: str, **kwargs: object) -> None:
        base = urlsplit(base_url)
        if not base.scheme or not base.netloc:
            raise ValueError(f"base_url needs a scheme and a host: {base_url!r}")
        self.base_url = base_url
        self._base = base
        # A loopback fake must be reached directly even when HTTP(S)_PROXY is
        # set in the environment: a proxy could not reach our 127.0.0.1.
        if _is_loopback(base.hostname):
            kwargs.setdefault("proxy", {"no_proxy": base.hostname})
        super().__init__(**kwargs)

    def rewrite_url(self, url: str) -> str:
        parts = urlsplit(url)
        path = self._base.path.rstrip("/") + parts.path
        return urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, ""))

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rewrite_url(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def make_client(config) -> Client:
    """twilio.rest.Client for the configured account (and API base URL, if any)."""
    timeout = float(config.get("SMS_HTTP_TIMEOUT") or HTTP_TIMEOUT)
    base_url = config.get("TWILIO_API_BASE_URL")
    http_client = (BaseUrlHttpClient(base_url, timeout=timeout) if base_url
                   else TwilioHttpClient(timeout=timeout))
    return Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
                  http_client=http_client)


class TwilioSender:
    kind = "twilio"

    def __init__(self, config, client: Client | None = None):
        self.client = client or make_client(config)
        self.from_number = config.get("TWILIO_FROM_NUMBER")
        self.messaging_service_sid = config.get("TWILIO_MESSAGING_SERVICE_SID")
        public = config.get("PUBLIC_BASE_URL")
        self.status_callback = public.rstrip("/") + "/sms/status" if public else None

    def send(self, to: str, body: str, **_context) -> SendResult:
        fields = {"to": to, "body": body}
        if self.messaging_service_sid:
            fields["messaging_service_sid"] = self.messaging_service_sid
        else:
            fields["from_"] = self.from_number
        if self.status_callback:
            fields["status_callback"] = self.status_callback
        try:
            message = self.client.messages.create(**fields)
        except Exception as exc:
            raise classify(exc) from exc
        try:
            parts = int(message.num_segments)
        except (TypeError, ValueError):
            parts = textbody.segments(body)
        return SendResult(sid=message.sid, status=message.status or "queued", segments=parts)


# -- the local record -------------------------------------------------------------


def record_local(conn, *, to: str | None, body: str, outbox_id: int | None = None,
                 call_key: str | None = None, simulated: bool = False) -> None:
    """Store a text the local sender 'sent' (the number masked: it is only for show)."""
    conn.execute(sa.insert(store.local_texts).values(
        outbox_id=outbox_id, call_key=call_key, to_masked=mask_number(to), body=body,
        segments=textbody.segments(body), simulated=simulated, created_at=store.utcnow(),
    ))


class LocalSender:
    """Stores what would have been sent (needs an app context)."""

    kind = "local"

    def send(self, to: str, body: str, *, outbox_id: int | None = None,
             call_key: str | None = None, simulated: bool = False, **_context) -> SendResult:
        with store.begin() as conn:
            record_local(conn, to=to, body=body, outbox_id=outbox_id, call_key=call_key,
                         simulated=simulated)
        log.info("local sender: text to %s recorded (not sent: no Twilio account)",
                 mask_number(to))
        return SendResult(sid=None, status="sent", segments=textbody.segments(body))


def build(config) -> TwilioSender | LocalSender:
    """Twilio when an account is configured, else the local record."""
    if config.get("TWILIO_ACCOUNT_SID"):
        return TwilioSender(config)
    return LocalSender()
