"""No full phone number in any log line, error page, URL or leftover row.

Whole calls run with every logger at DEBUG (SQLAlchemy's statements and
parameters, twilio-python's requests, werkzeug, urllib3 included): the
callers' numbers, a keyed-in number, texts sent through the fake Twilio,
STOP/START/HELP, delivery reports, a database failure and an exception
that carries a number in its message. Every captured line, everything
written to stdout/stderr and every answer body is searched for each number
in every way it can be written.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import FROM_NUMBER, make_app, sign

from ivr import store
from ivr.call import engine
from ivr.call.caller import Caller, FlaskTransport
from ivr.texts import worker

MOBILE = "+447400123456"  # calls in and says yes
KEYED = "+447400654321"  # keyed in by a landline caller
LANDLINE = "+442079460123"
REJECTED = "+447400111222"  # Twilio refuses to text it (21211)
STOPPER = "+447400999888"  # texts STOP, then START, then HELP
BROKEN = "+447400555666"  # calls while the database is broken
ALL = [MOBILE, KEYED, LANDLINE, REJECTED, STOPPER, BROKEN]


def spellings(e164: str) -> set[str]:
    """Every way a log could write this number in full."""
    national = "0" + e164[3:]
    nsn = e164[3:]
    return {e164, e164[1:], national, nsn, f"{national[:5]} {national[5:]}",
            f"+44 {nsn[:4]} {nsn[4:]}", f"+44 (0){nsn[:4]} {nsn[4:]}"}


def leaks(text: str) -> list[str]:
    found = []
    squeezed = re.sub(r"[\s()\-.]", "", text)
    for number in ALL:
        for spelling in spellings(number):
            if spelling in text or re.sub(r"[\s()\-.]", "", spelling) in squeezed:
                found.append(spelling)
    return sorted(set(found))


@pytest.fixture
def every_logger_at_debug(caplog):
    """Root and every named logger at DEBUG (libraries that turned themselves down too)."""
    caplog.set_level(logging.DEBUG)
    changed = []
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            changed.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
    for name in ("sqlalchemy.engine", "sqlalchemy.pool", "twilio.http_client", "urllib3",
                 "werkzeug", "alembic", "ivr"):
        logger = logging.getLogger(name)
        changed.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
    yield caplog
    for logger, level in changed:
        logger.setLevel(level)


def call(app, number: str, *actions) -> Caller:
    caller = Caller(FlaskTransport(app), from_number=number)
    caller.dial()
    for method, argument in actions:
        getattr(caller, method)(argument)
    caller.hang_up()
    return caller


def post_signed(client, path: str, params: dict):
    return client.post(path, data=params, headers={"X-Twilio-Signature": sign(path, params)})


def test_whole_calls_at_debug_leave_no_full_number_anywhere(tmp_path, twilio_settings, fake_twilio,
                                                            every_logger_at_debug, capfd,
                                                            monkeypatch):
    caplog = every_logger_at_debug
    app = make_app(tmp_path, LOG_LEVEL="DEBUG", **twilio_settings)
    fake_twilio.reject_number(REJECTED, 21211)
    bodies, urls = [], []

    # Calls: a mobile says yes; a landline keys in a wrong number, then a mobile; a withheld
    # caller gives up; a mobile that Twilio will refuse.
    callers = [
        call(app, MOBILE, ("press", "2"), ("press", "#"), ("press", "1")),
        call(app, LANDLINE, ("press", "#"), ("press", "1"), ("press", "0740065"),
             ("press", "0" + KEYED[3:]), ("press", "1")),
        call(app, "anonymous", ("press", "#"), ("press", "1"), ("press", "")),
        call(app, REJECTED, ("say", "talk to someone"), ("press", "#"), ("say", "yes please")),
    ]
    for caller in callers:
        bodies += [turn.xml for turn in caller.turns]
        urls += [turn.url for turn in caller.turns]

    # The texts go out through the fake Twilio (twilio-python logs its requests at DEBUG).
    with app.app_context():
        worker.Worker(app).run_once()
    assert {m["to"] for m in fake_twilio.messages} == {MOBILE, KEYED}
    client = app.test_client()
    for message in fake_twilio.messages:
        for status in ("sent", "delivered"):
            post_signed(client, "/sms/status", {"MessageSid": message["sid"],
                                                "MessageStatus": status, "To": message["to"]})

    # Texts in: STOP, START, HELP, something else.
    for body in ("STOP", "START", "HELP", f"who is this? call me on {STOPPER}"):
        response = post_signed(client, "/sms/inbound", {"From": STOPPER, "To": FROM_NUMBER,
                                                        "Body": body, "MessageSid": "SM" + "4" * 32})
        bodies.append(response.get_data(as_text=True))

    # An exception that carries a number, and a database that is gone.
    def broken(*args, **kwargs):
        raise RuntimeError(f"engine failed for caller {BROKEN} (0{BROKEN[3:]})")

    monkeypatch.setattr(engine, "answer", broken)
    bodies += [turn.xml for turn in call(app, BROKEN, ("press", "1")).turns]
    monkeypatch.undo()
    db_file = tmp_path / "calmline.sqlite"
    with app.app_context():
        store.engine().dispose()
    db_file.rename(tmp_path / "kept.sqlite")
    db_file.mkdir()
    broken_call = call(app, BROKEN, ("press", "#"), ("press", "1"))
    assert "could not arrange the text" in broken_call.transcript
    bodies += [turn.xml for turn in broken_call.turns]
    db_file.rmdir()
    (tmp_path / "kept.sqlite").rename(db_file)

    # Error pages: nothing of the request comes back.
    for method, path, data in [("get", "/voice", None), ("post", "/nowhere", {"From": MOBILE}),
                               ("put", "/sms/inbound", {"From": MOBILE}),
                               ("post", "/voice/answer/main", {"From": MOBILE, "Digits": "1"}),
                               ("post", "/voice", {"From": MOBILE, "Body": "x" * 70_000})]:
        response = getattr(client, method)(path, data=data)
        assert response.status_code in (403, 404, 405, 413)
        bodies.append(response.get_data(as_text=True))

    with app.app_context():
        from ivr.call import events

        events.flush(app)
    out, err = capfd.readouterr()
    logged = "\n".join([caplog.text, out, err])
    assert "DEBUG" in caplog.text and "sqlalchemy" in caplog.text  # the audit really saw DEBUG
    assert re.search(r"\+44\*+456", logged)  # numbers do appear: masked
    assert leaks(logged) == []
    assert leaks("\n".join(bodies)) == []
    assert not [url for url in urls if re.search(r"\d{7,}", url)]  # never in a URL

    # What stays in the database once every text is done: no number in any table.
    with app.app_context(), store.read() as conn:
        tables = sa.inspect(conn).get_table_names()
        dump = "\n".join(repr(row) for table in tables
                         for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')).all())
    assert leaks(dump) == []


def test_the_access_log_writes_the_path_only(tmp_path):
    """gunicorn's access log (Procfile): %(U)s is the path; query strings and bodies never."""
    line = next(line for line in (Path(__file__).parent.parent / "Procfile").read_text().splitlines()
                if line.startswith("web:"))
    access_format = re.search(r"--access-logformat '([^']*)'", line)
    assert access_format, "the Procfile sets no access log format (the default logs the query)"
    assert re.findall(r"%\((\w|\{[^}]*\}\w)\)s", access_format.group(1))
    for unsafe in ("%(r)s", "%(q)s", "%(f)s", "%(a)s", "}i)s", "}e)s"):
        assert unsafe not in access_format.group(1)
