"""Understanding a caller's own words: which choice they mean, urgent first.

Layers, in order (the first that decides wins):
  key     a key's name said alone ("nine", "press two", "option for")
  urgent  safety.py: a child may be at risk; never negated ("it's not an emergency")
  yesno   keys.py: yes or no, where a menu asks a yes/no question; but words that are,
          word for word, another choice's example go to it ("nie dosłyszałam", I did
          not hear: in Polish "nie" is both "no" and "not")
  match   matcher.py: the closest of the menu's examples ('nav' when that is repeat/home/finish)
Built once per flow at start (flow.build); `understand` is pure and takes well
under a millisecond. No Flask, no flow objects: plain data in, a dataclass out.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ivr.call.understanding import keys, matcher, safety
from ivr.call.understanding.normalise import fold, lemmas, normalise, surface, warm, warm_language

NAV = ("repeat", "home", "finish")
# An answer longer than this that names a language is about something else ("my son sent
# it to a Polish girl from school"), not a request to hear the line in it.
CHOOSING_WORDS = 6


def names_one_of(speech: str, phrases) -> bool:
    """Whether a short answer holds one of phrases ("po polsku", "polish please"), word for
    word: without punctuation, in any case, with or without Polish letters."""
    said = [fold(w) for w in normalise(speech or "").split()]
    if not said or len(said) > CHOOSING_WORDS:
        return False
    for phrase in phrases:
        wanted = [fold(w) for w in normalise(phrase).split()]
        if wanted and any(said[i:i + len(wanted)] == wanted for i in range(len(said))):
            return True
    return False


@dataclass(frozen=True)
class Option:
    """Something a caller can choose in one menu: a choice (label = its `to`) or a nav key."""

    label: str
    key: str
    examples: tuple[str, ...]
    nav: bool = False
    phrases: tuple[str, ...] = ()  # the short words staff see (Twilio's hints): matched like examples

    @property
    def texts(self) -> tuple[str, ...]:
        return self.phrases + self.examples


@dataclass(frozen=True)
class Settings:
    floor: float = 0.3  # below: "Sorry, I did not understand that"
    sure: float = 0.5  # below (and above the floor): ask to confirm
    margin: float = 0.08  # two choices closer than this: ask to confirm
    confidence: float = 0.4  # Twilio's Confidence below this: ask to confirm


@dataclass(frozen=True)
class Understanding:
    label: str | None  # the choice's `to`, repeat/home/finish, "yes", or None (not understood)
    key: str | None
    score: float
    layer: str  # key, urgent, yesno, nav, match, none
    closest: tuple[tuple[str, str, float], ...] = ()  # (label, example, score)
    scores: Mapping[str, float] = field(default_factory=dict)
    signals: tuple[str, ...] = ()  # urgent signals heard ("not ..." when negated)
    margin: float = 1.0  # the best score minus the next label's

    @property
    def understood(self) -> bool:
        return self.label is not None


@dataclass(frozen=True)
class Menu:
    id: str
    options: tuple[Option, ...]
    urgent: str | None  # the label of the urgent choice
    yes: str | None  # the label that "yes" means here (a choice with the phrase "yes")
    no: str | None
    matcher: matcher.Matcher
    exact: Mapping[str, str] = field(default_factory=dict)  # an example, plain -> its label

    def option(self, label: str) -> Option | None:
        return next((o for o in self.options if o.label == label), None)

    def key_of(self, label: str) -> str | None:
        option = self.option(label)
        return option.key if option else None

    def by_key(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)


def _yes_no_label(options: tuple[Option, ...], word: str) -> str | None:
    return next((o.label for o in options if not o.nav and word in o.texts), None)


class Understander:
    def __init__(self, menus: Mapping[str, tuple[Option, ...]], urgent: str,
                 signals: Mapping[str, list[str]], spoken_keys: Mapping[str, str],
                 key_variants: Mapping[str, str], yes: list[str], no: list[str],
                 settings: Settings = Settings(), lang: str = "en",
                 markers: tuple[str, str] = ("yes", "no")):
        warm()
        if lang != "en":
            warm_language(lang)
        self.lang = lang
        self.urgent = urgent
        self.lexicon = safety.compile_lexicon(signals, lang)
        self.spoken_keys = MappingProxyType({self._plain(k): v for k, v in spoken_keys.items()})
        self.key_variants = MappingProxyType({self._plain(k): v for k, v in key_variants.items()})
        self.yes = frozenset(self._plain(w) for w in yes)
        self.no = frozenset(self._plain(w) for w in no)
        self.settings = settings
        self.menus = MappingProxyType({
            menu_id: Menu(menu_id, options,
                          next((o.label for o in options if o.label == urgent), None),
                          _yes_no_label(options, markers[0]), _yes_no_label(options, markers[1]),
                          matcher.build(((o.label, o.texts) for o in options), lang),
                          self._exact(options))
            for menu_id, options in menus.items()
        })

    def _exact(self, options: tuple[Option, ...]) -> Mapping[str, str]:
        """Each example, as compared, to its choice; one two choices share is left out."""
        owners: dict[str, set[str]] = {}
        for option in options:
            for text in option.texts:
                owners.setdefault(self._plain(text), set()).add(option.label)
        return MappingProxyType({text: next(iter(labels)) for text, labels in owners.items()
                                 if len(labels) == 1})

    def _plain(self, text: str) -> str:
        """Normalised, and folded outside English (so "tak" and "szkoła" match either way)."""
        return " ".join(surface(w, self.lang) for w in normalise(text).split())

    def understand(self, menu_id: str, speech: str) -> Understanding:
        menu = self.menus[menu_id]
        said = tuple(normalise(speech).split())
        words = tuple(surface(w, self.lang) for w in said)
        if not words:
            return Understanding(None, None, 0.0, "none")
        key = keys.spoken_key(words, self.spoken_keys, self.key_variants)
        option = menu.by_key(key) if key else None
        if option:
            return Understanding(option.label, option.key, 1.0, "key")
        hits = safety.hits(self.lexicon, words, lemmas(said, self.lang))
        live = [h.signal.text for h in hits if not h.negated]
        heard = tuple(live + [f"not {h.signal.text}" for h in hits if h.negated])
        if live and menu.urgent:
            return Understanding(menu.urgent, menu.key_of(menu.urgent), 1.0, "urgent",
                                 signals=heard)
        answer = keys.yes_or_no(words, self.yes, self.no)
        label = {"yes": menu.yes, "no": menu.no}.get(answer or "")
        exact = menu.exact.get(" ".join(words))
        if label and exact is not None and exact != label:  # another choice's own example
            option = menu.option(exact)
            return Understanding(exact, menu.key_of(exact), 1.0,
                                 "nav" if option and option.nav else "match", signals=heard)
        if label:
            return Understanding(label, menu.key_of(label), 1.0, "yesno", signals=heard)
        return self._match(menu, speech, heard, negated=bool(hits))

    def _match(self, menu: Menu, speech: str, heard: tuple[str, ...], negated: bool) -> Understanding:
        # They said it is not urgent ("it's not an emergency"): believe them.
        leave_out = frozenset([menu.urgent]) if negated and menu.urgent else frozenset()
        scores, closest = menu.matcher.scores(speech, leave_out=leave_out)
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        best, score = ranked[0] if ranked else (None, 0.0)
        margin = score - (ranked[1][1] if len(ranked) > 1 else 0.0)
        rounded = {k: round(v, 3) for k, v in scores.items()}
        if best is None or score < self.settings.floor:
            return Understanding(None, None, round(score, 3), "none", tuple(closest), rounded, heard,
                                 round(margin, 3))
        option = menu.option(best)
        layer = "nav" if option and option.nav else "match"
        return Understanding(best, menu.key_of(best), round(score, 3), layer, tuple(closest), rounded,
                             heard, round(margin, 3))

    def unsure(self, result: Understanding, confidence: float | None) -> bool:
        """Should the line ask "I think you asked about ..." before going there?"""
        if result.layer != "match" or result.label == self.urgent:
            return False  # keys, yes/no, nav and anything urgent go straight through
        low_confidence = confidence is not None and confidence < self.settings.confidence
        return (low_confidence or result.score < self.settings.sure
                or result.margin < self.settings.margin)
