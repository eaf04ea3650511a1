"""The follow-up text: what it says, and what it costs in SMS segments.

Words come from prompts (the flow's ``sms:`` section and ``links:``); this
module only decides their order and layout. Every text must be plain GSM-7
and every link keeps its label; when all of it does not fit in
TEXT_MAX_SEGMENTS (default MAX_SEGMENTS), it goes as two texts, in order.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ivr.call.wording import placeholders

MAX_SEGMENTS = 3

# GSM 03.38: the basic table costs one septet a character, the extension
# table two (an escape plus the character). Anything else forces UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# Typographic characters a writer may paste in, and their plain forms: one
# curly quote would turn the whole text into UCS-2 (70 characters a segment).
_PLAIN = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
    "\u2014": "-", "\u2026": "...", "\u00a0": " ", "\u2022": "-",
})


def is_gsm7(text: str) -> bool:
    """True when every character is in GSM 03.38 (basic or extension table)."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def segments(text: str) -> int:
    """How many SMS segments ``text`` takes (what Twilio bills).

    One segment holds 160 GSM-7 septets or 70 UCS-2 code units; once split,
    each part loses room to its header (153 / 67), and an escape pair or a
    surrogate pair is never cut in two.
    """
    if is_gsm7(text):
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        single, part = 160, 153
    else:
        units = [len(ch.encode("utf-16-le")) // 2 for ch in text]
        single, part = 70, 67
    if sum(units) <= single:
        return 1
    count, used = 1, 0
    for cost in units:
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return count


def plain(text: str) -> str:
    """Typographic quotes and dashes as their GSM-7 forms."""
    return text.translate(_PLAIN)


def _bare(url: str) -> str:
    """https://www.example.org/ -> example.org (to see whether a fixed line already gives it)."""
    for prefix in ("https://", "http://"):
        url = url.removeprefix(prefix)
    return url.removeprefix("www.").rstrip("/")


def links_heard(flow, branches: Iterable[str]) -> list:
    """The Link objects of the branches heard: flow order, each once."""
    heard = set(branches or ())
    seen, links = set(), []
    for node_id, node in flow.nodes.items():
        if node_id not in heard:
            continue
        for key in node.links:
            link = flow.links.get(key)
            if link is None or key in seen:
                continue
            seen.add(key)
            links.append(link)
    return links


def numbers_heard(flow, branches: Iterable[str]) -> list[str]:
    """The names of the numbers said in the branches heard ({childline}, {police}), flow order."""
    heard, names = set(branches or ()), []
    for node_id, node in flow.nodes.items():
        if node_id not in heard:
            continue
        for key in node.say:
            for name in placeholders(flow.prompts.get(key, "")):
                if name in flow.numbers and name not in names:
                    names.append(name)
    return names


def max_segments(flow) -> int:
    """TEXT_MAX_SEGMENTS (a setting the flow carries), or MAX_SEGMENTS."""
    value = (getattr(flow, "settings", None) or {}).get("TEXT_MAX_SEGMENTS")
    return int(value) if value else MAX_SEGMENTS


def _blocks(flow, branches: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(head, blocks, tail): the intro; one block per link ("label" then the address on a line
    of its own) and per number heard that the fixed lines do not give; the fixed lines."""
    sms = flow.sms
    head = [flow.written(sms["intro"])] if sms.get("intro") else []
    tail = [flow.written(sms[name]) for name in ("nspcc", "danger", "stop") if sms.get(name)]
    fixed = " ".join(head + tail).lower()
    blocks = [f"{link.label}:\n{link.url}" for link in links_heard(flow, branches)
              if _bare(link.url).lower() not in fixed]
    for name in numbers_heard(flow, branches):
        line = sms.get(f"number_{name}")
        if flow.numbers[name] not in fixed and line:
            blocks.append(flow.written(line))
    return head, blocks, tail


def _numbered(first_line: str, index: int, count: int) -> str:
    return f"{first_line} ({index}/{count})" if count > 1 else first_line


def compose_parts(flow, branches: list[str], limit: int | None = None) -> list[str]:
    """The texts for a caller who heard ``branches``, in the flow's language.

    A language with its own letters (Polish) has its lines twice: with the letters
    (``sms``: UCS-2, 70 characters a segment) and without (``sms_ascii``: GSM-7, 160).
    The letters read best, so they go when they take no more texts than the plain
    lines; otherwise the plain lines, which fit more than twice as much in a segment
    (docs/translation.md).
    """
    plain_lines = getattr(flow, "sms_ascii", None)
    marked = _compose_parts(flow, branches, limit)
    if not plain_lines:
        return marked
    ascii_parts = _compose_parts(dataclasses.replace(flow, sms=plain_lines), branches, limit)
    return marked if len(marked) <= len(ascii_parts) else ascii_parts


def _compose_parts(flow, branches: list[str], limit: int | None = None) -> list[str]:
    """The texts for a caller who heard ``branches`` (node ids of flows.yaml), in order.

    One text when everything fits in ``limit`` segments (TEXT_MAX_SEGMENTS):
    the intro, each link with its label, each number heard, the NSPCC line,
    the 999 line and how to stop texts. Otherwise the same lines, in the same
    order, over as few texts as keep each within the limit; each starts with
    its head line marked (1/2), (2/2), so the reader knows another is coming.
    Nothing is shortened: labels and https:// stay.
    """
    limit = limit or max_segments(flow)
    head, blocks, tail = _blocks(flow, branches)
    whole = plain("\n".join(head + blocks + tail))
    if segments(whole) <= limit:
        return [whole]
    more = [flow.written(flow.sms.get("more") or flow.sms.get("intro") or "")]
    # The fixed lines stay together, at the end: the 999 line and STOP come last.
    pieces, parts, current = blocks + ["\n".join(tail)], [], list(head)
    for piece in pieces:
        trial = plain("\n".join([_numbered(current[0], 9, 9), *current[1:], piece]))
        if len(current) > 1 and segments(trial) > limit:
            parts.append(current)
            current = list(more)
        current.append(piece)
    parts.append(current)
    count = len(parts)
    return [plain("\n".join([_numbered(part[0], index, count), *part[1:]]))
            for index, part in enumerate(parts, 1)]


def reply(flow, name: str) -> str:
    """A reply to a text (sms.help_reply, ...) in the flow's language. As for the text after
    a call: with the language's own letters (``sms``) when they fit one text of
    TEXT_MAX_SEGMENTS, else the same line without them (``sms_ascii``), which `ivr check`
    holds within the limit (E041)."""
    marked = plain(flow.written(flow.sms[name]))
    bare = (getattr(flow, "sms_ascii", None) or {}).get(name)
    if bare is None or segments(marked) <= max_segments(flow):
        return marked
    return plain(flow.written(bare))


def compose(flow, branches: list[str]) -> str:
    """All of the text for a caller who heard ``branches``, its parts one after another."""
    return "\n\n".join(compose_parts(flow, branches))
