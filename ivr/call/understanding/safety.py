"""The urgent layer: words that mean a child may be at risk. It runs first and wins.

The lexicon is data (flows.yaml, `understanding: urgent_signals:`), read here
into patterns. A pattern is words in order; a word may be `a|b` (either), and
`...` lets up to GAP other words come between ("ask ... money" hears "asking
him for money"). Each word is compared with the caller's word and with its
lemma, so "threaten" hears "threatening" and "threatened".

A signal said with a negation just before it ("it's not an emergency",
"nobody is blackmailing her") does not count; one said plainly anywhere in the
sentence does ("he's threatening her, it's not a joke"). Tuned for no misses:
a false urgent costs a caller forty seconds, a missed one can cost a child.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ivr.call.understanding.normalise import lemma, normalise

GAP = 3  # words a `...` may skip
NEGATION_WINDOW = 3  # words before a signal in which a negation cancels it
NEGATIONS = frozenset({"not", "no", "nobody", "never", "nothing", "none", "without", "nor"})


@dataclass(frozen=True)
class Signal:
    category: str
    text: str  # as written in flows.yaml, for `ivr understand`
    terms: tuple[frozenset[str] | None, ...]  # None is a gap
    negative: bool = False  # says "not" itself ("can't find her"): never cancelled by one


@dataclass(frozen=True)
class Hit:
    signal: Signal
    start: int
    negated: bool


def compile_signal(category: str, text: str) -> Signal:
    terms: list[frozenset[str] | None] = []
    for part in text.split():
        if part == "...":
            terms.append(None)
            continue
        options = set()
        for option in part.split("|"):
            for word in normalise(option).split():  # "can't" is two words: keep the first
                options |= {word, lemma(word)}
                break
        terms.append(frozenset(options))
    negative = any(t and t & NEGATIONS for t in terms)
    return Signal(category, text, tuple(terms), negative)


def compile_lexicon(signals: Mapping[str, Iterable[str]]) -> tuple[Signal, ...]:
    return tuple(compile_signal(cat, text) for cat, texts in signals.items() for text in texts)


def _matches_at(terms, words, lemmas, at: int) -> bool:
    """Does the pattern match starting at word `at`? Gaps try every length up to GAP."""
    if not terms:
        return True
    term, rest = terms[0], terms[1:]
    if term is None:
        return any(_matches_at(rest, words, lemmas, at + skip) for skip in range(GAP + 1))
    if at >= len(words) or (words[at] not in term and lemmas[at] not in term):
        return False
    return _matches_at(rest, words, lemmas, at + 1)


def _negated(words: tuple[str, ...], start: int) -> bool:
    return any(w in NEGATIONS for w in words[max(0, start - NEGATION_WINDOW):start])


def hits(lexicon: tuple[Signal, ...], words: tuple[str, ...],
         lemmas: tuple[str, ...]) -> list[Hit]:
    """Every signal found in the words, each marked negated or not."""
    found = []
    for signal in lexicon:
        first = signal.terms[0]
        for at, (word, lem) in enumerate(zip(words, lemmas, strict=True)):
            if first is not None and word not in first and lem not in first:
                continue
            if _matches_at(signal.terms, words, lemmas, at):
                found.append(Hit(signal, at, not signal.negative and _negated(words, at)))
                break
    return found
