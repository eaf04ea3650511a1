"""Every language beside the first (prompts/<code>.yaml): loaded, checked, built.

flows.yaml is one structure for all languages; a language file brings the
words, the voice, the hints and the examples. A language is refused at start
when it lacks a key the first language has (E047), when its key or words are
ones a menu uses (E048), when its offer does not give its own 999 sentence and
its key within the first 25 words the caller hears in it (E030, E049), and on
any fault the first language's checks find in its words (CHECKS: the 999
sentence, sentence length, offers that name the wrong key or a word the line
does not listen for, numbers, links, the texts). A draft (no reviewed_by) is a
warning (W007).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ivr import yamlfile
from ivr.call import engine, playlist, speech
from ivr.call import flow as flow_module
from ivr.call.flow import Flow
from ivr.call.wording import placeholders
from ivr.flowtools import checks
from ivr.flowtools.rules import words as word_rules
from ivr.flowtools.rules.common import digits_of, normal_phrase
from ivr.problems import FlowError, Problem

SECTIONS = ("prompts", "numbers", "links", "sms")


def _name(doc: yamlfile.YamlDoc) -> str:
    """prompts/pl-PL.yaml, however the folder was named to the app."""
    path = Path(doc.file)
    return f"{path.parent.name}/{path.name}"
OWN = "language."  # prompt keys of a language's offer: only the offered language has them
# The first language's checks that every language must pass too: its 999 sentence, its
# sentences and timing, its numbers, links and texts (each with its words, from its file).
CHECKS = (checks.check_first_words, checks.check_essentials, checks.check_numbers,
          checks.check_web_addresses, checks.check_texts, checks.check_speaking_time,
          checks.check_first_key)


def _missing(first: dict, doc: yamlfile.YamlDoc) -> list[Problem]:
    """E047: every key of the first language's words, in this language too."""
    words, problems = doc.data, []
    for section in SECTIONS:
        mine = words.get(section) or {}
        for key in first.get(section) or {}:
            if key not in mine and not str(key).startswith(OWN):
                problems.append(doc.problem(
                    (section,) if section in words else (), "E047",
                    f"{_name(doc)} lacks {section}.{key} (in the first language's file): "
                    f"translate it, in the same style"))
    if words.get("sms_ascii"):
        for key in words.get("sms") or {}:
            if key not in words["sms_ascii"]:
                problems.append(doc.problem(("sms_ascii",), "E047",
                                            f"{_name(doc)} lacks sms_ascii.{key} (it has sms.{key})"))
    if not words.get("safety"):
        problems.append(doc.problem((), "E047", f"{_name(doc)} lacks the safety list"))
    for key in (words.get("language") or {}).get("offer") or ():
        if key not in (words.get("prompts") or {}):
            problems.append(doc.problem(("language", "offer"), "E047",
                                        f"{_name(doc)} lacks prompts.{key} (named in language.offer)"))
    return problems


def _key_problems(first: Flow, doc: yamlfile.YamlDoc, taken: dict[str, str]) -> list[Problem]:
    """E048: the key that chooses a language is one no menu uses, and no other language."""
    key = str(doc.data["language"]["key"])
    used = {c.key for n in first.nodes.values() for c in n.choices}
    used |= {n.key for n in first.nav_keys.values()}
    if key in used:
        return [doc.problem(("language", "key"), "E048",
                            f"key {key} chooses this language but a menu uses it too: "
                            f"choose a key no menu uses")]
    if key in taken:
        return [doc.problem(("language", "key"), "E048",
                            f"key {key} already chooses {taken[key]}")]
    taken[key] = doc.data["language"]["code"]
    return _word_problems(first, doc, taken)


def _word_problems(first: Flow, doc: yamlfile.YamlDoc, taken: dict[str, str]) -> list[Problem]:
    """E048 for the words that choose a language (`say:`), heard at the main menu: none is
    a phrase or an example there (it would mean two things), nor another language's word."""
    code = str(doc.data["language"]["code"])
    menus = [first.nodes[n] for n in {first.home, engine.start(first).node} if n in first.nodes]
    options = [o for node in menus if node.type == "menu"
               for o in (*node.choices, *first.nav_for(node))]
    menu_words = {normal_phrase(t): o.key for o in options for t in (*o.phrases, *o.examples)}
    problems = []
    for index, word in enumerate(doc.data["language"].get("say") or ()):
        said = normal_phrase(str(word))
        other = taken.get(f"say:{said}")
        if said in menu_words:
            problems.append(doc.problem(("language", "say", index), "E048", (
                f"{_name(doc)}: {said!r} chooses {code}, but the main menu hears it as key "
                f"{menu_words[said]} too: choose words no menu listens for")))
        elif other and other != code:
            problems.append(doc.problem(("language", "say", index), "E048",
                                        f"{_name(doc)}: {said!r} already chooses {other}"))
        taken.setdefault(f"say:{said}", code)
    return problems


def offer_marks(flow: Flow, prompt_keys, key: str) -> tuple[int | None, int | None]:
    """(the word at which 999 has been said, the word at which the key is said), counted
    from the start of the offer as the caller hears it ("9 9 9" is three words); None: never."""
    said = [digits_of(w) or normal_phrase(w) for k in prompt_keys
            for w in speech.words(speech.spoken(flow, k))]
    at_999 = next((i + 3 for i in range(len(said)) if said[i:i + 3] == ["9", "9", "9"]), None)
    at_key = next((i + 1 for i, word in enumerate(said)
                   if word == key or flow.spoken_keys.get(word) == key), None)
    return at_999, at_key


@dataclass(frozen=True)
class OfferTiming:
    """When a caller hears another language's offer, in words and seconds from the call's start."""

    code: str
    key: str
    starts_at: int  # words of the call said before the offer (the first 999 sentence)
    words: int  # words of the offer
    at_999: int | None  # word of the offer at which its 999 has been said
    at_key: int | None  # word of the offer at which its key is said

    def seconds(self, word_of_offer: int | None) -> float | None:
        """Seconds into the call when that word of the offer has been said."""
        if word_of_offer is None:
            return None
        return (self.starts_at + word_of_offer) / speech.WORDS_PER_SECOND


def offer_timings(first: Flow) -> list[OfferTiming]:
    """Each offer in the first language's welcome: said right after its first sentence (the
    999 sentence), one after another, at the same rate as the rest (playlist._offers)."""
    start = first.nodes.get(first.start)
    if start is None or not start.say:
        return []
    count, found = len(speech.words(speech.spoken(first, start.say[0]))), []
    for offer in first.offers:
        words = sum(len(speech.words(speech.spoken(first, key))) for key in offer.prompts)
        found.append(OfferTiming(offer.code, offer.key, count, words,
                                 *offer_marks(first, offer.prompts, offer.key)))
        count += words
    return found


def _999_sentences(flow: Flow, prompt_keys) -> list[tuple[str, str]]:
    """(prompt key, sentence as written) of each sentence that gives 999, in order."""
    emergency = playlist.emergency_names(flow)
    return [(key, sentence) for key in prompt_keys
            for sentence in speech.sentences(flow.prompts.get(key, ""))
            if set(placeholders(sentence)) & emergency]


def _same(one: str, other: str) -> bool:
    return one.split() == other.split()


def _offer_problems(flow: Flow, first: Flow, doc: yamlfile.YamlDoc) -> list[Problem]:
    """E030: the offer (said after the first language's 999 sentence) gives this language's
    999 sentence and its key within the first 25 words the caller hears in it. E049: that
    sentence is, word for word, the one this language says at key 9 and in its welcome."""
    block, name = doc.data["language"], _name(doc)
    offer = [str(k) for k in block.get("offer") or ()]
    key = str(block["key"])
    where = ("language", "offer")
    if not offer:
        return [doc.problem(("language",), "E030",
                            f"{name} has no `offer:` (said in the {first.code} welcome): list the "
                            f"prompts that give its 999 sentence and its key, e.g. "
                            f"[urgent.call_999, language.choose]")]
    problems = []
    at_999, at_key = offer_marks(flow, offer, key)
    limit = checks.FIRST_WORDS
    for what, at, fix in (
            ("999", at_999, "put the 999 sentence its urgent step says (urgent.call_999) first "
                            "in language.offer"),
            (f"the key {key}", at_key, "say it right after the 999 sentence, in a few words "
                                       "(language.choose)")):
        if at is None or at > limit:
            problems.append(doc.problem(where, "E030", (
                f"{name}: the offer ({', '.join(offer)}) says {what} at word {at or 'never'} "
                f"of what a {flow.code} caller hears in {flow.code}; it must come within the "
                f"first {limit}: {fix}")))
    return problems + _same_999(flow, doc, offer)


def _same_999(flow: Flow, doc: yamlfile.YamlDoc, offer: list[str]) -> list[Problem]:
    """E049: the offer's and the welcome's 999 sentence are the one said at key 9."""
    name = flow.code
    urgent_node = flow.nodes.get(flow.urgent)
    start_node = flow.nodes.get(flow.start)
    urgent = _999_sentences(flow, urgent_node.say if urgent_node else ())
    if not urgent:
        return []  # E034: the urgent step gives no 999
    urgent_key, sentence = urgent[0]
    problems = []
    places = [(("language", "offer"), "the offer", offer, "put " + urgent_key + " in "
               "language.offer (the same prompt)"),
              (None, "the welcome", start_node.say[:1] if start_node else (),
               "write the same sentence there, word for word")]
    for path, what, keys, mend in places:
        # none: E030 says so; each one that is said must be the same
        found = [(key, said) for key, said in _999_sentences(flow, keys) if not _same(said, sentence)]
        if not found:
            continue
        key, said = found[0]
        problems.append(doc.problem(path or ("prompts", key), "E049", (
            f"{_name(doc)}: {what} says the 999 sentence as \"{said}\" ({key}), but a {name} "
            f"caller hears it at key 9 as \"{sentence}\" ({urgent_key}): the same words, "
            f"word for word, everywhere: {mend}")))
    return problems


def _wording(flow: Flow, block: dict) -> word_rules.Wording:
    """How this language offers a choice (`language: wording:`), else as English does."""
    mine = block.get("wording") or {}
    if not mine:
        return word_rules.ENGLISH
    return word_rules.Wording.of(str(mine.get("press", "press")), str(mine.get("say", "say")),
                                 str(mine.get("or", "or")), dict(flow.spoken_keys))


def _offer_words(flow: Flow, flows_doc: yamlfile.YamlDoc, doc: yamlfile.YamlDoc) -> list[Problem]:
    """E035 and E036 on this language's offers, at the line of its prompt in its file."""
    name = _name(doc)

    def where(path, prompt_key: str, code: str, message: str) -> Problem:
        return doc.problem(("prompts", prompt_key), code, f"{name}: {message}")

    return word_rules.offer_problems(
        flow, flows_doc, where, _wording(flow, doc.data["language"]),
        "change these words (the keys are flows.yaml's, the same in every language)",
        f"make it the first example of that choice under `understanding:` in {name} (the "
        f"first example is the word the line listens for), or change the words")


def _examples_at(under: dict, menu_id: str, label: str) -> tuple[tuple, list]:
    """(path, examples) of one choice's examples in a language file's `understanding:`."""
    mine = (under.get("menus") or {}).get(menu_id) or {}
    if label == "yes" and label not in mine:  # a confirm step's yes: the shared list
        return ("understanding", "yes"), [str(e) for e in under.get("yes") or ()]
    return ("understanding", "menus", menu_id, label), [str(e) for e in mine.get(label) or ()]


def _example_lists(flow: Flow, doc: yamlfile.YamlDoc):
    """(menu id or None for every menu, label, path, examples), as the first language's
    check reads them from flows.yaml, here from this language's `understanding:`."""
    under = doc.data.get("understanding") or {}
    for name in flow.nav_keys:
        yield None, name, ("understanding", "nav", name), \
            [str(e) for e in (under.get("nav") or {}).get(name) or ()]
    for node in flow.nodes.values():
        if node.type != "menu":
            continue
        labels = [c.to for c in node.choices] + (["yes"] if node.yes else [])
        for label in labels:
            yield (node.id, label, *_examples_at(under, node.id, label))


def _examples(flow: Flow, doc: yamlfile.YamlDoc) -> list[Problem]:
    """W005 and E044 on this language's examples, at their lines in its file."""
    name = _name(doc)

    def problem_at(path, code: str, message: str) -> Problem:
        # `ivr understand` reads the first language only: its hint would mislead here.
        return doc.problem(path, code, f"{name}: {message.split(' (try `ivr understand')[0]}")

    return word_rules.example_problems(flow, _example_lists(flow, doc), problem_at)


def _phrases(flow: Flow, doc: yamlfile.YamlDoc) -> list[Problem]:
    """E029 and E037 on the words each choice listens for in this language (the first
    example of each: the hint), as the first language's check does on flows.yaml phrases."""
    under, name = doc.data.get("understanding") or {}, _name(doc)
    problems: dict[tuple, Problem] = {}  # one for each example and code, in its first menu
    for node in flow.nodes.values():
        if node.type != "menu":
            continue
        valid = {c.key for c in node.choices} | {n.key for n in flow.nav_for(node)}
        heard: dict[str, str] = {}
        owners = [(f"key {c.key}", c.key, c.phrases, _examples_at(under, node.id, c.to)[0])
                  for c in (*node.choices, *([node.yes] if node.yes else []))]
        owners += [(f"the {n.name} key", n.key, n.phrases, ("understanding", "nav", n.name))
                   for n in flow.nav_for(node)]
        for whose, key, phrases, path in owners:
            for phrase in phrases:
                normal, at = normal_phrase(phrase), (*path, 0)
                spoken = flow.spoken_keys.get(normal)
                if normal != phrase:
                    problems.setdefault((at, "E037"), doc.problem(at, "E037", (
                        f"{name}: {phrase!r} (the first example, the word the line listens "
                        f"for) can never be heard as written: write it as {normal!r}")))
                if normal in heard:
                    problems.setdefault((at, "E029"), doc.problem(at, "E029", (
                        f"{name}: {normal!r} is what {heard[normal]} and {whose} listen for in "
                        f"menu {node.id!r}: a caller who says it cannot reach both; give one "
                        f"another first example")))
                elif spoken is not None and spoken != key and spoken in valid:
                    problems.setdefault((at, "E029"), doc.problem(at, "E029", (
                        f"{name}: {normal!r}, what {whose} listens for in menu {node.id!r}, is "
                        f"the spoken name of key {spoken}: use other words")))
                heard.setdefault(normal, whose)
    return list(problems.values())


def _unused(flow: Flow, flows_doc: yamlfile.YamlDoc, doc: yamlfile.YamlDoc) -> list[Problem]:
    """W001, but the offer's own keys (said in the first language's welcome) are used."""
    offered = {doc.where(("prompts", str(key))) for key in doc.data["language"].get("offer") or ()}
    return [p for p in checks.check_unused(flow, flows_doc, doc)
            if p.code != "W001" or (p.line, p.col) not in offered]


def _in_file(problems: list[Problem], doc: yamlfile.YamlDoc, flows_doc: yamlfile.YamlDoc
             ) -> list[Problem]:
    """A problem the first language's check reports at flows.yaml names this language too
    (one in a shared file, an allow-list, is the same for every language: left as it is)."""
    return [dataclasses.replace(p, message=f"{_name(doc)}: {p.message}")
            if p.file == flows_doc.file and not p.message.startswith(_name(doc)) else p
            for p in problems]


def _language(first_every: Flow, first_doc: yamlfile.YamlDoc, flows_doc: yamlfile.YamlDoc,
              path: Path, taken: dict[str, str]) -> tuple[tuple[Flow, yamlfile.YamlDoc] | None,
                                                      list[Problem]]:
    doc = yamlfile.load(path)
    if not isinstance(doc.data, dict):
        return None, [doc.problem((), "E011", "the prompts file must be a mapping")]
    problems = checks.prompts_schema_problems(doc)
    if "language" not in doc.data:
        problems.append(doc.problem((), "E047", f"{_name(doc)} lacks a `language:` block "
                                                f"(code, voice, key)"))
    elif doc.data["language"].get("code") != path.stem:
        problems.append(doc.problem(("language", "code"), "E047",
                                    f"language.code must be {path.stem!r}, the file's name"))
    if problems:
        return None, problems
    problems = _missing(first_doc.data, doc) + _key_problems(first_every, doc, taken)
    if problems:
        return None, problems
    flow = flow_module.build_language(first_every, flows_doc, doc)
    for check in CHECKS:
        problems += check(flow, flows_doc, doc)
    problems += (_offer_words(flow, flows_doc, doc) + _unused(flow, flows_doc, doc)
                 + _phrases(flow, doc) + _examples(flow, doc))
    problems = _in_file(problems + _offer_problems(flow, first_every, doc), doc, flows_doc)
    if flow.draft:
        problems.append(doc.problem(("language",), "W007",
                                    f"{_name(doc)} is a draft: not yet reviewed by a fluent speaker "
                                    f"(fill reviewed_by and reviewed_on, set draft: false; "
                                    f"docs/translation.md)", severity="warning"))
    return (flow, doc), problems


def load(first_every: Flow, first_doc: yamlfile.YamlDoc, flows_doc: yamlfile.YamlDoc,
         prompts_dir) -> tuple[list[tuple[Flow, yamlfile.YamlDoc]], list[Problem]]:
    """Every other language, built from the flow with every choice on; problems of all."""
    built: list[tuple[Flow, yamlfile.YamlDoc]] = []
    problems: list[Problem] = []
    taken: dict[str, str] = {}
    for path in flow_module.language_files(prompts_dir, Path(first_doc.file).stem):
        try:
            found, more = _language(first_every, first_doc, flows_doc, path, taken)
        except FlowError as exc:
            found, more = None, list(exc.problems)
        problems += more
        if found and not any(p.severity == "error" for p in more):
            built.append(found)
    return built, problems


def rebuild(first: Flow, flows_doc: yamlfile.YamlDoc,
            built: list[tuple[Flow, yamlfile.YamlDoc]]) -> Flow:
    """The first flow (with the app's settings) holding every language built on it."""
    return flow_module.with_languages(
        first, [(flow_module.build_language(first, flows_doc, doc), doc) for _, doc in built])
