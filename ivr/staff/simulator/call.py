"""One practice call, for `ivr simulate` and the /simulator page alike.

A thin layer over ivr.call.caller.Caller (the one interpreter of our TwiML): it
keeps what the member of staff did next to what the line answered, collects
keys the way Twilio's <Gather> does, says how the call ended, and fetches the
text that followed. Every call is marked simulated, so its text is never
sent through Twilio and it is counted as a test.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from ivr.call import engine
from ivr.call.caller import SIMULATED_FROM, Caller, FlaskTransport, TwimlError

KEYS = frozenset("0123456789*#")
SPOKEN_CONFIDENCE = 0.9  # the Confidence a practice caller's words are sent with
KEY_NAMES = {"*": "star", "#": "hash"}
ENDINGS = {
    "goodbye": "The line said goodbye and hung up.",
    "too many tries": "The line hung up after too many silences or wrong answers.",
    "hung up": "The caller hung up.",
    "error": "The line failed: a caller would hear Twilio's application error.",
}


class ScriptError(ValueError):
    """A scripted action that does not fit the call (not the line's fault)."""


@dataclass
class Entry:
    """What the caller did, and what the line answered."""

    action: str  # dial, key, say, silence, hang_up
    value: str = ""  # the keys Twilio posted (without a finishing #) or the words said
    url: str = ""
    status: int | None = None
    steps: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    waiting: str | None = None  # "menu" (a key or words), "digits" (a number then #), None
    ended: bool = False
    error: str | None = None  # the line answered with an error or TwiML Twilio could not play
    refused: str | None = None  # the caller's action did not fit this step (nothing was sent)
    gave_up: bool = False  # the line gave up on this step after too many tries
    # Seconds into the call (the estimate of `ivr check`): when this answer began, when
    # each sentence of `said` starts, when a key first counts, and, when the caller
    # answered before the line had finished, when they cut it.
    at: float = 0.0
    times: list[float] = field(default_factory=list)
    opens_at: float | None = None
    length: float = 0.0
    cut_at: float | None = None
    understood: dict | None = None  # words said: how the line read them (label, score, layer)

    def to_dict(self) -> dict:
        return {**asdict(self), "did": self.did}

    @property
    def did(self) -> str:
        """The caller's action in words, for transcripts."""
        if self.action == "dial":
            return "Called the line"
        if self.action == "key":
            if len(self.value) > 1:
                return f"Keyed in {self.value}"
            return f"Pressed {KEY_NAMES.get(self.value, self.value)}" if self.value \
                else "Pressed hash with no number"
        if self.action == "say":
            return f'Said "{self.value}"'
        if self.action == "silence":
            return "Said nothing"
        return "Hung up"


def caller_number(choice: str) -> tuple[str, str]:
    """'mobile' | 'landline' | 'withheld' | '+44...' -> (kind, number as Twilio sends it)."""
    choice = (choice or "mobile").strip()
    if choice.lower() in SIMULATED_FROM:
        return choice.lower(), SIMULATED_FROM[choice.lower()]
    if re.fullmatch(r"\+\d{7,15}", choice):
        return "number", choice
    raise ScriptError(f"caller number {choice!r}: use mobile, landline, withheld or +44...")


def local_transport(app) -> FlaskTransport:
    """Posts into this app (FlaskTransport signs for PUBLIC_BASE_URL when that is set)."""
    return FlaskTransport(app)


class SimulatedCall:
    """Drive one call. Every method returns the Entries it produced (possibly none)."""

    def __init__(self, transport, from_choice: str = "mobile", *, flow=None, text_reader=None,
                 at: str | None = None):
        self.from_kind, self.from_number = caller_number(from_choice)
        self.caller = Caller(transport, from_number=self.from_number, simulated=True, at=at)
        self.flow = flow  # to tell a give-up from a goodbye; optional
        self.text_reader = text_reader  # call_sid -> text dict | None, after the call ends
        self.entries: list[Entry] = []
        self.buffer = ""  # keys pressed at a number step, not yet sent (Twilio collects them)
        self.how: str | None = None  # how the call ended (ENDINGS)
        self.text: dict | None = None
        self.status_error: str | None = None  # the status callback failed (the line's fault)
        self.text_error: str | None = None  # the text could not be read back (a preview only)
        self.clock = 0.0  # seconds into the call, by the estimate of `ivr check`
        self.acting_after: float | None = None  # seconds into the last answer of the next action

    # -- kept between requests (the web simulator pickles its calls) --------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("flow", None)  # the app's flow: attached again, never stored
        state.pop("text_reader", None)
        return state  # the caller drops its transport itself (Caller.__getstate__)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"clock": 0.0, "acting_after": None, **state})
        self.flow = self.text_reader = None  # until attach()

    def attach(self, transport, *, flow=None, text_reader=None) -> None:
        """Reconnect a call restored from a pickle: what __init__ was given, but not kept."""
        self.caller.attach(transport)
        self.flow, self.text_reader = flow, text_reader

    # -- state ------------------------------------------------------------------
    @property
    def call_sid(self) -> str:
        return self.caller.call_sid

    @property
    def ended(self) -> bool:
        return self.how is not None

    @property
    def waiting(self) -> str | None:
        return None if self.ended or self.caller.pending is None else self.last_waiting

    @property
    def last_waiting(self) -> str | None:
        for entry in reversed(self.entries):
            if entry.refused is None:
                return entry.waiting
        return None

    @property
    def node(self) -> str | None:
        """The step the line is at (or ended on)."""
        for entry in reversed(self.entries):
            if entry.steps:
                return entry.steps[-1]
        return None

    @property
    def steps(self) -> list[str]:
        return [step for entry in self.entries for step in entry.steps]

    @property
    def ok(self) -> bool:
        return not self.status_error and not any(entry.error for entry in self.entries)

    def summary(self) -> dict:
        return {
            "call_sid": self.call_sid,
            "from": {"kind": self.from_kind, "number": self.from_number},
            "steps": self.steps,
            "turns": [entry.to_dict() for entry in self.entries],
            "waiting": self.waiting,
            "buffer": self.buffer,
            "ended": {"how": self.how, "node": self.node, "message": ENDINGS[self.how]}
            if self.how else None,
            "text": self.text,
            "text_error": self.text_error,
            "status_error": self.status_error,
            "ok": self.ok,
        }

    # -- what a caller does -----------------------------------------------------------
    def acting_at(self, seconds: float | None) -> None:
        """The next action comes this many seconds into the line's last answer (None: after
        it finished). Sooner than its end, it cuts the answer, as a key does on a phone."""
        self.acting_after = seconds if seconds is None else max(0.0, float(seconds))

    def start(self) -> list[Entry]:
        if self.entries:
            raise ScriptError("this call has already started")
        return self._play("dial", "", self.caller.dial)

    def choose_language(self, code: str) -> list[Entry]:
        """Choose another language as a caller does: its key (7 for Polish) in the welcome."""
        offers = {o.code: o for o in getattr(self.flow, "offers", ())}
        if code not in offers:
            known = ", ".join(offers) or "none"
            raise ScriptError(f"{code!r} is not a language the line offers (offered: {known})")
        entries = self.key(offers[code].key)
        self.flow = self.flow.in_language(code)
        return entries

    def key(self, key: str) -> list[Entry]:
        """One key, as a caller presses it: sent at once to a menu; at a number step
        collected until # (which Twilio does not send) or numDigits keys."""
        if key not in KEYS:
            raise ScriptError(f"{key!r} is not a phone key (0-9, * or #)")
        refused = self._refuse("key", key, "dtmf")
        if refused:
            return refused
        gather = self.caller.pending
        assert gather is not None  # _refuse() answered when nothing is waiting
        finish = gather.get("finishOnKey", "#")
        if finish and key == finish:
            digits, self.buffer = self.buffer, ""
            return self._send_digits(digits)
        self.buffer += key
        limit = int(gather.get("numDigits") or 0)
        if limit and len(self.buffer) >= limit:
            digits, self.buffer = self.buffer, ""
            return self._send_digits(digits)
        return []

    def keys(self, keys: str) -> list[Entry]:
        """A run of keys (e.g. 07400123456#). Keys left over when the caller stops are
        sent when Twilio's timeout ends the <Gather>, as Twilio does."""
        bad = [k for k in keys if k not in KEYS]
        if bad or not keys:
            raise ScriptError(f"{keys!r}: keys are 0-9, * and # only")
        entries: list[Entry] = []
        for index, key in enumerate(keys):
            if self.ended:
                entries += self._refused("key", keys[index:], "the line had already hung up")
                return entries
            entries += self.key(key)
            if entries and entries[-1].refused:
                return entries
        if self.buffer and not self.ended:
            digits, self.buffer = self.buffer, ""
            entries += self._send_digits(digits)
        return entries

    def say(self, words: str) -> list[Entry]:
        words = " ".join((words or "").split())
        if not words:
            return self.silence()
        refused = self._refuse("say", words, "speech")
        if refused:
            return refused
        return self._play("say", words, lambda: self.caller.say(words, SPOKEN_CONFIDENCE))

    def silence(self) -> list[Entry]:
        """Wait without a word: Twilio's timeout. Keys already pressed are sent then."""
        refused = self._refuse("silence", "", None)
        if refused:
            return refused
        if self.buffer:
            digits, self.buffer = self.buffer, ""
            return self._send_digits(digits)
        return self._play("silence", "", self.caller.silence)

    def hang_up(self) -> list[Entry]:
        if self.ended:
            return []
        entry = Entry("hang_up", url="/voice/status", ended=True)
        self.entries.append(entry)
        self._finish("hung up")
        return [entry]

    # -- how -----------------------------------------------------------------------
    def _refused(self, action: str, value: str, why: str) -> list[Entry]:
        entry = Entry(action, value, refused=why)
        self.entries.append(entry)
        return [entry]

    def _refuse(self, action: str, value: str, kind: str | None) -> list[Entry]:
        """An Entry explaining why this action cannot happen now, or [] when it can."""
        if not self.entries:
            return self._refused(action, value, "the call has not started")
        if self.ended or self.caller.pending is None:
            return self._refused(action, value, "the line had already hung up")
        accepts = self.caller.pending.get("input", "dtmf")
        if kind and kind not in accepts:
            wanted = "keys" if "dtmf" in accepts else "words"
            return self._refused(action, value, f"this step listens for {wanted} only")
        if action == "say" and self.buffer:
            return self._refused(action, value, "finish the number with # first")
        return []

    def _send_digits(self, digits: str) -> list[Entry]:
        if not digits:  # the finishing key alone: Twilio posts an empty result
            return self._play("key", "", self.caller.silence)
        return self._play("key", digits, lambda: self.caller.press(digits))

    def _move_clock(self, action: str) -> None:
        """Where the call's clock is when the caller acts: at the end of the last answer
        (plus the Gather's timeout for a silence), or where they cut it."""
        after, self.acting_after = self.acting_after, None
        last = next((e for e in reversed(self.entries) if e.said and not e.refused), None)
        if last is None:
            return
        end = last.at + last.length
        opens = last.opens_at if last.opens_at is not None else end
        if after is not None and last.at + after < end and action != "silence":
            last.cut_at = round(max(last.at + after, opens), 1)  # a key before it opens waits
            self.clock = last.cut_at
            return
        self.clock = end
        if action == "silence" and self.caller.pending is not None:
            self.clock += float(self.caller.pending.get("timeout") or 0)

    def _play(self, action: str, value: str, move) -> list[Entry]:
        waited_at = self.node
        count = len(self.caller.turns)
        self._move_clock(action)
        entry = Entry(action, value, at=round(self.clock, 1))
        if action == "say":
            entry.understood = self._understood(waited_at, value)
        try:
            turn = move()
        except TwimlError as exc:
            entry.error = str(exc)
            turn = self.caller.turns[-1] if len(self.caller.turns) > count else None
        except Exception as exc:  # the server could not be reached, or broke the connection
            entry.error = f"could not reach the line: {exc}"
            turn = None
        if turn is not None:
            entry.url, entry.status = turn.url, turn.status
            entry.steps, entry.said = list(turn.steps), list(turn.said)
            entry.waiting, entry.ended = turn.waiting, turn.ended
            entry.times = [round(self.clock + start, 1) for start in turn.starts]
            entry.length = round(turn.length, 1)
            if turn.opens_at is not None:
                entry.opens_at = round(self.clock + turn.opens_at, 1)
        self.entries.append(entry)
        if entry.error:
            entry.ended = True
            self._finish("error")
        elif entry.ended:
            entry.gave_up = self._gave_up(waited_at, entry)
            self._finish("too many tries" if entry.gave_up else "goodbye")
        else:
            entry.gave_up = self._gave_up(waited_at, entry)
        return [entry]

    def _understood(self, node_id: str | None, words: str) -> dict | None:
        """How the line reads these words at this menu: "understood as: removal, 0.82 (match)"."""
        node = self.flow.nodes.get(node_id) if self.flow is not None and node_id else None
        if node is None or node.type != "menu":
            return None
        heard = engine.understand(self.flow, node, None, words, SPOKEN_CONFIDENCE)
        result = heard.understanding
        if result is None:
            return None
        return {"as": result.label, "score": result.score, "layer": result.layer,
                "confirm": heard.unsure, "signals": list(result.signals)}

    def _gave_up(self, node_id: str | None, entry: Entry) -> bool:
        """Did the line give up on the caller here (rather than follow a choice)?"""
        flow = self.flow
        node = flow.nodes.get(node_id) if flow is not None and node_id else None
        if node is None or not entry.steps:
            return False
        target = node.target("on_give_up") or flow.give_up
        if entry.steps[0] != target:
            return False
        if node.type == "menu":
            digits = entry.value if entry.action == "key" else None
            speech = entry.value if entry.action == "say" else None
            return engine.understand(flow, node, digits, speech).kind != "key"
        return node.type == "number_entry" and target != node.target("next")

    def _finish(self, how: str) -> None:
        """The call is over: Twilio posts the status callback, which releases the text."""
        self.how = how
        self.buffer = ""
        try:
            code = self.caller.hang_up()
            if code != 200:
                self.status_error = f"/voice/status answered HTTP {code}"
        except Exception as exc:
            self.status_error = f"could not post the call's end to /voice/status: {exc}"
        if self.text_reader is None:
            return
        try:
            self.text = self.text_reader(self.call_sid)
        except Exception as exc:  # the text is a preview: the call itself has ended
            self.text_error = f"could not read the text: {exc}"


def parse_action(item: str) -> tuple[str, str]:
    """'key:1' | 'keys:07400123456#' | 'say:remove the picture' | 'silence' | 'hangup'."""
    kind, colon, value = item.partition(":")
    kind = kind.strip().lower().replace("-", "_")
    if kind == "say" and not colon:
        raise ScriptError(f"{item!r}: say what? Use say:words")
    if kind in ("key", "keys", "press"):
        value = value.strip()
        if not value or value == "-":
            return "silence", ""
        if any(k not in KEYS for k in value):
            raise ScriptError(f"{item!r}: keys are 0-9, * and # only")
        return "key", value
    if kind == "say":
        return ("say", value.strip()) if value.strip() else ("silence", "")
    if kind in ("silence", "wait", "-", "") and not value:
        return "silence", ""
    if kind in ("hangup", "hang_up", "q") and not value:
        return "hang_up", ""
    raise ScriptError(f"{item!r}: use key:1, say:words, silence or hangup")


def perform(call: SimulatedCall, action: str, value: str = "") -> list[Entry]:
    if action == "key":
        return call.keys(value)
    if action == "say":
        return call.say(value)
    if action == "silence":
        return call.silence()
    if action == "hang_up":
        return call.hang_up()
    raise ScriptError(f"unknown action {action!r}")
