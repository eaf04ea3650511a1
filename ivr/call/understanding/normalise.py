"""Speech as Twilio delivers it -> plain words the other layers can compare.

NFKC, lower case, contractions spelled out ("she's" -> "she is"), single
digits as words ("option 2" -> "option two"), and the words speech
recognition splits or spells ("snap chat", "n s p c c") put back together.
Pure and cached: the same few thousand utterances come again and again.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from contextlib import suppress
from importlib import metadata
from pathlib import Path

import platformdirs
import simplemma
from simplemma.strategies import DefaultStrategy
from simplemma.strategies.dictionaries import TrieDictionaryFactory
from simplemma.strategies.dictionaries.dictionary_factory import SUPPORTED_LANGUAGES

log = logging.getLogger(__name__)

MAX_SPEECH = 500  # characters we look at; the rest is noise

DIGITS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
          "6": "six", "7": "seven", "8": "eight", "9": "nine"}
# Recognition splits names of apps and organisations; a caller means the one word.
JOINED = {
    "snap chat": "snapchat", "insta gram": "instagram", "insta": "instagram",
    "tik tok": "tiktok", "tick tock": "tiktok", "face book": "facebook",
    "you tube": "youtube", "whats app": "whatsapp", "what is app": "whatsapp",
    "child line": "childline", "sex tortion": "sextortion", "sexed tortion": "sextortion",
    "no one": "nobody", "no body": "nobody", "some one": "someone", "some body": "somebody",
    "see op": "ceop", "okay": "ok", "o k": "ok", "uh huh": "yes", "mm hm": "yes",
    "mhm": "yes", "e mail": "email",
}
# "'s" is "is" after these; after a noun it is a possessive ("my son's phone").
IS_AFTER = {"he", "she", "it", "that", "there", "what", "who", "where", "here", "someone",
            "somebody", "nobody", "everyone", "everybody", "this", "how", "why", "when"}
SUFFIXES = {"n't": " not", "'re": " are", "'ve": " have", "'ll": " will", "'d": " would",
            "'m": " am"}
SPECIAL = {"won't": "will not", "can't": "can not", "cannot": "can not", "shan't": "shall not",
           "let's": "let us", "ain't": "is not"}
FILLERS = {"um", "umm", "er", "erm", "uh", "uhm", "ah", "eh", "hmm", "mm", "oh"}
_JOINED_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, JOINED), key=len, reverse=True))
                        + r")\b")
_SPELLED_RE = re.compile(r"\b(?:[a-z] ){2,}[a-z]\b")  # "n s p c c" -> "nspcc"


def _contraction(word: str) -> str:
    if word in SPECIAL:
        return SPECIAL[word]
    if word.endswith("'s"):
        stem = word[:-2]
        return f"{stem} is" if stem in IS_AFTER else stem
    for suffix, full in SUFFIXES.items():
        if word.endswith(suffix) and len(word) > len(suffix):
            return word[: -len(suffix)] + full
    return word


@functools.lru_cache(maxsize=8192)
def normalise(speech: str) -> str:
    """The caller's words as one plain, lower-case line of words."""
    text = unicodedata.normalize("NFKC", speech[:MAX_SPEECH]).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = re.sub(r"\b([a-z])\.(?=[a-z]\.)", r"\1 ", text)  # n.s.p.c.c. -> n s p c c.
    text = text.replace("£", " pounds ").replace("&", " and ")
    text = re.sub(r"[^\w']+", " ", text).replace("_", " ")
    words = [_contraction(w.strip("'")) for w in text.split()]
    words = [DIGITS.get(w, w) for w in " ".join(words).split()]
    text = _SPELLED_RE.sub(lambda m: m.group(0).replace(" ", ""), " ".join(words))
    text = _JOINED_RE.sub(lambda m: JOINED[m.group(1)], text)
    return " ".join(w for w in text.split() if w not in FILLERS)


# Letters a recogniser or a phone may give without their marks ("szkola" for "szkoła"):
# folded on both sides, so an example and a caller's words meet either way.
_FOLD = str.maketrans("ąćęłńóśźż", "acelnoszz")


def fold(word: str) -> str:
    """'szkołą' -> 'szkola': Polish letters as plain ones (no effect on English)."""
    return word.translate(_FOLD)


# simplemma's dictionaries as MARISA tries, not its default Python dicts: Polish as a dict
# held ~364 MB in every process, as a trie ~20 MB, the same lemmas, lookups as quick
# (docs/understanding.md, "Memory"). The tries are built once per machine into the user's
# cache folder (never the repo), named by the versions that made them.
CACHE = (Path(platformdirs.user_cache_dir("calm-line")) / "lemmas"
         / f"simplemma-{metadata.version('simplemma')}-marisa-{metadata.version('marisa-trie')}")
DICTIONARIES = TrieDictionaryFactory(disk_cache_dir=str(CACHE))
# No cache of its own: lemma() below keeps one.
LEMMATIZER = simplemma.Lemmatizer(cache_max_size=0,
                                  lemmatization_strategy=DefaultStrategy(dictionary_factory=DICTIONARIES))
# Builds the trie in a child process: building reads the whole dict (~190 MB for Polish),
# which a web worker would keep for good. The child writes into its own folder.
_BUILD = ("import sys; from simplemma.strategies.dictionaries import TrieDictionaryFactory as F; "
          "F(disk_cache_dir=sys.argv[2]).get_dictionary(sys.argv[1])")


@functools.cache
def _cached(lang: str) -> None:
    """Make sure CACHE holds the language's trie before simplemma first asks for it.

    Workers start at once: a lock lets one build while the others wait for it, and the
    file appears whole (renamed into place), so none reads half a trie. If the folder
    cannot be written, simplemma builds the trie in memory: slower to start, same lemmas.
    """
    target = CACHE / f"{lang}.dic"
    if lang not in SUPPORTED_LANGUAGES or target.exists():
        return
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        with open(CACHE / f"{lang}.lock", "w") as lock:
            _lock(lock)  # released when the file closes
            if not target.exists():
                _build(lang, target)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("no lemma cache for %s in %s (%s): built in memory instead", lang, CACHE, exc)


def _lock(handle) -> None:
    """An exclusive lock on an open file (POSIX); where there is no fcntl, none: at worst
    two processes build the same trie and the last rename wins."""
    with suppress(ImportError):
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX)


def _build(lang: str, target: Path) -> None:
    log.info("building the %s lemma dictionary into %s (once per machine)", lang, CACHE)
    work = Path(tempfile.mkdtemp(dir=CACHE, prefix=f".{lang}-"))
    try:
        subprocess.run([sys.executable, "-c", _BUILD, lang, str(work)], check=True, timeout=600,
                       stdin=subprocess.DEVNULL)
        os.replace(work / f"{lang}.dic", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@functools.lru_cache(maxsize=65536)
def lemma(word: str, lang: str = "en") -> str:
    """A word's dictionary form ("threatening" -> "threaten"; "szkole" -> "szkoła"), in the
    language's simplemma dictionary; for Polish, folded (fold) so marks never matter."""
    _cached(lang)
    try:
        found = LEMMATIZER.lemmatize(word, lang=lang).lower()
    except ValueError:  # a language simplemma has no dictionary for: the word as said
        found = word.lower()
    return found if lang == "en" else fold(found)


def words(text: str) -> tuple[str, ...]:
    return tuple(normalise(text).split())


def lemmas(tokens: tuple[str, ...], lang: str = "en") -> tuple[str, ...]:
    return tuple(lemma(t, lang) for t in tokens)


def surface(word: str, lang: str = "en") -> str:
    """The word as the layers compare it: as said in English, folded in other languages."""
    return word if lang == "en" else fold(word)


def warm() -> None:
    """simplemma opens its dictionary on first use: do it at start (the first start on a
    machine also builds the cached trie: about a second for English)."""
    lemma("threatening")


def warm_language(lang: str) -> None:
    """The same for another language's dictionary (Polish: 15-20 s to build once per machine,
    then a hundredth of a second to open)."""
    lemma("szkole", lang)
