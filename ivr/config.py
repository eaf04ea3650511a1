"""Settings from the environment (and an optional .env), checked once at start.

A bad value stops the app with a message that names the variable, so an
operator never has to guess which of a dozen settings is wrong.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"setting {name}: {reason}")
        self.name = name


def _text(env, name, default=None):
    value = env.get(name, "")
    value = value.strip() if isinstance(value, str) else value
    return value if value not in ("", None) else default


def _number(env, name, default, kind=float, minimum=0):
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise SettingError(name, f"{raw!r} is not a number") from None
    if value < minimum:
        raise SettingError(name, f"must be at least {minimum}, got {raw!r}")
    return value


def _https_url(env, name):
    raw = _text(env, name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingError(name, f"{raw!r} is not an http(s) address like https://line.example.org")
    return raw.rstrip("/")


def _e164(env, name, region):
    raw = _text(env, name)
    if raw is None:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise SettingError(name, "is not a valid phone number (use the +44... form)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _nation(env, name):
    """Whose UK bank holidays close the dialled line: ENG (England and Wales), WLS, SCT, NIR."""
    raw = (_text(env, name, "ENG")).upper()
    if raw not in ("ENG", "WLS", "SCT", "NIR"):
        raise SettingError(name, f"{raw!r} is not ENG (England and Wales), WLS, SCT or NIR")
    return raw


def _account_sid(env, name, prefix):
    raw = _text(env, name)
    if raw is not None and not (raw.startswith(prefix) and len(raw) == 34):
        raise SettingError(name, f"should start with {prefix} and be 34 characters long")
    return raw


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(env, name, default: float, minimum: float = 0) -> float:
    """Seconds, written as 86400, 90m, 24h or 1d."""
    raw = _text(env, name)
    if raw is None:
        return default
    found = _DURATION.match(str(raw).lower())
    if not found:
        raise SettingError(name, f"{raw!r} is not a duration like 24h, 90m or 86400")
    seconds = float(found.group(1)) * _SECONDS[found.group(2)]
    if seconds < minimum:
        raise SettingError(name, f"must be at least {minimum:g} s, got {raw!r}")
    return seconds


def _regions(env, name, default: str) -> tuple[str, ...]:
    raw = _text(env, name) or default
    regions = tuple(dict.fromkeys(r.strip().upper() for r in raw.split(",") if r.strip()))
    for region in regions:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingError(name, f"{region!r} is not a region code like GB")
    if not regions:
        raise SettingError(name, "name at least one region, like GB")
    return regions


def from_env(env=None) -> dict:
    """Read every setting; raise SettingError naming the first bad one."""
    env = os.environ if env is None else env
    region = (_text(env, "DEFAULT_REGION", "GB")).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise SettingError("DEFAULT_REGION", f"{region!r} is not a region code like GB")
    log_format = _text(env, "LOG_FORMAT", "text").lower()
    if log_format not in ("text", "json"):
        raise SettingError("LOG_FORMAT", "must be text or json")
    return {
        "SECRET_KEY": _text(env, "SECRET_KEY"),
        "TWILIO_ACCOUNT_SID": _account_sid(env, "TWILIO_ACCOUNT_SID", "AC"),
        "TWILIO_AUTH_TOKEN": _text(env, "TWILIO_AUTH_TOKEN"),
        "TWILIO_FROM_NUMBER": _e164(env, "TWILIO_FROM_NUMBER", region),
        "TWILIO_MESSAGING_SERVICE_SID": _account_sid(env, "TWILIO_MESSAGING_SERVICE_SID", "MG"),
        "TWILIO_API_BASE_URL": _https_url(env, "TWILIO_API_BASE_URL"),
        "DATABASE_URL": _text(env, "DATABASE_URL"),
        "PUBLIC_BASE_URL": _https_url(env, "PUBLIC_BASE_URL"),
        "TRUSTED_PROXIES": _number(env, "TRUSTED_PROXIES", 0, int),
        "STAFF_PASSWORD": _text(env, "STAFF_PASSWORD"),
        "NSPCC_DIAL_NUMBER": _e164(env, "NSPCC_DIAL_NUMBER", region),
        "FLOWS_FILE": _text(env, "FLOWS_FILE", str(REPO_ROOT / "flows.yaml")),
        "PROMPTS_DIR": _text(env, "PROMPTS_DIR", str(REPO_ROOT / "prompts")),
        "DEFAULT_REGION": region,
        "TEXT_REGIONS": _regions(env, "TEXT_REGIONS", region),
        "TEXTS_PER_NUMBER_PER_DAY": _number(env, "TEXTS_PER_NUMBER_PER_DAY", 3, int, 1),
        "TEXTS_PER_HOUR": _number(env, "TEXTS_PER_HOUR", 100, int, 1),
        "BANK_HOLIDAYS": _nation(env, "BANK_HOLIDAYS"),
        "TEXT_MAX_SEGMENTS": _number(env, "TEXT_MAX_SEGMENTS", 3, int, 1),
        "SMS_RATE_PER_SECOND": _number(env, "SMS_RATE_PER_SECOND", 1.0, float, 0.01),
        "TEXT_HOLD_MINUTES": _number(env, "TEXT_HOLD_MINUTES", 10.0, float, 0),
        "SMS_MAX_ATTEMPTS": _number(env, "SMS_MAX_ATTEMPTS", 0, int, 0),  # 0: no limit
        "SMS_GIVE_UP_AFTER": _duration(env, "SMS_GIVE_UP_AFTER", 24 * 3600.0, 60),
        "SMS_RETRY_BASE_SECONDS": _number(env, "SMS_RETRY_BASE_SECONDS", 2.0, float, 0.01),
        "SMS_RETRY_MAX_SECONDS": _number(env, "SMS_RETRY_MAX_SECONDS", 300.0, float, 0.01),
        "SMS_LEASE_SECONDS": _number(env, "SMS_LEASE_SECONDS", 120.0, float, 1),
        "SMS_HTTP_TIMEOUT": _number(env, "SMS_HTTP_TIMEOUT", 15.0, float, 0.1),
        "LOG_LEVEL": _text(env, "LOG_LEVEL", "INFO").upper(),
        "LOG_FORMAT": log_format,
        "MAX_CONTENT_LENGTH": _number(env, "MAX_CONTENT_LENGTH", 64 * 1024, int, 1024),
        "METRICS_TOKEN": _text(env, "METRICS_TOKEN"),
        "READY_OUTBOX_MAX_WAIT_SECONDS": _number(env, "READY_OUTBOX_MAX_WAIT_SECONDS", 300, int, 1),
    }


def check(config: dict) -> None:
    """Settings that only make sense together."""
    region, regions = config.get("DEFAULT_REGION") or "GB", config.get("TEXT_REGIONS")
    if regions and region not in regions:
        raise SettingError("TEXT_REGIONS", (
            f"must include DEFAULT_REGION ({region}): callers key in numbers the way "
            f"{region} writes them, and those could never get a text"))
    if config.get("TWILIO_ACCOUNT_SID") and not config.get("TWILIO_AUTH_TOKEN"):
        raise SettingError("TWILIO_AUTH_TOKEN", "is needed when TWILIO_ACCOUNT_SID is set")
    if (
        config.get("TWILIO_ACCOUNT_SID")
        and not config.get("TWILIO_FROM_NUMBER")
        and not config.get("TWILIO_MESSAGING_SERVICE_SID")
    ):
        raise SettingError(
            "TWILIO_FROM_NUMBER",
            "set it (or TWILIO_MESSAGING_SERVICE_SID) so texts have a sender",
        )


def instance_secret(instance_path: str, filename: str) -> str:
    """A random secret kept in the instance folder, made on first use.

    The local run needs a stable secret key and a Twilio auth token to sign
    with; keeping them in the instance folder lets the simulator, the worker
    and the web process share them without anyone setting anything.
    """
    path = Path(instance_path) / filename
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
