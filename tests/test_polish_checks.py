"""The checks on another language's words (issue 18): its offer gives its own 999 sentence
and its key within the first 25 words heard in it (E030), word for word the sentence it says
at key 9 (E049); and the first language's checks on words run on it too (E035, E036, E043,
E029, E037, E044), each refused at start with the file, the line and the reason."""
from __future__ import annotations

import pytest
from conftest import copy_shipped, make_app

from ivr.call.flow import ALL_OPTIONAL
from ivr.config import REPO_ROOT
from ivr.flowtools import languages, plain
from ivr.flowtools.validate import load
from ivr.problems import FlowError

SHIPPED = (REPO_ROOT / "prompts" / "pl-PL.yaml").read_text()
FIRST, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts", dict(ALL_OPTIONAL))
POLISH = FIRST.in_language("pl-PL")


def _refused(tmp_path, old: str, new: str) -> tuple[list, int]:
    """The problems of the shipped line with one edit to prompts/pl-PL.yaml, and the line
    (1-based) where the edit is."""
    assert SHIPPED.count(old) == 1, old
    copy_shipped(tmp_path)
    (tmp_path / "prompts" / "pl-PL.yaml").write_text(SHIPPED.replace(old, new))
    with pytest.raises(FlowError) as caught:
        load(tmp_path / "flows.yaml", tmp_path / "prompts")
    return caught.value.errors, SHIPPED[:SHIPPED.index(old)].count("\n") + 1


def _only(errors, code: str, line: int):
    assert [(p.code, p.line) for p in errors] == [(code, line)], "\n".join(map(str, errors))
    problem = errors[0]
    assert problem.file.endswith("prompts/pl-PL.yaml")
    return problem


# -- the shipped words ---------------------------------------------------------------


def test_the_polish_offer_is_the_polish_999_sentence_then_key_7_within_25_words():
    [timing] = languages.offer_timings(FIRST)
    assert (timing.code, timing.key, timing.starts_at) == ("pl-PL", "7", 19)
    assert (timing.at_999, timing.at_key, timing.words) == (15, 19, 19)
    assert round(timing.seconds(timing.at_999), 1) == 13.6  # 34 words at 150 a minute
    assert round(timing.seconds(timing.at_key), 1) == 15.2
    offer = FIRST.offers[0]
    assert offer.prompts == ("pl-PL:urgent.call_999", "pl-PL:language.choose")
    assert FIRST.prompts[offer.prompts[0]] == POLISH.prompts["urgent.call_999"]
    assert POLISH.prompts["welcome.danger"].endswith(" " + POLISH.prompts["urgent.call_999"])


def test_the_scripts_show_the_offer_where_it_is_said_and_when_999_and_7_are_heard():
    lines = plain.offer_lines(FIRST, "pl-PL")
    assert lines and "999 heard by word 15 of the offer (about 0:14)" in lines[0]
    assert "key 7 by word 19 (about 0:15)" in lines[0] and "“po polsku”" in lines[0]
    heard = plain.heard(FIRST, FIRST.nodes[FIRST.start])
    assert heard[0].startswith("This is Calm Line.")
    assert heard[1] == "[pl-PL, in the voice Polly.Ola-Neural] " + POLISH.written(
        POLISH.prompts["urgent.call_999"])
    assert heard[2].endswith("Po polsku: naciśnij 7.")


# -- the offer ---------------------------------------------------------------------------


def test_an_offer_whose_999_comes_late_is_refused(tmp_path):
    errors, line = _refused(tmp_path, "  offer: [urgent.call_999, language.choose]",
                            "  offer: [language.choose, welcome.for_whom, urgent.call_999]")
    problem = _only(errors, "E030", line)
    assert "says 999 at word 33" in problem.message and "within the first 25" in problem.message


def test_an_offer_whose_key_comes_late_is_refused(tmp_path):
    errors, line = _refused(tmp_path, "  offer: [urgent.call_999, language.choose]",
                            "  offer: [urgent.call_999, welcome.for_whom, language.choose]")
    assert "the key 7 at word 33" in _only(errors, "E030", line).message


def test_an_offer_with_another_999_sentence_is_refused(tmp_path):
    errors, line = _refused(
        tmp_path, '  language.choose: "Po polsku: naciśnij 7."\n',
        '  language.choose: "Niebezpieczeństwo? Dzwoń pod {emergency}. Po polsku: naciśnij 7."\n')
    offer_line = SHIPPED[:SHIPPED.index("  offer: [")].count("\n") + 1
    problem = _only(errors, "E049", offer_line)
    assert '"Dzwoń pod {emergency}." (language.choose)' in problem.message
    assert "urgent.call_999" in problem.message


def test_a_welcome_with_another_999_sentence_is_refused(tmp_path):
    old = "  welcome.danger: \"To jest Calm Line. Jeśli dziecko"
    errors, line = _refused(tmp_path, old, "  welcome.danger: \"To jest Calm Line. Gdy dziecko")
    assert "the welcome says the 999 sentence" in _only(errors, "E049", line).message


# -- the first language's checks on the words, in Polish -----------------------------------


def test_a_polish_offer_asking_for_a_word_the_line_does_not_listen_for_is_refused(tmp_path):
    errors, line = _refused(tmp_path, "teraz: naciśnij 1 albo powiedz: kroki.",
                            "teraz: naciśnij 1 albo powiedz: porady.")
    problem = _only(errors, "E036", line)
    assert 'ask the caller to say "porady"' in problem.message
    assert "first example of that choice under `understanding:`" in problem.message


def test_a_polish_offer_naming_the_wrong_key_is_refused(tmp_path):
    errors, line = _refused(tmp_path, "teraz: naciśnij 1 albo", "teraz: naciśnij 3 albo")
    assert 'say "naciśnij 3", but the key is 1' in _only(errors, "E035", line).message


def test_a_polish_key_name_is_read_as_its_key(tmp_path):
    errors, line = _refused(tmp_path, '"Menu główne: naciśnij 0."', '"Menu główne: naciśnij gwiazdkę."')
    assert 'say "naciśnij gwiazdkę", but the key is 0' in _only(errors, "E035", line).message


def test_a_long_polish_sentence_is_refused(tmp_path):
    errors, line = _refused(
        tmp_path, '"Opowiedz, co się stało i co już zostało zrobione."',
        '"Opowiedz spokojnie, co się stało, kiedy to było, kto o tym wie, co już zostało '
        'zrobione, czego się boisz i jakiej pomocy dziecko chciałoby teraz od szkoły."')
    assert "school.tell has a sentence of 27 words" in _only(errors, "E043", line).message


def test_a_polish_example_the_urgent_step_hears_is_refused(tmp_path):
    errors, line = _refused(tmp_path, "        - zdjęcie jest na instagramie\n",
                            "        - ktoś wrzucił to na instagrama\n")
    problem = _only(errors, "E044", line)
    assert "understood as 'urgent'" in problem.message and "ivr understand" not in problem.message


def test_a_polish_first_example_with_punctuation_is_refused(tmp_path):
    errors, line = _refused(tmp_path, "    repeat:\n      - powtórz\n", "    repeat:\n      - powtórz!\n")
    assert "write it as 'powtórz'" in _only(errors, "E037", line + 1).message


def test_words_for_polish_that_the_main_menu_hears_as_a_choice_are_refused(tmp_path):
    errors, line = _refused(tmp_path, "  say: [po polsku,", "  say: [school, po polsku,")
    assert "'school' chooses pl-PL, but the main menu hears it as key 3" in \
        _only(errors, "E048", line).message


def test_the_app_refuses_to_start_with_a_bad_polish_offer(tmp_path):
    copy_shipped(tmp_path)
    (tmp_path / "prompts" / "pl-PL.yaml").write_text(
        SHIPPED.replace("teraz: naciśnij 1 albo powiedz: kroki.",
                        "teraz: naciśnij 1 albo powiedz: porady."))
    with pytest.raises(FlowError) as caught:
        make_app(tmp_path, FLOWS_FILE=str(tmp_path / "flows.yaml"),
                 PROMPTS_DIR=str(tmp_path / "prompts"))
    assert [p.code for p in caught.value.errors] == ["E036"]
    assert "pl-PL.yaml" in str(caught.value)


# -- understanding: words that are a choice's own example --------------------------------


@pytest.mark.parametrize(("said", "label", "layer"), [
    ("nie dosłyszałam", "repeat", "nav"),  # "nie" is "not" here, not "no"
    ("nie to chciałam wróć", "home", "nav"),
    ("nie dziękuję", "goodbye", "yesno"),
    ("nie", "goodbye", "yesno"),
    ("tak", "text_request", "yesno"),
])
def test_polish_words_that_are_an_example_go_to_it_before_a_first_nie(said, label, layer):
    result = POLISH.understander.understand("finish", said)
    assert (result.label, result.layer) == (label, layer)


def test_english_yes_and_no_are_unchanged():
    for said, label in (("no thanks", "goodbye"), ("yes please", "text_request")):
        result = FIRST.understander.understand("finish", said)
        assert (result.label, result.layer) == (label, "yesno")
