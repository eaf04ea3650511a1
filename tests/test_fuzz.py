"""Strange input never breaks the line: every signed answer is 200 with TwiML Twilio can play.

Hypothesis throws at the voice webhooks what Twilio (or a broken phone, or a
misconfigured console) could send: Digits of any length and any characters,
SpeechResult in any script, empty or huge, parameters missing or extra or
repeated, step paths and query strings that the line never wrote, requests
repeated and out of order. Unsigned or forged requests get 403, whatever
they carry.

Examples per test: conftest.FUZZ_EXAMPLES (300 in CI, 2,100 in all; set
CALM_LINE_FUZZ_EXAMPLES=1500 or more for a 10,000+ run).
"""
from __future__ import annotations

import secrets
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from conftest import AUTH_TOKEN, BASE, make_app
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from ivr import store
from ivr.call.caller import Caller, FlaskTransport, parse_twiml

FUZZ = settings.get_profile("calm-line-fuzz")
VALIDATOR = RequestValidator(AUTH_TOKEN)
MAX_BODY = 60 * 1024  # under the app's MAX_CONTENT_LENGTH (64 KiB): over it is test_limits'

STANDARD = ("CallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus", "Direction",
            "ApiVersion", "ForwardedFrom", "CallerName", "FromCity", "FromCountry", "ParentCallSid")
INPUTS = ("Digits", "SpeechResult", "Confidence", "DialCallStatus", "DialCallDuration",
          "CallDuration", "ErrorCode", "ErrorUrl", "msg", "FinishedOnKey", "CalmLineSimulated")
ENDPOINTS = ("/voice", "/voice/answer/{}", "/voice/step/{}", "/voice/number/{}",
             "/voice/dialled/{}", "/voice/{}", "/voice/status", "/voice/fallback")


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("fuzz"), LOG_LEVEL="WARNING")


@pytest.fixture(scope="module")
def client(fuzz_app):
    return fuzz_app.test_client()


@pytest.fixture(scope="module")
def node_ids(fuzz_app):
    return sorted(fuzz_app.extensions["calm_line.flow"].nodes)


def base_params(**extra) -> dict:
    params = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32,
              "From": "+447400123456", "To": "+441134960000", "CallStatus": "in-progress",
              "Direction": "inbound", "ApiVersion": "2010-04-01"}
    params.update(extra)
    return params


def post(client, path: str, params, signature: str | None = "sign"):
    """POST form params to path (raw, percent-encoded as sent); signed like Twilio unless told."""
    form = params if isinstance(params, MultiDict) else MultiDict(params)
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = VALIDATOR.compute_signature(BASE + path, form)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    body = urlencode(list(form.items(multi=True)))
    assert len(body) < MAX_BODY
    return client.post(path, data=body, headers=headers,
                       content_type="application/x-www-form-urlencoded")


def assert_playable(response, path: str) -> None:
    """200 and TwiML Twilio can play (only its verbs and attributes), staying on our line."""
    assert response.status_code == 200, (path, response.status_code)
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    if path.split("?")[0] == "/voice/status":
        assert text == ""  # the status callback's answer: an empty 200
        return
    assert response.mimetype == "text/xml"
    root = parse_twiml(text)
    assert len(root), "an empty <Response/> would end the call in silence"
    for element in root.iter():
        url = element.get("action") or (element.text if element.tag == "Redirect" else None)
        if url is not None:
            assert url.startswith("/voice/"), url


# -- strategies ---------------------------------------------------------------------

any_text = st.text(max_size=200)
huge_text = st.builds(lambda chunk, times: (chunk * times)[:2_000],
                      st.text(min_size=1, max_size=40), st.integers(100, 2_000))
keyish = st.text(alphabet="0123456789*#", max_size=40)
digits = st.one_of(st.sampled_from(["", " ", "1", "9", "0", "*", "#", "10", "99", "1#", "٣",
                                    "१", "\x00", "1\n", "+", "-1", "07400123456", "1" * 30]),
                   keyish, any_text, huge_text)
speech = st.one_of(st.sampled_from(["", " ", "yes", "YES!!", "no", "danger", "press nine", "nine",
                                    "star", "hash", "what", "I think my child is at risk",
                                    "\u202eyes", "ｙｅｓ", "да", "نعم", "🙂" * 10]),
                   any_text, huge_text)
segment = st.one_of(st.sampled_from(["main", "finish", "urgent", "number_entry", "dial_nspcc",
                                     "text_request", "text_confirm", "welcome", "goodbye",
                                     "", ".", "..", "%2e%2e", "%2F", "status", "fallback"]),
                    st.text(max_size=16).map(lambda s: quote(s, safe="")))
query_value = st.one_of(st.sampled_from(["", "0", "1", "2", "3", "-1", "99999999999999999999",
                                         "1e9", "nan", "main", "urgent,talk", "steps,steps,steps",
                                         ",,,", "main,nope", "%", "%zz"]),
                        st.text(max_size=30))


@st.composite
def query_strings(draw) -> str:
    pairs = draw(st.lists(st.tuples(st.sampled_from(["t", "h", "t", "h", "x", "", "T", "h[]"]),
                                    query_value), max_size=5))
    query = urlencode(pairs, safe=",")
    if draw(st.booleans()):
        query = draw(st.sampled_from(["", "&", "&&=", "=", "t", "h", "t=1&t=2", "h=%",
                                      "%ff%fe", "t=%00"])) + ("&" + query if query else "")
    return f"?{query}" if query else ""


@st.composite
def step_paths(draw, node_ids) -> str:
    kind = draw(st.sampled_from(ENDPOINTS))
    if "{}" in kind:
        node = draw(st.one_of(st.sampled_from(node_ids), segment))
        extra = draw(st.lists(segment, max_size=2))
        kind = kind.format("/".join([node, *extra]))
    return kind + draw(query_strings())


def known_step(node_ids):
    return st.sampled_from(node_ids).flatmap(
        lambda node: st.sampled_from([f"/voice/answer/{node}", f"/voice/number/{node}",
                                      f"/voice/step/{node}", f"/voice/dialled/{node}"]))


@st.composite
def parameters(draw) -> MultiDict:
    """Twilio's parameters, some missing, some extra, some repeated, any values."""
    form = MultiDict()
    for name in draw(st.lists(st.sampled_from(STANDARD + INPUTS), max_size=len(STANDARD))):
        form.add(name, draw(st.one_of(any_text, st.sampled_from(["", "+447400123456",
                                                                 "anonymous", "client:x"]))))
    for _ in range(draw(st.integers(0, 4))):
        form.add(draw(st.text(min_size=1, max_size=20)), draw(any_text))
    return form


# -- the tests ------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), keys=digits)
def test_any_digits_at_any_step(client, node_ids, data, keys):
    path = data.draw(known_step(node_ids)) + data.draw(query_strings())
    assert_playable(post(client, path, base_params(Digits=keys)), path)


@FUZZ
@given(data=st.data(), words=speech, confidence=st.one_of(st.none(), any_text))
def test_any_speech_at_any_menu(client, node_ids, data, words, confidence):
    path = f"/voice/answer/{data.draw(st.sampled_from(node_ids))}" + data.draw(query_strings())
    params = base_params(SpeechResult=words)
    if confidence is not None:
        params["Confidence"] = confidence
    assert_playable(post(client, path, params), path)


@FUZZ
@given(data=st.data(), form=parameters())
def test_missing_extra_and_repeated_parameters(client, node_ids, data, form):
    path = data.draw(st.one_of(st.sampled_from(["/voice", "/voice/status", "/voice/fallback",
                                                "/voice/answer/finish", "/voice/answer/main",
                                                "/voice/answer/number_confirm",
                                                "/voice/number/number_entry",
                                                "/voice/dialled/dial_nspcc"]),
                               known_step(node_ids)))
    assert_playable(post(client, path, form), path)


@FUZZ
@given(data=st.data(), keys=st.one_of(st.none(), digits), words=st.one_of(st.none(), speech))
def test_any_step_path_and_query_string(client, node_ids, data, keys, words):
    path = data.draw(step_paths(node_ids))
    params = base_params()
    if keys is not None:
        params["Digits"] = keys
    if words is not None:
        params["SpeechResult"] = words
    assert_playable(post(client, path, params), path)


@FUZZ
@given(data=st.data(), status=st.one_of(st.sampled_from(["completed", "busy", "no-answer",
                                                         "failed", "canceled", "ringing",
                                                         "in-progress", ""]), any_text),
       dial=st.one_of(st.none(), st.sampled_from(["completed", "busy", "no-answer", "failed",
                                                   "canceled", "", "COMPLETED"]), any_text))
def test_any_call_and_dial_status(client, node_ids, data, status, dial):
    path = data.draw(st.sampled_from(["/voice/status", "/voice/dialled/dial_nspcc",
                                      "/voice/dialled/main", "/voice/fallback"]))
    params = base_params(CallStatus=status, CallDuration=data.draw(any_text))
    if dial is not None:
        params["DialCallStatus"] = dial
    assert_playable(post(client, path, params), path)


# -- repeated and out-of-order requests -------------------------------------------------


def _record(app, from_number: str, actions: list[tuple[str, str | None]]) -> list:
    """The requests one real call makes, in order (path, params)."""
    sent = []

    class Recording(FlaskTransport):
        def post(self, path, params, signature):
            sent.append((path, dict(params)))
            return super().post(path, params, signature)

    caller = Caller(Recording(app), from_number=from_number)
    caller.dial()
    for method, argument in actions:
        getattr(caller, method)(*([argument] if argument is not None else []))
    return sent


@pytest.fixture(scope="module")
def recorded_calls(fuzz_app):
    return {
        "mobile": _record(fuzz_app, "+447400123456", [("press", "2"), ("press", "#"),
                                                      ("press", "1")]),
        "landline": _record(fuzz_app, "+442079460123", [("press", "4"), ("press", "#"),
                                                        ("press", "1"), ("press", "07400123456"),
                                                        ("press", "2"), ("press", "07400123457"),
                                                        ("press", "1")]),
    }


def _texts_for(app, call_sid: str) -> tuple[list, int]:
    with app.app_context():
        key = store.call_key(call_sid)
        with store.read() as conn:
            rows = conn.execute(sa.select(store.outbox).where(store.outbox.c.call_key == key)).all()
            local = conn.execute(sa.select(sa.func.count()).select_from(store.local_texts)
                                 .where(store.local_texts.c.call_key == key)).scalar()
    return rows, local


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["mobile", "landline"]))
def test_repeated_and_out_of_order_requests_make_at_most_one_text(fuzz_app, client, recorded_calls,
                                                                  data, kind):
    from ivr.texts import worker

    requests = recorded_calls[kind]
    order = data.draw(st.lists(st.integers(0, len(requests) - 1), min_size=1, max_size=14))
    ends = data.draw(st.lists(st.sampled_from(["completed", "completed", "busy", "failed",
                                               "in-progress"]), max_size=3))
    call_sid = "CA" + secrets.token_hex(16)
    for index in order:
        path, params = requests[index]
        assert_playable(post(client, path, {**params, "CallSid": call_sid}), path)
    for end in ends:
        params = {**requests[0][1], "CallSid": call_sid, "CallStatus": end}
        assert_playable(post(client, "/voice/status", params), "/voice/status")
    with fuzz_app.app_context():
        worker.Worker(fuzz_app).run_once()
    rows, sent = _texts_for(fuzz_app, call_sid)
    assert len(rows) <= 1  # one row per call, whatever came twice or out of turn
    assert sent <= 1  # and never a second text
    if rows and sent:
        assert rows[0].to_number is None  # sent: the number is gone


# -- only Twilio ------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), form=parameters(),
       how=st.sampled_from(["missing", "empty", "junk", "other token", "other url", "changed"]))
def test_unsigned_or_forged_requests_get_403_whatever_they_carry(client, node_ids, data, form,
                                                                  how):
    path = data.draw(st.one_of(step_paths(node_ids), st.sampled_from(["/sms/inbound",
                                                                      "/sms/status"])))
    if how == "missing":
        signature = None
    elif how == "empty":
        signature = ""
    elif how == "junk":
        signature = data.draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                      max_size=60))
    elif how == "other token":
        signature = RequestValidator("not-" + AUTH_TOKEN).compute_signature(BASE + path, form)
    elif how == "other url":
        other = data.draw(step_paths(node_ids))
        if other == path:
            other += "&again" if "?" in other else "?again"
        signature = VALIDATOR.compute_signature(BASE + other, form)
    else:
        signature = VALIDATOR.compute_signature(BASE + path, form)
        form = MultiDict(form)
        form.add("Digits", "9")
    response = post(client, path, form, signature=signature)
    assert response.status_code == 403, (path, how)
    assert b"Traceback" not in response.data
