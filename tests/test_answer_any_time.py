"""Keys and words count at any moment after the 999 sentence (issue 14)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from walk import key_paths

from ivr.call import engine, playlist, speech
from ivr.config import REPO_ROOT
from ivr.flowtools import commands
from ivr.flowtools.validate import load

FLOW, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
PATHS = key_paths(FLOW)
WAITING = [node_id for node_id in PATHS if FLOW.nodes[node_id].type in playlist.GATHERS]
NSPCC_SPOKEN = "0 8 0 8, 8 0 0, 5 0 0 0"


def said_before_gather(xml: str) -> list[str]:
    said = []
    for verb in ET.fromstring(xml):
        if verb.tag == "Gather":
            return said
        if verb.tag == "Say":
            said.append("".join(verb.itertext()).strip())
    raise AssertionError("no <Gather> in the answer")


def test_voice_says_only_the_999_sentence_before_the_first_gather(twilio_post):
    response = twilio_post("/voice", {"CallSid": "CA" + "1" * 32, "From": "+447400123456"})
    before = said_before_gather(response.get_data(as_text=True))
    assert len(before) == 1, before
    assert "hang up now and call 9 9 9" in before[0]


@pytest.mark.parametrize("node_id", WAITING)
def test_every_waiting_step_can_be_cut_after_its_999_sentence(call, node_id):
    caller = call()
    for key in PATHS[node_id]:
        caller.press(key)
    before = said_before_gather(caller.last.xml)
    assert len(before) <= 1, before
    if before:  # the only thing that may not be cut
        assert "9 9 9" in before[0]
    inside = [s.tag for s in caller.pending]
    assert "Say" in inside  # the step's words are in the <Gather>


def test_pressing_4_during_the_welcome_gives_the_nspcc(call):
    caller = call()
    welcome = " ".join("".join(s.itertext()) for s in caller.pending if s.tag == "Say")
    assert "stay calm" in welcome  # the welcome is still being said when the key counts
    turn = caller.press("4")
    assert turn.steps == ["talk"]
    assert NSPCC_SPOKEN in turn.text


def test_saying_danger_during_the_welcome_gives_999(call):
    turn = call().say("my child is in danger")
    assert turn.steps == ["urgent"]
    assert said_before_gather(turn.xml)[0].endswith("call 9 9 9.")


def test_the_999_sentence_of_the_urgent_step_cannot_be_cut(call):
    turn = call().press("9")
    assert len(said_before_gather(turn.xml)) == 1


def test_the_first_key_counts_within_10_seconds_and_4_gives_the_number_within_20():
    first, _ = speech.fastest(FLOW, [])
    assert first <= speech.FIRST_KEY_GOAL
    first, number = speech.fastest(FLOW, ["4"])
    assert number <= speech.NSPCC_GOAL
    # the NSPCC number's sentence is what "came for" measures on the talk step
    step = engine.answer(FLOW, engine.start(FLOW).state, "4", None)
    assert first < number and step.node == "talk"


def test_the_estimate_counts_what_is_said_before_the_gather():
    step = engine.start(FLOW)
    words = len(speech.words(speech.spoken(FLOW, FLOW.nodes[FLOW.start].say[0])))
    assert speech.key_counts_after(FLOW, step) == pytest.approx(words / speech.WORDS_PER_SECOND)


def test_ivr_script_prints_when_the_first_key_counts():
    # The staff script (the default, issue 17) names steps by title; --technical by id.
    result = CliRunner().invoke(commands.script_command, [])
    assert result.exit_code == 0, result.output
    assert "The first key counts at about 0:0" in result.output
    assert "Key 4 pressed then: step " in result.output and "`" not in result.output
    result = CliRunner().invoke(commands.script_command, ["--technical"])
    assert result.exit_code == 0, result.output
    assert "The first key counts at about 0:0" in result.output
    assert "Key 4 pressed then: `talk`" in result.output
