"""Phone numbers: which can get a text, and how to write them."""
from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


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


def mobile_e164(raw: str | None, region: str = "GB") -> str | None:
    """The number in +44... form when it can receive a text, else None."""
    number = parse(raw, region)
    if number is None or phonenumbers.number_type(number) not in _MOBILE:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
