"""The follow-up text: what it says, and what it costs in SMS segments.

Words come from prompts (the flow's ``sms:`` section and ``links:``); this
module only decides their order and layout. Every text must be plain GSM-7
and fit in MAX_SEGMENTS, whichever branches the caller heard: when the full
layout is too long, the links are written more compactly, step by step.
"""
from __future__ import annotations

from collections.abc import Iterable

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
    """https://www.example.org/ -> example.org (for comparing, and the compact layout)."""
    for prefix in ("https://", "http://"):
        url = url.removeprefix(prefix)
    return url.removeprefix("www.").rstrip("/")


def _without_scheme(url: str) -> str:
    for prefix in ("https://", "http://"):
        url = url.removeprefix(prefix)
    return url


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


# Layouts from the fullest to the most compact: (label shown, how the URL is written).
_LAYOUTS = (
    (True, lambda url: url),
    (True, _without_scheme),
    (False, _without_scheme),
)


def compose(flow, branches: list[str]) -> str:
    """The text for a caller who heard ``branches`` (node ids of flows.yaml).

    The intro, one line per link ("label: url") in flow order without
    repeats, then the NSPCC line, the 999 line and how to stop texts. A link
    the fixed lines already give (the NSPCC site) is not repeated. If that
    is over MAX_SEGMENTS, the URLs lose their https:// and then the labels.
    """
    sms = flow.sms
    head = [flow.written(sms["intro"])] if sms.get("intro") else []
    tail = [flow.written(sms[name]) for name in ("nspcc", "danger", "stop") if sms.get(name)]
    fixed = " ".join(head + tail).lower()
    links = [link for link in links_heard(flow, branches) if _bare(link.url).lower() not in fixed]
    body = ""
    for show_label, write_url in _LAYOUTS:
        lines = [
            f"{link.label}: {write_url(link.url)}" if show_label else write_url(link.url)
            for link in links
        ]
        body = plain("\n".join(head + lines + tail))
        if segments(body) <= MAX_SEGMENTS:
            break
    return body
