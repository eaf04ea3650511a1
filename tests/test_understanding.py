"""Understanding a parent's own words: the evaluation set, urgent first, negation,
key names, yes and no, and the confirm step, through the engine and whole calls."""
from __future__ import annotations

import pytest

from bench import understanding as evaluation
from ivr.call import engine
from ivr.call.caller import SIMULATED_FROM
from ivr.call.engine import CallState
from ivr.call.flow import ALL_OPTIONAL
from ivr.config import REPO_ROOT
from ivr.flowtools.validate import load

FLOW, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts", dict(ALL_OPTIONAL))
UNDERSTANDER = FLOW.understander
ITEMS = evaluation.load_items()
ROWS = evaluation.evaluate(UNDERSTANDER, ITEMS)
SUMMARY = evaluation.summarise(ROWS)
MENUS = [n for n in FLOW.nodes.values() if n.type == "menu"]


# -- the evaluation set (tests/data/understanding_eval.yaml, never copied into examples) --


def test_the_set_is_big_and_kept_apart_from_the_examples():
    assert len(ITEMS) >= 300
    examples = {t.lower() for menu in UNDERSTANDER.menus.values() for o in menu.options
                for t in o.examples}  # phrases ("what") are older than the set: not examples
    assert not [i["says"] for i in ITEMS if i["says"].lower() in examples]


def test_at_least_95_percent_of_the_set_goes_where_it_should(capsys):
    report = "\n".join(f"{menu}: {right}/{total}" for menu, (right, total) in SUMMARY.per_menu.items())
    with capsys.disabled():
        print(f"\nunderstanding: {SUMMARY.right}/{SUMMARY.total} right; held out "
              f"{SUMMARY.held_right}/{SUMMARY.held_total}; urgent {SUMMARY.urgent_right}/"
              f"{SUMMARY.urgent_total}\n{report}")
    wrong = "\n".join(f"{r.menu}: {r.says!r} -> {r.got} (expected {r.expect})" for r in SUMMARY.wrong)
    assert SUMMARY.accuracy >= 0.95, wrong


def test_every_urgent_utterance_reaches_the_urgent_branch():
    missed = [r for r in ROWS if r.expect == "urgent" and r.got != "urgent"]
    assert SUMMARY.urgent_total >= 90 and not missed, missed


def test_the_held_out_items_at_least_nine_in_ten_and_every_urgent_one():
    held = [r for r in ROWS if r.held_out]
    assert len(held) == 20
    assert sum(r.right for r in held) >= 18, [r for r in held if not r.right]
    assert all(r.got == "urgent" for r in held if r.expect == "urgent")


# -- urgent first: a mutation-style probe in every menu --------------------------------


def _said(signal_text: str) -> str:
    """A signal as a caller might say it: the first of each word's choices, gaps dropped."""
    return " ".join(part.split("|")[0].lstrip("=") for part in signal_text.split() if part != "...")


SIGNALS = [_said(s.text) for s in UNDERSTANDER.lexicon.signals]


def _longest_other_phrase(menu) -> str:
    others = [t for o in UNDERSTANDER.menus[menu.id].options if o.label != FLOW.urgent
              for t in o.phrases]
    return max(others, key=len)


@pytest.mark.parametrize("menu", MENUS, ids=lambda m: m.id)
def test_each_urgent_signal_wins_over_the_menus_longest_other_phrase(menu):
    other = _longest_other_phrase(menu)
    missed = []
    for signal in SIGNALS:
        for sentence in (f"{other} {signal}", f"{signal}, {other}", f"um {other}, and {signal} now"):
            step = engine.answer(FLOW, CallState(menu.id), None, sentence)
            if step.play != (FLOW.urgent,):
                missed.append(sentence)
    assert not missed, missed


@pytest.mark.parametrize("menu", MENUS, ids=lambda m: m.id)
def test_urgent_words_are_never_asked_about_even_when_recognition_is_unsure(menu):
    step = engine.answer(FLOW, CallState(menu.id), None, "she's in danger", confidence=0.05)
    assert step.play == (FLOW.urgent,)


# -- negation ------------------------------------------------------------------------------

NOT_URGENT = [
    ("it's not an emergency, I just want it deleted", "removal"),
    ("nobody is blackmailing her, what do I do", "steps"),
    ("he's not in any danger, can I talk to someone", "talk"),
    ("no one is threatening him, what should I do", "steps"),
    ("There's no adult involved. How do I get it taken down?", "removal"),
]
URGENT = [
    "he's threatening her, it's not a joke",
    "she's not safe",
    "I can't find her",
    "no, I don't know where he is",
    "if she doesn't pay they'll post it",
    "it's not a joke, she wants to die",
    "she hasn't come home",
]


@pytest.mark.parametrize(("said", "to"), NOT_URGENT)
def test_urgent_words_said_with_a_negation_do_not_count(said, to):
    result = UNDERSTANDER.understand("main", said)
    assert result.label == to and result.layer != "urgent", result
    assert any(s.startswith("not ") for s in result.signals)


@pytest.mark.parametrize("said", URGENT)
def test_a_negation_elsewhere_does_not_cancel_urgent_words(said):
    assert UNDERSTANDER.understand("main", said).label == "urgent"


@pytest.mark.parametrize(("menu", "said", "to"), [
    ("number_confirm", "no, I missed a number", "number_entry"),  # =missing: not "missed"
    ("main", "the school want a meeting", "school"),  # =meet: not "meeting"
    ("main", "he wants to meet her on saturday", "urgent"),
    ("main", "they asked him for a hundred pounds", "urgent"),  # ask ... pounds, a gap between
])
def test_signal_forms_and_gaps(menu, said, to):
    assert UNDERSTANDER.understand(menu, said).label == to


# -- the small words ----------------------------------------------------------------------


@pytest.mark.parametrize(("said", "key"), [
    ("press two", "2"), ("option 2", "2"), ("number nine", "9"), ("nine", "9"), ("er, three please", "3"),
    ("option for", "4"), ("press to", "2"), ("Star.", "*"), ("press hash", "#"),
])
def test_key_names(said, key):
    result = UNDERSTANDER.understand("main" if key != "0" else "school", said)
    assert (result.layer, result.key) == ("key", key)


def test_key_name_variants_only_after_press_option_or_number():
    assert UNDERSTANDER.understand("main", "for").layer != "key"
    assert UNDERSTANDER.understand("main", "i want to talk to someone").label == "talk"


@pytest.mark.parametrize("said", ["what should I do", "what happens now", "what do I do now"])
def test_a_question_is_not_a_request_to_repeat(said):
    assert UNDERSTANDER.understand("main", said).label == "steps"


@pytest.mark.parametrize(("said", "label"), [
    ("yes please", "text_request"), ("go on then", "text_request"), ("no thanks", "goodbye"),
    ("not now", "goodbye"), ("I'd rather not", "goodbye"),
])
def test_yes_and_no_at_the_text_offer(said, label):
    result = UNDERSTANDER.understand("finish", said)
    assert (result.label, result.layer) == (label, "yesno")


def test_yes_means_nothing_where_no_choice_is_a_yes():
    assert UNDERSTANDER.understand("main", "yes").layer != "yesno"


def test_a_key_beats_speech_when_both_come():
    step = engine.answer(FLOW, CallState("main"), "3", "can it be removed")
    assert step.play == ("school",)


def test_a_key_beats_speech_in_one_signed_post(twilio_post):
    response = twilio_post("/voice/answer/main", {"Digits": "3", "SpeechResult": "can it be removed",
                                                  "Confidence": "0.95"})
    assert response.status_code == 200
    assert response.headers["X-Calm-Line-Steps"].split(",")[-1] == "school"


def test_an_odd_confidence_is_ignored_not_a_crash(twilio_post):
    for confidence in ("", "high", "nan", "-1", "7"):
        response = twilio_post("/voice/answer/main", {"SpeechResult": "it's on snapchat",
                                                      "Confidence": confidence})
        assert response.status_code == 200 and "<Response>" in response.get_data(as_text=True)


def test_bad_input_gets_an_answer_not_a_crash():
    for said in ("", "   ", "\x00\ufeff", "£" * 600, "🙂", "n.s.p.c.c." * 80, "... ??? !!!"):
        result = UNDERSTANDER.understand("main", said)
        assert result.layer in ("none", "match", "nav", "urgent", "key", "yesno")


# -- whole calls: signed posts, following the TwiML ---------------------------------------

UNSURE = 0.2  # below the flow's `confidence`: the line asks before it goes


def test_low_confidence_asks_then_a_key_confirms(call):
    caller = call()
    turn = caller.say("can it be removed", confidence=UNSURE)
    assert turn.steps[-1] == "confirm" and "c=removal" in caller.pending_url + turn.xml
    assert "I think you asked about getting the image removed" in turn.text
    assert "Press 1 or say yes" in turn.text and "press 9" in turn.text
    assert caller.press("1").steps[-1] == "removal"


def test_a_confirm_answered_by_voice(call):
    caller = call()
    caller.say("can it be removed", confidence=UNSURE)
    assert caller.say("yes that's it").steps[-1] == "removal"
    caller = call()
    caller.say("can it be removed", confidence=UNSURE)
    turn = caller.say("no you've got it wrong")
    assert turn.steps[-1] == "main" and "press 2" in turn.text


def test_two_at_a_confirm_goes_to_the_main_menu(call):
    caller = call()
    caller.say("can it be removed", confidence=UNSURE)
    assert caller.press("2").steps[-1] == "main"


def test_a_confirm_never_stands_before_the_urgent_branch(call):
    caller = call()
    assert caller.say("someone is blackmailing my son", confidence=UNSURE).steps[-1] == "urgent"
    caller = call()
    caller.say("can it be removed", confidence=UNSURE)
    assert caller.say("no forget that, she's in danger").steps[-1] == "urgent"
    caller = call()
    caller.say("can it be removed", confidence=UNSURE)
    assert caller.press("9").steps[-1] == "urgent"


def test_a_sure_answer_goes_straight_there(call):
    assert call().say("it's on snapchat, can you get it taken down", confidence=0.95).steps[-1] == "removal"


def test_the_candidate_in_the_url_is_checked_not_trusted(twilio_post):
    for candidate, step in (("urgent", "main"), ("nowhere", "main"), ("school", "school")):
        response = twilio_post(f"/voice/answer/confirm?c={candidate}", {"Digits": "1"})
        assert response.status_code == 200
        assert response.headers["X-Calm-Line-Steps"].split(",")[-1] == step


def test_an_unsigned_candidate_is_refused(client):
    response = client.post("/voice/answer/confirm?c=school", data={"Digits": "1"})
    assert response.status_code == 403


# -- every choice of every menu, by voice, with words that are not its examples -------------


def _first_eval_item(menu: str, label: str) -> str:
    return next(i["says"] for i in ITEMS if i["menu"] == menu
                and evaluation.expected(UNDERSTANDER, i) == label)


def _reach(caller, menu: str):
    """Keys to each menu in the shipped flow (number_confirm: a withheld caller keys a mobile)."""
    keys = {"main": [], "urgent": ["9"], "urgent_more": ["9", "1"], "steps": ["1"],
            "steps_keep": ["1", "1"], "steps_more": ["1", "1", "1"], "removal": ["2"],
            "removal_more": ["2", "1"], "take_it_down": ["2", "1", "1"], "school": ["3"],
            "talk": ["4"], "finish": ["#"],
            "number_confirm": ["#", "1", "07400123456"]}[menu]
    for key in keys:
        caller.press(key)
    assert caller.last.steps[-1] == menu


WALKS = [(m.id, c.to) for m in MENUS if m.id != "confirm" for c in m.choices]


@pytest.fixture
def dial_app(tmp_path):
    from conftest import make_app

    return make_app(tmp_path, NSPCC_DIAL_NUMBER="+448088005000")


@pytest.mark.parametrize(("menu", "target"), WALKS, ids=lambda v: v)
def test_every_choice_of_every_menu_by_voice(dial_app, menu, target):
    from ivr.call.caller import Caller, FlaskTransport

    caller = Caller(FlaskTransport(dial_app), from_number=SIMULATED_FROM["withheld"])
    caller.dial()
    _reach(caller, menu)
    said = _first_eval_item(menu, target)
    turn = caller.say(said)
    if turn.steps[-1:] == ["confirm"]:
        turn = caller.say("yes")
    node = FLOW.nodes[target]
    if node.type in ("text_request", "text_confirm", "dial"):
        assert target in turn.steps or turn.steps[-1] in ("number_entry", "text_queued", "finish")
    else:
        assert turn.steps[-1] == target, (said, turn.steps)


# -- for staff: ivr understand, ivr script, ivr check ---------------------------------------


def _run(*args):
    from click.testing import CliRunner

    from ivr.flowtools.understand import understand_command

    return CliRunner().invoke(understand_command, list(args), catch_exceptions=False)


def test_ivr_understand_says_where_words_go_and_why():
    result = _run("someone is threatening to share it unless we pay")
    assert result.exit_code == 0
    assert "understood as: urgent (key 9), 1.00 (urgent)" in result.output
    assert "urgent signals:" in result.output and "goes to: urgent" in result.output
    result = _run("can it be removed", "--at", "main", "--confidence", "0.2")
    assert "understood as: removal" in result.output and "would ask first" in result.output
    assert "closest: removal" in result.output and "scores: removal" in result.output


def test_ivr_understand_json():
    import json

    data = json.loads(_run("yeah go on then", "--at", "finish", "--json").output)
    assert (data["label"], data["layer"], data["goes_to"]) == ("text_request", "yesno", "text_request")
    data = json.loads(_run("it's not an emergency, I just want it deleted", "--json").output)
    assert data["label"] == "removal" and data["signals"] and data["scores"]["removal"] > 0
    assert data["closest"][0]["choice"] == "removal"


def test_ivr_understand_refuses_a_step_that_is_not_a_menu():
    result = _run("hello", "--at", "goodbye")
    assert result.exit_code == 2 and "is not a menu" in result.output


def test_ivr_script_lists_each_choices_examples():
    from click.testing import CliRunner

    from ivr.flowtools.commands import script_command

    # The technical script (the staff's plain version leaves engineering detail out).
    output = CliRunner().invoke(script_command, ["--technical"], catch_exceptions=False).output
    assert "What callers might say (examples the line learns from):" in output
    removal = next(o for o in UNDERSTANDER.menus["main"].options if o.label == "removal")
    assert "; ".join(removal.examples) in output


def test_the_features_of_words_count_lemmas_pairs_and_letter_runs():
    from ivr.call.understanding.matcher import features

    found = features("school school snapchats")
    assert found["w:school"] == 2 and found["b:school school"] == 1
    assert found["b:school snapchats"] == 1
    # Runs of 3 to 5 letters, each word padded with a space: counted each time it is said.
    assert found["c: sc"] == 2 and found["c:ool "] == 2 and found["c:hool "] == 2
    assert found["c: snap"] == 1 and found["c:chats"] == 1 and found["c:ats "] == 1
    assert found["c:snapc"] == 1 and found["c:snapch"] == 0  # never more than 5


def test_a_words_vector_is_the_tf_idf_formula_to_the_last_bit():
    import math

    from ivr.call.understanding.matcher import WEIGHTS, Example, Matcher, features

    matcher = Matcher([Example("a", "school uniform"), Example("b", "phone call school")])
    # Said twice (1 + log 2), said once, and words no example has (the default idf).
    counts = features("school school phone zebra")
    expected = {f: WEIGHTS[f[0]] * (1 + math.log(n)) * matcher.idf.get(f, matcher.default_idf)
                for f, n in counts.items()}
    norm = math.sqrt(sum(v * v for v in expected.values()))
    assert matcher._vector(counts) == {f: v / norm for f, v in expected.items()}
    # The cosine with each example: the same sums, over the examples' own vectors.
    query = matcher._vector(counts)
    for i, example in enumerate(matcher.examples):
        own = matcher._vector(features(example.text))
        assert matcher.similarities("school school phone zebra")[i] == pytest.approx(
            sum(w * own[f] for f, w in query.items() if f in own), rel=1e-12)
