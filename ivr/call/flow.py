"""Load flows.yaml and the prompts into plain, immutable objects.

Everything here runs once, at start: the engine and the TwiML builder work
on the objects it returns and never touch a file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import jsonschema

from ivr import yamlfile
from ivr.call import hours as hours_module
from ivr.call import understanding, wording
from ivr.config import REPO_ROOT
from ivr.problems import FlowError, Problem

SCHEMA_PATH = REPO_ROOT / "schema" / "flows.schema.json"

# Node types whose outcome the voice webhook decides with the database.
ACTION_TYPES = ("text_request", "text_confirm")
# Fields of a node that name another node.
# Settings a choice may require ("requires:"), switched on to check the flow.
ALL_OPTIONAL = {"NSPCC_DIAL_NUMBER": "+440000000000"}
# The app settings the flow depends on: the number to dial, the texts' size.
FLOW_SETTINGS = ("NSPCC_DIAL_NUMBER", "TEXT_MAX_SEGMENTS", "BANK_HOLIDAYS")
TARGET_FIELDS = ("next", "on_fail", "on_give_up", "on_queued", "on_need_number", "on_opted_out",
                 "on_closed")


@dataclass(frozen=True)
class Choice:
    key: str
    to: str
    phrases: tuple[str, ...] = ()
    prompt: str | None = None
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    say: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()
    nav: tuple[str, ...] = ()  # names of the flow's keys offered here (repeat, home, finish)
    links: tuple[str, ...] = ()
    targets: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    dial: str | None = None  # the setting that holds the number to dial
    timeout: int | None = None
    invalid: str | None = None  # prompt read when a keyed-in number is not valid
    hours: hours_module.Hours | None = None  # when a dial step's number is open (hours.py)
    yes: Choice | None = None  # at the confirm step: the key that goes where the words pointed

    def target(self, name: str) -> str | None:
        return self.targets.get(name)


@dataclass(frozen=True)
class NavKey:
    name: str
    key: str
    prompt: str
    phrases: tuple[str, ...]
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Link:
    key: str
    label: str
    url: str


@dataclass(frozen=True)
class Offer:
    """Another language, offered in this one's welcome: its words said in its voice."""

    code: str  # pl-PL
    key: str  # the key that chooses it ("7")
    prompts: tuple[str, ...]  # keys in the offering flow's prompts ("pl-PL:urgent.call_999")
    voice: str
    language: str
    words: tuple[str, ...] = ()  # what a caller may say to choose it ("po polsku"), lower case


@dataclass(frozen=True)
class Flow:
    start: str
    home: str
    urgent: str
    finish: str
    give_up: str
    voice: str
    language: str
    gather: MappingProxyType
    nav_keys: MappingProxyType  # name -> NavKey
    spoken_keys: MappingProxyType  # word -> key
    notices: MappingProxyType  # name -> prompt key
    nodes: MappingProxyType  # id -> Node
    prompts: MappingProxyType  # key -> template with {placeholders}
    numbers: MappingProxyType  # name -> "0808 800 5000"
    links: MappingProxyType  # key -> Link
    safety: tuple[str, ...]
    sms: MappingProxyType
    settings: MappingProxyType  # the app settings the flow depends on (dial numbers)
    source: str = "flows.yaml"
    confirm: str | None = None  # the step that asks "I think you asked about ..."
    understander: understanding.Understander | None = None  # built once, here, at start
    code: str = "en-GB"  # the language of these words (its file: prompts/<code>.yaml)
    url_language: str | None = None  # l=<code> in every URL, for any language but the first
    offers: tuple[Offer, ...] = ()  # the other languages, offered after the 999 sentence
    languages: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    sms_ascii: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    speech: bool = True  # False: the <Gather> listens for keys only
    draft: bool = False  # not yet signed off by a fluent speaker
    reviewed_by: str | None = None
    prompts_file: str = ""

    def spoken(self, prompt_key: str, **extra: str) -> str:
        """The words for a prompt, numbers spoken digit by digit."""
        values = {name: wording.spoken_number(num) for name, num in self.numbers.items()}
        values.update(extra)
        return wording.fill(self.prompts[prompt_key], values)

    def written(self, template: str) -> str:
        """A text for an SMS, numbers written in groups."""
        return wording.fill(template, dict(self.numbers))

    def nav_for(self, node: Node) -> list[NavKey]:
        return [self.nav_keys[name] for name in node.nav if name in self.nav_keys]

    def in_language(self, code: str | None) -> Flow | None:
        """This flow in another of its languages (None: unknown); the first flow holds them all."""
        if not code or code == self.code:
            return self
        return self.languages.get(code)

    @property
    def all_languages(self) -> tuple[Flow, ...]:
        return (self, *self.languages.values())


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def schema_errors(data, schema: dict):
    """(path, where, error) for each way data breaks the schema, in document order."""
    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = tuple(error.absolute_path)
        yield path, ".".join(str(part) for part in path) or "the top level", error


def schema_problems(doc: yamlfile.YamlDoc, schema: dict) -> list[Problem]:
    problems = []
    for path, where, error in schema_errors(doc.data, schema):
        hint = ""
        if isinstance(error.instance, bool):  # YAML reads yes/no/on/off as true/false
            hint = ' (put words like yes and no in quotes: "yes")'
        elif isinstance(error.instance, int) and path[-1:] == ("key",):
            hint = ' (put keys in quotes: "4")'
        problems.append(doc.problem(path, "E010", f"{where}: {error.message}{hint}"))
    return problems


def _default_nav(raw: dict, node_id: str, node: dict) -> tuple[str, ...]:
    if "nav" in node:
        return tuple(node["nav"])
    names = ["repeat"]
    if node_id != raw["home"]:
        names.append("home")
    if node_id != raw["finish"]:
        names.append("finish")
    return tuple(names)


def _choice(choice: dict, to: str) -> Choice:
    return Choice(
        key=str(choice["key"]),
        to=to,
        phrases=tuple(str(p).lower() for p in choice.get("phrases", ())),
        prompt=choice.get("prompt"),
        examples=tuple(str(e) for e in choice.get("examples", ())),
    )


def _choices(node: dict, settings: dict) -> tuple[Choice, ...]:
    """A choice that `requires` a setting is offered only when that setting is set."""
    return tuple(
        _choice(choice, choice["to"])
        for choice in node.get("choices", ())
        if not choice.get("requires") or settings.get(choice["requires"])
    )


def _node(raw: dict, node_id: str, node: dict, settings: dict) -> Node:
    return Node(
        id=node_id,
        type=node["type"],
        say=tuple(node.get("say", ())),
        choices=_choices(node, settings),
        nav=_default_nav(raw, node_id, node) if node["type"] == "menu" else (),
        links=tuple(node.get("links", ())),
        targets=MappingProxyType({f: node[f] for f in TARGET_FIELDS if f in node}),
        dial=node.get("dial"),
        timeout=node.get("timeout"),
        invalid=node.get("invalid"),
        hours=hours_module.parse(node.get("hours"))[0],
        yes=_choice(node["yes"], "") if isinstance(node.get("yes"), dict) else None,
    )


def build(flows: yamlfile.YamlDoc, prompts: yamlfile.YamlDoc, settings: dict) -> Flow:
    """Plain data -> a Flow. Assumes the schema check passed."""
    raw, words = flows.data, prompts.data or {}
    nav_keys = {
        name: NavKey(name, str(k["key"]), k["prompt"], tuple(p.lower() for p in k.get("phrases", ())),
                     tuple(str(e) for e in k.get("examples", ())))
        for name, k in raw.get("keys", {}).items()
    }
    nodes = {nid: _node(raw, nid, n, settings) for nid, n in raw["nodes"].items()}
    spoken_keys = {str(w).lower(): str(k) for w, k in raw.get("spoken_keys", {}).items()}
    return Flow(
        start=raw["start"], home=raw["home"], urgent=raw["urgent"], finish=raw["finish"],
        give_up=raw["give_up"],
        voice=raw["voice"]["name"], language=raw["voice"]["language"],
        gather=MappingProxyType(dict(raw.get("gather", {}))),
        nav_keys=MappingProxyType(nav_keys),
        spoken_keys=MappingProxyType(spoken_keys),
        notices=MappingProxyType(dict(raw.get("notices", {}))),
        nodes=MappingProxyType(nodes),
        prompts=MappingProxyType({str(k): str(v) for k, v in (words.get("prompts") or {}).items()}),
        numbers=MappingProxyType({str(k): str(v) for k, v in (words.get("numbers") or {}).items()}),
        links=MappingProxyType({
            k: Link(k, str(v.get("label", k)), str(v.get("url", "")))
            for k, v in (words.get("links") or {}).items() if isinstance(v, dict)
        }),
        safety=tuple(str(s) for s in words.get("safety") or ()),
        sms=MappingProxyType({str(k): str(v) for k, v in (words.get("sms") or {}).items()}),
        settings=MappingProxyType({k: settings.get(k) for k in FLOW_SETTINGS}),
        source=flows.file,
        confirm=(raw.get("understanding") or {}).get("confirm"),
        understander=_understander(raw, nodes, nav_keys, spoken_keys),
        code=raw["voice"]["language"],
        prompts_file=prompts.file,
    )


def menu_options(node: Node, nav: list[NavKey]) -> tuple[understanding.Option, ...]:
    """What a caller can choose in a menu, for the understander: choices, the confirm's
    yes, then the keys every menu has. A choice's words are its phrases and examples."""
    options = [understanding.Option(c.to, c.key, c.examples, phrases=c.phrases) for c in node.choices]
    if node.yes:
        options.append(understanding.Option("yes", node.yes.key, node.yes.examples,
                                            phrases=node.yes.phrases))
    options += [understanding.Option(n.name, n.key, n.examples, nav=True, phrases=n.phrases)
                for n in nav]
    return tuple(options)


def _understander(raw: dict, nodes: dict, nav_keys: dict, spoken_keys: dict,
                  conf: dict | None = None, lang: str = "en",
                  markers: tuple[str, str] = ("yes", "no")) -> understanding.Understander:
    """Built once per flow, at start: the matcher indexes every menu's examples."""
    conf = (raw.get("understanding") or {}) if conf is None else conf
    names = ("floor", "sure", "margin", "confidence")
    settings = understanding.Settings(**{n: float(conf[n]) for n in names if n in conf})
    menus = {}
    for node_id, node in nodes.items():
        if node.type == "menu":
            offered = _default_nav(raw, node_id, raw["nodes"][node_id])
            menus[node_id] = menu_options(node, [nav_keys[n] for n in offered if n in nav_keys])
    return understanding.Understander(
        menus, raw["urgent"], conf.get("urgent_signals") or {}, spoken_keys,
        {str(w): str(k) for w, k in (conf.get("spoken_key_variants") or {}).items()},
        [str(w) for w in conf.get("yes") or ()], [str(w) for w in conf.get("no") or ()], settings,
        lang, markers)


# -- other languages -------------------------------------------------------------

def _examples(texts) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(phrases, examples): the first example is the word the prompt asks for (the hint)."""
    examples = tuple(str(t) for t in texts or ())
    return tuple(e.lower() for e in examples[:1]), examples


def _localised_node(node: Node, menus: dict, under: dict) -> Node:
    """A menu's choices with this language's words; keys and targets stay the flow's."""
    if node.type != "menu":
        return node
    mine = menus.get(node.id) or {}
    choices = []
    for choice in node.choices:
        phrases, examples = _examples(mine.get(choice.to))
        choices.append(replace(choice, phrases=phrases, examples=examples))
    yes = node.yes
    if yes is not None:
        phrases, examples = _examples(mine.get("yes") or under.get("yes"))
        yes = replace(yes, phrases=phrases, examples=examples)
    return replace(node, choices=tuple(choices), yes=yes)


def _text_map(words: dict, section: str) -> MappingProxyType:
    return MappingProxyType({str(k): str(v) for k, v in (words.get(section) or {}).items()})


def build_language(base: Flow, flows: yamlfile.YamlDoc, doc: yamlfile.YamlDoc) -> Flow:
    """The same flow (steps, keys, targets) with another language's words, voice, hints and
    understanding. Assumes the language checks passed (ivr.flowtools.languages)."""
    raw, words = flows.data, doc.data
    block = words["language"]
    under = words.get("understanding") or {}
    menus = under.get("menus") or {}
    nav = under.get("nav") or {}
    nodes = {nid: _localised_node(n, menus, under) for nid, n in base.nodes.items()}
    nav_keys = {}
    for name, key in base.nav_keys.items():
        phrases, examples = _examples(nav.get(name))
        nav_keys[name] = replace(key, phrases=phrases, examples=examples)
    spoken_keys = {**base.spoken_keys,
                   **{str(w).lower(): str(k) for w, k in (under.get("spoken_keys") or {}).items()}}
    english = raw.get("understanding") or {}
    conf = {**{k: v for k, v in english.items() if k in ("floor", "sure", "margin", "confidence")},
            **{k: v for k, v in under.items() if k not in ("menus", "nav", "spoken_keys")}}
    lang = str(block["code"]).split("-")[0]
    markers = (str(under.get("yes_word", "yes")), str(under.get("no_word", "no")))
    return replace(
        base, code=str(block["code"]), url_language=str(block["code"]),
        voice=str(block["voice"]), language=str(block.get("gather_language") or block["code"]),
        nodes=MappingProxyType(nodes), nav_keys=MappingProxyType(nav_keys),
        spoken_keys=MappingProxyType(spoken_keys),
        prompts=_text_map(words, "prompts"), numbers=_text_map(words, "numbers"),
        links=MappingProxyType({
            k: Link(k, str(v.get("label", k)), str(v.get("url", "")))
            for k, v in (words.get("links") or {}).items() if isinstance(v, dict)}),
        safety=tuple(str(s) for s in words.get("safety") or ()),
        sms=_text_map(words, "sms"), sms_ascii=_text_map(words, "sms_ascii"),
        speech=bool(block.get("speech", True)),
        draft=bool(block.get("draft")) or not block.get("reviewed_by"),
        reviewed_by=block.get("reviewed_by") or None,
        understander=_understander(raw, nodes, nav_keys, spoken_keys, conf, lang, markers),
        offers=(), languages=MappingProxyType({}), prompts_file=doc.file,
    )


def with_languages(base: Flow, others: list[tuple[Flow, yamlfile.YamlDoc]]) -> Flow:
    """The first language's flow, holding the others and offering each in its welcome."""
    prompts, offers = dict(base.prompts), []
    for other, doc in others:
        block = doc.data["language"]
        keys = []
        for key in block.get("offer") or ():
            prompts[f"{other.code}:{key}"] = other.prompts[key]
            keys.append(f"{other.code}:{key}")
        offers.append(Offer(other.code, str(block["key"]), tuple(keys), other.voice, other.language,
                            tuple(str(w).lower() for w in block.get("say") or ())))
    return replace(base, prompts=MappingProxyType(prompts), offers=tuple(offers),
                   languages=MappingProxyType({other.code: other for other, _ in others}))


def language_files(prompts_dir: str | Path, first: str = "en-GB") -> list[Path]:
    """Every other language: prompts/<code>.yaml beside the first language's file."""
    return sorted(p for p in Path(prompts_dir).glob("*.yaml") if p.stem != first)


def prompts_file(prompts_dir: str | Path, language: str = "en-GB") -> Path:
    return Path(prompts_dir) / f"{language}.yaml"


def load_docs(flows_file, prompts_dir):
    """Parse both files, collecting syntax problems from each before giving up."""
    docs, problems = [], []
    for path in (Path(flows_file), prompts_file(prompts_dir)):
        try:
            docs.append(yamlfile.load(path))
        except FlowError as exc:
            problems.extend(exc.problems)
    if problems:
        raise FlowError(problems)
    return docs


def edges(flow: Flow, node: Node) -> list[tuple[str, str]]:
    """Every (label, target) a caller can follow out of a node, in menu order."""
    out = [(f"key {c.key}", c.to) for c in node.choices]
    for nav in flow.nav_for(node):
        goes_to = {"repeat": node.id, "home": flow.home, "finish": flow.finish}
        out.append((f"key {nav.key}", goes_to[nav.name]))
    if node.type in ("menu", "number_entry"):
        out.append(("too many tries", node.target("on_give_up") or flow.give_up))
    for name in TARGET_FIELDS:
        target = node.target(name)
        if name != "on_give_up" and target:
            out.append((name, target))
    return out


def reachable(flow: Flow) -> set[str]:
    seen, todo = set(), [flow.start, *([flow.confirm] if flow.confirm else [])]
    while todo:
        node_id = todo.pop()
        if node_id in seen or node_id not in flow.nodes:
            continue
        seen.add(node_id)
        todo.extend(target for _, target in edges(flow, flow.nodes[node_id]))
    return seen
