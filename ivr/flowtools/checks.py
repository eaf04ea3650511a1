"""Checks on a built flow: each returns Problems pointing at the file and line.

The app runs every check at start and refuses to start on an error; `ivr
check` runs the same list and prints them all. Every check has a code (CODES
below); docs/flows.md says what each means and how to mend it, and
tests/broken/ holds a flow with each mistake.

The flow given to the checks is built with every optional choice switched on
(flow.ALL_OPTIONAL), so a step only a setting unlocks is checked too.

The rules themselves live in ivr/flowtools/rules/, one module a family:
structure (the flow's shape), words (words, timing, keys, examples), numbers
(numbers, links, sources) and texts (the text after the call). This module
puts them together: the codes, the order they run in, and run_all.
"""
from __future__ import annotations

import dataclasses

from ivr.call.flow import Flow
from ivr.flowtools.rules.common import (  # noqa: F401
    ALLOWED_DOMAINS,
    ALLOWED_NUMBERS,
    FIRST_WORDS,
    MAX_CHOICES,
    PROMPTS_SCHEMA,
    SCHEMA_DIR,
    URGENT_KEY,
)
from ivr.flowtools.rules.numbers import (  # noqa: F401
    DIGIT_RUN,
    DIGIT_WORD_RUN,
    WEB_ADDRESS,
    allowed_domains,
    allowed_number_entries,
    allowed_numbers,
    check_numbers,
    check_sourced,
    check_web_addresses,
    domain_allowed,
    sources_file,
)
from ivr.flowtools.rules.structure import (  # noqa: F401
    WAYS_ON,
    check_dead_ends,
    check_hours,
    check_links,
    check_loops,
    check_menus,
    check_prompts,
    check_reachable,
    check_targets,
    check_unused,
    prompts_schema_problems,
)
from ivr.flowtools.rules.texts import MAX_COMBINATIONS, MAX_SEGMENTS, MAX_TEXTS, check_texts  # noqa: F401
from ivr.flowtools.rules.words import (  # noqa: F401
    KEY_NAMES,
    MIN_EXAMPLES,
    PRESS,
    SAY,
    check_essentials,
    check_examples,
    check_first_key,
    check_first_words,
    check_offers,
    check_phrases,
    check_speaking_time,
)
from ivr.problems import Problem
from ivr.yamlfile import YamlDoc

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
    "E030": ("error", "the 999 instruction is not within the first 25 words of a call, or a "
                      "language's offer does not give its 999 and its key within its first 25"),
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
    "E047": ("error", "a language file lacks a key the first language has, or its `language:` block"),
    "E048": ("error", "the key (or words) that choose a language are used by a menu or by "
                      "another language"),
    "E049": ("error", "a language says its 999 sentence in other words in its offer or welcome "
                      "than at key 9"),
    "E044": ("error", "an example that the line understands as another choice, or that two choices share"),
    "W001": ("warning", "a prompt, link or number that nothing uses"),
    "W002": ("warning", "a step talks for more than 45 seconds before its choices"),
    "W004": ("warning", "a menu with more than five choices"),
    "W005": ("warning", "a choice with fewer than 8 examples of what a caller might say"),
    "W006": ("warning", "the first key of a call counts later than 10 seconds in"),
    "W007": ("warning", "a language\'s words are a draft, not yet signed off by a fluent speaker"),
}


CHECKS = [
    check_targets, check_hours, check_prompts, check_menus, check_reachable, check_links,
    check_dead_ends, check_loops, check_phrases, check_offers,
    check_first_words, check_essentials, check_numbers,
    check_web_addresses, check_texts,
    check_unused, check_speaking_time, check_sourced, check_first_key, check_examples,
]


def run_all(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(flow, flows, prompts))
    # A code's severity is set once, in CODES.
    return sorted({dataclasses.replace(p, severity=CODES.get(p.code, (p.severity,))[0])
                   for p in problems})


def with_severity(problem: Problem) -> Problem:
    """A code's severity is set once, in CODES."""
    return dataclasses.replace(problem, severity=CODES.get(problem.code, (problem.severity,))[0])
