"""A flow checked once per process: the same bytes and settings give the same checked
flow; any edit to what it is made from is checked again, and a broken flow is always refused."""
from __future__ import annotations

import pytest
from conftest import copy_shipped, make_app

from ivr.call import flow as flow_module
from ivr.flowtools import validate
from ivr.flowtools.rules import numbers as number_rules
from ivr.problems import FlowError


def test_the_same_files_give_the_same_checked_flow_to_every_app(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    first, warnings = validate.load(flows, prompts.parent)
    again, warnings_again = validate.load(flows, prompts.parent)
    assert again is first and warnings_again == warnings
    warnings_again.clear()  # the caller's own list: the kept warnings are untouched
    assert validate.load(flows, prompts.parent)[1] == warnings
    one = make_app(tmp_path / "one", upgrade=False, FLOWS_FILE=str(flows), PROMPTS_DIR=str(prompts.parent))
    two = make_app(tmp_path / "two", upgrade=False, FLOWS_FILE=str(flows), PROMPTS_DIR=str(prompts.parent))
    kept = one.extensions["calm_line.flow"]
    assert kept is two.extensions["calm_line.flow"]
    assert kept is validate.load(flows, prompts.parent, one.config)[0]


def test_an_edited_prompt_is_checked_again_and_a_broken_one_refused(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    first, _ = validate.load(flows, prompts.parent)
    text = prompts.read_text()
    prompts.write_text(text.replace("NSPCC", "N S P C C", 1))
    edited, _ = validate.load(flows, prompts.parent)
    assert edited is not first
    prompts.write_text(text.replace("999", "998"))  # the safety number itself: an error
    for _ in range(2):  # refused every time, never kept
        with pytest.raises(FlowError) as refused:
            validate.load(flows, prompts.parent)
        assert any(p.severity == "error" and p.file == str(prompts) for p in refused.value.problems)
    prompts.write_text(text)
    assert validate.load(flows, prompts.parent)[0] is first


def test_a_new_language_file_sources_beside_or_an_allow_list_change_the_key(tmp_path, monkeypatch):
    flows, prompts = copy_shipped(tmp_path)
    key = validate.fingerprint(flows, prompts.parent, {})
    (prompts.parent / "cy-GB.yaml").write_text("draft: true\n")
    with_welsh = validate.fingerprint(flows, prompts.parent, {})
    assert with_welsh != key
    assert number_rules.sources_path(flows) != tmp_path / "sources.yaml"  # the project's, until...
    (tmp_path / "sources.yaml").write_text((flow_module.REPO_ROOT / "sources.yaml").read_text())
    assert number_rules.sources_path(flows) == tmp_path / "sources.yaml"
    beside = validate.fingerprint(flows, prompts.parent, {})
    assert beside != with_welsh
    allowed = tmp_path / "allowed_numbers.yaml"
    allowed.write_text(number_rules.ALLOWED_NUMBERS.read_text())
    monkeypatch.setattr(number_rules, "ALLOWED_NUMBERS", allowed)  # read from elsewhere now
    moved = validate.fingerprint(flows, prompts.parent, {})
    assert moved != beside  # same bytes, but problems would name the other file
    allowed.write_text(allowed.read_text() + "\n# edited\n")
    assert validate.fingerprint(flows, prompts.parent, {}) not in (moved, beside)


def test_only_the_flows_own_settings_count(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    plain, _ = validate.load(flows, prompts.parent, {"DATABASE_URL": "sqlite:///a", "SECRET_KEY": "a"})
    assert validate.load(flows, prompts.parent, {"DATABASE_URL": "sqlite:///b"})[0] is plain
    dialling, _ = validate.load(flows, prompts.parent, {"NSPCC_DIAL_NUMBER": "+448088005000"})
    assert dialling is not plain
    assert dialling.settings["NSPCC_DIAL_NUMBER"] == "+448088005000"
    assert plain.settings["NSPCC_DIAL_NUMBER"] is None
    offered = {c.to for node in dialling.nodes.values() for c in node.choices}
    assert offered - {c.to for node in plain.nodes.values() for c in node.choices}  # the dialled step


def test_every_setting_a_choice_can_require_is_one_the_flow_reads():
    """The key holds flow.FLOW_SETTINGS only: a `requires:` outside them would be missed."""
    schema = flow_module.load_schema()
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("requires"), dict) and "enum" in node["requires"]:
                found.extend(node["requires"]["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert found and set(found) <= set(flow_module.FLOW_SETTINGS)


def test_only_a_few_checked_flows_are_kept(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    for number in range(validate.KEEP + 2):
        validate.load(flows, prompts.parent, {"TEXT_MAX_SEGMENTS": 3 + number})
    assert len(validate.checked_flows) == validate.KEEP
    newest = validate.fingerprint(flows, prompts.parent, {"TEXT_MAX_SEGMENTS": 3 + validate.KEEP + 1})
    assert next(reversed(validate.checked_flows)) == newest
