"""What the line says when it did not get an answer, and why it asks for a mobile (issue 14)."""
from __future__ import annotations

import pytest

HEARD_NOTHING = "I did not hear anything"
NOT_UNDERSTOOD = "I could not understand that"


def give_up(caller, how):
    for _ in range(3):
        turn = how(caller)
    return turn


@pytest.mark.parametrize(("how", "said", "not_said"), [
    (lambda c: c.silence(), HEARD_NOTHING, NOT_UNDERSTOOD),
    (lambda c: c.say("purple elephants on a bicycle"), NOT_UNDERSTOOD, HEARD_NOTHING),
])
def test_the_give_up_words_say_what_happened(call, how, said, not_said):
    turn = give_up(call(), how)
    assert turn.steps[0] == "trouble"
    assert turn.text.startswith(f"Sorry, {said}")
    assert not_said not in turn.text
    assert "trouble hearing you" not in turn.text  # never after words heard clearly
    assert "call 9 9 9" in turn.text


def test_each_retry_says_what_happened(call):
    caller = call()
    assert caller.silence().text.startswith(f"Sorry, {HEARD_NOTHING}")
    assert caller.say("purple elephants").text.startswith(f"Sorry, {NOT_UNDERSTOOD}")


@pytest.mark.parametrize("from_number", ["+442079460123", "anonymous"])
def test_a_landline_or_withheld_caller_is_told_why_a_mobile_is_needed(call, from_number):
    caller = call(from_number)
    caller.press("#")
    turn = caller.press("1")
    assert turn.steps == ["number_why", "number_entry"] and turn.waiting == "digits"
    assert turn.text.index("only go to a mobile") < turn.text.index("key in the mobile number")
