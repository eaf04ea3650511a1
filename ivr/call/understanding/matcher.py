"""Choices by meaning: a caller's words against each choice's examples.

Built once at start from each choice's `examples` and `phrases` in flows.yaml.
Each text becomes a TF-IDF vector over three kinds of feature: lemmas, pairs of
lemmas, and runs of 3 to 5 letters inside words (so "insta gram", "snapchats"
and misheard endings still meet their example). A choice's score is the cosine
of the caller's words with its closest example. docs/understanding.md says why
this and not rapidfuzz (measured on tests/data/understanding_eval.yaml).

Pure Python over an inverted index: a menu has a few hundred examples, and one
utterance adds up a few hundred to a few thousand products, well under a millisecond
(BENCHMARKS.md: the p99 over the evaluation set). The letter runs are kept per word
and the weights of a feature said once are worked out at start; the sums run over
plain lists, in the same order as ever, so every score is the same to the last bit.
"""
from __future__ import annotations

import functools
import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ivr.call.understanding.normalise import lemma, normalise, surface

CHAR_SIZES = (3, 4, 5)
WEIGHTS = {"w": 1.0, "b": 0.6, "c": 0.5}  # how much each kind of feature counts
# Words too common to tell choices apart: left out of the lemmas and letter runs
# (kept in the pairs, where "what now" and "go on" still count).
STOP = frozenset({"a", "an", "the", "i", "to", "it", "is", "be", "of", "and", "my", "me", "um",
                  "that", "this", "please", "just", "can", "do", "you", "so", "for", "on", "in",
                  "thanks", "thank", "ok", "sorry", "well", "actually", "really"})


def features(text: str, lang: str = "en") -> Counter:
    said = normalise(text).split()
    words = [surface(w, lang) for w in said]
    lemmas = [lemma(w, lang) for w in said]
    found: list[str] = []
    content = [w for w in lemmas if w not in STOP] or lemmas
    found.extend("w:" + w for w in content)
    found.extend(f"b:{a} {b}" for a, b in zip(lemmas, lemmas[1:], strict=False))
    for w in [w for w, lem in zip(words, lemmas, strict=True) if lem not in STOP] or words:
        found.extend(_letter_runs(w))
    return Counter(found)  # counted in C, in the order found (the sums below keep it)


@functools.lru_cache(maxsize=16384)
def _letter_runs(word: str) -> tuple[str, ...]:
    """A word's runs of 3 to 5 letters, padded with a space each side. Per word and kept:
    callers use the same few thousand words, and this was a fifth of an utterance's time."""
    padded = f" {word} "
    return tuple("c:" + padded[i:i + n] for n in CHAR_SIZES for i in range(len(padded) - n + 1))


@dataclass(frozen=True)
class Example:
    label: str
    text: str


class Matcher:
    """One menu's examples, indexed. `scores(text)` -> {label: score}, closest examples."""

    def __init__(self, examples: Sequence[Example], lang: str = "en"):
        self.lang = lang
        self.examples = tuple(examples)
        self.labels = tuple(dict.fromkeys(e.label for e in self.examples))
        self.example_labels = tuple(e.label for e in self.examples)
        counts = [features(e.text, lang) for e in self.examples]
        df: Counter = Counter()
        for c in counts:
            df.update(c.keys())
        total = len(counts) + 1
        self.idf = {f: math.log(total / (1 + n)) + 1.0 for f, n in df.items()}
        self.default_idf = math.log(total) + 1.0
        # A feature said once (almost all are) weighs its kind's weight x its idf: worked
        # out here, not per utterance. Features no example has still count in the norm.
        self.once = {f: WEIGHTS[f[0]] * idf for f, idf in self.idf.items()}
        self.unknown = {kind: weight * self.default_idf for kind, weight in WEIGHTS.items()}
        index: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, c in enumerate(counts):
            for f, w in self._vector(c).items():
                index[f].append((i, w))
        # Each feature's examples and weights as two tuples: the sums below run over them.
        self.index = {f: (tuple(i for i, _ in post), tuple(w for _, w in post))
                      for f, post in index.items()}

    def _vector(self, counts: Counter) -> dict[str, float]:
        once, unknown, idf = self.once, self.unknown, self.idf
        # The same products as WEIGHTS x (1 + log n) x idf (for n = 1 the middle factor
        # is exactly 1.0, so the product is exactly WEIGHTS x idf).
        vec = {f: (once[f] if f in once else unknown[f[0]]) if n == 1
               else WEIGHTS[f[0]] * (1 + math.log(n)) * idf.get(f, self.default_idf)
               for f, n in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {f: v / norm for f, v in vec.items()}

    def similarities(self, text: str) -> dict[int, float]:
        """Each example's cosine with the words, for the examples that share a feature."""
        sums = [0.0] * len(self.examples)
        index = self.index
        for f, w in self._vector(features(text, self.lang)).items():
            posting = index.get(f)
            if posting is not None:
                for i, ew in zip(*posting, strict=True):
                    sums[i] += w * ew
        return {i: s for i, s in enumerate(sums) if s}

    def scores(self, text: str, top: int = 3, leave_out: frozenset[str] = frozenset()
               ) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
        """Each label's score (its closest example's cosine) and the closest examples,
        leaving out some labels (the urgent one, when the caller said it is not urgent)."""
        labels = self.example_labels
        sims = {i: s for i, s in self.similarities(text).items() if labels[i] not in leave_out}
        best: dict[str, float] = {label: 0.0 for label in self.labels if label not in leave_out}
        for i, s in sims.items():
            if s > best[labels[i]]:
                best[labels[i]] = s
        ranked = heapq.nlargest(top, sims.items(), key=lambda kv: kv[1])
        closest = [(self.examples[i].label, self.examples[i].text, round(s, 3)) for i, s in ranked]
        return best, closest


def build(options: Iterable[tuple[str, Iterable[str]]], lang: str = "en") -> Matcher:
    """options: (label, texts). The same text under two labels is kept for both
    (`ivr check` reports it, E043); twice under one label, once."""
    examples = dict.fromkeys(Example(label, str(t)) for label, texts in options for t in texts)
    return Matcher(list(examples), lang)
