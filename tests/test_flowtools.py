"""`ivr check`, `ivr schema`, `ivr graph` and `ivr script`: on files, without the app."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import copy_shipped

from ivr.call import flow as flow_module
from ivr.config import REPO_ROOT
from ivr.flowtools import commands as flowtools
from ivr.flowtools import graph, script, validate

BROKEN = Path(__file__).resolve().parent / "broken"
LOCATED = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<code>[EW]\d{3}) \S")


def run(command, *args, **kwargs):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False, **kwargs)


def case_args(name: str) -> list:
    return ["--flows", BROKEN / name / "flows.yaml", "--prompts", BROKEN / name / "prompts"]


@pytest.fixture(scope="module")
def shipped():
    flows_doc, prompts_doc = flow_module.load_docs(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
    every = flow_module.build(flows_doc, prompts_doc, dict(flow_module.ALL_OPTIONAL))
    plain = flow_module.build(flows_doc, prompts_doc, {})
    return every, graph.optional_steps(every, plain), flows_doc.data["nodes"]


# -- ivr check -----------------------------------------------------------------


def test_check_passes_the_shipped_files(tmp_path):
    # Strict, on the first language alone: the Polish draft warns (W007) until it is signed off.
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "en-GB.yaml").write_text((REPO_ROOT / "prompts" / "en-GB.yaml").read_text())
    result = run(flowtools.check_command, "--flows", REPO_ROOT / "flows.yaml",
                 "--prompts", tmp_path / "prompts", "--strict")
    assert result.exit_code == 0, result.output
    assert result.output.endswith("no problems.\n")
    result = run(flowtools.check_command, "--flows", REPO_ROOT / "flows.yaml",
                 "--prompts", REPO_ROOT / "prompts")
    assert result.exit_code == 0, result.output
    assert "W007 prompts/pl-PL.yaml is a draft" in result.output


def test_check_defaults_to_the_repo_files_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWS_FILE", raising=False)
    monkeypatch.delenv("PROMPTS_DIR", raising=False)
    assert run(flowtools.check_command).exit_code == 0
    monkeypatch.setenv("FLOWS_FILE", str(BROKEN / "E020-unknown-step" / "flows.yaml"))
    result = run(flowtools.check_command)
    assert result.exit_code == 1 and " E020 " in result.output


def test_check_prints_every_error_with_its_place_then_the_warnings_and_exits_1():
    result = run(flowtools.check_command, *case_args("E021-missing-prompt"))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "Errors:"
    error = LOCATED.match(lines[1])
    assert error and error["code"] == "E021" and error["file"].endswith("flows.yaml")
    assert lines[1].endswith("did you mean 'school.image'?")
    assert lines[3] == "Warnings:" and " W001 " in lines[4]
    assert lines[-1].startswith("1 error, 1 warning in ")


def test_check_reports_many_mistakes_in_one_run(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    # Every way into removal (main, and urgent_more) names a step that is not there.
    flows.write_text(flows.read_text().replace("    next: talk\n", "    next: tlak\n", 1)
                     .replace("to: removal\n", "to: removals\n"))
    prompts.write_text(prompts.read_text().replace('"0800 1111"', '"0800 1112"'))
    result = run(flowtools.check_command, "--flows", flows, "--prompts", prompts.parent)
    found = [LOCATED.match(line) for line in result.output.splitlines()]
    # The changed number breaks two rules: the allow-list (E031) and sources.yaml (E050).
    assert sorted(m["code"] for m in found if m) == ["E020"] * 3 + ["E024"] * 3 + ["E031", "E050"]


def test_check_reports_the_syntax_of_both_files_at_once(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    flows.write_text(flows.read_text().replace("home: main ", "home: main: menu ", 1))
    prompts.write_text(prompts.read_text().replace('  police: "101"\n', '  police: "101\n', 1))
    result = run(flowtools.check_command, "--flows", flows, "--prompts", prompts.parent)
    codes = {(Path(m["file"]).name, m["code"]) for m in map(LOCATED.match, result.output.splitlines()) if m}
    assert codes == {("flows.yaml", "E001"), ("en-GB.yaml", "E001")}


def test_check_reports_the_schema_of_both_files_at_once(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    flows.write_text(flows.read_text().replace("    type: menu\n", "    type: menu\n    nxet: main\n", 1))
    prompts.write_text(prompts.read_text().replace('  goodbye.bye: "Take care. Goodbye."', "  goodbye.bye:"))
    result = run(flowtools.check_command, "--flows", flows, "--prompts", prompts.parent)
    codes = sorted(m["code"] for m in map(LOCATED.match, result.output.splitlines()) if m)
    assert codes == ["E010", "E012"]


def test_check_on_a_prompts_file_too_malformed_to_build(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    prompts.write_text(prompts.read_text().replace("\nlinks:\n", "\nlinks:\n  - oops\nold_links:\n", 1))
    result = run(flowtools.check_command, "--flows", flows, "--prompts", prompts.parent)
    assert result.exit_code == 1 and " E012 " in result.output


def test_strict_fails_on_warnings():
    args = case_args("W004-many-choices")
    assert run(flowtools.check_command, *args).exit_code == 0
    assert run(flowtools.check_command, *args, "--strict").exit_code == 1


def test_the_commands_are_on_the_ivr_command():
    from ivr.cli import main

    for name in ("check", "schema", "graph", "script"):
        assert name in main.commands


def test_ivr_check_runs_without_the_app(tmp_path):
    """A broken flow stops the app; `ivr check` must still run to say why."""
    ivr = Path(REPO_ROOT / ".venv" / "bin" / "ivr")
    if not ivr.exists():
        pytest.skip("no .venv/bin/ivr")
    case = BROKEN / "E030-999-late"
    done = subprocess.run([str(ivr), "check", "--flows", str(case / "flows.yaml"),
                           "--prompts", str(case / "prompts")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    marked = next(n for n, line in enumerate((case / "flows.yaml").read_text().splitlines(), 1)
                  if "# expect: E030" in line)
    assert re.search(rf"flows\.yaml:{marked}:\d+: E030 ", done.stdout), done.stdout + done.stderr


# -- ivr schema ----------------------------------------------------------------


def test_schema_prints_the_published_schemas():
    flows_schema = run(flowtools.schema_command).output
    assert json.loads(flows_schema) == json.loads(flow_module.SCHEMA_PATH.read_text())
    prompts_schema = run(flowtools.schema_command, "--prompts").output
    assert json.loads(prompts_schema)["title"].startswith("Calm Line words")


def test_flows_yaml_points_editors_at_the_schema():
    first = (REPO_ROOT / "flows.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./schema/flows.schema.json"
    assert (REPO_ROOT / "flows.yaml").parent.joinpath("schema/flows.schema.json").exists()


def test_every_field_of_the_schema_says_what_it_is_for():
    schema = json.loads(flow_module.SCHEMA_PATH.read_text())
    for name, field in schema["properties"].items():
        assert "description" in field or "$ref" in field, name
    assert "description" in schema["$defs"]["node"]["properties"]["type"]


# -- ivr graph -----------------------------------------------------------------


def test_dot_has_every_step_and_every_edge(shipped):
    every, optional, raw = shipped
    text = graph.to_dot(every, raw, optional, all_keys=True)
    drawn = set(re.findall(r'^  "(\w+)" -> "(\w+)"', text, re.MULTILINE))
    expected = {(node.id, target) for node in every.nodes.values()
                for _, target in flow_module.edges(every, node)}
    assert drawn == expected
    for node_id in every.nodes:
        assert re.search(rf'^  "{node_id}" \[label="{node_id} \(', text, re.MULTILINE)


def test_dot_labels_steps_with_first_words_links_and_urgent_in_red(shipped):
    every, optional, raw = shipped
    text = graph.to_dot(every, raw, optional)
    urgent = next(line for line in text.splitlines() if line.startswith('  "urgent" ['))
    assert graph.URGENT_COLOUR in urgent and "text: Report to CEOP" in urgent
    assert '\\"If a child is in immediate danger, hang ...\\"' in urgent
    into_urgent = [line for line in text.splitlines() if '-> "urgent"' in line]
    assert into_urgent and all(graph.URGENT_COLOUR in line for line in into_urgent)
    main_to_steps = next(line for line in text.splitlines() if '"main" -> "steps"' in line)
    assert 'label="1: steps, what to do' in main_to_steps


def test_optional_choices_are_dashed_and_labelled(shipped):
    every, optional, raw = shipped
    assert optional == {"dial_nspcc", "dial_failed", "dial_closed"}
    text = graph.to_dot(every, raw, optional)
    dial = next(line for line in text.splitlines() if '"talk" -> "dial_nspcc"' in line)
    assert "optional: only when NSPCC_DIAL_NUMBER is set" in dial and 'style="dashed"' in dial


def test_dot_quoting_survives_quotes_backslashes_and_new_lines():
    assert graph.dot_quote('say "hi"\\ now\nthen') == '"say \\"hi\\"\\\\ now\\nthen"'


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed (CI installs it)")
def test_svg_through_graphviz(tmp_path):
    out = tmp_path / "flow.svg"
    result = run(flowtools.graph_command, "-o", out)
    assert result.exit_code == 0, result.output
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "urgent" in svg


def test_svg_without_graphviz_says_what_to_install(monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    result = CliRunner().invoke(flowtools.graph_command, ["--format", "svg"])
    assert result.exit_code == 1
    assert "apt-get install graphviz" in result.output and "--format mermaid" in result.output


def test_mermaid(shipped):
    every, optional, raw = shipped
    text = graph.to_mermaid(every, raw, optional, all_keys=True)
    assert text.startswith("flowchart TD\n")
    arrows = re.findall(r"^  n_(\w+) -\.?->\|", text, re.MULTILINE)
    assert len(arrows) == sum(len(flow_module.edges(every, node)) for node in every.nodes.values())
    assert "class n_urgent urgent" in text and "class n_dial_nspcc optional" in text
    assert '"' not in text.replace('["', "").replace('"]', "").replace('|"', "").replace('"|', "")
    assert "#35; finish" in text  # the # key, not a Mermaid entity


def test_graph_format_from_the_file_suffix(tmp_path):
    out = tmp_path / "flow.mmd"
    assert run(flowtools.graph_command, "-o", out).exit_code == 0
    assert out.read_text().startswith("flowchart TD")
    assert run(flowtools.graph_command).output.startswith("digraph calm_line {")


def test_graph_draws_a_flow_with_errors_and_says_so():
    result = CliRunner().invoke(flowtools.graph_command, case_args("E020-unknown-step"))
    assert result.exit_code == 0
    assert '"tlak" [label="tlak\\n(no such step)"' in result.stdout
    assert "E020" in result.stderr


def test_graph_refuses_a_flow_it_cannot_read():
    result = CliRunner().invoke(flowtools.graph_command, case_args("E001-yaml-syntax"))
    assert result.exit_code == 1 and "E001" in result.output


# -- ivr script ----------------------------------------------------------------


def test_script_has_every_word_every_step_and_the_paths(tmp_path):
    out = tmp_path / "line.md"
    assert run(flowtools.script_command, "-o", out, "--technical").exit_code == 0
    text = out.read_text()
    flow, _ = validate.load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts", flow_module.ALL_OPTIONAL)
    for node in flow.nodes.values():
        assert f"### `{node.id}` (" in text
        for key in node.say:
            words = flow.written(flow.prompts[key]).replace("{entered}", "[the number they keyed in]")
            assert f"`{key}`: {words}".replace("*", "\\*") in text
        for link in node.links:
            assert flow.links[link].url in text
    assert "## Paths from the start" in text
    assert re.search(r"^\| 1 \| `welcome` \(then\) → `main` \| \d+:\d\d \|", text, re.MULTILINE)
    assert "(optional: only when `NSPCC_DIAL_NUMBER` is set)" in text
    assert "150 words a minute" in text


def test_script_is_stable_so_a_change_is_a_small_diff(tmp_path):
    first = run(flowtools.script_command).output
    assert first == run(flowtools.script_command).output
    flows, prompts = copy_shipped(tmp_path)
    shutil.copy(REPO_ROOT / "prompts" / "pl-PL.yaml", prompts.parent)  # its offer is in the welcome
    prompts.write_text(prompts.read_text().replace("Take care. Goodbye.", "Take care now. Goodbye."))
    changed = run(flowtools.script_command, "--flows", flows, "--prompts", prompts.parent).output
    old, new = first.splitlines(), changed.splitlines()
    differ = [(a, b) for a, b in zip(old, new, strict=False) if a != b]
    # the file's digest, the words themselves (in each step that says them), a few path times
    assert len(old) == len(new) and 0 < len(differ) < 25
    assert any("Take care now. Goodbye." in b for _, b in differ)


def test_every_path_starts_at_the_start_and_follows_the_flow(shipped):
    every, _, _ = shipped
    found = script.paths(every, every.start, {every.finish}, urgent_from=every.home)
    assert found and all(path[0] == ("", every.start) for path in found)
    for path in found:
        for (_, here), (_how, there) in zip(path, path[1:], strict=False):
            assert there in {t for _, t in flow_module.edges(every, every.nodes[here])}
    ends = {path[-1][1] for path in found}
    assert {"main", "urgent", "steps", "removal", "school", "talk"} <= ends


def test_script_html_is_self_contained_and_escaped(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    prompts.write_text(prompts.read_text().replace(
        '"Take care. Goodbye."', '"Take care <script>alert(1)</script> & goodbye."'))
    result = run(flowtools.script_command, "--flows", flows, "--prompts", prompts.parent, "--format", "html")
    page = result.output
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; goodbye." in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from elsewhere


def test_script_of_a_flow_with_errors_warns_the_reader():
    result = CliRunner().invoke(flowtools.script_command,
                                [*case_args("E020-unknown-step"), "--technical"])
    assert result.stdout.startswith("# Calm Line: the whole line, for review\n\nTHIS FLOW HAS 1 ERROR")


def test_the_simulator_can_have_the_diagram_from_the_files():
    dot = graph.from_files(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts", "dot")
    assert dot == run(flowtools.graph_command).output
    mermaid = graph.from_files(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts", "mermaid")
    assert mermaid == run(flowtools.graph_command, "--format", "mermaid").output
