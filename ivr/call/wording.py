"""Fill prompt templates: numbers spoken digit by digit, or written in groups."""
from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def spoken_number(number: str) -> str:
    """'0808 800 5000' -> '0 8 0 8, 8 0 0, 5 0 0 0': each digit alone, a pause per group."""
    groups = [group for group in re.split(r"[\s-]+", number.strip()) if group]
    return ", ".join(" ".join(group) for group in groups)


def spoken_digits(digits: str) -> str:
    """A keyed-in number read back: '07400123456' -> '0 7 4 0 0, 1 2 3, 4 5 6'."""
    digits = re.sub(r"\D", "", digits)
    if len(digits) == 11:  # a UK number, grouped as people say it
        return spoken_number(f"{digits[:5]} {digits[5:8]} {digits[8:]}")
    return " ".join(digits)


def placeholders(template: str) -> list[str]:
    return PLACEHOLDER.findall(template)


def fill(template: str, values: dict[str, str]) -> str:
    """Replace {name} with values[name]; unknown names are left for the checks to report."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
