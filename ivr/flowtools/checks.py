"""Checks on a built flow: each returns Problems pointing at the file and line.

The app runs every check at start and refuses to start on an error; `ivr
check` runs the same list and prints them all. Every check has a code (CODES
below); docs/flows.md says what each means and how to mend it, and
tests/broken/ holds a flow with each mistake.

The flow given to the checks is built with every optional choice switched on
(flow.ALL_OPTIONAL), so a step only a setting unlocks is checked too.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from ivr.call import engine, hours, speech
from ivr.call.flow import TARGET_FIELDS, Flow, Node, edges, reachable, schema_errors
from ivr.call.understanding import Understander
from ivr.call.understanding.normalise import normalise
from ivr.call.wording import placeholders
from ivr.config import REPO_ROOT
from ivr.flowtools import sources
from ivr.problems import FlowError, Problem
from ivr.texts import body as textbody
from ivr.yamlfile import YamlDoc
from ivr.yamlfile import load as load_yaml

URGENT_KEY = "9"
MAX_CHOICES = 5  # DESIGN.md: "The menu offers at most five choices at once"
FIRST_WORDS = 25  # DESIGN.md: the 999 instruction within the first 25 spoken words
MAX_SEGMENTS = getattr(textbody, "MAX_SEGMENTS", 3)
MAX_TEXTS = 2  # a text too long for TEXT_MAX_SEGMENTS goes as two, never more
MAX_COMBINATIONS = 4096  # texts composed to check every combination of branches

SCHEMA_DIR = REPO_ROOT / "schema"
PROMPTS_SCHEMA = SCHEMA_DIR / "prompts.schema.json"
ALLOWED_NUMBERS = SCHEMA_DIR / "allowed_numbers.yaml"
ALLOWED_DOMAINS = SCHEMA_DIR / "allowed_domains.yaml"

# Every code a check can report: (severity, what it means). E000-E011 come
# from reading the files (yamlfile.py, flow.py); the rest from this module.
CODES = {
    "E000": ("error", "a file cannot be read, or is not UTF-8 text"),
    "E001": ("error", "YAML syntax"),
    "E002": ("error", "the same key twice in one mapping"),
    "E010": ("error", "flows.yaml does not match schema/flows.schema.json"),
    "E011": ("error", "the prompts file is not a mapping"),
    "E012": ("error", "the prompts file does not match schema/prompts.schema.json"),
    "E013": ("error", "an allow-list in schema/ is malformed"),
    "E020": ("error", "a step, key or way on names a step that does not exist"),
    "E021": ("error", "a prompt key is missing from the prompts, or there is no safety list"),
    "E022": ("error", "the same key twice in one menu"),
    "E023": ("error", "a menu does not offer key 9 to the urgent step"),
    "E024": ("error", "a step cannot be reached from the start"),
    "E025": ("error", "a step adds a link the prompts do not have"),
    "E026": ("error", "a {placeholder} that is not one of the numbers"),
    "E027": ("error", "a dead end: a step has no way on, or its way on is itself"),
    "E028": ("error", "a loop with no way out: steps from which no goodbye can be reached"),
    "E029": ("error", "the same phrase for two keys (or twice) in one menu"),
    "E030": ("error", "the 999 instruction is not within the first 25 words of a call"),
    "E031": ("error", "a phone number that is not on the allow-list"),
    "E032": ("error", "a phone number written straight into the words, not as a {placeholder}"),
    "E033": ("error", "a menu does not offer key 9 first"),
    "E034": ("error", "the urgent step, the give-up path or the safety words miss 999 or the NSPCC number"),
    "E035": ("error", "the words of a choice name a different key (\"press 2\" for key 1)"),
    "E036": ("error", "the words of a choice ask the caller to say something the menu does not listen for"),
    "E037": ("error", "a phrase that speech can never match (punctuation in it)"),
    "E038": ("error", "a link that is not https or not on an allowed site"),
    "E039": ("error", "a web address written in the words that is not on an allowed site, or not https"),
    "E040": ("error", "a text with characters outside the GSM-7 alphabet"),
    "E041": ("error", "a text longer than TEXT_MAX_SEGMENTS (3) SMS segments, or more than two texts"),
    "E042": ("error", "a spoken key name that leads to the wrong key (nine: \"8\")"),
    "E043": ("error", "a sentence of more than 25 words"),
    "E050": ("error", "a prompt with no source, or a number, link or claim that sources.yaml does not back"),
    "E045": ("error", "a text lacks a link's label, a link, or a number the caller heard"),
    "E046": ("error", "opening hours that cannot be read (a day, a time or a date)"),
    "E044": ("error", "an example that the line understands as another choice, or that two choices share"),
    "E047": ("error", "a language file lacks a key the first language has, or its `language:` block"),
    "E048": ("error", "the key that chooses a language is used by a menu or by another language"),
    "W001": ("warning", "a prompt, link or number that nothing uses"),
    "W002": ("warning", "a step talks for more than 45 seconds before its choices"),
    "W004": ("warning", "a menu with more than five choices"),
    "W005": ("warning", "a choice with fewer than 8 examples of what a caller might say"),
    "W006": ("warning", "the first key of a call counts later than 10 seconds in"),
    "W007": ("warning", "a language's words are a draft, not yet signed off by a fluent speaker"),
}
MIN_EXAMPLES = 8

# What each kind of step needs to move the caller on (its ways on), and what
# the caller would meet without it.
WAYS_ON = {
    "message": {"next": "after its words the call would stop in silence"},
    "dial": {"next": "nothing says where the call goes after the NSPCC call ends",
             "on_fail": "nothing says where the call goes when nobody answers"},
    "number_entry": {"next": "nothing says where to go once a number is keyed in",
                     "on_give_up": "nothing says where to go after too many tries"},
    "text_request": {"on_queued": "nothing says what to say once the text is arranged",
                     "on_need_number": "nothing says where to ask for a mobile number",
                     "on_opted_out": "nothing says what to say when the number opted out",
                     "on_fail": "nothing says what to say when the text cannot be arranged"},
    "text_confirm": {"on_queued": "nothing says what to say once the text is arranged",
                     "on_opted_out": "nothing says what to say when the number opted out",
                     "on_fail": "nothing says what to say when the text cannot be arranged"},
}
KEY_NAMES = {
    "zero": "0", "oh": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "star": "*", "asterisk": "*", "hash": "#", "pound": "#", "square": "#",
}
_DIGIT_WORD = r"(?:zero|oh|nought|one|two|three|four|five|six|seven|eight|nine|double|treble|triple)"
DIGIT_RUN = re.compile(r"\d(?:[ \-]?\d){2,}")
DIGIT_WORD_RUN = re.compile(rf"\b{_DIGIT_WORD}(?:[\s,\-]+{_DIGIT_WORD}){{2,}}\b", re.IGNORECASE)
PRESS = re.compile(r"\bpress\s+(?:the\s+)?([\w*#]+)", re.IGNORECASE)
SAY = re.compile(r"\bsay\s+([\w' ]+?)\s*(?=[.,;:!?]|$)", re.IGNORECASE)
WEB_ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z]+)://)?(?P<host>(?:[a-z0-9-]+\.)+(?:uk|org|com|net|info|io|gov|edu|me|co|app|ly))"
    r"(?![\w.-]*\w)", re.IGNORECASE)


def _node_path(node_id, *rest):
    return ("nodes", node_id, *rest)


def _normal_phrase(phrase: str) -> str:
    """A phrase as the engine compares it (engine._normalise): lower case, no punctuation."""
    return " ".join(re.sub(r"[^\w']+", " ", phrase.lower()).split())


def _did_you_mean(name, known, otherwise: str = "") -> str:
    """': did you mean 'talk'?' for a name that is nearly one of known, else ': otherwise'."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.75)
    if close:
        return f": did you mean {close[0]!r}?"
    return f": {otherwise}" if otherwise else ""


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _numbers_in(text: str) -> set[str]:
    """Every run of digits (groups joined) in a text."""
    return {_digits(run) for run in re.findall(r"\d(?:[ ,\-]*\d)*", text)}


# -- the checks the line started with -----------------------------------------


def check_targets(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for name in ("start", "home", "urgent", "finish", "give_up"):
        target = getattr(flow, name)
        if target not in flow.nodes:
            problems.append(flows.problem((name,), "E020",
                                          f"{name} names a step that does not exist: {target!r}"
                                          + _did_you_mean(target, flow.nodes)))
    raw_nodes = flows.data["nodes"]
    for node_id, raw in raw_nodes.items():
        for index, choice in enumerate(raw.get("choices", ())):
            if choice["to"] not in flow.nodes:
                problems.append(flows.problem(
                    _node_path(node_id, "choices", index, "to"), "E020",
                    f"key {choice['key']} of {node_id!r} leads to an unknown step {choice['to']!r}"
                    + _did_you_mean(choice["to"], flow.nodes)))
        for field in TARGET_FIELDS:
            if field in raw and raw[field] not in flow.nodes:
                problems.append(flows.problem(_node_path(node_id, field), "E020",
                                              f"{field} of {node_id!r} names an unknown step {raw[field]!r}"
                                              + _did_you_mean(raw[field], flow.nodes)))
    return problems


def _prompt_refs(flow: Flow, flows: YamlDoc):
    """(path in flows.yaml, prompt key) for every prompt the flow uses."""
    raw = flows.data
    for name, key in (raw.get("notices") or {}).items():
        yield ("notices", name), key
    for name, nav in (raw.get("keys") or {}).items():
        yield ("keys", name, "prompt"), nav["prompt"]
    for node_id, node in raw["nodes"].items():
        for index, key in enumerate(node.get("say", ())):
            yield _node_path(node_id, "say", index), key
        for index, choice in enumerate(node.get("choices", ())):
            if "prompt" in choice:
                yield _node_path(node_id, "choices", index, "prompt"), choice["prompt"]
        if "invalid" in node:
            yield _node_path(node_id, "invalid"), node["invalid"]


def check_prompts(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = [
        flows.problem(path, "E021", f"prompt {key!r} is not in {prompts.file}"
                                    + _did_you_mean(key, flow.prompts, "add it there"))
        for path, key in _prompt_refs(flow, flows)
        if key not in flow.prompts
    ]
    known = set(flow.numbers) | {"entered"}  # {entered}: the number a caller keyed in
    for path, text in _texts(flow):
        for name in placeholders(text):
            if name not in known:
                problems.append(prompts.problem(
                    path, "E026", f"{{{name}}} is not one of the numbers: {', '.join(sorted(flow.numbers))}"))
    if not flow.safety:
        problems.append(prompts.problem(
            (), "E021", "the prompts need a `safety` list: the words read when anything fails"))
    return problems


def check_menus(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node in flow.nodes.values():
        if node.type != "menu":
            continue
        seen: dict[str, str] = {}
        for index, choice in enumerate(node.choices):
            if choice.key in seen:
                problems.append(flows.problem(_node_path(node.id, "choices", index, "key"), "E022",
                                              f"key {choice.key} is used twice in menu {node.id!r}"))
            seen[choice.key] = f"choice {index + 1}"
        for nav in flow.nav_for(node):
            if nav.key in seen:
                problems.append(flows.problem(
                    _node_path(node.id, "choices"), "E022",
                    f"key {nav.key} in menu {node.id!r} is also the {nav.name} key"))
        urgent = [c for c in node.choices if c.key == URGENT_KEY]
        if not urgent or urgent[0].to != flow.urgent:
            problems.append(flows.problem(
                _node_path(node.id, "choices"), "E023",
                f"menu {node.id!r} must offer key {URGENT_KEY} to the urgent step {flow.urgent!r}"))
        elif node.choices[0].key != URGENT_KEY:
            index = node.choices.index(urgent[0])
            problems.append(flows.problem(
                _node_path(node.id, "choices", index), "E033",
                f"menu {node.id!r} offers key {URGENT_KEY} (the urgent step) as choice {index + 1}: "
                f"move it to the top of `choices:`, so a caller in danger hears it first"))
        if len(node.choices) > MAX_CHOICES:
            problems.append(flows.problem(
                _node_path(node.id, "choices"), "W004",
                f"menu {node.id!r} offers {len(node.choices)} choices; at most {MAX_CHOICES} at once "
                f"are easy to keep in mind: move some to a menu of their own"))
    return problems


def check_reachable(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    seen = reachable(flow)
    return [
        flows.problem(_node_path(node_id), "E024", f"step {node_id!r} cannot be reached from {flow.start!r}")
        for node_id in flow.nodes
        if node_id not in seen
    ]


def check_links(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node_id, raw in flows.data["nodes"].items():
        for index, key in enumerate(raw.get("links", ())):
            if key not in flow.links:
                problems.append(flows.problem(_node_path(node_id, "links", index), "E025",
                                              f"link {key!r} is not in the links of {prompts.file}"
                                              + _did_you_mean(key, flow.links)))
    return problems


# -- the shape of the prompts file and the allow-lists ------------------------


def prompts_schema_problems(prompts: YamlDoc) -> list[Problem]:
    """The prompts file against schema/prompts.schema.json (E012)."""
    if not isinstance(prompts.data, dict):
        return []  # E011, reported by flow.load
    problems = []
    for path, where, error in schema_errors(prompts.data, json.loads(PROMPTS_SCHEMA.read_text())):
        if "propertyNames" in error.schema_path:  # a name, not a value: point at the name
            problems.append(prompts.problem(
                (*path, error.instance), "E012",
                f"{where}: the name {error.instance!r} must be lower case letters, digits and _"
                + (" in words joined by dots (e.g. main.intro)" if path == ("prompts",) else "")))
            continue
        hint = ""
        if path[:1] == ("numbers",) and error.validator in ("pattern", "type"):
            hint = ' (write a number in quotes, as digits in groups: "0808 800 5000")'
        elif error.instance is None:
            hint = " (the text is empty: write the words after the colon, in quotes)"
        problems.append(prompts.problem(path, "E012", f"{where}: {error.message}{hint}"))
    return problems


def _allow_list(path: Path, section: str, field: str) -> tuple[list[dict], list[Problem]]:
    """Entries of an allow-list file in schema/, or the problems that stop reading it."""
    try:
        doc = load_yaml(path)
    except FlowError as exc:
        return [], list(exc.problems)
    entries = doc.data.get(section) if isinstance(doc.data, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get(field), str) for entry in entries):
        return [], [doc.problem((section,), "E013",
                                f"{path.name} needs a list `{section}:` of entries, each with "
                                f"`{field}:` in quotes and `what:`")]
    return entries, []


def allowed_number_entries() -> tuple[list[dict], list[Problem]]:
    return _allow_list(ALLOWED_NUMBERS, "numbers", "number")


def allowed_numbers() -> tuple[dict[str, str], list[Problem]]:
    """Digits -> the number as the allow-list writes it."""
    entries, problems = allowed_number_entries()
    return {_digits(entry["number"]): entry["number"] for entry in entries}, problems


def allowed_domains() -> tuple[list[str], list[Problem]]:
    entries, problems = _allow_list(ALLOWED_DOMAINS, "domains", "domain")
    return [entry["domain"].lower() for entry in entries], problems


def domain_allowed(host: str, domains: list[str]) -> bool:
    host = host.lower()
    return any(host in (domain, f"www.{domain}") for domain in domains)


# -- the words -----------------------------------------------------------------


def _texts(flow: Flow):
    """(path in the prompts file, template) for every text the line says or sends."""
    yield from ((("prompts", key), text) for key, text in flow.prompts.items())
    yield from ((("safety", index), text) for index, text in enumerate(flow.safety))
    yield from ((("sms", key), text) for key, text in flow.sms.items())


def check_unused(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    used = {key for _, key in _prompt_refs(flow, flows)}
    if flow.confirm:  # "I think you asked about ...": said for the step a caller's words point to
        used |= {f"confirm.{node_id}" for node_id in flow.nodes}
    for key in flow.prompts:
        if key not in used:
            problems.append(prompts.problem(
                ("prompts", key), "W001",
                f"prompt {key!r} is never said: no step, key or notice in flows.yaml names it "
                f"(remove it, or add it to a step's say:)"))
    linked = {key for node in flow.nodes.values() for key in node.links}
    for key in flow.links:
        if key not in linked:
            problems.append(prompts.problem(
                ("links", key), "W001",
                f"link {key!r} is never sent: no step in flows.yaml adds it to the text "
                f"(remove it, or add it to a step's links:)"))
    named = {name for _, text in _texts(flow) for name in placeholders(text)}
    for name in flow.numbers:
        if name not in named:
            problems.append(prompts.problem(
                ("numbers", name), "W001",
                f"number {name!r} is never said or sent: no prompt, safety or sms text has "
                f"{{{name}}} (remove it, or use it)"))
    return problems


def check_speaking_time(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node in flow.nodes.values():
        secs = speech.before_choices(flow, node)
        if secs > speech.LONG_STEP_SECONDS:
            before = "before its choices" if node.type == "menu" else "in one go"
            problems.append(flows.problem(
                _node_path(node.id, "say"), "W002",
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
        _node_path(flow.start, "say", 0), "W006",
        f"the first key of a call counts only after about {first:.0f} seconds, the length of "
        f"{flow.nodes[flow.start].say[0]} (the 999 sentence, which no key can cut); keep it "
        f"short enough for a key within {speech.FIRST_KEY_GOAL} seconds")]


def _said_key(word: str) -> str | None:
    word = word.lower()
    if len(word) == 1 and word in "0123456789*#":
        return word
    return KEY_NAMES.get(word)


def _offers(flow: Flow, flows: YamlDoc):
    """(path of the prompt in flows.yaml, prompt key, key, phrases, what) for each offer read out."""
    for node in flow.nodes.values():
        if node.type != "menu":
            continue
        for index, choice in enumerate(node.choices):
            if choice.prompt:
                yield (_node_path(node.id, "choices", index, "prompt"), choice.prompt, choice.key,
                       choice.phrases, f"key {choice.key} in menu {node.id!r}")
    for nav in flow.nav_keys.values():
        yield (("keys", nav.name, "prompt"), nav.prompt, nav.key, nav.phrases, f"the {nav.name} key")


def check_offers(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """The words that offer a choice name its key, and the words it listens for."""
    problems = []
    for path, prompt_key, key, phrases, what in _offers(flow, flows):
        text = flow.prompts.get(prompt_key)
        if text is None:
            continue  # E021
        for match in PRESS.finditer(text):
            said = _said_key(match.group(1))
            if said is not None and said != key:
                problems.append(flows.problem(
                    path, "E035",
                    f"the words for {what} ({prompt_key}) say \"{match.group(0)}\", but the key is "
                    f"{key}: change the words in {prompts.file} or the key here"))
        for match in SAY.finditer(text):
            for said in re.split(r"\s+or\s+", match.group(1).strip(), flags=re.IGNORECASE):
                if _normal_phrase(said) not in phrases:
                    problems.append(flows.problem(
                        path, "E036",
                        f"the words for {what} ({prompt_key}) ask the caller to say "
                        f"\"{said}\", but it is not one of its phrases: add it to phrases:, "
                        f"or change the words"))
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
                path = _node_path(node.id, "choices", index, "phrases", p_index)
                problems += _unheard(flows, path, str(phrase))
                normal = _normal_phrase(str(phrase))
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
                normal = _normal_phrase(phrase)
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
    normal = _normal_phrase(phrase)
    if normal and normal == phrase.lower():
        return []
    return [flows.problem(
        path, "E037",
        f"phrase {phrase!r} can never be heard: what a caller says is matched without "
        f"punctuation, so write it as {normal!r}" if normal else
        f"phrase {phrase!r} has no words a caller could say: remove it")]


# -- the structure -------------------------------------------------------------


def _self_ways(node: Node) -> list[str]:
    """Ways on of a step that lead straight back to it (a menu may repeat itself by key)."""
    fields = [f for f in TARGET_FIELDS if node.type != "menu" or f == "on_give_up"]
    return [f for f in fields if node.target(f) == node.id]


def check_dead_ends(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node in flow.nodes.values():
        for field, without in WAYS_ON.get(node.type, {}).items():
            if node.target(field) is None:
                problems.append(flows.problem(
                    _node_path(node.id), "E027",
                    f"step {node.id!r} ({node.type}) has no {field}: {without}. Add "
                    f"`{field}: <step>` to it"
                    + (", or make it type: goodbye to end the call here" if node.type == "message" else "")))
        for field in _self_ways(node):
            problems.append(flows.problem(
                _node_path(node.id, field), "E027",
                f"{field} of {node.id!r} leads back to {node.id!r} itself, so the caller would go "
                f"round it again and again: name the step that should come next"))
    return problems


def check_loops(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Steps from which no goodbye can be reached: the call could never end politely."""
    goodbyes = {node_id for node_id, node in flow.nodes.items() if node.type == "goodbye"}
    if not goodbyes:
        return [flows.problem(("nodes",), "E028",
                              "no step ends the call: add a step with type: goodbye (the finish "
                              "step's choices should lead to one)")]
    successors = {
        node_id: {target for _, target in edges(flow, node) if target in flow.nodes}
        for node_id, node in flow.nodes.items()
    }
    can_end = set(goodbyes)
    changed = True
    while changed:
        changed = False
        for node_id, targets in successors.items():
            if node_id not in can_end and targets & can_end:
                can_end.add(node_id)
                changed = True
    seen = reachable(flow)
    trapped = [node_id for node_id in flow.nodes if node_id in seen and node_id not in can_end]
    problems, done = [], set()
    for node_id in trapped:  # file order: each loop is reported once, at its first step
        if node_id in done:
            continue
        if not _reaches(successors, node_id, node_id):
            continue  # not in a loop: it leads into one (reported there) or to a dead end (E027)
        loop = [other for other in trapped
                if _reaches(successors, node_id, other) and _reaches(successors, other, node_id)]
        done.update(loop)
        if loop == [node_id] and _self_ways(flow.nodes[node_id]):
            continue  # a step whose way on is itself: E027 says so
        names = ", ".join(repr(other) for other in loop)
        round_ = (f"steps {names} lead only round each other" if len(loop) > 1
                  else f"step {node_id!r} leads only back to itself")
        problems.append(flows.problem(
            _node_path(node_id), "E028",
            f"{round_}: no goodbye can be reached from {'them' if len(loop) > 1 else 'it'}, so "
            f"the call could never end. Give one of them a way out: `next:` to a step that leads "
            f"on to {flow.finish!r}, or a choice"))
    return problems


def _reaches(successors: dict, start: str, goal: str) -> bool:
    seen, todo = set(), list(successors.get(start, ()))
    while todo:
        node_id = todo.pop()
        if node_id == goal:
            return True
        if node_id not in seen:
            seen.add(node_id)
            todo.extend(successors.get(node_id, ()))
    return False


# -- safety --------------------------------------------------------------------


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
    return set().union(*(_numbers_in(flow.written(flow.prompts.get(key, ""))) for key in prompt_keys))


def check_first_words(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """The 999 instruction within the first FIRST_WORDS words of every call."""
    if flow.start not in flow.nodes:
        return []  # E020
    count = 0
    for node, where, key in _walk_messages(flow, flow.start):
        said = [_digits(word) or word for word in speech.words(speech.spoken(flow, key))]
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
                _node_path(node.id, *where), "E030",
                f"999 comes at word {at} of the call ({key}, in step {node.id!r}); the "
                f"instruction to call 999 must come within the first {FIRST_WORDS} words: "
                f"put the prompt with it first, or shorten the words before it")]
        count += len(said)
    emergency = [name for name, number in flow.numbers.items() if _digits(number) == "999"]
    how = f"{{{emergency[0]}}}" if emergency else "999 (add it to numbers: first)"
    return [flows.problem(
        ("start",), "E030",
        f"a call never hears the instruction to call 999 before its first choice: the start step "
        f"{flow.start!r} must say it within its first {FIRST_WORDS} words (\"If a child is in "
        f"immediate danger, hang up now and call {how}.\")")]


def check_essentials(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """999 and the NSPCC number wherever the line must give them whatever happens."""
    named = {entry.get("name"): _digits(entry["number"]) for entry in allowed_number_entries()[0]}
    emergency = named.get("emergency", "999")
    nspcc = named.get("nspcc", "08088005000")
    need = {emergency: "999", nspcc: "the NSPCC number"}
    places = [(prompts, ("safety",), "the safety words (read when anything fails)",
               set().union(*(_numbers_in(flow.written(text)) for text in flow.safety)), need)]
    if flow.give_up in flow.nodes:
        keys = [key for _, _, key in _walk_messages(flow, flow.give_up)]
        places.append((flows, ("give_up",), f"the give-up path (step {flow.give_up!r} and what "
                                           f"follows it until the caller can choose)",
                       _numbers_said(flow, keys), need))
    if flow.urgent in flow.nodes:
        places.append((flows, _node_path(flow.urgent, "say"), f"the urgent step {flow.urgent!r}",
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


def check_numbers(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    allowed, problems = allowed_numbers()
    listing = ", ".join(allowed.values())
    for name, number in flow.numbers.items():
        if allowed and _digits(number) not in allowed:
            problems.append(prompts.problem(
                ("numbers", name), "E031",
                f"number {name!r} is {number}, which is not one of the numbers the line may give "
                f"({listing}; schema/allowed_numbers.yaml): check it against "
                f"sources.yaml"))
    texts = list(_texts(flow))
    texts += [(("links", key, "label"), link.label) for key, link in flow.links.items()]
    for path, text in texts:
        for match in itertools.chain(DIGIT_RUN.finditer(text), DIGIT_WORD_RUN.finditer(text)):
            problems.append(prompts.problem(
                path, "E032",
                f"{'.'.join(map(str, path))} writes the number {match.group(0)!r} straight into the "
                f"words: use its placeholder from numbers: (e.g. {{nspcc}}), so it is checked "
                f"against the allow-list and spoken digit by digit"))
    return problems


# -- texts and links -----------------------------------------------------------


def check_web_addresses(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    domains, problems = allowed_domains()
    listing = "schema/allowed_domains.yaml"
    for key, link in flow.links.items():
        parts = urlsplit(link.url.strip())
        path = ("links", key, "url")
        if parts.scheme != "https":
            problems.append(prompts.problem(
                path, "E038", f"link {key!r} ({link.url}) must start with https://"))
        elif not parts.hostname or parts.netloc != parts.hostname or " " in link.url:
            problems.append(prompts.problem(
                path, "E038", f"link {key!r} ({link.url}) is not a plain web address "
                              f"like https://www.nspcc.org.uk"))
        elif domains and not domain_allowed(parts.hostname, domains):
            problems.append(prompts.problem(
                path, "E038",
                f"link {key!r} is on {parts.hostname}, which is not an allowed site ({listing}): "
                f"check it against sources.yaml"))
    texts = list(_texts(flow)) + [(("links", key, "label"), link.label) for key, link in flow.links.items()]
    for path, text in texts:
        for match in WEB_ADDRESS.finditer(text):
            scheme, host = match.group("scheme"), match.group("host")
            if scheme and scheme.lower() != "https":
                problems.append(prompts.problem(
                    path, "E039", f"{'.'.join(map(str, path))} writes {match.group(0)!r}: "
                                  f"web addresses start with https://, or with the site's name alone"))
            elif domains and not domain_allowed(host, domains):
                problems.append(prompts.problem(
                    path, "E039",
                    f"{'.'.join(map(str, path))} writes the web address {host!r}, which is not an "
                    f"allowed site ({listing}): check it against sources.yaml"))
    return problems


def _not_gsm(text: str) -> str:
    return "".join(sorted({ch for ch in text if not textbody.is_gsm7(ch)}))


def check_texts(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Every text the line may send, for every combination of branches heard: GSM-7
    characters only, at most two texts of TEXT_MAX_SEGMENTS segments, every link with its
    label, every number the caller heard."""
    problems = []
    # A language with its own letters (sms_ascii beside sms) may send them (UCS-2):
    # its plain lines must be GSM-7 and every text must still fit (body.compose_parts).
    section, lines = ("sms_ascii", flow.sms_ascii) if flow.sms_ascii else ("sms", flow.sms)
    sources: list[tuple[tuple, str]] = [((section, key), flow.written(text)) for key, text in lines.items()]
    for key, link in flow.links.items():
        sources += [(("links", key, "label"), link.label), (("links", key, "url"), link.url)]
    for path, text in sources:
        odd = _not_gsm(textbody.plain(text))
        if odd:
            problems.append(prompts.problem(
                path, "E040",
                f"{'.'.join(map(str, path))} has {', '.join(repr(ch) for ch in odd)}, not in the "
                f"GSM-7 alphabet of texts: one such character makes the whole text cost twice as "
                f"many segments; write it with plain letters"))
        elif path[0] == section and textbody.segments(textbody.plain(text)) > textbody.max_segments(flow):
            problems.append(prompts.problem(
                path, "E041", f"{'.'.join(map(str, path))} alone is longer than "
                              f"{textbody.max_segments(flow)} "
                              f"SMS segments: shorten it"))
    if problems:
        return problems
    seen = reachable(flow)
    branches, by_links = [], set()
    fixed = " ".join(flow.written(text) for text in flow.sms.values())
    for node in flow.nodes.values():  # one branch for each different set of links and numbers
        numbers = tuple(textbody.numbers_heard(flow, [node.id]))
        kind = (node.links, numbers)
        gives = node.links or any(f"number_{n}" in flow.sms or flow.numbers[n] not in fixed
                                  for n in numbers)
        if gives and node.id in seen and kind not in by_links:
            by_links.add(kind)
            branches.append(node.id)
    combos = itertools.chain.from_iterable(
        itertools.combinations(branches, size) for size in range(len(branches) + 1))
    # Smallest first, so the report names the fewest branches; the longest text
    # (every branch) is always among them.
    for heard in [*itertools.islice(combos, MAX_COMBINATIONS), tuple(branches)]:
        problem = _text_problem(flow, flows, prompts, list(heard))
        if problem:
            return [problem]
    return []


def sources_file(flows: YamlDoc) -> Path:
    """sources.yaml beside the flow when there is one (a copy being edited), else the project's."""
    beside = Path(flows.file).parent / "sources.yaml"
    return beside if beside.exists() else REPO_ROOT / "sources.yaml"


def check_sourced(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Every sentence rests on claims, every claim on a source (sources.yaml)."""
    return sources.check_sources(prompts, sources_file(flows))


def _text_missing(flow: Flow, heard: list[str], whole: str) -> list[str]:
    """What a caller who heard these branches would not find in their text: a link's label
    or address, or a number they heard (999 and the NSPCC always)."""
    missing = []
    for link in textbody.links_heard(flow, heard):
        if link.url not in whole and textbody._bare(link.url) not in whole.lower():
            missing.append(f"the link {link.key} ({link.url})")
        elif link.url in whole and f"{link.label}:\n{link.url}" not in whole:
            missing.append(f"the label of link {link.key} ({link.label!r})")
    names = [n for n, number in flow.numbers.items() if _digits(number) in ("999", "08088005000")]
    for name in dict.fromkeys(names + textbody.numbers_heard(flow, heard)):
        if flow.numbers[name] not in whole:
            missing.append(f"the number {{{name}}} ({flow.numbers[name]}): add a line "
                           f"sms.number_{name} that gives it")
    return missing


def _text_problem(flow: Flow, flows: YamlDoc, prompts: YamlDoc, heard: list[str]) -> Problem | None:
    parts = textbody.compose_parts(flow, heard)
    limit = textbody.max_segments(flow)
    who = ", ".join(repr(b) for b in heard) or "no step with links"
    doc, where = (flows, _node_path(heard[-1], "links")) if heard else (prompts, ("sms",))
    odd = _not_gsm("".join(parts))
    if odd and not flow.sms_ascii:
        return doc.problem(where, "E040", f"the text for a caller who heard {who} has "
                                          f"{odd!r}, outside the GSM-7 alphabet")
    counts = [textbody.segments(part) for part in parts]
    if len(parts) > MAX_TEXTS or max(counts) > limit:
        return doc.problem(
            where, "E041",
            f"the text for a caller who heard {who} takes {len(parts)} text(s) of "
            f"{', '.join(map(str, counts))} SMS segments (at most {MAX_TEXTS} texts of {limit}): "
            f"shorten the link labels or the sms lines in {prompts.file}, or add fewer links "
            f"to these steps")
    missing = _text_missing(flow, heard, "\n".join(parts))
    if missing:
        return doc.problem(where, "E045", f"the text for a caller who heard {who} lacks "
                                          f"{'; '.join(missing)}")
    return None


def check_hours(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Every opening-hours schedule reads: days, times like 08:00-22:00, dates."""
    problems: list[Problem] = []
    nodes = flows.data.get("nodes") if isinstance(flows.data, dict) else None
    for node_id, raw in (nodes or {}).items():
        if isinstance(raw, dict) and "hours" in raw:
            _, bad = hours.parse(raw["hours"], _node_path(node_id, "hours"))
            problems += [flows.problem(path, "E046", f"{'.'.join(map(str, path[1:]))}: {message}")
                         for path, message in bad]
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
            yield node_id, "yes", _node_path(node_id, "yes", "examples"), node["yes"].get("examples") or []
        for index, choice in enumerate(node.get("choices", ())):
            yield (node_id, choice["to"], _node_path(node_id, "choices", index, "examples"),
                   choice.get("examples") or [])


def check_examples(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Each example must lead to its own choice in its menu, and belong to one choice only."""
    understander = flow.understander
    if understander is None:
        return []
    problems: dict[tuple, Problem] = {}
    for menu_id, label, path, examples in _example_lists(flows):
        if len(examples) < MIN_EXAMPLES:
            where = f"{label!r} in {menu_id!r}" if menu_id else f"key {label!r}"
            problems[(path, "W005")] = flows.problem(
                path if examples else path[:-1], "W005",
                f"{where} has {len(examples)} examples; give at least {MIN_EXAMPLES} ways a caller "
                f"might say it, in their own words")
        menus = [menu_id] if menu_id else [m for m, menu in understander.menus.items() if menu.option(label)]
        for index, example in enumerate(examples):
            for menu in menus:
                problem = _example_problem(understander, menu, label, str(example))
                if problem and (path, index, "E044") not in problems:
                    problems[(path, index, "E044")] = flows.problem((*path, index), "E044", problem)
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


CHECKS = [
    check_targets, check_hours, check_prompts, check_menus, check_reachable, check_links,
    check_dead_ends, check_loops, check_phrases, check_offers,
    check_first_words, check_essentials, check_numbers,
    check_web_addresses, check_texts,
    check_unused, check_speaking_time, check_sourced, check_first_key, check_examples,
]


def with_severity(problem: Problem) -> Problem:
    """A code's severity is set once, in CODES."""
    return dataclasses.replace(problem, severity=CODES.get(problem.code, (problem.severity,))[0])


def run_all(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(flow, flows, prompts))
    # A code's severity is set once, in CODES.
    return sorted({dataclasses.replace(p, severity=CODES.get(p.code, (p.severity,))[0])
                   for p in problems})

