"""Every language beside the first (prompts/<code>.yaml): loaded, checked, built.

flows.yaml is one structure for all languages; a language file brings the
words, the voice, the hints and the examples. A language is refused at start
when it lacks a key the first language has (E047), when its key is one a menu
uses (E048), when its 999 sentence comes late (E030), or when one of its texts
breaks the segment limit (E041, E045). A draft (no reviewed_by) is a warning (W007).
"""
from __future__ import annotations

from pathlib import Path

from ivr import yamlfile
from ivr.call import flow as flow_module
from ivr.call import speech
from ivr.call.flow import Flow
from ivr.flowtools import checks
from ivr.flowtools.rules.common import digits_of
from ivr.problems import FlowError, Problem

SECTIONS = ("prompts", "numbers", "links", "sms")


def _name(doc: yamlfile.YamlDoc) -> str:
    """prompts/pl-PL.yaml, however the folder was named to the app."""
    path = Path(doc.file)
    return f"{path.parent.name}/{path.name}"
OWN = "language."  # prompt keys of a language's offer: only the offered language has them
# The first language's checks that every language must pass too (its words, numbers, texts).
CHECKS = (checks.check_first_words, checks.check_essentials, checks.check_numbers,
          checks.check_web_addresses, checks.check_texts)


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
    return []


def offer_words(first: Flow) -> list[Problem]:
    """E030 for each offered language: its 999 within the first 25 words the caller hears
    (the first language's 999 sentence, then the offer)."""
    start = first.nodes.get(first.start)
    if start is None or not start.say:
        return []
    count = len(speech.words(speech.spoken(first, start.say[0])))
    problems = []
    for offer in first.offers:  # one after another: a later offer starts later
        said = [digits_of(w) or w for key in offer.prompts
                for w in speech.words(speech.spoken(first, key))]
        at = next((count + i + 3 for i in range(len(said)) if said[i:i + 3] == ["9", "9", "9"]),
                  None)
        count += len(said)
        if at is None or at > checks.FIRST_WORDS:
            problems.append(Problem(
                first.source, 0, 0, "E030",
                f"the {offer.code} offer says 999 at word {at or 'never'} of the call: it must "
                f"come within the first {checks.FIRST_WORDS} words (shorten "
                f"{', '.join(offer.prompts)})"))
    return problems


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
