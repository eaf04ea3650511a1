"""Logging that never shows a whole phone number, and that a request cannot forge.

Every record is masked where it is made, whoever logged it (our code, Flask,
SQLAlchemy, twilio-python, gunicorn), so a number that slips into a message
or an exception is masked as +44******123. Its message also has every
character that is not printable escaped (controls such as NUL, CR and LF;
format characters such as zero-width and right-to-left marks; line
separators): a path like ``/voice/x%0A2026-01-01 ... CRITICAL`` stays on its
own line, as ``\n``. A traceback keeps its lines, each indented, so none can
pass for a record of its own. ``GunicornLogger`` does the same for the
access log (gunicorn.conf.py names it).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re

from gunicorn import glogging

# Seven or more digits, maybe with a leading + and spaces between them: a
# phone number as people and Twilio write it. Dashes, dots and brackets are not
# separators, so dates, times and "400 (21211)" in a log line stay readable.
# Not inside a word, so hex digests and SIDs are left alone.
_PHONE = re.compile(r"(?<![\w])\+?\d(?:\s*\d){6,}(?!\w)")


def mask_number(number: str | None) -> str:
    """+447400123456 -> +44******456 (first three and last three kept)."""
    if not number:
        return "-"
    digits = re.sub(r"[^\d+]", "", number)
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 6) + digits[-3:]


def mask_text(text: str) -> str:
    return _PHONE.sub(lambda match: mask_number(match.group(0)), text)


def hash_call_sid(call_sid: str | None) -> str:
    """A short stable tag for a call, so log lines can be joined without the CallSid."""
    if not call_sid:
        return "-"
    return hashlib.sha256(call_sid.encode()).hexdigest()[:12]


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    """Every character that is not printable (controls, format characters, line and
    paragraph separators, odd spaces) as a backslash escape: one record, one line."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape_char(char) for char in text)


def _escape_lines(text: str) -> str:
    """A traceback: its lines kept, everything else in them escaped."""
    return "\n".join(escape(line) for line in text.split("\n"))


_plain = logging.Formatter()


def _masking_factory(factory):
    """Wrap the log record factory so every record is masked where it is made.

    Doing it at creation (not in one handler) covers every handler, pytest's
    capture included, and every library that logs.
    """

    def make(*args, **kwargs):
        record = factory(*args, **kwargs)
        try:
            record.msg, record.args = escape(mask_text(record.getMessage())), ()
        except Exception:  # a malformed log call must not break the request
            record.msg, record.args = escape(mask_text(str(record.msg))), ()
        if record.exc_info:  # formatted once here, so no handler sees the raw text
            record.exc_text = _escape_lines(mask_text(_plain.formatException(record.exc_info)))
        if record.stack_info:
            record.stack_info = _escape_lines(mask_text(record.stack_info))
        return record

    make._calm_line = True
    return make


def install_masking() -> None:
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "_calm_line", False):
        logging.setLogRecordFactory(_masking_factory(factory))


class MaskingFormatter(logging.Formatter):
    """Masks tracebacks too (an exception message can hold a number), and indents every
    line after a record's first, so a line at the margin is always a record of its own."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\n    ")

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        return _escape_lines(mask_text(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _escape_lines(mask_text(super().formatStack(stack_info)))


class JsonFormatter(MaskingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        logging.Formatter.format(self, record)  # fills exc_text, masked
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry)


# The least a line must be to reach the console; the `ivr` command raises it to
# WARNING (no chatter unless something is wrong, or -v) before it builds the app.
_console_level = logging.NOTSET


def set_console_level(level: int) -> None:
    """Show only records at this level or above on the console (NOTSET: all of them)."""
    global _console_level
    _console_level = level
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_calm_line", False):
            handler.setLevel(level)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Mask every record; install one handler on the root logger (idempotent)."""
    install_masking()
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_calm_line", False):
            break
    else:
        handler = logging.StreamHandler()
        handler._calm_line = True  # type: ignore[attr-defined]  # marks our own handler
        root.addHandler(handler)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.setLevel(_console_level)
    root.setLevel(level)
    # Alembic names each of its plugins at INFO on every start: noise in a run's log.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _safe_atom(value: object) -> object:
    # A quote would end the quoted field early; everything unprintable is escaped.
    return escape(value).replace('"', "\\x22") if isinstance(value, str) else value


class _EscapedAtoms(dict):
    """gunicorn's access-log fields, each escaped as the format reads it (as gunicorn's
    SafeAtoms: a header's name in any case, "-" for a field it does not have). The format
    reads five of some thirty (every request header is one); escaping them all, and
    gunicorn's copy of them all with its quotes escaped, was work on every request."""

    def __getitem__(self, key: str) -> object:
        if key.startswith("{"):
            key = key.lower()
        return _safe_atom(self.get(key, "-"))


class GunicornLogger(glogging.Logger):
    """gunicorn's logger with every access-log field escaped (gunicorn.conf.py: logger_class).

    gunicorn fills %(U)s with the decoded path: without this, a request for
    /x%0A<a fake line> writes that fake line into the access log, and NUL, CR
    or a right-to-left mark reach it too.
    """

    atoms_wrapper_class = _EscapedAtoms

    def setup(self, cfg):  # type: ignore[no-untyped-def]
        install_masking()  # gunicorn's own error lines are escaped and masked too
        super().setup(cfg)


class OutageLog:
    """For a loop that keeps failing the same way (the database down): one line with the
    traceback when the trouble starts, one short summary a minute while it lasts, one
    line when it ends. Never a traceback every turn of the loop (thread-safe enough: one
    loop owns each)."""

    def __init__(self, logger: logging.Logger, what: str, every: float = 60.0,
                 clock=None) -> None:
        import time

        self.logger, self.what, self.every = logger, what, every
        self.clock = clock or time.monotonic
        self.started: float | None = None
        self.failures = 0  # since the outage started
        self._since_summary = 0
        self._summary_at = 0.0

    @property
    def ongoing(self) -> bool:
        return self.started is not None

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        self.failures += 1
        self._since_summary += 1
        reason = _short(exc)
        if self.started is None:
            self.started, self._summary_at, self._since_summary = now, now, 0
            self.logger.error("%s: failing (%s); trying again, with a summary each minute "
                              "until it works", self.what, reason, exc_info=exc)
        elif now - self._summary_at >= self.every:
            self.logger.error("%s: still failing after %d s (%d failure(s) in the last "
                              "%d s; now: %s)", self.what, now - self.started,
                              self._since_summary, now - self._summary_at, reason)
            self._summary_at, self._since_summary = now, 0

    def succeeded(self) -> None:
        if self.started is None:
            return
        self.logger.warning("%s: working again after %d s (%d failure(s))", self.what,
                            self.clock() - self.started, self.failures)
        self.started, self.failures, self._since_summary = None, 0, 0


def _short(exc: BaseException) -> str:
    """The exception's kind and the first line of its message, briefly."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
