"""The small words: key names ("press two", "option 2", "nine") and yes or no.

Both are read only from short answers or from how an answer starts, so they
never eat a real question: "what should I do" is not "what?", "I want to talk"
is not key 2.
"""
from __future__ import annotations

from collections.abc import Mapping

LEAD_INS = frozenset({"press", "option", "number", "key", "button", "choice", "pressing", "dial"})
POLITE = frozenset({"please", "thanks", "thank", "you", "ok", "right", "so", "just", "the", "and",
                    "i", "will", "ta"})


def spoken_key(words: tuple[str, ...], names: Mapping[str, str],
               variants: Mapping[str, str]) -> str | None:
    """The key a short answer names: "nine", "press two", "option for please"."""
    core = [w for w in words if w not in POLITE]
    if len(core) == 1:
        return names.get(core[0])
    if len(core) == 2 and core[0] in LEAD_INS:
        return names.get(core[1]) or variants.get(core[1])
    return None


def _has(text: str, phrases: frozenset[str]) -> bool:
    return any(f" {p} " in text for p in phrases)


def yes_or_no(words: tuple[str, ...], yes: frozenset[str], no: frozenset[str]) -> str | None:
    """"yes", "no" or None. The first word decides ("no thanks", "yeah go on"); else a
    telling phrase anywhere ("i'd rather not", "that would be great")."""
    if not words:
        return None
    first, text = words[0], f" {' '.join(words)} "
    if first in no:
        return "no"
    if first in yes and not _has(text, no - {first}):
        return "yes"
    if _has(text, _anywhere(no)):
        return "no"
    if _has(text, _anywhere(yes)):
        return "yes"
    return None


# Said anywhere, these still mean yes or no; other single words ("please", "ok",
# "right") mean it only as the first word ("the menu please" is not a yes).
TELLING = frozenset({"yes", "yeah", "yep", "exactly", "wrong", "incorrect", "misunderstood",
                     "misheard"})


def _anywhere(words: frozenset[str]) -> frozenset[str]:
    return frozenset(w for w in words if " " in w or w in TELLING)
