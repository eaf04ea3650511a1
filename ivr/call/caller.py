"""Play a call the way Twilio does: post signed webhooks, follow the TwiML.

One interpreter of our TwiML serves the tests, `ivr simulate` and the web
simulator, so what staff try is what callers get. It posts what Twilio posts
(CallSid, From, To, Digits or SpeechResult, ...) signed with the auth token,
and follows <Gather>, <Redirect>, <Dial>, <Hangup> and the end of the document.
"""
from __future__ import annotations

import secrets
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from twilio.request_validator import RequestValidator

from ivr.call import speech

# Verbs and attributes our TwiML may use: anything else is a bug that Twilio
# would answer with "an application error has occurred" (12100/12200).
TWIML_VERBS = {
    "Say": {"voice", "language", "loop"},
    "Pause": {"length"},
    "Gather": {"action", "method", "timeout", "input", "numDigits", "finishOnKey",
               "speechTimeout", "speechModel", "language", "hints", "actionOnEmptyResult",
               "profanityFilter", "enhanced", "partialResultCallback"},
    "Redirect": {"method"},
    "Hangup": set(),
    "Dial": {"action", "method", "timeout", "callerId", "record"},
    "Number": set(),
}
NESTED = {"Gather": {"Say", "Pause"}, "Dial": {"Number"}, "Say": {"break", "say-as", "prosody"}}
MAX_HOPS = 25  # redirects followed in a row before we call it a loop
SIMULATED_FROM = {
    "mobile": "+447400123456",
    "landline": "+442079460123",
    "withheld": "anonymous",
}


class TwimlError(AssertionError):
    """The line answered with something Twilio could not play."""


@dataclass
class Turn:
    """One answer from the line: what it said and what it now waits for."""

    url: str
    status: int
    steps: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    waiting: str | None = None  # "menu" (key or speech), "digits" (a number and #), None
    ended: bool = False
    xml: str = ""
    # When each sentence of `said` starts, in seconds from the start of this answer, by
    # the estimate `ivr check` uses (speech.py); when a key first counts; how long it all is.
    starts: list[float] = field(default_factory=list)
    opens_at: float | None = None
    length: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(self.said)


class FlaskTransport:
    """Posts into an app in this process (tests, `ivr simulate`)."""

    def __init__(self, app):
        self.client = app.test_client()
        self.token = app.config["TWILIO_AUTH_TOKEN"]
        # Sign what the app will check against: its public address when it has one.
        self.base = app.config.get("PUBLIC_BASE_URL") or "http://localhost"

    def post(self, path: str, params: dict, signature: str):
        response = self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        return response.status_code, response.headers, response.get_data(as_text=True)


class HttpTransport:
    """Posts to a running server (`ivr simulate --url`)."""

    def __init__(self, base: str, token: str, timeout: float = 15):
        self.base, self.token, self.timeout = base.rstrip("/"), token, timeout

    def post(self, path: str, params: dict, signature: str):
        data = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(self.base + path, data=data,
                                     headers={"X-Twilio-Signature": signature})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.headers, resp.read().decode()  # headers: any case
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read().decode(errors="replace")


def _check(element: ET.Element, parent: str | None = None) -> None:
    tag = element.tag
    allowed = NESTED.get(parent, set()) if parent else set(TWIML_VERBS)
    if parent == "Say" or tag in ("break", "say-as", "prosody"):
        if tag not in NESTED["Say"]:
            raise TwimlError(f"<{tag}> is not allowed inside <Say>")
        return
    if tag not in allowed:
        raise TwimlError(f"<{tag}> is not allowed {'inside <' + parent + '>' if parent else 'here'}")
    unknown = set(element.attrib) - TWIML_VERBS[tag]
    if unknown:
        raise TwimlError(f"<{tag}> has unknown attributes {sorted(unknown)}")
    for child in element:
        _check(child, tag)


def parse_twiml(xml: str) -> ET.Element:
    """Parse and check a TwiML document as strictly as Twilio would."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise TwimlError(f"not XML: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(f"the root is <{root.tag}>, not <Response>")
    for verb in root:
        _check(verb)
    return root


class Caller:
    """A caller on the line. Each method returns the Turn the line answered with."""

    def __init__(self, transport, from_number: str = SIMULATED_FROM["mobile"],
                 to_number: str = "+441134960000", call_sid: str | None = None,
                 simulated: bool = False, dial_status: str = "completed",
                 at: str | None = None):
        self.transport = transport
        self.validator = RequestValidator(transport.token)
        self.call_sid = call_sid or "CA" + secrets.token_hex(16)
        self.from_number, self.to_number = from_number, to_number
        self.simulated, self.dial_status = simulated, dial_status
        self.at = at  # a practice call played as if at this time ("2026-12-25 23:00", London)
        self.turns: list[Turn] = []
        self.pending: ET.Element | None = None  # the <Gather> we are inside
        self._rest: list[ET.Element] = []  # the verbs after it, played on silence
        self.pending_url: str = "/voice"
        self.ended = False

    # -- kept between requests (the web simulator pickles its calls) --------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("transport", None)  # a test client or a socket: not data
        state.pop("validator", None)  # holds the auth token: never stored
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.transport = self.validator = None  # until attach()

    def attach(self, transport) -> None:
        """Give a caller restored from a pickle its way to the line (and its signer) again."""
        self.transport = transport
        self.validator = RequestValidator(transport.token)

    # -- what a caller does -------------------------------------------------
    def dial(self) -> Turn:
        return self._post("/voice", {})

    def press(self, keys: str) -> Turn:
        """Keys as Twilio posts them: a number keyed in arrives without its finishing #."""
        return self._answer({"Digits": keys})

    def say(self, words: str, confidence: float = 0.9) -> Turn:
        return self._answer({"SpeechResult": words, "Confidence": str(confidence)})

    def silence(self) -> Turn:
        """Say nothing: Twilio posts an empty result (actionOnEmptyResult) or moves on."""
        gather = self._gather()
        if gather.get("actionOnEmptyResult") == "true":
            return self._post(gather.get("action") or self.pending_url, {})
        turn = Turn(url=self.pending_url, status=200)
        self.turns.append(turn)
        return self._run(self._rest, turn, hops=0)

    def hang_up(self, status: str = "completed") -> int:
        code, _, _ = self._send("/voice/status", {"CallStatus": status, "CallDuration": "60"})
        self.ended = True
        return code

    # -- the words so far -------------------------------------------------------
    @property
    def transcript(self) -> str:
        return " ".join(turn.text for turn in self.turns)

    @property
    def last(self) -> Turn:
        return self.turns[-1]

    # -- Twilio's side ------------------------------------------------------------
    def _gather(self) -> ET.Element:
        if self.ended or self.pending is None:
            raise TwimlError("the line is not waiting for input")
        return self.pending

    def _answer(self, params: dict) -> Turn:
        gather = self._gather()
        if "Digits" in params and "dtmf" not in gather.get("input", "dtmf"):
            raise TwimlError("this step does not take keys")
        if "SpeechResult" in params and "speech" not in gather.get("input", "dtmf"):
            raise TwimlError("this step does not take speech")
        return self._post(gather.get("action") or self.pending_url, params)

    def _params(self, extra: dict) -> dict:
        params = {
            "CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32,
            "From": self.from_number, "To": self.to_number, "Caller": self.from_number,
            "Called": self.to_number, "CallStatus": "in-progress", "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        if self.simulated:
            params["CalmLineSimulated"] = "1"
            at = getattr(self, "at", None)  # callers pickled before `at` existed have none
            if at:
                params["CalmLineAt"] = at
        params.update(extra)
        return params

    def _send(self, url: str, extra: dict):
        path = urllib.parse.urljoin(self.pending_url, url)
        params = self._params(extra)
        signature = self.validator.compute_signature(self.transport.base + path, params)
        return self.transport.post(path, params, signature)

    def _post(self, url: str, extra: dict, turn: Turn | None = None, hops: int = 0) -> Turn:
        path = urllib.parse.urljoin(self.pending_url, url)
        status, headers, body = self._send(path, extra)
        if turn is None:
            turn = Turn(url=path, status=status)
            self.turns.append(turn)
        turn.status, turn.xml = status, body
        turn.steps += [s for s in headers.get("X-Calm-Line-Steps", "").split(",") if s]
        if status != 200:
            raise TwimlError(f"{path} answered HTTP {status}")
        self.pending_url = path
        return self._run(list(parse_twiml(body)), turn, hops)

    @staticmethod
    def _speak(turn: Turn, verb: ET.Element) -> None:
        """Say or pause: the words and the clock of the turn move on."""
        if verb.tag == "Say":
            sentence = "".join(verb.itertext()).strip()
            turn.said.append(sentence)
            turn.starts.append(round(turn.length, 1))
            turn.length += len(speech.words(sentence)) / speech.WORDS_PER_SECOND
        elif verb.tag == "Pause":
            turn.length += float(verb.get("length") or 1)

    def _run(self, verbs: list[ET.Element], turn: Turn, hops: int) -> Turn:
        for index, verb in enumerate(verbs):
            if verb.tag in ("Say", "Pause"):
                self._speak(turn, verb)
            elif verb.tag == "Gather":
                turn.opens_at = round(turn.length, 1)
                for inner in verb:
                    self._speak(turn, inner)
                self.pending, self._rest = verb, verbs[index + 1:]
                turn.waiting = "menu" if "speech" in verb.get("input", "") else "digits"
                return turn
            elif verb.tag == "Redirect":
                if hops >= MAX_HOPS:
                    raise TwimlError("too many redirects in a row")
                return self._post((verb.text or "").strip(), {}, turn, hops + 1)
            elif verb.tag == "Dial":
                turn.said.append(f"[dialling {verb.findtext('Number', '').strip()}]")
                return self._post(verb.get("action") or self.pending_url,
                                  {"DialCallStatus": self.dial_status}, turn, hops + 1)
            elif verb.tag == "Hangup":
                break
        # <Hangup/> or the end of the document: Twilio ends the call.
        self.pending, turn.waiting, turn.ended, self.ended = None, None, True, True
        return turn
