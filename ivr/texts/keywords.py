"""What an incoming text asks for: stop, start, help, or nothing we act on.

A STOP must count however it is written: full-width letters (ＳＴＯＰ), a
zero-width space inside it (S\u200bTOP), Cyrillic look-alikes (ЅТОР), accents,
spaced-out letters (S T O P), or inside a short sentence ("please stop
texting me", "opt-out"). So a message is normalised first:

1. NFKC (full-width and compatibility forms become plain letters), then
   NFKD with combining marks, format characters (zero-width, bidi marks,
   soft hyphens) and controls removed;
2. look-alike letters folded to Latin with Unicode's confusables table
   (TR39, as shipped by the confusable_homoglyphs package);
3. upper case, split into words of letters and digits (0 read as O).

Then, in a short message (at most SHORT_WORDS words), an opt-out word or
phrase anywhere opts out; in a longer one, only its first word does. When in
doubt, we stop. START, YES, UNSTOP (opt back in) and HELP, INFO count only as
the whole message: opting back in must be meant.

Other languages (issue 18): POMOC is Polish for HELP; like HELP it counts
only as the whole message, after the STOP check, so it can never hide a
STOP. STOP and START are the words the line's texts tell every caller to
send, in Polish too ("Odpisz STOP"), so they need nothing more. language()
says which language a message's keyword is in, for the reply.
"""
from __future__ import annotations

import functools
import re
import unicodedata

STOP, START, HELP = "stop", "start", "help"

# Twilio's opt-out words (the Advanced Opt-Out defaults) and the phrases people use.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                           "OPTOUT", "REVOKE"})
# Words too common to mean STOP inside a sentence ("the end of the call"): only alone or first.
ONLY_ALONE = frozenset({"CANCEL", "END", "QUIT"})
OPT_OUT_PHRASES = (("OPT", "OUT"), ("UN", "SUBSCRIBE"))
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN"})
OPT_IN_PHRASES = (("OPT", "IN"),)
HELP_WORDS = frozenset({"HELP", "INFO"})
# Keywords of one other language only: the reply goes in that language.
LANGUAGE_WORDS = {"POMOC": "pl-PL"}
HELP_WORDS |= frozenset(word for word in LANGUAGE_WORDS)
SHORT_WORDS = 12
_DROP = {"Mn", "Me", "Cf", "Cc", "Cs", "Co", "Cn"}  # marks, format (zero-width, bidi), controls
_WORD = re.compile(r"[A-Z0-9]+")


@functools.cache
def _fold_table() -> dict[int, str]:
    """Non-ASCII characters that look like one Latin letter -> that letter."""
    from confusable_homoglyphs.confusables import confusables_data

    table: dict[int, str] = {}
    for char, glyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in glyphs:
            latin = glyph.get("c", "")
            if len(latin) == 1 and latin.isascii() and latin.isalpha():
                table[ord(char)] = latin
                break
    return table


def normalise(body: str) -> str:
    """The message as plain upper-case Latin letters, digits and spaces (see above)."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", body))
    text = "".join(c for c in text if unicodedata.category(c) not in _DROP)
    text = text.upper().translate(_fold_table()).upper()
    return text


def words(body: str | None) -> list[str]:
    found = _WORD.findall(normalise(body or ""))
    return [w.replace("0", "O") if not w.isdigit() else w for w in found]


def _has_phrase(found: list[str], phrases) -> bool:
    return any(tuple(found[i:i + len(p)]) == p for p in phrases for i in range(len(found)))


def _is_stop(found: list[str]) -> bool:
    if found[0] in OPT_OUT_WORDS or "".join(found) in OPT_OUT_WORDS:
        return True  # "STOP ...", or spelt out: "S T O P", "s.t.o.p"
    if len(found) > SHORT_WORDS:
        return False
    return (any(w in OPT_OUT_WORDS - ONLY_ALONE for w in found)
            or _has_phrase(found, OPT_OUT_PHRASES))


def keyword(body: str | None) -> str | None:
    """"stop", "start", "help" or None for an incoming text's body."""
    found = words(body)
    if not found:
        return None
    if _is_stop(found):
        return STOP
    whole = "".join(found)
    if whole in OPT_IN_WORDS or (len(found) == 2 and _has_phrase(found, OPT_IN_PHRASES)):
        return START
    if len(found) == 1 and whole in HELP_WORDS:
        return HELP
    return None


def language(body: str | None) -> str | None:
    """The language of a message that is one keyword of another language alone ("pomoc":
    pl-PL), else None."""
    found = words(body)
    return LANGUAGE_WORDS.get(found[0]) if len(found) == 1 else None
