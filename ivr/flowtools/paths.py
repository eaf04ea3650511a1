"""Path tests that staff write: a call, step by step, in a YAML file under paths/.

A path file says who calls, what they do (press keys, say words, stay silent,
hang up) and what they must hear after each thing they do, then what the text
after the call must hold. `ivr paths` plays each file with the call player
(ivr.call.caller, the same one the simulator uses) against the line in this
process, or against a deployed line with --url, and names the file and line of
the first step that did not go as written, with what was heard instead.

    # A parent asks about the school, then takes no text.
    caller: mobile            # mobile, landline or withheld
    steps:
      - hear: "999"           # words the line must say (a phrase, any case)
      - press: "3"
      - hear: school
      - press: "#"
      - say: "no"
      - the line hangs up
    text: none                # or: text: {holds: [NSPCC], lacks: [CEOP]}

This module is pure: it parses and plays; the command (commands.py) prints.
"""
from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ivr import yamlfile
from ivr.call.caller import SIMULATED_FROM, Caller, TwimlError
from ivr.problems import FlowError, Problem

CALLERS = tuple(SIMULATED_FROM)  # mobile, landline, withheld
KEYS = frozenset("0123456789*#")
DIAL_RESULTS = ("completed", "busy", "no-answer", "failed")
SETTINGS = ("NSPCC_DIAL_NUMBER",)  # settings a path may need (in-process runs only)
# The words a step may be written with: what a member of staff would write.
WORDS = {
    "silence": ("stay silent", "silence", "say nothing", "wait"),
    "hang_up": ("hang up", "hangup", "the caller hangs up"),
    "ends": ("the line hangs up", "line hangs up", "the call ends", "call ends"),
}
VALUED = {"hear": "hear", "not hear": "not_hear", "press": "press", "say": "say"}
TOP = {"name", "caller", "steps", "text", "settings", "when put through", "has replied STOP"}


@dataclass(frozen=True)
class Step:
    kind: str  # hear, not_hear, press, say, silence, hang_up, ends
    values: tuple[str, ...]  # the phrases to hear, the keys, or the words said
    line: int
    col: int

    def describe(self) -> str:
        if self.kind == "press":
            return f'press {self.values[0]}'
        if self.kind == "say":
            return f'say "{self.values[0]}"'
        return {"silence": "stay silent", "hang_up": "hang up",
                "ends": "the line hangs up"}.get(self.kind, self.kind)


@dataclass
class PathTest:
    file: str
    name: str
    caller: str
    steps: list[Step]
    text: dict | None = None  # {"none": bool, "holds": [...], "lacks": [...], "line": n}
    settings: dict = field(default_factory=dict)
    dial_result: str = "completed"
    replied_stop: bool = False  # the caller's number asked for no more texts, before this call


@dataclass
class Failure:
    file: str
    line: int
    col: int
    message: str
    heard: str = ""
    at: list[str] = field(default_factory=list)  # the line's steps (flows.yaml ids)

    def __str__(self) -> str:
        out = f"{self.file}:{self.line}:{self.col}: {self.message}"
        if self.heard:
            out += "\n" + textwrap.indent(textwrap.fill(f'heard instead: "{self.heard}"', 100),
                                          "    ")
        if self.at:
            out += f"\n    (the line was at: {' > '.join(self.at)})"
        return out


@dataclass
class Result:
    file: str
    name: str
    passed: bool
    steps: int
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reached: list[str] = field(default_factory=list)  # the flow's steps the call went through

    def to_dict(self) -> dict:
        return asdict(self)


# -- reading a path file ------------------------------------------------------------


def parse(path: str | Path) -> PathTest:
    """Read one path file; raise FlowError with file:line:col for every mistake in it."""
    doc = yamlfile.load(path)
    problems: list[Problem] = []

    def bad(where: tuple, message: str) -> None:
        problems.append(doc.problem(where, "P001", message))

    data = doc.data
    if not isinstance(data, dict):
        raise FlowError([doc.problem((), "P001", "a path file is a mapping: caller:, steps:, text:")])
    for key in data:
        if key not in TOP:
            bad((key,), f"unknown field {key!r}: use {', '.join(sorted(TOP))}")
    caller = str(data.get("caller", "mobile")).strip().lower()
    if caller not in CALLERS:
        bad(("caller",), f"caller {caller!r}: use {', '.join(CALLERS)}")
    dial_result = str(data.get("when put through", "completed")).strip().lower()
    if dial_result not in DIAL_RESULTS:
        bad(("when put through",), f"'when put through' is one of {', '.join(DIAL_RESULTS)}")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict) or any(k not in SETTINGS for k in settings):
        bad(("settings",), f"settings may set only {', '.join(SETTINGS)}")
        settings = {}
    for key, value in settings.items():  # each is a number to dial, as the setting takes it
        if not re.fullmatch(r"\+\d{7,15}", str(value)):
            bad(("settings", key), f"{key} is a number in the +44... form, in quotes")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        bad(("steps",), "steps: is a list of what the caller does and hears")
        raw_steps = []
    steps = [step for index, item in enumerate(raw_steps)
             if (step := _step(doc, index, item, bad)) is not None]
    text = _text(doc, data.get("text"), bad) if "text" in data else None
    replied_stop = data.get("has replied STOP", False)
    if not isinstance(replied_stop, bool):
        bad(("has replied STOP",), "'has replied STOP' is yes or no")
    if problems:
        raise FlowError(problems)
    name = str(data.get("name") or Path(path).stem.replace("-", " ").replace("_", " "))
    return PathTest(str(path), name, caller, steps, text,
                    {k: str(v) for k, v in settings.items()}, dial_result, bool(replied_stop))


def _step(doc, index: int, item, bad) -> Step | None:
    line, col = doc.where(("steps", index))
    if isinstance(item, str):
        words = " ".join(item.lower().split())
        for word_kind, spellings in WORDS.items():
            if words in spellings:
                return Step(word_kind, (), line, col)
        bad(("steps", index), f"{item!r} is not a step: write hear:, press:, say:, "
                              "stay silent, hang up or the line hangs up")
        return None
    if not isinstance(item, dict) or len(item) != 1:
        bad(("steps", index), "each step is one thing: hear:, not hear:, press:, say:, "
                              "stay silent, hang up or the line hangs up")
        return None
    (key, value), = item.items()
    kind = VALUED.get(" ".join(str(key).lower().split()))
    if kind is None:
        bad(("steps", index), f"{key!r} is not a step: use hear, not hear, press or say")
        return None
    where = ("steps", index, key)
    if kind == "press":
        keys = _keys(value)
        if keys is None:
            bad(where, f"press {value!r}: keys are 0-9, * and # in quotes, such as \"1\" "
                       "or \"07400123456#\" (a number without quotes loses its 0)")
            return None
        return Step(kind, (keys,), line, col)
    values = value if isinstance(value, list) else [value]
    values = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if not values or (kind == "say" and len(values) != 1):
        bad(where, f"{key}: needs words" + (" (one phrase)" if kind == "say" else ""))
        return None
    return Step(kind, tuple(values), line, col)


def _keys(value) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= 9:
        return str(value)  # press: 1 is clear enough; press: 0740... is not
    if isinstance(value, str):
        keys = value.replace(" ", "").replace(",", "")
        if keys and all(k in KEYS for k in keys):
            return keys
    return None


def _text(doc, value, bad) -> dict | None:
    line, _ = doc.where(("text",))
    if isinstance(value, str) and value.strip().lower() in ("none", "no text"):
        return {"none": True, "holds": [], "lacks": [], "line": line}
    if value is False:
        return {"none": True, "holds": [], "lacks": [], "line": line}
    if not isinstance(value, dict) or set(value) - {"holds", "lacks"}:
        bad(("text",), "text: is none, or holds: [words] and lacks: [words]")
        return None
    found = {}
    for key in ("holds", "lacks"):  # each phrase with its own line, for the failure
        items = value.get(key) or []
        items = items if isinstance(items, list) else [items]
        found[key] = [(str(v), doc.where(("text", key, i))[0]) for i, v in enumerate(items)]
    return {"none": False, **found, "line": line}


# -- matching words loosely -----------------------------------------------------------


def normal(words: str) -> str:
    """Lower case, punctuation as spaces, digits run together ("9 9 9" and "999" match)."""
    words = re.sub(r"[^\w]+", " ", words.lower().replace("'", "").replace("\u2019", ""))
    words = re.sub(r"(?<=\d) (?=\d)", "", words)
    return f" {' '.join(words.split())} "


def contains(heard: str, phrase: str) -> bool:
    return normal(phrase).strip() in normal(heard)


# -- playing a path -------------------------------------------------------------------


class Line:
    """Where the path calls: make_caller(from_number, dial_result) and read_text(call_sid).

    read_text returns the text's body, "" for no text, or None when it cannot be
    known (a deployed line keeps its texts to itself).
    """

    def __init__(self, make_caller: Callable[..., Caller],
                 read_text: Callable[[str], str | None] | None = None, where: str = "this process",
                 replied_stop: Callable[[str, bool], None] | None = None):
        self.make_caller, self.read_text, self.where = make_caller, read_text, where
        self.replied_stop = replied_stop  # (number, yes) marks a number as having sent STOP


class _Play:
    """One path file, played on one call."""

    def __init__(self, test: PathTest, caller: Caller):
        self.test, self.caller = test, caller
        self.heard: list[str] = []  # what the line said in answer to the last action
        self.at: list[str] = []
        self.reached: list[str] = []
        self.last_action = "calling the line"

    def fail(self, step: Step, message: str, heard: str = "") -> Failure:
        return Failure(self.test.file, step.line, step.col, message, heard, list(self.at))

    def answer(self, turns: Iterable) -> None:
        self.heard, self.at = [], []
        for turn in turns:
            self.heard += [s for s in turn.said if s]
            self.at += turn.steps
            self.reached += turn.steps

    def press(self, keys: str) -> list:
        """Keys as a caller presses them; Twilio posts them per <Gather> (numDigits, #)."""
        turns, buffer = [], ""
        for key in keys:
            gather = self.caller.pending
            if self.caller.ended or gather is None:
                raise TwimlError(f"the line had hung up before key {key}")
            if "dtmf" not in gather.get("input", "dtmf"):
                raise TwimlError("this step listens for words, not keys")
            finish = gather.get("finishOnKey", "#")
            if finish and key == finish:
                turns.append(self._digits(buffer))
                buffer = ""
                continue
            buffer += key
            if len(buffer) >= int(gather.get("numDigits") or 0) > 0:
                turns.append(self.caller.press(buffer))
                buffer = ""
        if buffer:  # the caller stopped keying: Twilio's timeout sends what it has
            turns.append(self.caller.press(buffer))
        return turns

    def _digits(self, digits: str):
        return self.caller.press(digits) if digits else self.caller.silence()

    def act(self, step: Step) -> Failure | None:
        if self.caller.ended and step.kind != "hang_up":
            return self.fail(step, f"cannot {step.describe()}: the line had already hung up "
                                   f"after {self.last_action}", " ".join(self.heard))
        try:
            if step.kind == "press":
                self.answer(self.press(step.values[0]))
            elif step.kind == "say":
                gather = self.caller.pending
                if gather is not None and "speech" not in gather.get("input", ""):
                    raise TwimlError("this step listens for keys only (key the number, then #)")
                self.answer([self.caller.say(step.values[0])])
            elif step.kind == "silence":
                self.answer([self.caller.silence()])
            elif step.kind == "hang_up":
                self.caller.ended = True
                self.answer([])
        except TwimlError as exc:
            return self.fail(step, f"{step.describe()}: {exc}", " ".join(self.heard))
        except OSError as exc:  # a deployed line that cannot be reached (URLError is one)
            return self.fail(step, f"{step.describe()}: could not reach the line: {exc}")
        self.last_action = step.describe()
        return None

    def check(self, step: Step) -> Failure | None:
        heard = " ".join(self.heard)
        if step.kind == "ends":
            if not self.caller.ended:
                return self.fail(step, f"expected the line to hang up after {self.last_action}, "
                                       "but it waits for the caller", heard)
            return None
        for phrase in step.values:
            found = contains(heard, phrase)
            if step.kind == "hear" and not found:
                return self.fail(step, f'expected to hear "{phrase}" after {self.last_action}',
                                 heard or "(nothing)")
            if step.kind == "not_hear" and found:
                return self.fail(step, f'did not expect to hear "{phrase}" after '
                                       f"{self.last_action}", heard)
        return None


def run(test: PathTest, line: Line) -> Result:
    """Play one path file on one call; the first step that does not go as written fails it."""
    result = Result(test.file, test.name, True, len(test.steps))
    number = SIMULATED_FROM[test.caller]
    if test.replied_stop:
        if line.replied_stop is None:
            result.notes.append(f"skipped: {line.where} cannot be told a number sent STOP")
            return result
        line.replied_stop(number, True)
    try:
        return _run(test, line, result, line.make_caller(number, test.dial_result))
    finally:
        if test.replied_stop and line.replied_stop is not None:
            line.replied_stop(number, False)  # the next path starts from a number that may text


def _run(test: PathTest, line: Line, result: Result, caller: Caller) -> Result:
    play = _Play(test, caller)
    first = Step("dial", (), 1, 1)
    try:
        play.answer([caller.dial()])
    except (TwimlError, OSError) as exc:
        result.failures.append(play.fail(first, f"the line did not answer: {exc}"))
    for step in test.steps if not result.failures else []:
        failure = play.act(step) if step.kind not in ("hear", "not_hear", "ends") \
            else play.check(step)
        if failure:
            result.failures.append(failure)
            break
    try:
        caller.hang_up()  # Twilio's status callback: it releases the text
    except Exception as exc:  # noqa: BLE001 - the line is unreachable: already a failure
        result.notes.append(f"could not post the end of the call: {exc}")
    if test.text is not None and not result.failures:
        _check_text(test, line, caller.call_sid, result)
    result.reached = list(dict.fromkeys(play.reached))
    result.passed = not result.failures
    return result


def _check_text(test: PathTest, line: Line, call_sid: str, result: Result) -> None:
    expect = test.text or {}
    body = line.read_text(call_sid) if line.read_text else None
    if body is None:
        result.notes.append(f"the text was not checked: {line.where} does not show its texts")
        return
    where = (test.file, expect["line"], 1)
    if expect["none"] and body:
        result.failures.append(Failure(*where, "expected no text, but one was arranged", body))
    elif not expect["none"] and not body:
        result.failures.append(Failure(*where, "expected a text, but none was arranged"))
    for phrase, at in expect["holds"] if body else []:
        if not contains(body, phrase):
            result.failures.append(Failure(test.file, at, 1,
                                           f'expected the text to hold "{phrase}"', body))
    for phrase, at in expect["lacks"] if body else []:
        if contains(body, phrase):
            result.failures.append(Failure(test.file, at, 1,
                                           f'expected the text not to hold "{phrase}"', body))


def local_line(app) -> Line:
    """The line in this process: an app made by in_process_app (or any app)."""
    from ivr.call.caller import FlaskTransport
    from ivr.texts import outbox

    def make(from_number: str, dial_result: str) -> Caller:
        return Caller(FlaskTransport(app), from_number=from_number, simulated=True,
                      dial_status=dial_result)

    def read_text(call_sid: str) -> str:
        with app.app_context():
            sent = outbox.local_sent(call_sid, limit=1)
        return sent[0]["body"] if sent else ""

    def replied_stop(number: str, yes: bool) -> None:
        with app.app_context():
            if yes:
                outbox.opt_out(number, source="path test")
            else:
                outbox.opt_in(number)

    return Line(make, read_text, replied_stop=replied_stop)


def remote_line(url: str, token: str) -> Line:
    """A deployed line: signed requests, every call marked as practice (no text, no figure)."""
    from ivr.call.caller import HttpTransport

    def make(from_number: str, dial_result: str) -> Caller:
        return Caller(HttpTransport(url, token), from_number=from_number, simulated=True,
                      dial_status=dial_result)

    return Line(make, None, where=url)


def in_process_app(flows_file: str, prompts_dir: str, folder: str, settings: dict | None = None):
    """A line of its own for the path tests: the given flow, a new SQLite file in folder,
    a token of its own, quiet logs. Raises FlowError when the flow is broken."""
    import secrets

    from ivr import create_app, store

    app = create_app({
        "FLOWS_FILE": str(flows_file), "PROMPTS_DIR": str(prompts_dir),
        "INSTANCE_PATH": str(folder), "DATABASE_URL": f"sqlite:///{folder}/paths.sqlite",
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16), "SECRET_KEY": secrets.token_hex(16),
        "STAFF_PASSWORD": secrets.token_hex(16), "LOG_LEVEL": "WARNING",
        **(settings or {}),
    })
    with app.app_context():
        store.upgrade()
    return app


def files_in(paths: Iterable[str | Path]) -> list[Path]:
    """The path files named, a folder as every .yaml in it, in a stable order."""
    found: list[Path] = []
    for path in map(Path, paths):
        found += sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() \
            else [path]
    return found


# -- a practice call as a path file (the simulator's "Save as a path test") ---------------


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def short_phrase(sentences: list[str], words: int = 6) -> str:
    """A few words to listen for: the start of the first sentence (writers change the rest)."""
    spoken = [s for s in sentences if s and not s.startswith("[")]
    if any(contains(s, "999") for s in spoken):
        return "999"  # the safety words: the one thing every path must keep
    for sentence in spoken:
        clause = re.split(r"[.,;:?!]", sentence)[0].split()
        chosen = clause if 3 <= len(clause) <= words else sentence.split()[:words]
        return " ".join(re.sub(r"[^\w' ]+", " ", " ".join(chosen)).split())
    return ""


def _text_yaml(text: dict | None) -> list[str]:
    """What the saved path expects of the text: its links' sites, which stay put."""
    if not text or not text.get("body"):
        return ["text: none"]
    sites = []
    for url in re.findall(r"(?:https?://)?((?:[\w-]+\.)+[a-z]{2,})(?:/\S*)?", text["body"]):
        site = url.removeprefix("www.")
        if site not in sites:
            sites.append(site)
    holds = ", ".join(_quote(site) for site in sites) or _quote("999")
    return ["text:", f"  holds: [{holds}]"]


def to_yaml(caller_kind: str, turns: list[dict], name: str = "A practice call",
            text: dict | None = None, ended: bool = True) -> str:
    """A path file from a practice call: turns are {action, value, said, ended, refused};
    text is the simulator's summary of the text (None: no text)."""
    caller_kind = caller_kind if caller_kind in CALLERS else "mobile"
    lines = [
        f"# {name}, saved from the simulator. Run it with: ivr paths this-file.yaml",
        "# Each 'hear' is a few words the line must say (any case); shorten them to what",
        "# matters, such as \"999\" or \"school\", so a change of wording elsewhere does not",
        "# break the test.",
        f"name: {_quote(name)}",
        f"caller: {caller_kind}        # mobile, landline or withheld",
        "steps:",
    ]
    hung_up = False
    for turn in turns:
        if turn.get("refused"):
            continue
        action, value = turn.get("action"), turn.get("value", "")
        if action == "key":
            lines.append(f"  - press: {_quote(value + ('#' if len(value) > 1 else '') or '#')}")
        elif action == "say":
            lines.append(f"  - say: {_quote(value)}")
        elif action == "silence":
            lines.append("  - stay silent")
        elif action == "hang_up":
            lines.append("  - hang up")
            hung_up = True
            continue
        said = [s for s in turn.get("said") or [] if s]
        if said:
            lines.append(f"  # the line said: {said[0][:90]}")
            phrase = short_phrase(said)
            if phrase:
                lines.append(f"  - hear: {_quote(phrase)}")
        if turn.get("ended") and not hung_up:
            lines.append("  - the line hangs up")
            hung_up = True
    if ended:
        lines += _text_yaml(text)
    return "\n".join(lines) + "\n"
