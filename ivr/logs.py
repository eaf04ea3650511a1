"""Logging that never shows a whole phone number.

Every record passes through PhoneMaskFilter on the way out, whoever logged
it (our code, Flask, SQLAlchemy, twilio-python), so a number that slips into
a message or an exception is masked as +44******123.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re

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


_plain = logging.Formatter()


def _masking_factory(factory):
    """Wrap the log record factory so every record is masked where it is made.

    Doing it at creation (not in one handler) covers every handler, pytest's
    capture included, and every library that logs.
    """

    def make(*args, **kwargs):
        record = factory(*args, **kwargs)
        try:
            record.msg, record.args = mask_text(record.getMessage()), ()
        except Exception:  # a malformed log call must not break the request
            record.msg, record.args = mask_text(str(record.msg)), ()
        if record.exc_info:  # formatted once here, so no handler sees the raw text
            record.exc_text = mask_text(_plain.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return record

    make._calm_line = True
    return make


def install_masking() -> None:
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "_calm_line", False):
        logging.setLogRecordFactory(_masking_factory(factory))


class MaskingFormatter(logging.Formatter):
    """Masks tracebacks too: an exception message can hold a number."""

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        return mask_text(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return mask_text(super().formatStack(stack_info))


class JsonFormatter(MaskingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        super().format(record)  # fills exc_text, masked
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
        handler._calm_line = True
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
