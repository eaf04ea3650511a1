"""Pure: what a Step says, in order, and which of it a caller can answer over.

One list serves the TwiML (twiml.py), the timing estimates (speech.py, `ivr
check`, `ivr script`) and the simulator, so the seconds they show are the
seconds a caller waits.

The rule (issue 14): when the line ends in a menu or a number entry, every
sentence goes inside the <Gather>, so a key (or words, with barge-in) counts
at any moment, even during the welcome or a long step; Twilio stops speaking
as soon as it hears one. The one exception is a 999 sentence said first: it
goes before the <Gather> and cannot be cut, so no caller skips it.

Message steps before a menu (the welcome before the main menu, the trouble
words before the finish) are said inside the menu's <Gather>: a key pressed
during them is an answer to that menu. flows.yaml keeps its meaning (a
message, then the menu it leads to); only when the caller may answer changes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.call.engine import Step
from ivr.call.flow import Flow, Node
from ivr.call.wording import placeholders

GATHERS = ("menu", "number_entry")  # steps that end in a <Gather>


@dataclass(frozen=True)
class Part:
    """One thing said (a prompt key) or a pause (seconds), and the step it belongs to."""

    node: str
    key: str = ""
    pause: float = 0.0
    choice: bool = False  # one of a menu's choices or keys, not its content
    lang: str = ""  # another language's words (its offer), said in its voice


@dataclass(frozen=True)
class Playlist:
    before: tuple[Part, ...]  # said first, cannot be cut (the 999 sentence, or all of it)
    inside: tuple[Part, ...]  # inside the <Gather>: a key or words cut it
    waits: str | None  # the type of the step that waits: menu, number_entry, dial, or None


def emergency_names(flow: Flow) -> set[str]:
    """The number placeholders that are 999 ({emergency})."""
    return {name for name, number in flow.numbers.items() if re.sub(r"\D", "", number) == "999"}


def is_999_sentence(flow: Flow, key: str) -> bool:
    return bool(set(placeholders(flow.prompts.get(key, ""))) & emergency_names(flow))


def _pause(flow: Flow) -> float:
    return float(flow.gather.get("pause", 1))


def _content(flow: Flow, node: Node) -> list[Part]:
    parts: list[Part] = []
    for index, key in enumerate(node.say):
        if index and _pause(flow):
            parts.append(Part(node.id, pause=_pause(flow)))
        parts.append(Part(node.id, key))
        if index == 0 and node.id == flow.start:
            parts += _offers(flow, node)
    return parts


def _offers(flow: Flow, node: Node) -> list[Part]:
    """Right after the first sentence of the call (the 999 sentence): each other language's
    999 sentence and its key, in its own voice, inside the <Gather> (its key counts)."""
    return [Part(node.id, key, lang=offer.code) for offer in flow.offers for key in offer.prompts]


def _choices(flow: Flow, node: Node) -> list[Part]:
    keys = [choice.prompt for choice in node.choices if choice.prompt]
    keys += [nav.prompt for nav in flow.nav_for(node)]
    return [Part(node.id, key, choice=True) for key in keys]


def parts(flow: Flow, step: Step) -> list[Part]:
    """Everything the step says, in order (the notice, each step's words, a menu's choices)."""
    out: list[Part] = [Part(step.node, step.notice)] if step.notice else []
    for index, node_id in enumerate(step.play):
        node = flow.nodes[node_id]
        last = index == len(step.play) - 1
        candidate = f"confirm.{step.state.candidate}" if step.state.candidate else ""
        if last and node.type == "menu" and candidate in flow.prompts:
            out.append(Part(node.id, candidate))  # "I think you asked about ..." (issue 12)
        if not (last and node.type == "menu" and step.reprompt and not candidate):
            out += _content(flow, node)
            if node.type in ("message", "goodbye", "menu") or not last:
                out.append(Part(node.id, pause=_pause(flow) or 1))
        if last and node.type == "menu":
            out += _choices(flow, node)
    return out


def playlist(flow: Flow, step: Step) -> Playlist:
    said = parts(flow, step)
    last = flow.nodes[step.play[-1]] if step.play else None
    waits = last.type if last is not None and last.type in (*GATHERS, "dial") else None
    if waits not in GATHERS:
        return Playlist(tuple(said), (), waits)
    if said and said[0].key and is_999_sentence(flow, said[0].key):
        return Playlist(tuple(said[:1]), tuple(said[1:]), waits)
    return Playlist((), tuple(said), waits)
