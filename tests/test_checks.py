"""The checks of the flow: every code has a broken flow that proves its message and line.

tests/broken/<CODE>-<what>/ is a copy of the shipped files with one mistake;
`# expect: CODE` marks each line where `ivr check` must report CODE. Errors
must match the marks exactly; a marked warning must be reported.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import copy_shipped

from ivr.call import flow as flow_module
from ivr.call import speech
from ivr.config import REPO_ROOT
from ivr.flowtools import checks, validate
from ivr.flowtools.commands import collect
from ivr.problems import FlowError, Problem

BROKEN = Path(__file__).resolve().parent / "broken"
CASES = sorted(path for path in BROKEN.iterdir() if path.is_dir() and not path.name.startswith(("_", ".")))
FILES = ("flows.yaml", "prompts/en-GB.yaml", "prompts/pl-PL.yaml")
MARK = re.compile(r"# expect: ((?:[EW]\d{3}[ ,]*)+)")



def marks(case: Path) -> set[tuple[str, int, str]]:
    found = set()
    for name in FILES:
        path = case / name
        if not path.exists():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for group in MARK.findall(line):
                found.update((name, number, code) for code in re.findall(r"[EW]\d{3}", group))
    return found


def where(case: Path, problem: Problem) -> tuple[str, int, str]:
    path = Path(problem.file)
    name = path.relative_to(case).as_posix() if path.is_relative_to(case) else problem.file
    return name, problem.line, problem.code


def check_case(case: Path) -> list[Problem]:
    return collect(case / "flows.yaml", case / "prompts")


def edit(path: Path, old: str, new: str, after: str | None = None) -> int:
    """Replace the first `old` (after `after`); return the 1-based line where `new` starts."""
    text = path.read_text()
    start = text.index(after) if after else 0
    at = text.index(old, start)
    path.write_text(text[:at] + new + text[at + len(old):])
    return text.count("\n", 0, at) + 1


def line_of(path: Path, text: str) -> int:
    return path.read_text().split(text)[0].count("\n") + 1


def codes(problems, severity=None) -> list[str]:
    return [p.code for p in problems if severity is None or p.severity == severity]


# -- the shipped files ---------------------------------------------------------


def test_the_shipped_flow_has_no_errors():
    problems = collect(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
    assert [str(p) for p in problems if p.severity == "error"] == []


def test_the_shipped_flow_passes_with_no_warnings():
    problems = collect(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
    # W007 until a fluent speaker signs off prompts/pl-PL.yaml (issue 18): a warning on purpose.
    assert [str(p) for p in problems if p.code != "W007"] == []


def test_the_shipped_files_match_their_schemas():
    import json

    import jsonschema

    flows = yaml.safe_load((REPO_ROOT / "flows.yaml").read_text())
    prompts = yaml.safe_load((REPO_ROOT / "prompts" / "en-GB.yaml").read_text())
    jsonschema.validate(flows, json.loads(flow_module.SCHEMA_PATH.read_text()))
    jsonschema.validate(prompts, json.loads(checks.PROMPTS_SCHEMA.read_text()))


# -- a broken flow for every code ----------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_broken_flow_is_reported_at_its_marked_lines(case):
    expected = marks(case)
    assert expected, f"{case.name} has no `# expect: CODE` mark"
    assert case.name.split("-")[0] in {code for _, _, code in expected}
    problems = check_case(case)
    errors = {where(case, p) for p in problems if p.severity == "error"}
    warnings = {where(case, p) for p in problems if p.severity != "error"}
    assert errors == {m for m in expected if m[2].startswith("E")}, "\n".join(map(str, problems))
    assert {m for m in expected if m[2].startswith("W")} <= warnings, "\n".join(map(str, problems))


def test_every_code_has_a_broken_flow():
    covered = {case.name.split("-")[0] for case in CASES}
    # E013 is about schema/'s own allow-lists, which no flow can carry: see below.
    assert set(checks.CODES) - {"E013"} == covered


def test_the_broken_flows_are_what_make_py_makes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_broken", BROKEN / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    made = make.make(tmp_path)
    assert sorted(p.name for p in made) == [case.name for case in CASES]


def test_the_app_refuses_a_broken_flow_with_the_same_errors(tmp_path):
    case = BROKEN / "E030-999-late"
    with pytest.raises(FlowError) as caught:
        validate.load(case / "flows.yaml", case / "prompts")
    assert [p for p in caught.value.errors] == [p for p in check_case(case) if p.severity == "error"]


def test_every_code_has_a_severity_and_says_what_it_means():
    for code, (severity, meaning) in checks.CODES.items():
        assert re.fullmatch(r"[EW]\d{3}", code)
        assert severity == ("error" if code.startswith("E") else "warning")
        assert meaning


def test_warnings_do_not_stop_the_app():
    flow, warnings = validate.load(BROKEN / "W004-many-choices" / "flows.yaml",
                                      BROKEN / "W004-many-choices" / "prompts")
    assert "W004" in codes(warnings) and all(p.severity == "warning" for p in warnings)
    assert flow.start == "welcome"


def test_a_sentence_over_25_words_stops_the_line():
    """The prompts file says "never over 25": a rule the line keeps, not a suggestion."""
    case = BROKEN / "E043-long-sentence"
    with pytest.raises(FlowError) as caught:
        validate.load(case / "flows.yaml", case / "prompts")
    assert codes(caught.value.errors) == ["E043"]


# -- the checks in more detail -------------------------------------------------


def test_a_dead_end_says_what_to_add(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    edit(flows, "    on_need_number: number_why\n", "", after="  text_request:")
    problems = collect(flows, prompts.parent)
    [dead] = [p for p in problems if p.code == "E027"]
    assert "'text_request'" in dead.message and "on_need_number" in dead.message
    assert "Add `on_need_number: <step>`" in dead.message


def test_a_way_on_that_leads_back_to_its_own_step_is_a_dead_end(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    line = edit(flows, "    on_give_up: text_failed\n", "    on_give_up: number_entry\n",
                after="  number_entry:")
    problems = collect(flows, prompts.parent)
    assert [(p.code, p.line) for p in problems if p.severity == "error"] == [("E027", line)]


def test_a_flow_with_no_goodbye_cannot_end(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    text = flows.read_text().replace("type: goodbye", "type: message\n    next: finish")
    flows.write_text(text)
    problems = collect(flows, prompts.parent)
    assert [p.message for p in problems if p.code == "E028"] == [
        "no step ends the call: add a step with type: goodbye (the finish step's choices should "
        "lead to one)"]


def test_a_loop_reported_once_at_its_first_step(tmp_path):
    problems = check_case(BROKEN / "E028-loop")
    [loop] = [p for p in problems if p.code == "E028"]
    assert "'talk_intro', 'talk_again'" in loop.message


def test_a_phrase_that_is_another_keys_spoken_name(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    line = edit(flows, "phrases: [school, college, teacher]", "phrases: [school, college, one]",
                after="  main:")
    problems = collect(flows, prompts.parent)
    [clash] = [p for p in problems if p.code == "E029"]
    assert clash.line == line and "spoken name of key 1" in clash.message


def test_a_phrase_of_a_menu_key_offered_here_too(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    line = edit(flows, "phrases: [talk, nspcc, helpline, number]", "phrases: [talk, nspcc, go back]",
                after="  school:")
    problems = collect(flows, prompts.parent)
    [clash] = [p for p in problems if p.code == "E029"]
    assert clash.line == line and "home key (0)" in clash.message


def test_a_phrase_of_a_menu_key_the_menu_does_not_offer_is_fine(tmp_path):
    flows, prompts = copy_shipped(tmp_path)  # main is the home menu: it has no 0 key
    edit(flows, "phrases: [school, college, teacher]", "phrases: [school, college, go back]",
         after="  main:")
    assert codes(collect(flows, prompts.parent), "error") == []


def test_999_must_be_said_at_all_before_the_first_choice(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    edit(flows, "say: [welcome.danger, ", "say: [", after="  welcome:")
    problems = collect(flows, prompts.parent)
    [late] = [p for p in problems if p.code == "E030"]
    assert (late.file, late.line) == (str(flows), 8)  # start:
    assert "never hears the instruction to call 999" in late.message


def test_999_at_word_25_is_in_time_and_at_26_is_not(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    # "This is Calm Line. If a child ... call 9 9 9." is 19 words: 6 more make 25.
    edit(prompts, '"This is Calm Line. If', '"Hello. This is Calm Line, here for you and yours. If')
    assert "E030" not in codes(collect(flows, prompts.parent))
    edit(prompts, '"Hello. This', '"Hello there. This')
    assert "E030" in codes(collect(flows, prompts.parent))


def test_the_urgent_step_and_the_give_up_path_must_give_the_essentials(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    urgent = edit(flows, "say: [urgent.call_999, ", "say: [", after="  urgent:")
    # The urgent step also gives 999 for a child who may hurt themselves: take that out too.
    edit(flows, "urgent.ceop, urgent.wellbeing]", "urgent.ceop]", after="  urgent:")
    give_up = edit(flows, "say: [trouble.hearing, essentials.danger, essentials.nspcc]",
                   "say: [trouble.hearing, essentials.danger]", after="  trouble:")
    problems = [p for p in collect(flows, prompts.parent) if p.code == "E034"]
    assert [(p.line, "999" in p.message, "NSPCC" in p.message) for p in problems] == [
        (line_of(flows, "give_up:"), False, True),  # the NSPCC number
        (urgent, True, False),
    ]
    assert give_up > urgent


def test_numbers_spelt_out_in_words_are_caught(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    edit(prompts, "you can call the police on {police}.", "you can call the police on one oh one.")
    problems = [p for p in collect(flows, prompts.parent) if p.severity == "error"]
    assert codes(problems) == ["E032"]
    assert "'one oh one'" in problems[0].message


def test_key_names_in_the_words_must_match_the_key(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    edit(prompts, '"To hear this again, press star."', '"To hear this again, press hash."')
    problems = [p for p in collect(flows, prompts.parent) if p.severity == "error"]
    assert [(p.code, "the repeat key" in p.message) for p in problems] == [("E035", True)]


def test_a_link_on_a_site_not_allowed(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    line = edit(prompts, 'url: "https://parentinfo.org"', 'url: "https://parentinfo.org.evil.example"')
    problems = [p for p in collect(flows, prompts.parent) if p.severity == "error"]
    # E050 too: the link no longer matches the one sources.yaml records.
    assert [(p.code, p.line) for p in problems] == [("E038", line), ("E050", line)]
    assert "not an allowed site" in problems[0].message


def test_a_text_line_too_long_on_its_own(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    line = edit(prompts, '"Reply STOP to stop texts."', '"' + "Reply STOP to stop texts. " * 20 + '"')
    problems = [p for p in collect(flows, prompts.parent) if p.severity == "error"]
    assert [(p.code, p.line) for p in problems] == [("E041", line)]


def test_every_combination_of_branches_is_checked(monkeypatch):
    seen = []
    from ivr.flowtools.rules import texts as text_rules

    real = text_rules.textbody.compose_parts
    monkeypatch.setattr(text_rules.textbody, "compose_parts", lambda flow, heard: seen.append(
        tuple(heard)) or real(flow, heard))
    collect(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
    flow, _ = validate.load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
    # one branch for each different (links, numbers said): talk (Childline) is not steps
    kinds = {node.id: (node.links, tuple(text_rules.textbody.numbers_heard(flow, [node.id])))
             for node in flow.nodes.values() if node.links}
    with_links = set(kinds.values())
    assert kinds["talk"] != kinds["steps"] and len(with_links) >= 6
    assert len(set(seen)) == 2 ** len(with_links)


def test_a_broken_allow_list_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "allowed_numbers.yaml"
    bad.write_text("numbers:\n  - 999\n")
    from ivr.flowtools.rules import numbers as number_rules

    monkeypatch.setattr(number_rules, "ALLOWED_NUMBERS", bad)  # where the rule reads it
    problems = collect(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
    [broken] = [p for p in problems if p.code == "E013"]
    assert (broken.file, broken.line) == (str(bad), 2)
    assert "E031" not in codes(problems)  # no allow-list, no verdict on the numbers


def test_the_allow_lists_hold_what_facts_md_says():
    numbers, problems = checks.allowed_numbers()
    assert problems == [] and set(numbers) == {"999", "101", "08088005000", "08001111"}
    domains, problems = checks.allowed_domains()
    assert problems == [] and "nspcc.org.uk" in domains
    assert checks.domain_allowed("www.nspcc.org.uk", domains)
    assert not checks.domain_allowed("nspcc.org.uk.example.com", domains)
    assert not checks.domain_allowed("evilnspcc.org.uk", domains)
    facts = REPO_ROOT.parent / "shared" / "content" / "facts.md"
    if facts.exists():
        text = facts.read_text()
        for written in numbers.values():
            assert f"| {written} |" in text
        for domain in domains:
            assert domain in text


def test_problems_come_sorted_and_once_each():
    problems = check_case(BROKEN / "E022-key-twice")
    assert problems == sorted(set(problems))


def test_the_speaking_rate_and_limits_are_those_the_docs_state():
    docs = (REPO_ROOT / "docs" / "flows.md").read_text()
    assert f"{speech.WORDS_PER_MINUTE} words a minute" in docs
    assert f"{speech.LONG_STEP_SECONDS} seconds" in docs
    for code in checks.CODES:
        assert f"### {code}" in docs, f"docs/flows.md does not explain {code}"


def test_a_number_said_in_a_step_without_links_must_be_in_the_text(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    flow, _ = validate.load(flows, prompts.parent)
    # Only the school step (no links) says {childline}: the steps with links that
    # say it stop saying it, and a sentence of the school says it instead.
    text = flows.read_text()
    for node in flow.nodes.values():
        for key in node.say:
            if node.links and "{childline}" in flow.prompts[key]:
                text, count = re.subn(rf",\s*{re.escape(key)}\]", "]", text)
                assert count == 1, key
    flows.write_text(text)
    assert not flow.nodes["school"].links
    said = flow.nodes["school"].say[-1]
    edit(prompts, f'  {said}: "{flow.prompts[said]}"',
         f'  {said}: "Your child can also ring Childline on {{childline}}."')
    edit(prompts, '  number_childline: "Childline, free for your child, day or night: {childline}"\n',
         "")
    edit(prompts, "  sms.number_childline: [childline_any_time]\n", "", after="rests_on:")
    problems = [p for p in collect(flows, prompts.parent) if p.severity == "error"]
    assert [p.code for p in problems] == ["E045"]
    assert "'school'" in problems[0].message and "sms.number_childline" in problems[0].message
