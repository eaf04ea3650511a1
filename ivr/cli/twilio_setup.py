"""`ivr twilio configure --number +44...`: point a Twilio number at this deployment.

Sets the number's webhooks from PUBLIC_BASE_URL through Twilio's REST API
(twilio.rest.Client, pointed at TWILIO_API_BASE_URL when that is set):

    voice_url           POST {PUBLIC_BASE_URL}/voice
    voice_fallback_url  POST {PUBLIC_BASE_URL}/voice/fallback
    status_callback     POST {PUBLIC_BASE_URL}/voice/status
    sms_url             POST {PUBLIC_BASE_URL}/sms/inbound

A voice or SMS application set on the number would override these URLs, so
it is cleared too. Every field is printed before -> after; ``--dry-run``
prints the same and changes nothing.

Exit codes: 0 done (or nothing to do), 1 Twilio refused or could not be
reached or the number is not in the account, 2 a setting is missing or wrong
(checked before any request is made).
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import click
import phonenumbers
import requests
from flask import current_app
from flask.cli import with_appcontext
from twilio.base.exceptions import TwilioException, TwilioRestException

from ivr.texts import sender

# (field on the number, path under PUBLIC_BASE_URL or a fixed value)
URL_FIELDS = (
    ("voice_url", "/voice"),
    ("voice_fallback_url", "/voice/fallback"),
    ("status_callback", "/voice/status"),
    ("sms_url", "/sms/inbound"),
)
METHOD_FIELDS = ("voice_method", "voice_fallback_method", "status_callback_method", "sms_method")
# Set on a number, these win over its URLs: cleared so the URLs above are used.
APPLICATION_FIELDS = ("voice_application_sid", "sms_application_sid")
BAD_CREDENTIALS = 20003


class SetupError(click.ClickException):
    """A message for the operator and an exit code (1: Twilio, 2: our settings)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def public_base(config) -> str:
    """PUBLIC_BASE_URL, checked: https, and a host Twilio can reach."""
    base = (config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    if not base:
        raise SetupError("PUBLIC_BASE_URL is not set. Set it to the https address Twilio will "
                         "call, e.g. PUBLIC_BASE_URL=https://line.example.org", 2)
    parts = urlsplit(base)
    if parts.scheme != "https" or not parts.hostname:
        raise SetupError(f"PUBLIC_BASE_URL must be an https:// address (Twilio sends callers' "
                         f"numbers to it), not {base!r}.", 2)
    if _unreachable(parts.hostname):
        raise SetupError(f"PUBLIC_BASE_URL points at {parts.hostname}, which Twilio cannot "
                         "reach. Use the public address (or a tunnel's https address).", 2)
    if parts.query or parts.fragment:
        raise SetupError("PUBLIC_BASE_URL must not have a ?query or #fragment.", 2)
    return base


def _unreachable(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def wanted(base: str) -> dict[str, str]:
    values = {name: base + path for name, path in URL_FIELDS}
    values.update(dict.fromkeys(METHOD_FIELDS, "POST"))
    return values


def plan(number, base: str) -> list[Change]:
    """Every field we set, before -> after (application SIDs only when one is set)."""
    changes = [Change(name, getattr(number, name, None) or "", value)
               for name, value in wanted(base).items()]
    for name in APPLICATION_FIELDS:
        current = getattr(number, name, None) or ""
        if current:
            changes.append(Change(name, current, ""))
    return changes


def _e164(raw: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        raise click.BadParameter(f"{raw!r} is not a phone number (use the +44... form)",
                                 param_hint="--number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _client(config):
    if not config.get("TWILIO_ACCOUNT_SID") or config.get("LOCAL_AUTH_TOKEN") \
            or not config.get("TWILIO_AUTH_TOKEN"):
        raise SetupError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set (from the "
                         "Twilio console's account page).", 2)
    return sender.make_client(config)


def _error_of(exc: TwilioException) -> tuple[int | None, int | None, str]:
    """(HTTP status, Twilio error code, message) from either of twilio-python's errors.

    A create or update raises TwilioRestException; listing a page raises a plain
    TwilioException("Unable to fetch page", response) with Twilio's JSON body.
    """
    if isinstance(exc, TwilioRestException):
        return exc.status, exc.code, exc.msg
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    try:
        body = json.loads(getattr(response, "text", "") or "{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return status, body.get("code"), str(body.get("message") or exc.args[0])


def _twilio_call(action: str, call):
    try:
        return call()
    except TwilioException as exc:
        status, code, message = _error_of(exc)
        if code == BAD_CREDENTIALS or status == 401:
            raise SetupError("Twilio refused the credentials (error 20003): check "
                             "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.") from None
        raise SetupError(f"Twilio refused to {action}: HTTP {status}, error {code}: "
                         f"{message}") from None
    except requests.exceptions.RequestException as exc:
        raise SetupError(f"Could not reach Twilio to {action} ({type(exc).__name__}).") from None


def _show(value: str) -> str:
    return value if value else "(none)"


def configure(number_e164: str, dry_run: bool = False, echo=click.echo) -> list[Change]:
    """Point the number at PUBLIC_BASE_URL (or, dry run, say what would change)."""
    config = current_app.config
    base = public_base(config)
    client = _client(config)
    found = _twilio_call("list the account's numbers", lambda: [
        n for n in client.incoming_phone_numbers.list(phone_number=number_e164, limit=20)
        if n.phone_number == number_e164
    ])
    if not found:
        raise SetupError(f"{number_e164} is not a number of this Twilio account. Check --number, "
                         "or buy or port the number first.")
    number = found[0]
    changes = plan(number, base)
    todo = [c for c in changes if c.changed]
    echo(f"Twilio number {number.phone_number} ({number.sid}) -> {base}")
    width = max(len(c.field) for c in changes)
    for change in changes:
        if change.changed:
            echo(f"  {change.field:<{width}}  {_show(change.before)} -> {_show(change.after)}")
        else:
            echo(f"  {change.field:<{width}}  {_show(change.before)} (unchanged)")
    if getattr(number, "trunk_sid", None):
        echo(f"Warning: the number is on SIP trunk {number.trunk_sid}: its calls go to the trunk, "
             "not to these URLs. Take it off the trunk in the Twilio console.")
    if config.get("TWILIO_MESSAGING_SERVICE_SID"):
        echo("Note: texts go through a Messaging Service. Set its incoming messages to "
             "\"Defer to sender's webhook\" so replies such as STOP reach /sms/inbound.")
    if not todo:
        echo("Nothing to change: the number already points at this deployment.")
        return []
    if dry_run:
        echo(f"Dry run: {len(todo)} setting(s) would change; nothing was changed.")
        return todo
    _twilio_call("update the number", lambda: number.update(
        **{change.field: change.after for change in todo}))
    echo(f"Changed {len(todo)} setting(s). Call the number to try it.")
    return todo


@click.group("twilio")
def twilio_group():
    """Twilio: connect a number to this deployment."""


@twilio_group.command("configure")
@click.option("--number", required=True, help="The Twilio number, e.g. +441134960000.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@with_appcontext
def configure_command(number, dry_run):
    """Point a number's voice, fallback, status and SMS webhooks at PUBLIC_BASE_URL."""
    configure(_e164(number, current_app.config.get("DEFAULT_REGION", "GB")), dry_run)
