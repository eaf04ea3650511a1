"""Path tests staff write (paths/*.yaml) and `ivr paths`, which plays them."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import AUTH_TOKEN, copy_shipped, make_app
from test_simulate_cli import serving

from ivr import store
from ivr.config import REPO_ROOT
from ivr.flowtools import paths
from ivr.flowtools.commands import paths_command
from ivr.problems import FlowError

SHIPPED = sorted((REPO_ROOT / "paths").glob("*.yaml"))


def play(app, file: Path) -> paths.Result:
    return paths.run(paths.parse(file), paths.local_line(app))


def app_for(tmp_path, test: paths.PathTest):
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_app(tmp_path, **test.settings)


# -- the shipped paths pass: CI runs every file under paths/ ------------------------------


@pytest.mark.parametrize("file", SHIPPED, ids=[f.name for f in SHIPPED])
def test_every_shipped_path_passes(tmp_path, file):
    test = paths.parse(file)
    result = paths.run(test, paths.local_line(app_for(tmp_path, test)))
    assert result.passed, "\n".join(map(str, result.failures))
    assert not result.notes


def test_the_shipped_paths_go_through_every_step_of_the_flow(tmp_path, flow):
    reached: set[str] = set()
    for index, file in enumerate(SHIPPED):
        test = paths.parse(file)
        result = paths.run(test, paths.local_line(app_for(tmp_path / str(index), test)))
        assert result.passed
        reached.update(result.reached)
    # Arranging the text says nothing and is not reported as a step: its outcomes are.
    silent = {n for n, node in flow.nodes.items() if node.type in ("text_request", "text_confirm")}
    # A dial step whose hours never close (the shipped `hours: {}`) never goes to its
    # on_closed step, so no call can reach that step; test_hours.py plays it.
    never_closed = {node.target("on_closed") for node in flow.nodes.values()
                    if node.type == "dial" and _never_closes(node.hours)}
    assert never_closed <= {"dial_closed"}  # the only one in the shipped flow, named in a test
    assert (set(flow.nodes) | {"dial_nspcc", "dial_failed"}) - silent - never_closed == reached


def _never_closes(hours) -> bool:
    """No weekly hours, no closed days, bank holidays as usual days: open at every hour."""
    return hours is None or (hours.weekly is None and hours.bank_holidays is None
                             and not hours.closed)


def test_the_shipped_paths_cover_what_the_issue_asks(flow):
    files = {f.stem: paths.parse(f) for f in SHIPPED}
    assert {"mobile", "landline", "withheld"} <= {t.caller for t in files.values()}
    urgent = files["urgent-key"]
    pressed = [s.values[0] for s in urgent.steps if s.kind == "press"]
    menus = [n for n, node in flow.nodes.items() if node.type == "menu"]
    # Every menu of the flow is left once by key 9 in that file (checked by playing it).
    assert pressed.count("9") == len(menus)
    assert any(t.text and not t.text["none"] for t in files.values())  # the text offer


def test_every_menu_is_left_by_key_9_in_the_urgent_path(app, flow):
    test = paths.parse(REPO_ROOT / "paths" / "urgent-key.yaml")
    caller = paths.local_line(app).make_caller(paths.SIMULATED_FROM[test.caller], "completed")
    play_ = paths._Play(test, caller)
    play_.answer([caller.dial()])
    left_by_9 = set()
    for step in test.steps:
        before = play_.at[-1] if play_.at else None
        assert (play_.act(step) if step.kind in ("press", "say", "silence", "hang_up")
                else play_.check(step)) is None
        if step.kind == "press" and step.values == ("9",):
            assert play_.at == ["urgent"]
            left_by_9.add(before)
    assert left_by_9 == {n for n, node in flow.nodes.items() if node.type == "menu"}


# -- the command -------------------------------------------------------------------------------


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(paths_command, list(args), env=env, catch_exceptions=False)


def test_ivr_paths_passes_on_the_shipped_files():
    result = invoke(str(REPO_ROOT / "paths"))
    assert result.exit_code == 0, result.output
    assert f"{len(SHIPPED)} of {len(SHIPPED)} paths passed." in result.output


def test_a_key_pointed_elsewhere_fails_naming_the_step(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    text = flows.read_text()
    school_key = '      - key: "3"\n        to: school\n        prompt: main.school'
    assert school_key in text
    flows.write_text(text.replace(school_key, school_key.replace("to: school", "to: talk")))
    result = invoke(str(REPO_ROOT / "paths" / "school.yaml"), "--flows", str(flows),
                    "--prompts", str(prompts.parent))
    assert result.exit_code == 1, result.output
    lines = (REPO_ROOT / "paths" / "school.yaml").read_text().splitlines()
    failing = next(i for i, line in enumerate(lines, 1) if line.strip() == "- hear: school")
    assert f"school.yaml:{failing}:5: expected to hear \"school\" after press 3" in result.output
    assert "heard instead:" in result.output and "NSPCC helpline" in result.output
    assert "(the line was at: talk)" in result.output
    assert "FAIL" in result.output and "0 of 1 path passed. 1 failed." in result.output


def test_json_gives_every_failure_with_its_line(tmp_path):
    file = tmp_path / "wrong.yaml"
    file.write_text("caller: mobile\nsteps:\n  - press: \"9\"\n  - hear: school\n")
    result = invoke(str(file), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    failure = data[0]["failures"][0]
    assert (failure["line"], failure["at"]) == (4, ["urgent"])
    assert "9 9 9" in failure["heard"]


def test_a_mistake_in_a_path_file_is_named_with_its_line(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("caller: pigeon\nsteps:\n  - hear: '999'\n  - press: 07400123456\n"
                    "  - dance\n")
    with pytest.raises(FlowError) as caught:
        paths.parse(file)
    found = [(p.line, p.message.split()[0]) for p in caught.value.problems]
    assert found == [(1, "caller"), (4, "press"), (5, "'dance'")]
    result = invoke(str(file))
    assert result.exit_code == 1 and f"{file}:4:" in result.output
    file.write_text("settings:\n  NSPCC_DIAL_NUMBER: 0808 800 5000\nsteps: [hang up]\n")
    with pytest.raises(FlowError) as caught:
        paths.parse(file)
    assert [(p.line, p.col) for p in caught.value.problems] == [(2, 22)]


def test_a_broken_flow_is_reported_not_raised(tmp_path):
    flows, prompts = copy_shipped(tmp_path)
    flows.write_text(flows.read_text().replace("next: main", "next: mian", 1))
    result = invoke(str(SHIPPED[0]), "--flows", str(flows), "--prompts", str(prompts.parent))
    assert result.exit_code == 1
    assert "E020" in result.output and "Traceback" not in result.output


def test_acting_after_the_line_hung_up_fails_there(app, tmp_path):
    file = tmp_path / "late.yaml"
    file.write_text("steps:\n  - press: '#'\n  - press: '2'\n  - press: '1'\n")
    result = play(app, file)
    assert not result.passed
    assert result.failures[0].line == 4
    assert "already hung up after press 2" in result.failures[0].message


def test_a_wrong_text_expectation_fails_on_the_text_line(app, tmp_path):
    file = tmp_path / "text.yaml"
    file.write_text("steps:\n  - press: '2'\n  - press: '#'\n  - press: '1'\n"
                    "text:\n  holds: [Report Remove]\n  lacks: [nspcc.org.uk]\n")
    result = play(app, file)
    assert [(f.line, f.message) for f in result.failures] == [
        (7, 'expected the text not to hold "nspcc.org.uk"')]


def test_words_match_loosely():
    assert paths.contains("call 9 9 9 now.", "999")
    assert paths.contains("Again, that is 0 8 0 8, 8 0 0, 5 0 0 0.", "0808 800 5000")
    assert paths.contains("Talk to your child's SCHOOL", "child's school")
    assert not paths.contains("the schoolyard", "school yard")


# -- a deployed line: --url, marked as practice ------------------------------------------------


def test_url_runs_the_paths_against_a_running_line_as_practice(app):
    from ivr.call import events

    with serving(app) as base:
        result = invoke(str(REPO_ROOT / "paths"), "--url", base,
                        env={"TWILIO_AUTH_TOKEN": AUTH_TOKEN})
    assert result.exit_code == 0, result.output
    assert "skipped: it needs settings" in result.output  # the put-through paths
    assert "skipped: a deployed line cannot be told a number sent STOP" in result.output
    assert "the text was not checked" in result.output
    with app.app_context():
        events.flush(app)
        since = store.utcnow() - timedelta(hours=1)
        assert events.load(since, simulated=False) == []  # no figure counts them
        assert events.load(since, simulated=True)
        with store.read() as conn:
            rows = conn.execute(store.outbox.select()).all()
        assert rows and all(row.simulated for row in rows)  # never sent through Twilio


def test_url_that_does_not_answer_fails_each_path_clearly():
    result = invoke(str(REPO_ROOT / "paths" / "school.yaml"), "--url", "http://127.0.0.1:9",
                    env={"TWILIO_AUTH_TOKEN": AUTH_TOKEN})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "school.yaml:1:1: the line did not answer:" in result.output


def test_url_without_a_token_says_what_is_missing(app):
    result = invoke(str(SHIPPED[0]), "--url", "http://127.0.0.1:9", env={"TWILIO_AUTH_TOKEN": ""})
    assert result.exit_code == 2 and "TWILIO_AUTH_TOKEN" in result.output


# -- a practice call saved as a path file ----------------------------------------------------


def test_save_as_a_path_test_downloads_a_file_that_plays_back(tmp_path):
    from test_simulator_web import PASSWORD, Staff

    app = make_app(tmp_path, STAFF_PASSWORD=PASSWORD)
    staff = Staff(app)
    staff.start("withheld")
    staff.keys("3")
    staff.do("say", "finish")
    staff.keys("107400123456#1")
    response = staff.web.get(f"/simulator/api/calls/{staff.call_id}/path")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    file = tmp_path / "saved.yaml"
    file.write_bytes(response.data)
    test = paths.parse(file)
    assert test.caller == "withheld"
    assert [(s.kind, s.values) for s in test.steps if s.kind not in ("hear",)] == [
        ("press", ("3",)), ("say", ("finish",)), ("press", ("1",)),
        ("press", ("07400123456#",)), ("press", ("1",)), ("ends", ())]
    assert test.text is not None and [h for h, _ in test.text["holds"]] == ["nspcc.org.uk"]
    result = play(make_app(tmp_path / "again"), file)
    assert result.passed, (response.data.decode(), result.failures)
    assert staff.web.get("/simulator/api/calls/nope/path").status_code == 404
