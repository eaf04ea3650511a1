"""Whole calls, driven the way Twilio drives them: signed posts, following the TwiML."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from walk import key_paths

from ivr.call.caller import TwimlError
from ivr.config import REPO_ROOT
from ivr.flowtools.validate import load

FLOW, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
PATHS = key_paths(FLOW)
# Menus reached by keys alone (number_confirm needs a keyed-in number: test_followup_calls).
MENUS = [n for n in FLOW.nodes.values() if n.type == "menu" and n.id in PATHS]
NSPCC_SPOKEN = "0 8 0 8, 8 0 0, 5 0 0 0"


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text)


def reach(call, node_id: str):
    caller = call()
    for key in PATHS[node_id]:
        caller.press(key)
    assert caller.last.steps[-1] == node_id
    return caller


def test_999_comes_within_the_first_25_spoken_words(call):
    caller = call()
    first = words(caller.transcript)[:25]
    joined = " ".join(first)
    assert "call 9 9 9" in joined, joined
    assert first[: first.index("call")].count("danger") == 1  # said as the danger instruction


def test_the_calm_message_follows_then_the_main_menu(call):
    turn = call().last
    text = turn.text
    assert text.index("9 9 9") < text.index("stay calm") < text.index("not the end of the world")
    assert text.index("not the end of the world") < text.index("If they told you")
    assert turn.steps == ["welcome", "main"] and turn.waiting == "menu"
    for option in ("press 9", "press 1", "press 2", "press 3", "press 4"):
        assert option in text
    assert text.index("press 9") < text.index("press 1")  # the urgent choice first


@pytest.mark.parametrize(("menu", "choice"), [(m.id, c) for m in MENUS for c in m.choices],
                         ids=lambda v: getattr(v, "key", v))
def test_every_choice_by_key_ends_in_a_menu_or_a_goodbye(call, menu, choice):
    caller = reach(call, menu)
    turn = caller.press(choice.key)
    assert turn.status == 200
    assert turn.waiting in ("menu", "digits") or (turn.ended and "Goodbye" in turn.text)
    expected = choice.to if FLOW.nodes[choice.to].type not in ("text_request",) else None
    if expected:
        assert expected in turn.steps


@pytest.mark.parametrize(("menu", "choice"), [(m.id, c) for m in MENUS for c in m.choices],
                         ids=lambda v: getattr(v, "key", v))
def test_every_choice_by_voice_goes_where_its_key_goes(call, menu, choice):
    by_key = reach(call, menu).press(choice.key)
    by_voice = reach(call, menu).say(choice.phrases[0])
    assert by_voice.steps == by_key.steps
    assert by_voice.text == by_key.text


@pytest.mark.parametrize("menu", [m.id for m in MENUS])
def test_nine_from_every_menu_says_call_999(call, menu):
    turn = reach(call, menu).press("9")
    assert turn.steps == ["urgent"]
    assert "hang up now and call 9 9 9" in turn.text
    assert "cannot call the police for you" in turn.text  # never pretends to be 999
    assert "1 0 1" in turn.text and "CEOP" in turn.text


def test_the_urgent_branch_never_dials_999(call):
    turn = reach(call, "main").press("9")
    assert "<Dial" not in turn.xml


def test_star_repeats_and_zero_returns_to_the_main_menu(call):
    caller = reach(call, "removal")
    first = caller.last.text
    assert caller.press("*").text == first
    assert caller.press("0").steps == ["main"]


def test_the_nspcc_number_is_read_slowly_twice_and_offered_again(call):
    turn = reach(call, "talk").last
    assert turn.text.count(NSPCC_SPOKEN) == 2
    assert "To hear this again, press star" in turn.text
    assert "dot org dot U K" in turn.text


def test_silence_is_asked_about_then_ends_kindly_and_never_loops(call):
    caller = call()
    first = caller.silence()
    assert first.text.startswith("Sorry, I did not hear anything")
    assert "Here are your choices" not in first.text  # only the choices again
    caller.silence()
    trouble = caller.silence()
    assert trouble.steps == ["trouble", "finish"]
    assert "call 9 9 9" in trouble.text and NSPCC_SPOKEN in trouble.text
    for _ in range(2):
        caller.silence()
    end = caller.silence()
    assert end.ended and end.steps == ["goodbye_trouble"]
    assert NSPCC_SPOKEN in end.text and "Goodbye" in end.text
    assert len(caller.turns) == 7


@pytest.mark.parametrize("digits", ["99", "abc", "1" * 500, "5", "*#", "٣"])
def test_odd_keys_are_re_prompted_not_an_error(call, digits):
    turn = call().press(digits)
    assert turn.status == 200 and turn.waiting == "menu"
    assert turn.text.startswith("Sorry, that is not one of the choices")


def test_an_unknown_step_in_the_url_gets_the_main_menu(twilio_post):
    for path in ("/voice/answer/nope?t=1", "/voice/step/nope", "/voice/whatever/else",
                 "/voice/answer/main?t=abc&h=..,%00", "/voice/dialled/main"):
        response = twilio_post(path, {"CallSid": "CA" + "1" * 32, "Digits": "1"})
        assert response.status_code == 200, path
        root = ET.fromstring(response.data)
        assert root.tag == "Response"
        assert root.find("Gather") is not None or root.find("Say") is not None


def test_gathers_take_keys_and_voice_with_hints_in_british_english(call):
    turn = call().last
    gather = ET.fromstring(turn.xml).find("Gather")
    assert gather.get("input") == "dtmf speech"
    assert gather.get("language") == "en-GB" and gather.get("numDigits") == "1"
    assert gather.get("finishOnKey") == ""  # so that # reaches us as a key
    assert gather.get("speechTimeout").isdigit()  # "auto" is refused by the default model
    hints = gather.get("hints")
    assert "danger" in hints and "school" in hints and "remove" in hints
    voices = [(say.get("voice"), say.get("language")) for say in ET.fromstring(turn.xml).iter("Say")]
    # All English but the Polish offer after the 999 sentence (issue 18), in Polly's Polish voice.
    assert voices[1:3] == [("Polly.Ola-Neural", "pl-PL")] * 2
    assert set(voices[:1] + voices[3:]) == {("Polly.Amy-Neural", "en-GB")}
    # After the Gather: a Redirect, so silence does not end the call.
    assert ET.fromstring(turn.xml)[-1].tag == "Redirect"


def test_the_state_travels_in_the_urls(call):
    caller = reach(call, "removal")
    caller.press("0")
    turn = caller.press("4")
    action = ET.fromstring(turn.xml).find("Gather").get("action")
    assert action == "/voice/answer/talk?h=removal,talk"


def test_a_silent_caller_on_a_phone_without_empty_results_still_gets_the_redirect(call):
    caller = call()
    caller.pending.set("actionOnEmptyResult", "false")  # as if Twilio ignored it
    turn = caller.silence()
    assert turn.text.startswith("Sorry, I did not hear anything")


def test_every_answer_is_twiml_twilio_can_play(call):
    for node_id in PATHS:
        caller = reach(call, node_id)
        for turn in caller.turns:
            assert turn.status == 200
    with pytest.raises(TwimlError):
        from ivr.call.caller import parse_twiml

        parse_twiml("<Response><Sya>typo</Sya></Response>")


def test_dialling_the_nspcc_when_a_number_is_set(tmp_path):
    from conftest import make_app

    from ivr.call.caller import Caller, FlaskTransport

    app = make_app(tmp_path, NSPCC_DIAL_NUMBER="+448088005000")
    answered = Caller(FlaskTransport(app), dial_status="completed")
    answered.dial()
    answered.press("4")
    assert "put through to the NSPCC now, press 1" in answered.last.text
    turn = answered.press("1")
    assert "[dialling +448088005000]" in turn.text and turn.steps[-1] == "finish"
    busy = Caller(FlaskTransport(app), dial_status="busy")
    busy.dial()
    busy.press("4")
    turn = busy.press("1")
    assert "could not get through" in turn.text and NSPCC_SPOKEN in turn.text
    assert turn.steps[-1] == "talk" and turn.waiting == "menu"


def test_without_a_dial_number_the_line_does_not_offer_to_connect(call):
    turn = reach(call, "talk").last
    assert "put through" not in turn.text
    assert reach(call, "talk").press("1").text.startswith("Sorry, that is not one of the choices")


def test_every_step_is_rendered_at_start(app):
    from ivr.call import engine

    renderer = app.extensions["calm_line.renderer"]
    entries = {engine.enter(FLOW, node_id) for node_id in FLOW.nodes}
    expected = {step for step in entries if not step.action}
    assert renderer.render.cache_info().currsize == len(expected)
    misses = renderer.render.cache_info().misses
    for step in expected:
        renderer.render(step)
    assert renderer.render.cache_info().misses == misses  # all served from the cache
