"""The urgent layer: words that mean a child may be at risk. It runs first and wins.

The lexicon is data (flows.yaml, `understanding: urgent_signals:`), read here
into patterns. A pattern is words in order; a word may be `a|b` (either), and
`...` lets up to GAP other words come between ("ask ... money" hears "asking
him for money"). Each word is compared with the caller's word and with its
lemma, so "threaten" hears "threatening" and "threatened"; `=missing` hears only
that form (not "missed").

A signal said with a negation just before it ("it's not an emergency",
"nobody is blackmailing her") does not count; one said plainly anywhere in the
sentence does ("he's threatening her, it's not a joke"). Tuned for no misses:
a false urgent costs a caller forty seconds, a missed one can cost a child.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ivr.call.understanding.normalise import lemma, normalise, surface

GAP = 3  # words a `...` may skip
NEGATION_WINDOW = 3  # words before a signal in which a negation cancels it
NEGATIONS = frozenset({"not", "no", "nobody", "never", "nothing", "none", "without", "nor"})
# Words that may stand between a negation and what it denies: "not [in any] danger",
# "nobody [is] blackmailing her". Any other word ends the negation's reach.
GLUE = frozenset({"is", "are", "be", "being", "been", "was", "were", "in", "any", "an", "a", "the",
                  "really", "actually", "at", "so", "too", "currently", "of", "it", "that",
                  "immediate", "immediately", "real", "under", "one", "he", "she", "they", "we",
                  "there", "this", "anything", "like"})
CONDITIONAL = frozenset({"if", "unless", "or"})
# The same three lists for other languages, their words folded (normalise.fold).
OTHER = {
    "pl": (frozenset({"nie", "nikt", "nigdy", "nic", "zaden", "zadnego", "zadnej", "bez"}),
           # "to nie [jest] nagly wypadek", "nikt [jej] nie szantazuje"
           frozenset({"jest", "sa", "w", "zadnym", "zadnej", "to", "go", "jej", "ja", "mu", "on",
                      "ona", "oni", "ich", "naprawde", "wcale", "zaden", "nie", "ma", "zadne",
                      "bezposrednim", "bezposredniego", "bezposrednie", "bezposredniej",
                      "potrzebuje", "potrzebujemy", "trzeba", "mamy", "zadnego"}),
           frozenset({"jesli", "jezeli", "gdyby", "albo", "czy"})),
}  # "if she doesn't pay" denies nothing


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


def compile_signal(category: str, text: str, lang: str = "en") -> Signal:
    terms: list[frozenset[str] | None] = []
    for part in text.split():
        if part == "...":
            terms.append(None)
            continue
        options = set()
        for option in part.split("|"):
            exact = option.startswith("=")  # =missing: that form only, not "missed"
            for word in normalise(option.lstrip("=")).split():  # "can't": keep the first word
                said = surface(word, lang)  # the lemma from the word as written (marks help)
                options |= {"=" + said} if exact else {said, lemma(word, lang)}
                break
        terms.append(frozenset(options))
    negations = OTHER.get(lang, (NEGATIONS,))[0]
    negative = any(t and t & negations for t in terms)
    return Signal(category, text, tuple(terms), negative)


class Lexicon:
    """The signals, indexed by the words they can start with: a sentence is read once."""

    def __init__(self, signals: Iterable[Signal], lang: str = "en"):
        self.signals = tuple(signals)
        self.negations, self.glue, self.conditional = OTHER.get(lang, (NEGATIONS, GLUE, CONDITIONAL))
        # Polish puts "jest w bezpośrednim" between "nie" and the danger: one word more.
        self.window = NEGATION_WINDOW + (lang != "en")
        self.starts: dict[str, list[Signal]] = {}
        for signal in self.signals:
            for word in signal.terms[0] or ():
                self.starts.setdefault(word, []).append(signal)


def compile_lexicon(signals: Mapping[str, Iterable[str]], lang: str = "en") -> Lexicon:
    return Lexicon((compile_signal(cat, text, lang) for cat, texts in signals.items()
                    for text in texts), lang)


def _matches_at(terms, words, lemmas, at: int) -> bool:
    """Does the pattern match starting at word `at`? Gaps try every length up to GAP."""
    if not terms:
        return True
    term, rest = terms[0], terms[1:]
    if term is None:
        return any(_matches_at(rest, words, lemmas, at + skip) for skip in range(GAP + 1))
    if at >= len(words) or not _term_matches(term, words[at], lemmas[at]):
        return False
    return _matches_at(rest, words, lemmas, at + 1)


def _term_matches(term: frozenset[str], word: str, lem: str) -> bool:
    """The word itself, its lemma, or (for `=word`) that exact form only."""
    return word in term or lem in term or "=" + word in term


def _negated(lexicon: Lexicon, words: tuple[str, ...], start: int) -> bool:
    """A negation just before the signal, with only glue words between, and not in an
    "if ... not" clause."""
    for at in range(start - 1, max(-1, start - 1 - lexicon.window), -1):
        if words[at] in lexicon.negations:
            return not any(w in lexicon.conditional for w in words[max(0, at - 3):at])
        if words[at] not in lexicon.glue:
            return False
    return False


def hits(lexicon: Lexicon, words: tuple[str, ...], lemmas: tuple[str, ...]) -> list[Hit]:
    """Every signal found in the words (its first place), each marked negated or not."""
    found: dict[Signal, Hit] = {}
    for at, (word, lem) in enumerate(zip(words, lemmas, strict=True)):
        starting = (*lexicon.starts.get(word, ()), *lexicon.starts.get(lem, ()),
                    *lexicon.starts.get("=" + word, ()))
        for signal in starting:
            if signal not in found and _matches_at(signal.terms, words, lemmas, at):
                found[signal] = Hit(signal, at, not signal.negative and _negated(lexicon, words, at))
    return list(found.values())
