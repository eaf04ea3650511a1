"""ivr/flowtools/sources.py: every prompt traced to claims, every claim to a source."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivr.config import REPO_ROOT
from ivr.flowtools.sources import check_sources, cite, load_sources, rests_on_keys, sources_for
from ivr.yamlfile import load as load_yaml

PROMPTS = REPO_ROOT / "prompts" / "en-GB.yaml"
SOURCES = REPO_ROOT / "sources.yaml"


def copies(tmp_path: Path) -> tuple[Path, Path]:
    prompts = tmp_path / "en-GB.yaml"
    prompts.write_text(PROMPTS.read_text())
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES.read_text())
    return prompts, sources


def edit(path: Path, old: str, new: str) -> int:
    """Replace old (once) with new; return the 1-based line where it was."""
    text = path.read_text()
    assert text.count(old) == 1, old
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new))
    return line


def problems(prompts: Path, sources: Path):
    return check_sources(load_yaml(prompts), sources)


def test_the_shipped_prompts_and_sources_agree():
    assert problems(PROMPTS, SOURCES) == []


def test_load_sources_gives_every_section(tmp_path):
    empty = tmp_path / "sources.yaml"
    empty.write_text("sources: {}\n")
    assert load_sources(empty) == {"sources": {}, "numbers": {}, "links": {}, "claims": {}}
    shipped = load_sources(SOURCES)
    assert "dc-police-2015" in shipped["sources"] and "navigation" in shipped["claims"]


def test_a_prompt_with_no_rests_on_is_an_error_at_its_line(tmp_path):
    prompts, sources = copies(tmp_path)
    edit(prompts, "  urgent.sextortion: [sextortion_do_not_pay]\n", "")
    line = next(i for i, text in enumerate(prompts.read_text().splitlines(), 1)
                if text.startswith("  urgent.sextortion:"))
    [problem] = problems(prompts, sources)
    assert (problem.code, problem.severity, problem.file) == ("E050", "error", str(prompts))
    assert problem.line == line and "urgent.sextortion rests on no claim" in problem.message


def test_an_sms_line_with_no_rests_on_is_an_error(tmp_path):
    prompts, sources = copies(tmp_path)
    edit(prompts, "  sms.help_reply: [navigation, nspcc_helpline, danger_999]\n", "")
    [problem] = problems(prompts, sources)
    assert "sms.help_reply rests on no claim" in problem.message


def test_an_unknown_claim_is_an_error_at_its_place(tmp_path):
    prompts, sources = copies(tmp_path)
    line = edit(prompts, "  urgent.block: [sextortion_block_keep]",
                "  urgent.block: [sextortion_block_keep, made_up]")
    [problem] = problems(prompts, sources)
    assert problem.line == line and "'made_up'" in problem.message


def test_rests_on_for_a_prompt_that_does_not_exist(tmp_path):
    prompts, sources = copies(tmp_path)
    edit(prompts, "  goodbye.bye: [navigation]\n", "  goodbye.bye: [navigation]\n  gone.away: [navigation]\n")
    [problem] = problems(prompts, sources)
    assert "'gone.away'" in problem.message and "not a prompt" in problem.message


def test_a_claim_with_no_source_or_an_unknown_source(tmp_path):
    prompts, sources = copies(tmp_path)
    edit(sources, "    sources: [dc-police-2015]\n  told_right_thing:",
         "    sources: []\n  told_right_thing:")
    edit(sources, "    sources: [parent-info-sextortion]\n",
         "    sources: [parent-info-sextortion, nowhere]\n")
    found = problems(prompts, sources)
    assert sorted(p.code for p in found) == ["E050", "E050"]
    messages = " ".join(p.message for p in found)
    assert "claim 'stay_calm'" in messages and "names no source" in messages
    assert "claim 'wellbeing_999'" in messages and "'nowhere'" in messages


def test_a_source_needs_an_https_address_or_a_file(tmp_path):
    prompts, sources = copies(tmp_path)
    edit(sources, "    address: https://saferinternet.org.uk\n", "    address: http://saferinternet.org.uk\n")
    [problem] = problems(prompts, sources)
    assert "uk-safer-internet-centre" in problem.message and "https" in problem.message


def test_a_number_that_differs_from_sources_yaml(tmp_path):
    prompts, sources = copies(tmp_path)
    line = edit(prompts, '  childline: "0800 1111"', '  childline: "0800 1112"')
    [problem] = problems(prompts, sources)
    assert problem.line == line and "0800 1112" in problem.message and "0800 1111" in problem.message


def test_a_number_or_link_only_one_side_has(tmp_path):
    prompts, sources = copies(tmp_path)
    edit(sources, '  police:\n    number: "101"', '  police_too:\n    number: "101"')
    found = problems(prompts, sources)
    messages = sorted(p.message for p in found)
    assert len(found) == 2
    assert any("number 'police' (101) is not in sources.yaml" in m for m in messages)
    assert any("lists number 'police_too'" in m for m in messages)


def test_a_link_that_differs_from_sources_yaml(tmp_path):
    prompts, sources = copies(tmp_path)
    line = edit(prompts, '    url: "https://www.iwf.org.uk/report"', '    url: "https://www.iwf.org.uk/reports"')
    [problem] = problems(prompts, sources)
    assert problem.line == line and "iwf_report" in problem.message


def test_an_unreadable_sources_file_is_reported(tmp_path):
    prompts, _ = copies(tmp_path)
    found = check_sources(load_yaml(prompts), tmp_path / "missing.yaml")
    assert found and found[0].code == "E000"


def test_rests_on_keys_cover_prompts_sms_and_safety():
    data = yaml.safe_load(PROMPTS.read_text())
    keys = rests_on_keys(data)
    assert set(data["prompts"]) <= set(keys)
    assert {f"sms.{k}" for k in data["sms"]} <= set(keys) and "safety" in keys


@pytest.mark.parametrize(("key", "expected"), [
    ("urgent.sextortion", {"iwf-sextortion", "hwb-sextortion"}),
    ("removal.upload", {"iwf-report-remove", "nspcc-learning-report-remove"}),
    ("main.intro", {"calm-line-design"}),
    ("welcome.calm", {"dc-police-2015"}),
])
def test_sources_for_a_prompt(key, expected):
    data = yaml.safe_load(PROMPTS.read_text())
    found = sources_for(key, data, load_sources(SOURCES))
    assert expected <= {s["id"] for s in found}
    for source in found:
        assert source["claims"] and set(source["claims"]) <= set(data["rests_on"][key])
        assert source["organisation"] and source["title"]
        assert str(source.get("address", "")).startswith("https://") or source.get("file")


def test_sources_for_lists_each_source_once_and_skips_unknowns():
    sources = {"sources": {"a": {"organisation": "A", "title": "T"}},
               "claims": {"one": {"sources": ["a", "zzz"]}, "two": {"sources": ["a"]}}}
    data = {"rests_on": {"k.x": ["one", "two", "unknown"]}}
    assert sources_for("k.x", data, sources) == [
        {"id": "a", "organisation": "A", "title": "T", "claims": ["one", "two"]}]
    assert sources_for("k.none", data, sources) == []


def test_cite_writes_one_line_for_the_script():
    data = yaml.safe_load(PROMPTS.read_text())
    line = cite(sources_for("welcome.calm", data, load_sources(SOURCES)))
    assert line == ('Devon and Cornwall Police, "What happens if my child has sent a \'sext\'?" '
                    "(https://www.devon-cornwall.police.uk, checked 2026-11-30)")
    assert "docs/design.md" in cite(sources_for("main.intro", data, load_sources(SOURCES)))
    assert cite([]) == ""


def test_the_staff_script_shows_the_sources_beside_each_sentence():
    """Issue 13: a safeguarding lead signs off against sources, not memory."""
    from click.testing import CliRunner

    from ivr.flowtools.commands import script_command

    output = CliRunner().invoke(script_command, [], catch_exceptions=False).output
    prompts = load_yaml(PROMPTS).data
    sources = load_sources(SOURCES)
    said = [line for line in output.splitlines() if line.startswith("1. This is Calm Line.")]
    assert said, "the first sentence of the call is not in the script"
    expected = [s["id"] for s in sources_for("welcome.danger", prompts, sources)]
    assert expected and said[0].endswith(f"[sources: {', '.join(expected)}]")
    listed = output.split("## Sources", 1)[1]
    for source_id in expected:
        source = sources["sources"][source_id]
        row = next(line for line in listed.splitlines() if line.startswith(f"| {source_id} |"))
        assert source["organisation"] in row and str(source["checked"]) in row
        assert (source.get("address") or source.get("file")) in row
    assert "[sources: none]" not in output  # every sentence rests on a source (E050 holds it)
