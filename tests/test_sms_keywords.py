"""Opt-out and opt-in words however they are written: a table of bodies, each sent as Twilio would.

Every body goes through a signed POST /sms/inbound; what counts is the reply
and whether the number is opted out afterwards (a new call's yes is refused).
"""
from __future__ import annotations

import pytest
from test_sms import MOBILE, inbound, reply_of

from ivr.texts import keywords, outbox

# body -> what it must do: "stop" (opted out), "start" (opted back in), "help", None (nothing)
BODIES = [
    ("STOP", "stop"),
    ("stop", "stop"),
    (" Stop. ", "stop"),
    ("\uff33\uff34\uff2f\uff30", "stop"),          # full width
    ("\uff53\uff54\uff4f\uff50", "stop"),          # full width, lower case
    ("S\u200bTOP", "stop"),                         # zero-width space
    ("ST\u200dOP", "stop"),                         # zero-width joiner
    ("\u2060STOP\u2060", "stop"),                   # word joiners
    ("\ufeffStop", "stop"),                         # byte-order mark
    ("S\u00adTOP", "stop"),                         # soft hyphen
    ("\u202eSTOP\u202c", "stop"),                   # right-to-left override
    ("\u0405\u0422\u041e\u0420", "stop"),          # Cyrillic look-alikes
    ("\u0455\u0442\u043e\u0440", "stop"),          # Cyrillic, lower case
    ("\u0405TOP", "stop"),                          # one Cyrillic letter
    ("ST\u039fP", "stop"),                          # Greek omicron
    ("st\u00f6p", "stop"),                          # an accent
    ("S\u0301TOP", "stop"),                         # a combining accent
    ("ST0P", "stop"),                               # zero for O
    ("S T O P", "stop"),
    ("s.t.o.p", "stop"),
    ("Please stop", "stop"),
    ("please stop texting me", "stop"),
    ("Stop texting me", "stop"),
    ("I want you to stop", "stop"),
    ("can you stop sending these", "stop"),
    ("opt out", "stop"),
    ("opt-out", "stop"),
    ("Opt Out please", "stop"),
    ("OPTOUT", "stop"),
    ("unsubscribe me", "stop"),
    ("un-subscribe", "stop"),
    ("STOPALL", "stop"),
    ("cancel", "stop"),
    ("END", "stop"),
    ("quit", "stop"),
    ("Revoke", "stop"),
    ("\uff33\u200b\u0422\u041eP!!", "stop"),       # all of it at once
    ("START", "start"),
    ("yes", "start"),
    ("Unstop", "start"),
    ("\uff33\uff34\uff21\uff32\uff34", "start"),   # full width
    ("opt in", "start"),
    ("HELP", "help"),
    ("Info?", "help"),
    ("\uff28\uff25\uff2c\uff30", "help"),          # full width
    ("", None),
    ("Thank you", None),
    ("what do I do now?", None),
    ("help me please", None),
    ("start again", None),
    ("\U0001F600", None),
    ("It was the end of a long day and the call helped", None),
    ("Please cancel my appointment next week, thank you ever so much for the help today", None),
    ("Thank you so much for the advice you gave me today, it has helped us all a lot. "
     "We will not stop talking about it with our daughter", None),
]


def test_the_table_is_long_enough():
    assert len(BODIES) >= 40
    assert len({body for body, _ in BODIES}) == len(BODIES)


@pytest.mark.parametrize("body, wants", BODIES, ids=[repr(b)[:30] for b, _ in BODIES])
def test_each_body_does_what_it_must(app, twilio_post, flow, body, wants):
    if wants == "start":
        inbound(twilio_post, "STOP")
    reply = reply_of(inbound(twilio_post, body))
    expected = {"stop": "stopped_reply", "start": "started_reply", "help": "help_reply",
                None: "other_reply"}[wants]
    assert reply == flow.written(flow.sms[expected])
    with app.app_context():
        assert outbox.number_opted_out(MOBILE) == (wants == "stop")


@pytest.mark.parametrize("body, wants", BODIES, ids=[repr(b)[:30] for b, _ in BODIES])
def test_keyword_alone(body, wants):
    assert keywords.keyword(body) == wants
