"""Whole calls through the line, then the text: signed webhooks in, the fake Twilio API out.

Each test dials in with ivr.call.caller.Caller, walks the menus by key or voice,
hangs up (Twilio's call status callback), runs the worker and looks at what
reached the fake Twilio API.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import make_app

from ivr import store
from ivr.call.caller import SIMULATED_FROM
from ivr.texts import outbox, worker

MOBILE = SIMULATED_FROM["mobile"]  # +447400123456
LANDLINE = SIMULATED_FROM["landline"]
WITHHELD = SIMULATED_FROM["withheld"]
KEYED = "07911123456"
KEYED_E164 = "+447911123456"
KEYED_SPOKEN = "0 7 9 1 1, 1 2 3, 4 5 6"
NSPCC_SPOKEN = "0 8 0 8, 8 0 0, 5 0 0 0"

QUEUED_WORDS = "We will send the text when this call ends"
ASK_WORDS = "key in the mobile number"
FAILED_WORDS = "we could not arrange the text"
OPTED_OUT_WORDS = "asked us not to send texts"


@pytest.fixture
def app(tmp_path, database_url, twilio_settings):
    return make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)


@pytest.fixture
def send(app):
    """Run the worker once, as `ivr worker --once` would."""

    def run() -> int:
        with app.app_context():
            return worker.Worker(app).run_once()

    return run


def sent(fake) -> list[dict]:
    """Messages the fake Twilio API accepted."""
    return fake.messages


def urls(flow, *branches) -> list[str]:
    """The links of these branches, as every layout of the text writes them."""
    return [flow.links[k].url.removeprefix("https://").removeprefix("www.").rstrip("/")
            for b in branches for k in flow.nodes[b].links]


def not_heard(flow, *branches) -> list[str]:
    heard = set(urls(flow, *branches))
    return [u for u in urls(flow, *(n for n in flow.nodes if n not in branches)) if u not in heard]


def to_finish(caller, *keys):
    """Press keys from the main menu, then # for the end of the call."""
    for key in keys:
        caller.press(key)
    turn = caller.press("#")
    assert "Texts can be seen by anyone who uses this phone" in turn.text
    assert turn.text.index("seen by anyone") < turn.text.index("press 1, or say yes")
    return turn


# -- yes, no --


def test_yes_sends_one_text_with_the_links_heard_after_the_call_ends(call, flow, fake_twilio,
                                                                     send):
    caller = call(MOBILE)
    caller.press("2")  # removal
    caller.press("1")  # removal, more
    to_finish(caller)
    turn = caller.press("1")
    assert QUEUED_WORDS in turn.text and turn.ended
    assert send() == 0  # held until the call ends
    assert fake_twilio.requests == []
    assert caller.hang_up("completed") == 200
    assert send() == 1
    [message] = sent(fake_twilio)
    assert message["to"] == MOBILE
    body = message["body"]
    assert urls(flow, "removal", "removal_more")
    for url in urls(flow, "removal", "removal_more"):
        assert url in body
    for url in not_heard(flow, "removal", "removal_more"):
        assert url not in body.replace(flow.written(flow.sms["nspcc"]), "")
    assert "0808 800 5000" in body and "999" in body and "STOP" in body
    assert int(message["num_segments"]) <= 3
    assert send() == 0
    assert len(fake_twilio.requests) == 1


def test_yes_by_voice_from_the_main_menu(call, flow, fake_twilio, send):
    caller = call(MOBILE)
    caller.say("finish")
    assert QUEUED_WORDS in caller.say("yes please").text
    caller.hang_up()
    send()
    [message] = sent(fake_twilio)
    assert message["body"] == "\n".join([
        flow.written(flow.sms[k]) for k in ("intro", "nspcc", "danger", "stop")])


@pytest.mark.parametrize("answer", ["key", "voice"])
def test_no_sends_nothing(app, call, fake_twilio, send, answer):
    caller = call(MOBILE)
    to_finish(caller, "4")
    turn = caller.press("2") if answer == "key" else caller.say("no thanks")
    assert turn.ended and NSPCC_SPOKEN in turn.text
    caller.hang_up()
    assert send() == 0
    assert fake_twilio.requests == []
    with app.app_context(), store.read() as conn:
        assert conn.execute(sa.select(store.outbox)).all() == []


def test_the_offer_comes_from_every_branch(call):
    for keys in (["9"], ["1"], ["1", "1"], ["2"], ["2", "1"], ["3"], ["4"], []):
        to_finish(call(MOBILE), *keys)


# -- a number keyed in --


def test_a_withheld_caller_keys_in_a_mobile_and_gets_the_text_there(call, flow, fake_twilio,
                                                                   send):
    caller = call(WITHHELD)
    to_finish(caller, "3", "0", "2")  # school, back to the menu, removal
    turn = caller.press("1")
    assert ASK_WORDS in turn.text and turn.waiting == "digits"
    turn = caller.press(KEYED)
    assert KEYED_SPOKEN in turn.text
    assert QUEUED_WORDS in caller.press("1").text
    caller.hang_up()
    send()
    [message] = sent(fake_twilio)
    assert message["to"] == KEYED_E164
    assert all(url in message["body"] for url in urls(flow, "removal"))


def test_a_landline_caller_is_asked_for_a_mobile(call, fake_twilio, send):
    caller = call(LANDLINE)
    to_finish(caller, "4")
    assert ASK_WORDS in caller.press("1").text
    assert KEYED_SPOKEN in caller.press(KEYED).text
    assert QUEUED_WORDS in caller.say("yes").text
    caller.hang_up()
    send()
    assert [m["to"] for m in sent(fake_twilio)] == [KEYED_E164]


def test_a_wrong_number_can_be_keyed_in_again(call, fake_twilio, send):
    caller = call(WITHHELD)
    to_finish(caller)
    caller.press("1")
    assert "0 7 4 0 0, 1 2 3, 4 5 6" in caller.press("07400123456").text
    assert ASK_WORDS in caller.press("2").text  # not right: again
    assert KEYED_SPOKEN in caller.press(KEYED).text
    caller.press("1")
    caller.hang_up()
    send()
    assert [m["to"] for m in sent(fake_twilio)] == [KEYED_E164]


def test_numbers_that_cannot_take_a_text_are_refused_then_the_line_gives_up_kindly(
        app, call, fake_twilio, send):
    caller = call(WITHHELD)
    to_finish(caller)
    caller.press("1")
    turn = None
    for _ in range(10):  # bounded: the line gives up long before this
        turn = caller.press("02079460123")  # a landline
        if turn.ended:
            break
        assert "does not look like a UK mobile number" in turn.text
    assert turn.ended
    assert FAILED_WORDS in turn.text and NSPCC_SPOKEN in turn.text
    caller.hang_up()
    assert send() == 0
    assert fake_twilio.requests == []


def test_hanging_up_before_confirming_sends_nothing_and_forgets_the_number(app, call,
                                                                          fake_twilio, send):
    caller = call(WITHHELD)
    to_finish(caller)
    caller.press("1")
    caller.press(KEYED)
    caller.hang_up()
    assert send() == 0
    assert fake_twilio.requests == []
    with app.app_context(), store.read() as conn:
        [row] = conn.execute(sa.select(store.outbox)).all()
    assert (row.status, row.to_number) == (outbox.ABANDONED, None)


# -- STOP ----------------------------------------------------------------------------------------------


def test_stop_by_text_then_a_new_call_saying_yes_sends_nothing(call, twilio_post, fake_twilio,
                                                               send):
    response = twilio_post("/sms/inbound", {"From": MOBILE, "Body": "STOP"})
    assert response.status_code == 200 and "<Message>" in response.get_data(as_text=True)
    caller = call(MOBILE)
    to_finish(caller, "2")
    turn = caller.press("1")
    assert OPTED_OUT_WORDS in turn.text and NSPCC_SPOKEN in turn.text
    caller.hang_up()
    assert send() == 0
    assert fake_twilio.requests == []


def test_stop_between_the_call_and_the_send_is_honoured(call, twilio_post, fake_twilio, send):
    caller = call(MOBILE)
    to_finish(caller)
    caller.press("1")
    twilio_post("/sms/inbound", {"From": MOBILE, "Body": "stop"})
    caller.hang_up()
    assert send() == 0
    assert fake_twilio.requests == []


# -- Twilio trouble --


def test_twilio_failing_n_times_then_the_text_is_sent_exactly_once(call, fake_twilio, send):
    fake_twilio.fail_next(2)
    fake_twilio.rate_limit_next(1)
    fake_twilio.drop_next(1)
    caller = call(MOBILE)
    to_finish(caller, "1")
    caller.press("1")
    caller.hang_up()
    send()
    attempts = [r for r in fake_twilio.requests if r.path.endswith("/Messages.json")]
    assert len(attempts) == 5
    assert [m["to"] for m in sent(fake_twilio)] == [MOBILE]
    assert send() == 0


def test_21610_is_not_retried_and_the_number_is_opted_out(app, call, fake_twilio, send):
    fake_twilio.reject_number(MOBILE, 21610)
    caller = call(MOBILE)
    to_finish(caller)
    caller.press("1")
    caller.hang_up()
    send()
    send()
    assert len(fake_twilio.requests) == 1
    assert sent(fake_twilio) == []
    with app.app_context():
        assert outbox.number_opted_out(MOBILE)
    again = call(MOBILE)
    to_finish(again)
    assert OPTED_OUT_WORDS in again.press("1").text


# -- callbacks: repeated, late, out of order --


def test_repeated_and_late_call_status_callbacks_send_one_text(call, fake_twilio, send):
    caller = call(MOBILE)
    to_finish(caller)
    caller.press("1")
    assert caller._send("/voice/status", {"CallStatus": "in-progress"})[0] == 200
    assert send() == 0  # not the end of the call
    for status in ("completed", "completed", "canceled"):
        assert caller.hang_up(status) == 200
        send()
    assert len(sent(fake_twilio)) == 1


def test_a_retried_yes_webhook_makes_one_text(call, twilio_post, fake_twilio, send):
    caller = call(MOBILE)
    to_finish(caller)
    turn = caller.press("1")
    form = {"CallSid": caller.call_sid, "From": MOBILE, "To": caller.to_number, "Digits": "1",
            "CallStatus": "in-progress"}
    again = twilio_post(turn.url, form)  # Twilio retrying the same request
    assert again.status_code == 200 and QUEUED_WORDS in again.get_data(as_text=True)
    caller.hang_up()
    send()
    assert len(sent(fake_twilio)) == 1


def test_message_status_callbacks_in_any_order(app, call, twilio_post, fake_twilio, send):
    caller = call(MOBILE)
    to_finish(caller)
    caller.press("1")
    caller.hang_up()
    send()
    [message] = sent(fake_twilio)
    assert message["status_callback"] == "http://localhost/sms/status"
    for status in ("delivered", "sent", "delivered", "queued"):
        response = twilio_post("/sms/status", {"MessageSid": message["sid"],
                                               "MessageStatus": status})
        assert response.status_code == 200
    with app.app_context(), store.read() as conn:
        row = conn.execute(sa.select(store.outbox)).one()
    assert (row.status, row.to_number) == (outbox.DELIVERED, None)


def test_without_a_call_status_callback_the_safety_net_sends_it(app, call, fake_twilio):
    caller = call(MOBILE)
    to_finish(caller)
    caller.press("1")  # ... and Twilio never reports the end of the call
    from datetime import timedelta

    later = store.utcnow() + timedelta(minutes=app.config["TEXT_HOLD_MINUTES"] + 1)
    with app.app_context():
        assert worker.Worker(app).run_once() == 0
        assert worker.Worker(app, clock=lambda: later).run_once() == 1
    assert len(sent(fake_twilio)) == 1


# -- the simulator and failures --


def test_a_simulated_call_never_texts_through_twilio(app, call, flow, fake_twilio, send):
    caller = call(MOBILE, simulated=True)
    to_finish(caller, "9")
    caller.press("1")
    caller.hang_up()
    send()
    assert fake_twilio.requests == []
    with app.app_context():
        [text] = outbox.local_sent(caller.call_sid)
    assert all(url in text["body"] for url in urls(flow, "urgent"))


def test_with_the_database_down_the_caller_still_hears_999_and_the_nspcc(app, call, fake_twilio):
    caller = call(MOBILE)
    to_finish(caller)
    app.extensions[store.EXTENSION] = store.make_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    turn = caller.press("1")
    assert turn.status == 200 and turn.ended
    assert FAILED_WORDS in turn.text and NSPCC_SPOKEN in turn.text
    assert caller.hang_up() == 200  # the status callback copes too
    assert fake_twilio.requests == []
