"""Rules on the words and their timing: 999 first, the first key, speaking time, keys, examples."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ivr.call import engine, speech
from ivr.call.flow import Flow
from ivr.call.understanding import Understander
from ivr.call.understanding.normalise import normalise
from ivr.flowtools.rules.common import FIRST_WORDS, digits_of, node_path, normal_phrase, numbers_in
from ivr.flowtools.rules.numbers import allowed_number_entries
from ivr.problems import Problem
from ivr.yamlfile import YamlDoc

MIN_EXAMPLES = 8


KEY_NAMES = {
    "zero": "0", "oh": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "star": "*", "asterisk": "*", "hash": "#", "pound": "#", "square": "#",
}


PRESS = re.compile(r"\bpress\s+(?:the\s+)?([\w*#]+)", re.IGNORECASE)


SAY = re.compile(r"\bsay\s+([\w' ]+?)\s*(?=[.,;:!?]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Wording:
    """How a language's words offer a choice: "press 1, or say steps" in English,
    "naciśnij 1 albo powiedz: kroki" in Polish (a language file's `language: wording:`).
    E035 and E036 read the offers with these; key_names are the words for a key."""

    press: re.Pattern = PRESS
    say: re.Pattern = SAY
    either: re.Pattern = re.compile(r"\s+or\s+", re.IGNORECASE)  # "say steps or advice"
    key_names: Mapping[str, str] = field(default_factory=lambda: KEY_NAMES)

    @classmethod
    def of(cls, press: str, say: str, either: str, key_names: Mapping[str, str]) -> Wording:
        """From the words themselves ("naciśnij", "powiedz", "albo"); a colon may follow say."""
        return cls(re.compile(rf"\b{re.escape(press)}\s+([\w*#]+)", re.IGNORECASE),
                   re.compile(rf"\b{re.escape(say)}:?\s+([\w' ]+?)\s*(?=[.,;:!?]|$)", re.IGNORECASE),
                   re.compile(rf"\s+{re.escape(either)}\s+", re.IGNORECASE),
                   {**KEY_NAMES, **{k.lower(): v for k, v in key_names.items()}})


ENGLISH = Wording()


def check_speaking_time(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node in flow.nodes.values():
        secs = speech.before_choices(flow, node)
        if secs > speech.LONG_STEP_SECONDS:
            before = "before its choices" if node.type == "menu" else "in one go"
            problems.append(flows.problem(
                node_path(node.id, "say"), "W002",
                f"step {node.id!r} talks for about {secs:.0f} seconds {before} (estimated at "
                f"{speech.WORDS_PER_MINUTE} words a minute, with pauses); keep it under "
                f"{speech.LONG_STEP_SECONDS}: shorten its words, or move some to a step of their "
                f"own (\"for more, press 1\")"))
    texts = [(("prompts", key), text) for key, text in flow.prompts.items()]
    texts += [(("safety", index), text) for index, text in enumerate(flow.safety)]
    for path, text in texts:
        for sentence in speech.sentences(text):
            count = speech.sentence_words(sentence)
            if count > speech.LONG_SENTENCE_WORDS:
                start = " ".join(sentence.split()[:6])
                problems.append(prompts.problem(
                    path, "E043",
                    f"{'.'.join(map(str, path))} has a sentence of {count} words (\"{start} ...\"); "
                    f"keep every sentence to {speech.LONG_SENTENCE_WORDS} words at most (about 15 "
                    f"is best): split it in two"))
    return problems


def check_first_key(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Only the 999 sentence is said before a key counts: it must leave the caller a key
    within speech.FIRST_KEY_GOAL seconds of the start."""
    if flow.start not in flow.nodes or not flow.nodes[flow.start].say:
        return []
    first = speech.key_counts_after(flow, engine.start(flow))
    if first <= speech.FIRST_KEY_GOAL:
        return []
    return [flows.problem(
        node_path(flow.start, "say", 0), "W006",
        f"the first key of a call counts only after about {first:.0f} seconds, the length of "
        f"{flow.nodes[flow.start].say[0]} (the 999 sentence, which no key can cut); keep it "
        f"short enough for a key within {speech.FIRST_KEY_GOAL} seconds")]


def _said_key(word: str, names: Mapping[str, str] = KEY_NAMES) -> str | None:
    word = word.lower()
    if len(word) == 1 and word in "0123456789*#":
        return word
    return names.get(word)


def _offers(flow: Flow, flows: YamlDoc):
    """(path of the prompt in flows.yaml, prompt key, key, phrases, what) for each offer read out."""
    for node in flow.nodes.values():
        if node.type != "menu":
            continue
        for index, choice in enumerate(node.choices):
            if choice.prompt:
                yield (node_path(node.id, "choices", index, "prompt"), choice.prompt, choice.key,
                       choice.phrases, f"key {choice.key} in menu {node.id!r}")
    for nav in flow.nav_keys.values():
        yield (("keys", nav.name, "prompt"), nav.prompt, nav.key, nav.phrases, f"the {nav.name} key")


def check_offers(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """The words that offer a choice name its key, and the words it listens for."""
    def where(path, prompt_key: str, code: str, message: str) -> Problem:
        return flows.problem(path, code, message)

    return offer_problems(flow, flows, where, ENGLISH, f"change the words in {prompts.file} "
                          f"or the key here", "add it to phrases:, or change the words")


def offer_problems(flow: Flow, flows: YamlDoc, where: Callable[..., Problem], wording: Wording,
                   mend_key: str, mend_say: str) -> list[Problem]:
    """E035 and E036 for the words of one language (wording: how it says press and say);
    where(path in flows.yaml, prompt key, code, message) makes the Problem in the right file."""
    problems = []
    for path, prompt_key, key, phrases, what in _offers(flow, flows):
        text = flow.prompts.get(prompt_key)
        if text is None:
            continue  # E021
        for match in wording.press.finditer(text):
            said = _said_key(match.group(1), wording.key_names)
            if said is not None and said != key:
                problems.append(where(
                    path, prompt_key, "E035",
                    f"the words for {what} ({prompt_key}) say \"{match.group(0)}\", but the key is "
                    f"{key}: {mend_key}"))
        for match in wording.say.finditer(text):
            for said in wording.either.split(match.group(1).strip()):
                if normal_phrase(said) not in phrases:
                    problems.append(where(
                        path, prompt_key, "E036",
                        f"the words for {what} ({prompt_key}) ask the caller to say "
                        f"\"{said}\", but it is not one of its phrases: {mend_say}"))
    return problems


def check_phrases(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    raw = flows.data
    for name, nav in (raw.get("keys") or {}).items():
        for index, phrase in enumerate(nav.get("phrases", ())):
            problems += _unheard(flows, ("keys", name, "phrases", index), str(phrase))
    for word, key in (raw.get("spoken_keys") or {}).items():
        meant = KEY_NAMES.get(str(word).lower())
        if meant is not None and meant != str(key):
            problems.append(flows.problem(
                ("spoken_keys", word), "E042",
                f"a caller who says {word!r} means key {meant}, but spoken_keys sends them to "
                f"key {key}: write {word}: \"{meant}\""))
    for node in flow.nodes.values():
        if node.type != "menu":
            continue
        raw_choices = raw["nodes"][node.id].get("choices", ())
        valid = {choice.key for choice in node.choices} | {nav.key for nav in flow.nav_for(node)}
        heard: dict[str, tuple[str, tuple]] = {}  # phrase -> (whose, path)
        for index, choice in enumerate(raw_choices):
            key = str(choice["key"])
            for p_index, phrase in enumerate(choice.get("phrases", ())):
                path = node_path(node.id, "choices", index, "phrases", p_index)
                problems += _unheard(flows, path, str(phrase))
                normal = normal_phrase(str(phrase))
                if normal in heard:
                    whose = heard[normal][0]
                    same = whose == f"key {key}"
                    problems.append(flows.problem(
                        path, "E029",
                        f"phrase {normal!r} is listed {'twice for' if same else 'for both'} "
                        f"{whose}{'' if same else f' and key {key}'} in menu {node.id!r}: "
                        + ("remove one" if same
                           else "a caller who says it cannot reach both; keep it for one")))
                    continue
                heard[normal] = (f"key {key}", path)
                spoken = flow.spoken_keys.get(normal)
                if spoken is not None and spoken != key and spoken in valid:
                    problems.append(flows.problem(
                        path, "E029",
                        f"phrase {normal!r} of key {key} in menu {node.id!r} is the spoken name of "
                        f"key {spoken} (spoken_keys): a caller who says it gets key {spoken}; "
                        f"use other words"))
        for nav in flow.nav_for(node):
            for phrase in nav.phrases:
                normal = normal_phrase(phrase)
                if normal in heard:
                    whose, path = heard[normal]
                    problems.append(flows.problem(
                        path, "E029",
                        f"phrase {normal!r} of {whose} in menu {node.id!r} is also a phrase of the "
                        f"{nav.name} key ({nav.key}), which this menu offers too: use other words, "
                        f"or set this menu's nav: without {nav.name}"))
                else:
                    heard[normal] = (f"the {nav.name} key", ("keys", nav.name))
    return problems


def _unheard(flows: YamlDoc, path, phrase: str) -> list[Problem]:
    normal = normal_phrase(phrase)
    if normal and normal == phrase.lower():
        return []
    return [flows.problem(
        path, "E037",
        f"phrase {phrase!r} can never be heard: what a caller says is matched without "
        f"punctuation, so write it as {normal!r}" if normal else
        f"phrase {phrase!r} has no words a caller could say: remove it")]


def _walk_messages(flow: Flow, node_id: str):
    """(node, say index, prompt key) in the order a caller entering node_id hears them.

    Follows message steps as engine.enter does, and ends with the words of the
    first step that waits for the caller (a menu's content, then its choices).
    """
    seen = set()
    while node_id in flow.nodes and node_id not in seen:
        seen.add(node_id)
        node = flow.nodes[node_id]
        for index, key in enumerate(node.say):
            yield node, ("say", index), key
        if node.type == "message":
            node_id = node.target("next")
            continue
        if node.type == "menu":
            for index, choice in enumerate(node.choices):
                if choice.prompt:
                    yield node, ("choices", index, "prompt"), choice.prompt
        return


def _numbers_said(flow: Flow, prompt_keys) -> set[str]:
    return set().union(*(numbers_in(flow.written(flow.prompts.get(key, ""))) for key in prompt_keys))


def check_first_words(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """The 999 instruction within the first FIRST_WORDS words of every call."""
    if flow.start not in flow.nodes:
        return []  # E020
    count = 0
    for node, where, key in _walk_messages(flow, flow.start):
        said = [digits_of(word) or word for word in speech.words(speech.spoken(flow, key))]
        for index, word in enumerate(said):
            if word == "999":
                at = count + index + 1
            elif said[index:index + 3] == ["9", "9", "9"]:
                at = count + index + 3
            else:
                continue
            if at <= FIRST_WORDS:
                return []
            return [flows.problem(
                node_path(node.id, *where), "E030",
                f"999 comes at word {at} of the call ({key}, in step {node.id!r}); the "
                f"instruction to call 999 must come within the first {FIRST_WORDS} words: "
                f"put the prompt with it first, or shorten the words before it")]
        count += len(said)
    emergency = [name for name, number in flow.numbers.items() if digits_of(number) == "999"]
    how = f"{{{emergency[0]}}}" if emergency else "999 (add it to numbers: first)"
    return [flows.problem(
        ("start",), "E030",
        f"a call never hears the instruction to call 999 before its first choice: the start step "
        f"{flow.start!r} must say it within its first {FIRST_WORDS} words (\"If a child is in "
        f"immediate danger, hang up now and call {how}.\")")]


def check_essentials(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """999 and the NSPCC number wherever the line must give them whatever happens."""
    named = {entry.get("name"): digits_of(entry["number"]) for entry in allowed_number_entries()[0]}
    emergency = named.get("emergency", "999")
    nspcc = named.get("nspcc", "08088005000")
    need = {emergency: "999", nspcc: "the NSPCC number"}
    places = [(prompts, ("safety",), "the safety words (read when anything fails)",
               set().union(*(numbers_in(flow.written(text)) for text in flow.safety)), need)]
    if flow.give_up in flow.nodes:
        keys = [key for _, _, key in _walk_messages(flow, flow.give_up)]
        places.append((flows, ("give_up",), f"the give-up path (step {flow.give_up!r} and what "
                                           f"follows it until the caller can choose)",
                       _numbers_said(flow, keys), need))
    if flow.urgent in flow.nodes:
        places.append((flows, node_path(flow.urgent, "say"), f"the urgent step {flow.urgent!r}",
                       _numbers_said(flow, flow.nodes[flow.urgent].say), {emergency: "999"}))
    problems = []
    for doc, path, what, said, wanted in places:
        missing = [name for digits, name in wanted.items() if digits not in said]
        if missing:
            problems.append(doc.problem(
                path, "E034",
                f"{what} must give {' and '.join(missing)}: add the words that say it "
                f"(the prompts essentials.danger and essentials.nspcc do)"))
    return problems


def _example_lists(flows: YamlDoc):
    """(menu id or None for every menu, label, path of the examples list, examples) in file order."""
    raw = flows.data
    for name, nav in (raw.get("keys") or {}).items():
        yield None, name, ("keys", name, "examples"), nav.get("examples") or []
    for node_id, node in raw["nodes"].items():
        if node.get("type") != "menu":
            continue
        if isinstance(node.get("yes"), dict):
            yield node_id, "yes", node_path(node_id, "yes", "examples"), node["yes"].get("examples") or []
        for index, choice in enumerate(node.get("choices", ())):
            yield (node_id, choice["to"], node_path(node_id, "choices", index, "examples"),
                   choice.get("examples") or [])


def check_examples(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Each example must lead to its own choice in its menu, and belong to one choice only."""
    return example_problems(flow, _example_lists(flows), flows.problem)


def example_problems(flow: Flow, lists, problem_at: Callable[..., Problem]) -> list[Problem]:
    """W005 and E044 for (menu id or None for every menu, label, path, examples) lists;
    problem_at(path, code, message) makes the Problem in the file that holds them."""
    understander = flow.understander
    if understander is None:
        return []
    problems: dict[tuple, Problem] = {}
    for menu_id, label, path, examples in lists:
        if len(examples) < MIN_EXAMPLES:
            where = f"{label!r} in {menu_id!r}" if menu_id else f"key {label!r}"
            problems[(path, "W005")] = problem_at(
                path if examples else path[:-1], "W005",
                f"{where} has {len(examples)} examples; give at least {MIN_EXAMPLES} ways a caller "
                f"might say it, in their own words")
        menus = [menu_id] if menu_id else [m for m, menu in understander.menus.items() if menu.option(label)]
        for index, example in enumerate(examples):
            for menu in menus:
                problem = _example_problem(understander, menu, label, str(example))
                if problem and (path, index, "E044") not in problems:
                    problems[(path, index, "E044")] = problem_at((*path, index), "E044", problem)
    return list(problems.values())


def _example_problem(understander: Understander, menu_id: str, label: str, example: str) -> str | None:
    menu = understander.menus[menu_id]
    said = normalise(example)
    others = [o.label for o in menu.options  # examples only: E029 covers phrases
              if o.label != label and any(normalise(e) == said for e in o.examples)]
    if others:
        return (f"example {example!r} is also an example of {others[0]!r} in menu "
                f"{menu_id!r}: a caller saying it could mean either; keep it under one choice")
    result = understander.understand(menu_id, example)
    if result.label != label:
        went = result.label or "nothing (not understood)"
        return (f"example {example!r} of {label!r} in menu {menu_id!r} is understood as {went!r} "
                f"({result.layer}, {result.score:.2f}): reword it, or move it to that choice "
                f"(try `ivr understand {example!r} --at {menu_id}`)")
    return None
