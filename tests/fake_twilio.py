"""A fake of Twilio's REST API (2010-04-01) for tests, plus the client glue.

``FakeTwilio`` is a tiny Flask app served by werkzeug on 127.0.0.1 in a
background thread. It speaks the shapes of Twilio's OpenAPI description
(twilio_api_v2010.json) for Messages and IncomingPhoneNumbers, answers errors
the way Twilio does (JSON ``code``/``message``/``more_info``/``status``), and
lets a test inject failures: 5xx, 429, dropped connections, latency and
per-number rejections.

``BaseUrlHttpClient`` (from ivr.texts.sender) points twilio-python at the fake:
twilio-python 9 has no base-URL setting, so the HTTP client rewrites the host
of every URL it is handed.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

import flask
from werkzeug.serving import make_server

from ivr.texts.body import segments as count_segments
from ivr.texts.sender import BaseUrlHttpClient  # noqa: F401 (tests import it from here)

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-token-0123456789abcdef"

# Keys of a stored message that are ours, not Twilio's: they are kept for
# assertions and stripped from every answer.
_MESSAGE_EXTRAS = ("form", "media_url", "status_callback")

# Twilio's own wording for the codes the fake can answer with.
_ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}

# Form parameters an IncomingPhoneNumber update may change; each is stored
# under the spec's snake_case name (VoiceFallbackUrl -> voice_fallback_url).
_NUMBER_UPDATABLE = (
    "FriendlyName",
    "VoiceUrl",
    "VoiceMethod",
    "VoiceFallbackUrl",
    "VoiceFallbackMethod",
    "StatusCallback",
    "StatusCallbackMethod",
    "SmsUrl",
    "SmsMethod",
    "SmsFallbackUrl",
    "SmsFallbackMethod",
)

# Segment counting lives in the app (ivr.texts.body); the fake bills with it too.


def _new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _now_rfc2822() -> str:
    # Twilio's format: "Thu, 24 Aug 2023 05:01:45 +0000".
    return format_datetime(datetime.now(UTC).replace(microsecond=0))


def _to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_response(status: int, code: int, message: str | None = None) -> flask.Response:
    """An error answer shaped like Twilio's."""
    body = {
        "code": code,
        "message": message or _ERROR_MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    response = flask.jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


@dataclass
class RecordedRequest:
    """One request the fake received.

    ``form`` and ``query`` keep the first value of each key (see a message's
    ``media_url`` for the repeated MediaUrl). ``status`` stays None for a
    dropped request. ``time`` is ``time.monotonic()`` at arrival, so tests
    can measure the gaps between retries.
    """

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    auth_ok: bool
    status: int | None = None
    time: float = field(default_factory=time.monotonic)


class FakeTwilio:
    """Twilio's REST API on a local port, with failure injection."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = ""
        # Handlers run on werkzeug's threads; the lock guards the state below.
        self._lock = threading.Lock()
        self._server = None
        self._thread: threading.Thread | None = None
        self.reset()
        self.app = self._build_app()

    # -- lifecycle -------------------------------------------------------

    def start(self) -> FakeTwilio:
        if self._server is not None:
            raise RuntimeError("FakeTwilio is already running")
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll interval keeps stop() (and so each test) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeTwilio",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget all traffic, data and injected behaviour."""
        with self._lock:
            self.requests: list[RecordedRequest] = []
            self.messages: list[dict] = []
            self.phone_numbers: dict[str, dict] = {}
            self._failures: deque[tuple[int, int]] = deque()
            self._rate_limited = 0
            self._dropped = 0
            self._latency = 0.0
            self._rejected: dict[str, int] = {}

    # -- behaviour injection ----------------------------------------------
    # Counters add up: fail_next(1) twice fails the next two creates.

    def fail_next(self, n: int, status: int = 500, code: int = 20500) -> None:
        """The next ``n`` message creates answer ``status`` with ``code``."""
        with self._lock:
            self._failures.extend([(status, code)] * n)

    def rate_limit_next(self, n: int) -> None:
        """The next ``n`` requests (of any kind) answer 429 / 20429."""
        with self._lock:
            self._rate_limited += n

    def drop_next(self, n: int) -> None:
        """The next ``n`` requests get their connection closed, no answer."""
        with self._lock:
            self._dropped += n

    def set_latency(self, seconds: float) -> None:
        """Every request waits ``seconds`` before it is handled."""
        with self._lock:
            self._latency = seconds

    def reject_number(self, number: str, code: int) -> None:
        """Messages to ``number`` answer 400 with ``code`` (21211, 21610, ...)."""
        with self._lock:
            self._rejected[number] = code

    # -- data ---------------------------------------------------------------

    def add_phone_number(self, phone_number: str, **fields: object) -> dict:
        """Own ``phone_number``; ``fields`` override spec fields (voice_url=...).

        Returns the stored resource itself, so later updates show in it.
        """
        resource = self._phone_number_resource(phone_number)
        unknown = set(fields) - set(resource)
        if unknown:
            # Catches typos such as VoiceUrl= instead of voice_url=.
            raise ValueError(f"not IncomingPhoneNumber fields: {sorted(unknown)}")
        resource.update(fields)
        with self._lock:
            self.phone_numbers[resource["sid"]] = resource
        return resource

    def _account_uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}"

    def _phone_number_resource(self, phone_number: str) -> dict:
        sid, now = _new_sid("PN"), _now_rfc2822()
        return {
            "account_sid": self.account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": API_VERSION,
            "beta": False,
            "bundle_sid": None,
            "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": now,
            "date_updated": now,
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "emergency_status": "Inactive",
            "friendly_name": phone_number,
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": phone_number,
            "sid": sid,
            "sms_application_sid": "",
            "sms_fallback_method": "POST",
            "sms_fallback_url": "",
            "sms_method": "POST",
            "sms_url": "",
            "status": "in-use",
            "status_callback": "",
            "status_callback_method": "POST",
            "trunk_sid": None,
            "type": "local",
            "uri": f"{self._account_uri()}/IncomingPhoneNumbers/{sid}.json",
            "voice_application_sid": "",
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": "",
            "voice_method": "POST",
            "voice_receive_mode": "voice",
            "voice_url": "",
        }

    def _message_resource(self, form) -> dict:
        sid, now = _new_sid("SM"), _now_rfc2822()
        uri = f"{self._account_uri()}/Messages/{sid}.json"
        sender = form.get("From") or None
        body = form.get("Body", "")
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": now,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": form.get("MessagingServiceSid") or None,
            "num_media": str(len(form.getlist("MediaUrl"))),
            "num_segments": str(count_segments(body)),
            "price": None,
            "price_unit": None,
            "sid": sid,
            # Twilio "accepts" a message a Messaging Service must still
            # pick a sender for; with a From it is queued at once.
            "status": "queued" if sender else "accepted",
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
            "to": form["To"],
            "uri": uri,
        }

    # -- the Flask app --------------------------------------------------------

    def _build_app(self) -> flask.Flask:
        app = flask.Flask(__name__)
        # Let drop_next's ConnectionAbortedError reach werkzeug, which then
        # abandons the connection instead of answering 500.
        app.config["PROPAGATE_EXCEPTIONS"] = True
        account = f"/{API_VERSION}/Accounts/<account_sid>"
        app.url_value_preprocessor(self._pop_account_sid)
        app.before_request(self._before_request)
        app.after_request(self._after_request)
        app.post(f"{account}/Messages.json")(self._create_message)
        app.get(f"{account}/Messages/<sid>.json")(self._fetch_message)
        app.get(f"{account}/IncomingPhoneNumbers.json")(self._list_numbers)
        app.get(f"{account}/IncomingPhoneNumbers/<sid>.json")(self._fetch_number)
        app.post(f"{account}/IncomingPhoneNumbers/<sid>.json")(self._update_number)
        # Unknown paths and methods both get Twilio's 404.
        app.register_error_handler(404, self._not_found)
        app.register_error_handler(405, self._not_found)
        return app

    @staticmethod
    def _pop_account_sid(endpoint: str | None, values: dict | None) -> None:
        flask.g.path_account_sid = (values or {}).pop("account_sid", None)

    def _before_request(self) -> flask.Response | None:
        record = self._record(flask.request)
        flask.g.record = record
        with self._lock:
            latency = self._latency
        time.sleep(latency)
        if self._take_counter("_dropped"):
            self._drop_connection()
        if self._take_counter("_rate_limited"):
            return error_response(429, 20429)
        if not record.auth_ok:
            return error_response(401, 20003)
        return None

    def _after_request(self, response: flask.Response) -> flask.Response:
        flask.g.record.status = response.status_code
        return response

    def _record(self, request: flask.Request) -> RecordedRequest:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.args.to_dict(),
            form=request.form.to_dict(),
            auth_ok=self._authorized(request),
        )
        with self._lock:
            self.requests.append(record)
        return record

    def _authorized(self, request: flask.Request) -> bool:
        auth = request.authorization
        path_sid = flask.g.get("path_account_sid")
        return (
            auth is not None
            and auth.type == "basic"
            and auth.username == self.account_sid
            and auth.password == self.auth_token
            and path_sid in (None, self.account_sid)
        )

    def _take_counter(self, name: str) -> bool:
        """Consume one unit of an injected-behaviour counter, if any is left."""
        with self._lock:
            left = getattr(self, name)
            if left:
                setattr(self, name, left - 1)
            return bool(left)

    @staticmethod
    def _drop_connection() -> None:
        # Shutting the socket down makes the client read EOF where the status
        # line should be (a connection error, not an HTTP error), and makes
        # werkzeug's keep-alive loop end instead of waiting for more requests.
        sock = flask.request.environ.get("werkzeug.socket")
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError("FakeTwilio dropped this request on purpose")

    @staticmethod
    def _not_found(_error: Exception) -> flask.Response:
        return error_response(
            404, 20404, f"The requested resource {flask.request.path} was not found"
        )

    # -- Messages -----------------------------------------------------------

    def _create_message(self) -> tuple[dict, int] | flask.Response:
        form = flask.request.form
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure:
            return error_response(*failure)
        problem = self._message_problem(form)
        if problem:
            return problem
        message = self._message_resource(form)
        message.update(
            form=form.to_dict(),
            media_url=form.getlist("MediaUrl"),
            status_callback=form.get("StatusCallback"),
        )
        with self._lock:
            self.messages.append(message)
        return _public_message(message), 201

    def _message_problem(self, form) -> flask.Response | None:
        """The 400 Twilio gives for this create, or None if it is fine."""
        if not form.get("To"):
            return error_response(400, 21604)
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return error_response(400, 21603)
        if not (form.get("Body") or form.get("MediaUrl")):
            return error_response(400, 21602)
        if len(form.get("Body", "")) > 1600:
            return error_response(400, 21617)
        with self._lock:
            rejected = self._rejected.get(form["To"])
        if rejected:
            return error_response(400, rejected)
        return None

    def _fetch_message(self, sid: str) -> dict | flask.Response:
        with self._lock:
            found = [m for m in self.messages if m["sid"] == sid]
        if not found:
            return self._not_found(None)
        return _public_message(found[0])

    # -- IncomingPhoneNumbers -------------------------------------------------

    def _list_numbers(self) -> dict:
        args = flask.request.args
        with self._lock:
            numbers = [n for n in self.phone_numbers.values() if _number_matches(n, args)]
        page_size = int(args.get("PageSize", 50))
        page = int(args.get("Page", 0))
        start = page * page_size
        items = numbers[start : start + page_size]
        has_next = start + page_size < len(numbers)
        return {
            "incoming_phone_numbers": [dict(n) for n in items],
            "start": start,
            "end": start + max(len(items) - 1, 0),
            "page": page,
            "page_size": page_size,
            "uri": self._numbers_page_uri(args, page_size, page),
            "first_page_uri": self._numbers_page_uri(args, page_size, 0),
            "next_page_uri": self._numbers_page_uri(args, page_size, page + 1)
            if has_next
            else None,
            "previous_page_uri": self._numbers_page_uri(args, page_size, page - 1)
            if page > 0
            else None,
        }

    def _numbers_page_uri(self, args, page_size: int, page: int) -> str:
        filters = {k: args[k] for k in ("FriendlyName", "PhoneNumber") if k in args}
        query = urlencode({**filters, "PageSize": page_size, "Page": page})
        return f"{self._account_uri()}/IncomingPhoneNumbers.json?{query}"

    def _fetch_number(self, sid: str) -> dict | flask.Response:
        with self._lock:
            number = self.phone_numbers.get(sid)
            return dict(number) if number else self._not_found(None)

    def _update_number(self, sid: str) -> dict | flask.Response:
        form = flask.request.form
        with self._lock:
            number = self.phone_numbers.get(sid)
            if number is None:
                return self._not_found(None)
            # Unknown parameters are ignored, as Twilio does.
            number.update({_to_snake(k): form[k] for k in _NUMBER_UPDATABLE if k in form})
            number["date_updated"] = _now_rfc2822()
            return dict(number)


def _public_message(message: dict) -> dict:
    return {k: v for k, v in message.items() if k not in _MESSAGE_EXTRAS}


def _number_matches(number: dict, args) -> bool:
    """Twilio's list filters: PhoneNumber may be partial, '*' is any digit."""
    if "FriendlyName" in args and number["friendly_name"] != args["FriendlyName"]:
        return False
    wanted = args.get("PhoneNumber")
    if not wanted:
        return True
    pattern = "".join(r"\d" if ch == "*" else re.escape(ch) for ch in wanted)
    return re.search(pattern, number["phone_number"]) is not None
