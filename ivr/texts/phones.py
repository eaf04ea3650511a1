"""Phone numbers: which can get a text, and how to write them."""
from __future__ import annotations

import functools
from collections.abc import Iterable

import phonenumbers
from phonenumbers import PhoneNumberType

_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}

# Regions whose mobiles are numbered inside another's plan: Ofcom numbers the
# Crown Dependencies' mobiles in +44 7, so "GB" takes them too. (Not, say, "US"
# for all of +1: many Caribbean +1 numbers are favourite SMS-pumping targets.)
_SAME_PLAN = {"GB": ("GG", "JE", "IM")}

# Why a number cannot get a text: the caller hears the difference.
OK, NOT_MOBILE, ABROAD = "ok", "not_mobile", "abroad"


def parse(raw: str | None, region: str = "GB"):
    """A valid number, or None for withheld, 'anonymous', 'client:...', junk."""
    if not raw or not isinstance(raw, str) or len(raw) > 32:
        return None
    raw = raw.strip()
    if raw.startswith(("client:", "sip:")):
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def textable(raw: str | None, region: str = "GB",
             allowed: Iterable[str] | None = None) -> tuple[str | None, str]:
    """(the number in +44... form, OK) when it may get a text, else (None, why).

    Only mobiles of the allowed regions (TEXT_REGIONS): anyone can ring the
    line, and a text to any country on request is how SMS pumping fraud
    drains an account.
    """
    return _textable(raw, region, tuple(allowed or (region,)))


@functools.lru_cache(maxsize=4096)
def _textable(raw: str | None, region: str, allowed: tuple[str, ...]) -> tuple[str | None, str]:
    # Pure, and asked two or three times a call (the caller's yes, a keyed-in number,
    # its confirmation): phonenumbers' parse and checks once per number, not each time.
    number = parse(raw, region)
    if number is None or phonenumbers.number_type(number) not in _MOBILE:
        return None, NOT_MOBILE
    regions = {r.upper() for r in allowed}
    regions.update(*(_SAME_PLAN.get(r, ()) for r in list(regions)))
    if phonenumbers.region_code_for_number(number) not in regions:
        return None, ABROAD
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), OK


def mobile_e164(raw: str | None, region: str = "GB",
                allowed: Iterable[str] | None = None) -> str | None:
    """The number in +44... form when it can receive a text from us, else None."""
    return textable(raw, region, allowed)[0]
