"""How long the line speaks: an estimate from the words, at a steady rate.

Used by `ivr check` (a step that talks too long before its choices) and by
`ivr script` (how long each path takes). It is an estimate, not a
measurement: WORDS_PER_MINUTE spoken words, where a number placeholder counts
as the digits it is spoken as ("9 9 9" is three words), plus the `pause`
seconds (flows.yaml, gather) the line leaves between the items a step says.
"""
from __future__ import annotations

import re

from ivr.call import engine, playlist, wording
from ivr.call.flow import Flow, Node

WORDS_PER_MINUTE = 150  # a calm, unhurried speaking rate
WORDS_PER_SECOND = WORDS_PER_MINUTE / 60
LONG_STEP_SECONDS = 45  # a step should not talk longer than this before its choices
LONG_SENTENCE_WORDS = 25  # DESIGN.md, "Voice and tone": never over 25 words
# {entered} is the number a caller keyed in: estimate it as a UK mobile read back.
SAMPLE_ENTERED = wording.spoken_digits("07700900123")

_WORD = re.compile(r"\w")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def words(text: str) -> list[str]:
    """The words of a text: runs between spaces that hold a letter or a digit."""
    return [token for token in text.split() if _WORD.search(token)]


def spoken(flow: Flow, prompt_key: str) -> str:
    """The words of a prompt as the caller hears them ("" when the key is missing)."""
    if prompt_key not in flow.prompts:
        return ""
    return flow.spoken(prompt_key, entered=SAMPLE_ENTERED)


def pause(flow: Flow) -> float:
    return float(flow.gather.get("pause", 1))


def seconds(flow: Flow, prompt_keys) -> float:
    """Prompts said one after another, with the flow's pause between each two."""
    prompt_keys = list(prompt_keys)
    count = sum(len(words(spoken(flow, key))) for key in prompt_keys)
    return count / WORDS_PER_SECOND + pause(flow) * max(0, len(prompt_keys) - 1)


def choice_prompts(flow: Flow, node: Node) -> list[str]:
    """The prompts a menu reads after its content: its choices, then the flow's keys."""
    keys = [choice.prompt for choice in node.choices if choice.prompt]
    return keys + [nav.prompt for nav in flow.nav_for(node)]


def before_choices(flow: Flow, node: Node) -> float:
    """What a step says before the caller can choose (all of it, for a step without choices)."""
    return seconds(flow, node.say)


def step_seconds(flow: Flow, node: Node) -> float:
    """Everything a step says when the caller arrives: content, a pause, then its choices."""
    total = seconds(flow, node.say)
    if node.say and node.type in ("menu", "message", "goodbye"):
        total += pause(flow) or 1
    choices = choice_prompts(flow, node) if node.type == "menu" else []
    if choices:
        total += sum(len(words(spoken(flow, key))) for key in choices) / WORDS_PER_SECOND
    return total


def sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text.strip()) if part]


def sentence_words(sentence: str) -> int:
    """Words as written: a number placeholder ({nspcc}) is one word, one idea."""
    return len(words(sentence))


def clock(secs: float) -> str:
    """45.2 -> '0:45' (rounded to the second)."""
    whole = int(round(secs))
    return f"{whole // 60}:{whole % 60:02d}"


# -- when a caller can answer (the playlist: what cannot be cut, then the <Gather>) --
FIRST_KEY_GOAL = 10  # seconds from the start until a key counts (issue 14)
NSPCC_GOAL = 20  # seconds from the start until a caller who presses 4 at once hears the number


def part_seconds(flow: Flow, part: playlist.Part) -> float:
    return len(words(spoken(flow, part.key))) / WORDS_PER_SECOND if part.key else part.pause


def timed(flow: Flow, parts, start: float = 0.0) -> list[tuple[float, playlist.Part]]:
    """(seconds into the call when each part ends, part)."""
    out, at = [], start
    for part in parts:
        at += part_seconds(flow, part)
        out.append((at, part))
    return out


def key_counts_after(flow: Flow, step: engine.Step) -> float:
    """Seconds from the start of a step until a key counts (what is said before its Gather)."""
    return sum(part_seconds(flow, part) for part in playlist.playlist(flow, step).before)


def came_for(flow: Flow, step: engine.Step) -> float:
    """Seconds from the start of a step until the caller has heard what it is for: its first
    sentence that gives a phone number or, when none does, its first sentence."""
    content = [(at, part) for at, part in timed(flow, playlist.parts(flow, step))
               if part.key and not part.choice and part.node == step.node]
    if not content:
        return 0.0
    numbered = [at for at, part in content if wording.placeholders(flow.prompts.get(part.key, ""))]
    return (numbered or [content[0][0]])[0]


def fastest(flow: Flow, keys: list[str], to: str | None = None) -> tuple[float, float] | None:
    """A caller who presses each key the moment it counts: (seconds until the first key
    counts, seconds until they hear what the last step is for); None when a key is not
    a choice on the way, or the keys do not lead to the step `to`."""
    step = engine.start(flow)
    first = at = key_counts_after(flow, step)
    for index, key in enumerate(keys):
        if index:  # the step reached by the key before: the caller answers it at once
            at += key_counts_after(flow, step)
        node = flow.nodes[step.node]
        offered = {c.key for c in node.choices} | {n.key for n in flow.nav_for(node)}
        if node.type != "menu" or key not in offered:
            return None
        step = engine.answer(flow, step.state, key, None)
        while step.action:  # the text is arranged: the common outcome
            step = engine.after_action(flow, step, "queued")
    if to is not None and step.node != to:
        return None
    return first, at + came_for(flow, step)
