"""The pure core, with no Flask and no database: the flow as staff wrote it."""
from __future__ import annotations

import pytest

from ivr.call import engine
from ivr.call.engine import CallState
from ivr.config import REPO_ROOT
from ivr.flowtools.validate import load

FLOW, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
MENUS = [node for node in FLOW.nodes.values() if node.type == "menu"]


def test_a_call_starts_with_the_welcome_then_waits_in_the_main_menu():
    step = engine.start(FLOW)
    assert step.play == ("welcome", "main")
    assert step.state == CallState("main")
    assert not step.ended


@pytest.mark.parametrize(
    ("node", "key", "target"),
    [(m.id, c.key, c.to) for m in MENUS for c in m.choices],
)
def test_every_key_of_every_menu_leads_where_flows_yaml_says(node, key, target):
    step = engine.answer(FLOW, CallState(node), key, None)
    target_node = FLOW.nodes[target]
    if target_node.type in ("text_request", "text_confirm"):
        assert step.action == target
    else:
        assert step.play[0] == target
    assert step.state.tries == 0


@pytest.mark.parametrize(
    ("node", "phrase", "target"),
    [(m.id, p, c.to) for m in MENUS for c in m.choices for p in c.phrases],
)
def test_every_phrase_of_every_menu_leads_where_its_key_does(node, phrase, target):
    step = engine.answer(FLOW, CallState(node), None, f"Um, {phrase.capitalize()}, please.")
    assert (step.action or step.play[0]) == target


@pytest.mark.parametrize("menu", [m.id for m in MENUS])
def test_nine_reaches_the_urgent_branch_from_every_menu(menu):
    step = engine.answer(FLOW, CallState(menu), "9", None)
    assert step.play == ("urgent",)


def test_danger_in_speech_wins_over_any_other_phrase():
    step = engine.answer(FLOW, CallState("main"), None, "I want to talk to the school, is she in danger")
    assert step.play == ("urgent",)


@pytest.mark.parametrize(("said", "key"), [("one", "1"), ("Press two.", "2"), ("3", "3"), ("nine", "9")])
def test_saying_a_key_works_like_pressing_it(said, key):
    by_voice = engine.answer(FLOW, CallState("main"), None, said)
    by_key = engine.answer(FLOW, CallState("main"), key, None)
    assert by_voice.play == by_key.play


def test_star_repeats_the_whole_step_and_zero_goes_home():
    again = engine.answer(FLOW, CallState("removal", tries=2), "*", None)
    assert again.play == ("removal",) and not again.reprompt and again.state.tries == 0
    home = engine.answer(FLOW, CallState("removal"), "0", None)
    assert home.play == ("main",)


def test_hash_offers_the_text_from_the_main_menu_and_the_branches():
    for node in ("main", "steps", "talk", "urgent"):
        assert engine.answer(FLOW, CallState(node), "#", None).play == ("finish",)


@pytest.mark.parametrize("digits", ["99", "abc", "1" * 500, "5", "#9", " "])
def test_odd_digits_are_re_prompted(digits):
    step = engine.answer(FLOW, CallState("main"), digits, None)
    assert step.reprompt and step.play == ("main",) and step.state.tries == 1
    expected = "no_input" if not digits.strip() else "wrong_key"
    assert step.notice == FLOW.notices[expected]


def test_speech_we_do_not_know_is_re_prompted_kindly():
    step = engine.answer(FLOW, CallState("main"), None, "x" * 5000 + " ☃")
    assert step.notice == FLOW.notices["not_understood"] and step.reprompt


def test_three_failures_read_the_essentials_then_offer_the_text():
    state = CallState("school")
    for tries in (1, 2):
        step = engine.answer(FLOW, state, None, None)
        assert step.state.tries == tries
        state = step.state
    step = engine.answer(FLOW, state, None, None)
    assert step.play == ("trouble", "finish")


def test_trouble_at_the_offer_ends_the_call_instead_of_looping():
    state = CallState("finish", tries=2)
    step = engine.answer(FLOW, state, "7", None)
    assert step.play == ("goodbye_trouble",) and step.ended


def test_the_steps_heard_are_remembered_for_the_text():
    step = engine.answer(FLOW, CallState("main"), "2", None)
    step = engine.answer(FLOW, step.state, "0", None)
    step = engine.answer(FLOW, step.state, "4", None)
    assert step.state.heard == {"removal", "talk"}


def test_an_unknown_step_goes_back_to_the_main_menu_with_an_apology():
    step = engine.answer(FLOW, CallState("no_such_step"), "1", None)
    assert step.play == ("main",) and step.notice == FLOW.notices["went_wrong"]
    assert engine.enter(FLOW, "../../etc").play == ("main",)


def test_dialling_is_skipped_when_no_number_is_set():
    assert all(c.to != "dial_nspcc" for c in FLOW.nodes["talk"].choices)
    step = engine.enter(FLOW, "dial_nspcc")
    assert step.play == ("dial_failed", "talk")


def test_a_dial_that_is_not_answered_takes_the_failure_path():
    flow, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts",
                   {"NSPCC_DIAL_NUMBER": "+448088005000"})
    assert engine.answer(flow, CallState("talk"), "1", None).play == ("dial_nspcc",)
    for status in ("busy", "no-answer", "failed", "canceled", None):
        assert engine.dialled(flow, CallState("dial_nspcc"), status).play == ("dial_failed", "talk")
    assert engine.dialled(flow, CallState("dial_nspcc"), "completed").play == ("finish",)


def test_text_outcomes_lead_to_their_steps():
    step = engine.answer(FLOW, CallState("finish"), "1", None)
    assert engine.after_action(FLOW, step, "queued").play == ("text_queued",)
    assert engine.after_action(FLOW, step, "need_number").play == ("number_why", "number_entry")
    assert engine.after_action(FLOW, step, "opted_out").play == ("text_opted_out",)
    assert engine.after_action(FLOW, step, "fail").play == ("text_failed",)


def test_a_bad_number_is_asked_for_again_then_given_up():
    state = CallState("number_entry")
    step = engine.number_keyed(FLOW, state, valid=False, silent=False)
    assert step.notice == FLOW.nodes["number_entry"].invalid and step.state.tries == 1
    step = engine.number_keyed(FLOW, step.state, valid=False, silent=True)
    assert step.notice == FLOW.notices["no_input"]
    step = engine.number_keyed(FLOW, step.state, valid=False, silent=False)
    assert step.play == ("text_failed",) and step.ended
    assert engine.number_keyed(FLOW, state, valid=True, silent=False).play == ("number_confirm",)


def test_message_steps_that_loop_are_a_bug_not_an_endless_call():
    import dataclasses
    from types import MappingProxyType

    nodes = dict(FLOW.nodes)
    nodes["welcome"] = dataclasses.replace(nodes["welcome"], targets=MappingProxyType({"next": "welcome"}))
    looping = dataclasses.replace(FLOW, nodes=MappingProxyType(nodes))
    with pytest.raises(RuntimeError, match="message steps in a row"):
        engine.start(looping)
