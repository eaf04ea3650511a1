"""A second language (issue 18): Polish chosen by key 7 in the welcome, then the whole
call in Polish (words, voice, Gather language, hints, understanding, the text); a
language file missing a key is refused at start; a keys-only language works."""
from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
import yaml
from conftest import copy_shipped, make_app
from walk import key_paths

from bench import understanding as evaluation
from ivr.call import engine, speech
from ivr.call.caller import Caller, FlaskTransport
from ivr.call.flow import ALL_OPTIONAL
from ivr.config import REPO_ROOT
from ivr.flowtools.validate import load
from ivr.problems import FlowError
from ivr.texts import body as textbody

FIRST, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts", dict(ALL_OPTIONAL))
POLISH = FIRST.in_language("pl-PL")
EVAL = REPO_ROOT / "tests" / "data" / "understanding_eval.pl-PL.yaml"
ROWS = evaluation.evaluate(POLISH.understander, evaluation.load_items(EVAL))
SUMMARY = evaluation.summarise(ROWS)


@pytest.fixture
def dial_app(tmp_path):
    """The shipped line with the NSPCC number set, so every branch (dial_nspcc too) is there."""
    return make_app(tmp_path, NSPCC_DIAL_NUMBER="+441632960002")


def _says(turn) -> list[ET.Element]:
    return list(ET.fromstring(turn.xml).iter("Say"))


def _gather(turn) -> ET.Element | None:
    return ET.fromstring(turn.xml).find("Gather")


def _polish(app) -> Caller:
    caller = Caller(FlaskTransport(app))
    caller.dial()
    caller.press("7")
    return caller


def _assert_polish(turn) -> None:
    """Every word in Ola's Polish voice; a Gather in Polish whose URL keeps l=pl-PL."""
    for say in _says(turn):
        assert (say.get("voice"), say.get("language")) == ("Polly.Ola-Neural", "pl-PL"), turn.xml
    gather = _gather(turn)
    if gather is not None:
        assert parse_qs(urlsplit(gather.get("action")).query)["l"] == ["pl-PL"]
        if gather.get("input") == "dtmf speech":
            assert gather.get("language") == "pl-PL"


# -- choosing -----------------------------------------------------------------


def _word_at(words: list[str], wanted: list[str]) -> int | None:
    """The word (1-based) at which `wanted` has been said, or None."""
    return next((i + len(wanted) for i in range(len(words))
                 if words[i:i + len(wanted)] == wanted), None)


def test_the_welcome_says_999_in_english_first_then_in_polish_with_its_key(app):
    turn = Caller(FlaskTransport(app)).dial()
    root = ET.fromstring(turn.xml)
    first = root[0]  # the English 999 sentence, before the Gather: no key cuts it
    assert first.tag == "Say" and "9 9 9" in first.text and first.get("language") == "en-GB"
    assert _word_at(speech.words(first.text), ["9", "9", "9."]) <= 25
    inside = list(root.find("Gather").iter("Say"))
    assert (inside[0].get("voice"), inside[0].get("language")) == ("Polly.Ola-Neural", "pl-PL")
    # Counted from the start of the offer, the words a caller hears in Polish: the
    # Polish 999 sentence and key 7, both within the first 25.
    offer = speech.words(inside[0].text) + speech.words(inside[1].text)
    assert _word_at(offer, ["9", "9", "9."]) == 15
    assert _word_at(offer, ["7."]) == 19 and "naciśnij 7" in inside[1].text
    assert inside[2].get("language") == "en-GB"  # then the English welcome goes on


def test_the_offer_says_the_polish_999_sentence_a_polish_caller_hears_everywhere(app):
    """The same sentence, word for word, in the offer, the Polish welcome and at key 9."""
    offered = list(ET.fromstring(Caller(FlaskTransport(app)).dial().xml)
                   .find("Gather").iter("Say"))[0].text
    assert offered == POLISH.spoken("urgent.call_999")
    caller = _polish(app)
    assert _says(caller.last)[0].text.endswith(" " + offered)  # "To jest Calm Line. " + it
    urgent = caller.press("9")
    _assert_polish(urgent)
    assert offered in [say.text for say in _says(urgent)]


def test_key_7_in_the_welcome_chooses_polish_and_the_choice_travels_in_the_url(app):
    caller = _polish(app)
    turn = caller.last
    _assert_polish(turn)
    assert turn.steps[0] == "welcome"
    assert "Jeśli dziecko jest w bezpośrednim niebezpieczeństwie" in _says(turn)[0].text
    gather = _gather(turn)
    assert gather.get("input") == "dtmf speech" and "kroki" in gather.get("hints")
    assert "danger" not in gather.get("hints")


def test_key_7_anywhere_in_polish_is_a_wrong_key_not_a_new_language(app):
    caller = _polish(app)
    turn = caller.press("7")
    _assert_polish(turn)
    assert "nie ma takiej opcji" in turn.text


def test_no_menu_uses_the_polish_key():
    for node in FIRST.nodes.values():
        assert "7" not in engine.menu_keys(FIRST, node)


def test_an_unknown_language_in_the_url_is_the_first_language(twilio_post):
    response = twilio_post("/voice/answer/main?l=xx-XX", {"CallSid": "CA1", "Digits": "4"})
    assert response.status_code == 200
    assert 'language="en-GB"' in response.text and "l=xx-XX" not in response.text


# -- every branch, by key and by Polish words -----------------------------------


def test_every_branch_by_key_in_polish(dial_app):
    paths = key_paths(POLISH)
    assert len(paths) >= 12
    for node_id, keys in paths.items():
        caller = _polish(dial_app)
        for key in keys:
            turn = caller.press(key)
            _assert_polish(turn)
        assert caller.last.steps[-1] == node_id or node_id in caller.last.steps, (node_id, keys)


def _first_words(menu: str, label: str) -> str:
    """The word the Polish prompt asks for (the choice's first example, the hint)."""
    option = POLISH.understander.menus[menu].option(label)
    return option.texts[0]


def test_every_branch_by_polish_words(dial_app):
    paths = key_paths(POLISH)
    walked = 0
    for menu_id, keys in paths.items():
        node = POLISH.nodes[menu_id]
        if node.type != "menu":
            continue
        for choice in node.choices:
            by_key, by_words = _polish(dial_app), _polish(dial_app)
            for key in keys:
                by_key.press(key)
                by_words.press(key)
            turn = by_words.say(_first_words(menu_id, choice.to), confidence=0.95)
            _assert_polish(turn)
            # the same steps as the key (an action step, like the text, is not a step said)
            assert turn.steps == by_key.press(choice.key).steps, (menu_id, choice.to)
            walked += 1
    assert walked >= 25


def test_the_polish_set_at_least_nine_in_ten_and_every_urgent_item_urgent():
    wrong = "\n".join(f"{r.menu}: {r.says!r} -> {r.got} (want {r.expect})" for r in SUMMARY.wrong)
    print(f"Polish understanding: {SUMMARY.right}/{SUMMARY.total} = {SUMMARY.accuracy:.1%}")
    assert SUMMARY.total >= 150
    assert SUMMARY.accuracy >= 0.90, wrong
    assert SUMMARY.urgent_right == SUMMARY.urgent_total, wrong


def test_polish_negation_does_not_count_but_danger_does():
    understand = POLISH.understander.understand
    assert understand("main", "to nie jest nagły wypadek, chcę usunąć zdjęcie").label == "removal"
    assert understand("main", "ktoś szantażuje moją córkę").label == "urgent"
    assert understand("school", "dziewięć").label == "urgent"  # a key's Polish name


def test_the_safety_words_are_polish_when_a_webhook_fails(app, twilio_post):
    app.extensions["calm_line.renderers"]["pl-PL"] = None  # render() on None: the guard catches it
    response = twilio_post("/voice/answer/main?l=pl-PL", {"CallSid": "CA2", "Digits": "4"})
    assert "NSPCC" in response.text and 'language="pl-PL"' in response.text
    assert "Przepraszam" in response.text


# -- the text ----------------------------------------------------------------------


def test_the_text_of_a_polish_call_is_polish_and_within_the_limit(app):
    caller = _polish(app)
    caller.press("2")  # removal: links
    caller.press("1")
    caller.press("#")
    turn = caller.press("1")  # yes, a text
    _assert_polish(turn)
    assert "Wyślemy SMS" in turn.text
    from ivr import store

    with app.app_context(), store.read() as conn:
        row = conn.execute(sa.select(store.outbox)).one()
    assert row.language == "pl-PL"
    parts = json.loads(row.parts) if row.parts else [row.body]
    assert parts[0].startswith("Calm Line: linki z rozmowy")
    assert "Dzwon pod 999" in row.body  # without Polish letters: it would not fit with them
    limit = textbody.max_segments(POLISH)
    assert all(textbody.segments(part) <= limit for part in parts)


def test_the_polish_text_keeps_its_letters_only_when_they_take_no_more_texts():
    marked = textbody._compose_parts(POLISH, [])
    plain = textbody._compose_parts(POLISH.__class__(**{**POLISH.__dict__,
                                                       "sms": POLISH.sms_ascii}), [])
    chosen = textbody.compose_parts(POLISH, [])
    assert chosen == (marked if len(marked) <= len(plain) else plain)
    every = [n.id for n in POLISH.nodes.values() if n.links]
    for part in textbody.compose_parts(POLISH, every):
        assert textbody.segments(part) <= textbody.max_segments(POLISH)


# -- refused at start, and keys alone --------------------------------------------


def _languages_dir(tmp_path, polish_text: str):
    flows, _ = copy_shipped(tmp_path)
    (tmp_path / "prompts" / "pl-PL.yaml").write_text(polish_text)
    return flows


def test_a_language_missing_a_key_is_refused_at_start_with_the_file_and_key(tmp_path):
    text = (REPO_ROOT / "prompts" / "pl-PL.yaml").read_text()
    line = next(x for x in text.splitlines() if x.startswith("  talk.web:"))
    _languages_dir(tmp_path, text.replace(line + "\n", ""))
    with pytest.raises(FlowError) as caught:
        make_app(tmp_path, FLOWS_FILE=str(tmp_path / "flows.yaml"),
                 PROMPTS_DIR=str(tmp_path / "prompts"))
    message = "\n".join(map(str, caught.value.problems))
    assert "E047" in message and "pl-PL.yaml" in message and "talk.web" in message


def _keys_only(tmp_path) -> None:
    """A test-only language (xx-GB) made from the Polish words, with speech turned off."""
    words = yaml.safe_load((REPO_ROOT / "prompts" / "pl-PL.yaml").read_text())
    words["language"].update(code="xx-GB", key="8", speech=False, name="Keys only")
    words["language"].pop("say")  # its words would be Polish's: E048
    words["prompts"]["language.choose"] = "Keys only: press 8."
    flows, _ = copy_shipped(tmp_path)
    (tmp_path / "prompts" / "xx-GB.yaml").write_text(yaml.safe_dump(words, allow_unicode=True))
    shutil.copy(REPO_ROOT / "sources.yaml", tmp_path / "sources.yaml")


def test_a_keys_only_language_gathers_keys_alone_and_works(tmp_path):
    _keys_only(tmp_path)
    app = make_app(tmp_path, FLOWS_FILE=str(tmp_path / "flows.yaml"),
                   PROMPTS_DIR=str(tmp_path / "prompts"))
    caller = Caller(FlaskTransport(app))
    caller.dial()
    turn = caller.press("8")
    gather = _gather(turn)
    assert gather.get("input") == "dtmf" and gather.get("hints") is None
    assert gather.get("language") is None and "l=xx-GB" in gather.get("action")
    assert caller.press("4").steps[-1] == "talk"
    assert "0 8 0 8, 8 0 0, 5 0 0 0" in caller.last.text
    assert caller.press("9").steps[0] == "urgent"  # safety by key, always
    assert "l=xx-GB" in _gather(caller.last).get("action")


# -- figures by language -----------------------------------------------------------


def test_the_figures_count_calls_by_language_and_polish_choices_as_branches(app):
    from ivr import store
    from ivr.call import events
    from ivr.staff import stats

    english = Caller(FlaskTransport(app))
    english.dial()
    english.press("1")
    polish = _polish(app)
    polish.say("szkoła")  # understood by the Polish line, counted as branch 3
    with app.app_context():
        events.flush()
        data = stats.figures(stats.window_start("7d"))
        with store.read() as conn:
            kinds = [r.kind for r in conn.execute(sa.select(events.events)).all()]
    assert data["calls"] == 2
    assert data["languages"] == {"en-GB": 1, "pl-PL": 1}
    assert {b["key"]: (b["calls"], b["by_voice"]) for b in data["branches"]}["3"] == (1, 1)
    assert kinds.count("language") == 1 and kinds.count("no_choice") == 0
    assert "Calls by language: " in stats.report(data)
