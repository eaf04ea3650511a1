"""Choosing Polish (issue 18): by key 7, or by saying "po polsku" at the English main menu;
urgent words first; and the safety words of the fallback URL in the caller's language."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from ivr.call import engine
from ivr.call.caller import Caller, FlaskTransport
from ivr.call.flow import ALL_OPTIONAL
from ivr.config import REPO_ROOT
from ivr.flowtools.validate import load

FIRST, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts", dict(ALL_OPTIONAL))
POLISH = FIRST.in_language("pl-PL")


def _language_of(turn) -> set[str]:
    return {say.get("language") for say in ET.fromstring(turn.xml).iter("Say")}


def _gather(turn) -> ET.Element:
    return ET.fromstring(turn.xml).find("Gather")


def _in_polish(turn) -> bool:
    gather = _gather(turn)
    return (_language_of(turn) == {"pl-PL"} and gather is not None
            and parse_qs(urlsplit(gather.get("action")).query).get("l") == ["pl-PL"])


# -- the pure decision (engine.chosen_language) ---------------------------------------


@pytest.mark.parametrize("said", ["po polsku", "Po polsku.", "polski", "Polish", "Polish please",
                                  "in Polish please", "po polsku prosze", "POLSKI!"])
def test_words_for_polish_at_the_main_menu_choose_polish(said):
    assert engine.chosen_language(FIRST, FIRST.nodes["main"], None, said) == "pl-PL"


@pytest.mark.parametrize("said", [
    "po polsku, someone is threatening my son",  # urgent words win
    "polish please he is in danger",
    "police please",  # near "polish" by its letters: the urgent step's own words
    "my son sent it to a polish girl from his school",  # a long answer: about something else
    "school",
    "",
])
def test_other_words_at_the_main_menu_choose_no_language(said):
    assert engine.chosen_language(FIRST, FIRST.nodes["main"], None, said) is None


def test_words_choose_only_at_the_main_menu_but_the_key_counts_at_any_menu_not_using_it():
    school = FIRST.nodes["school"]
    assert engine.chosen_language(FIRST, school, None, "po polsku") is None
    assert engine.chosen_language(FIRST, school, "7", None) == "pl-PL"
    assert engine.chosen_language(FIRST, FIRST.nodes["main"], "4", "po polsku") is None  # a key wins
    assert engine.chosen_language(POLISH, POLISH.nodes["main"], None, "po polsku") is None
    assert engine.chosen_language(POLISH, POLISH.nodes["main"], "7", None) is None


# -- whole calls by speech -----------------------------------------------------------


def test_the_english_main_menu_listens_for_the_polish_words_and_the_polish_one_does_not(app):
    caller = Caller(FlaskTransport(app))
    hints = _gather(caller.dial()).get("hints").split(", ")
    assert {"po polsku", "polski", "polish please"} <= set(hints)
    assert "danger" in hints  # the English phrases are still there
    polish = _gather(caller.say("po polsku")).get("hints")
    assert "po polsku" not in polish and "kroki" in polish


def test_a_whole_call_by_speech_chooses_polish_and_walks_to_the_text(app):
    from ivr import store

    caller = Caller(FlaskTransport(app))
    caller.dial()
    turn = caller.say("po polsku")
    assert turn.steps[:2] == ["welcome", "main"] and _in_polish(turn)
    assert "Jeśli dziecko jest w bezpośrednim niebezpieczeństwie" in turn.said[0]
    turn = caller.say("usunięcie")  # removal, in Polish words
    assert turn.steps[0] == "removal" and _in_polish(turn)
    turn = caller.say("koniec")
    assert turn.steps[0] == "finish" and _in_polish(turn)
    turn = caller.say("tak")
    assert "Wyślemy SMS" in turn.text and _language_of(turn) == {"pl-PL"}
    with app.app_context(), store.read() as conn:
        row = conn.execute(sa.select(store.outbox)).one()
    assert row.language == "pl-PL" and "Report Remove (Childline i IWF)" in row.body


def test_polish_please_in_english_words_chooses_polish(app):
    caller = Caller(FlaskTransport(app))
    caller.dial()
    assert _in_polish(caller.say("Polish please", confidence=0.6))


def test_urgent_words_win_over_the_words_for_polish(app):
    """The urgent step comes first, in the call's language so far (English): the 999 advice
    at once. The caller can still press 7 at that menu for the Polish welcome, whose first
    words are the Polish 999 sentence."""
    caller = Caller(FlaskTransport(app))
    caller.dial()
    turn = caller.say("po polsku, someone is threatening my son")
    assert turn.steps[0] == "urgent" and _language_of(turn) == {"en-GB"}
    assert "9 9 9" in turn.said[0] and "l=pl-PL" not in turn.xml
    turn = caller.press("7")
    assert turn.steps[0] == "welcome" and _in_polish(turn)


def test_after_choosing_polish_the_polish_words_for_it_are_just_words(app):
    caller = Caller(FlaskTransport(app))
    caller.dial()
    caller.press("7")
    turn = caller.say("po polsku")
    assert _in_polish(turn) and turn.steps[0] != "welcome"  # not the welcome again


# -- the fallback URL ----------------------------------------------------------------


def _fallback(twilio_post, **form):
    response = twilio_post("/voice/fallback", {"CallSid": "CA9", "ErrorCode": "11200", **form})
    assert response.status_code == 200
    return response.text


def test_the_fallback_answers_in_the_language_of_the_url_that_failed(twilio_post):
    text = _fallback(twilio_post,
                     ErrorUrl="https://line.example/voice/answer/main?l=pl-PL&h=removal")
    assert 'language="pl-PL"' in text and 'language="en-GB"' not in text
    assert "zadzwoń pod 9 9 9" in text and "0 8 0 8, 8 0 0, 5 0 0 0" in text
    assert "<Hangup" in text


@pytest.mark.parametrize("error_url", [
    None,  # not sent
    "https://line.example/voice",  # the first request of a call: English
    "https://line.example/voice/answer/main?l=xx-XX",  # a language the line does not have
    "https://line.example/voice/answer/main?l=pl-PL&l=xx-XX",  # twice: the first counts
    "not a url at all %%% ?l=",
    "https://line.example/voice/answer/main?l=" + "p" * 5000,
])
def test_the_fallback_answers_in_english_otherwise(twilio_post, error_url):
    form = {"ErrorUrl": error_url} if error_url is not None else {}
    text = _fallback(twilio_post, **form)
    if error_url and "l=pl-PL&l=xx" in error_url:
        assert 'language="pl-PL"' in text
        return
    assert 'language="en-GB"' in text and 'language="pl-PL"' not in text
    assert "call 9 9 9" in text and "<Hangup" in text
