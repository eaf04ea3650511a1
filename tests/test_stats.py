"""Anonymous figures: recorded from the voice webhooks, counted exactly, shown to staff only."""
from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import make_app, sign

from ivr import cli, store
from ivr.call import events
from ivr.call.caller import Caller, FlaskTransport
from ivr.staff import stats
from ivr.texts import worker

MOBILE = "+447400123456"


def status(app, caller: Caller, seconds: int, call_status: str = "completed") -> None:
    """Twilio's status callback for a call, with its length."""
    params = {"CallSid": caller.call_sid, "From": caller.from_number, "To": caller.to_number,
              "CallStatus": call_status, "CallDuration": str(seconds)}
    if caller.simulated:
        params["CalmLineSimulated"] = "1"
    response = app.test_client().post("/voice/status", data=params,
                                      headers={"X-Twilio-Signature": sign("/voice/status", params)})
    assert response.status_code == 200


def dial(app, simulated: bool = False, number: str = MOBILE) -> Caller:
    caller = Caller(FlaskTransport(app), from_number=number, simulated=simulated)
    caller.dial()
    return caller


def make_calls(app) -> dict[str, Caller]:
    """Six counted calls and two from the simulator, with known outcomes."""
    calls = {}
    # A: what to do now, then finish and yes to the text: goodbye. 120 s. Status sent twice.
    a = calls["a"] = dial(app)
    a.press("1")
    a.press("#")
    assert a.press("1").ended
    status(app, a, 120)
    status(app, a, 120)
    # B: says "school", then hangs up there. 45 s.
    b = calls["b"] = dial(app)
    assert "school" in b.say("the school please").steps
    status(app, b, 45)
    # C: 9 (immediate risk), hangs up there. 30 s.
    c = calls["c"] = dial(app)
    assert "urgent" in c.press("9").steps
    status(app, c, 30)
    # D: silent at the main menu until the essentials, then silent at the offer: too many tries.
    d = calls["d"] = dial(app)
    for _ in range(6):
        turn = d.silence()
    assert turn.ended and turn.steps == ["goodbye_trouble"]
    status(app, d, 200)
    # E: removal by voice, then finish, then no thanks: goodbye. 90 s.
    e = calls["e"] = dial(app)
    e.say("how do I get it removed")
    e.press("#")
    assert e.press("2").ended
    status(app, e, 90)
    # F: hangs up at the main menu. 10 s.
    f = calls["f"] = dial(app)
    status(app, f, 10)
    # Two practice calls from the simulator: never counted.
    for name in ("sim1", "sim2"):
        s = calls[name] = dial(app, simulated=True)
        s.press("2")
        s.press("#")
        s.press("1")
        status(app, s, 300)
    return calls


@pytest.fixture
def figures_app(tmp_path, database_url):
    """The calls above, on SQLite and on PostgreSQL."""
    app = make_app(tmp_path, DATABASE_URL=database_url)
    make_calls(app)
    with app.app_context():
        worker.Worker(app).run_once()  # the local sender "sends" the one text asked for
    return app


def test_the_figures_of_a_set_of_calls_are_exact(figures_app):
    with figures_app.app_context():
        data = stats.figures(stats.window_start("7d"))
    today = store.utcnow().date().isoformat()
    assert data["calls"] == 6
    assert data["simulated_calls_left_out"] == 2
    assert len(data["per_day"]) == 7
    assert data["per_day"][-1] == {"day": today, "weekday": store.utcnow().strftime("%a"), "calls": 6}
    assert sum(day["calls"] for day in data["per_day"]) == 6
    assert [(b["key"], b["step"], b["calls"], b["by_key"], b["by_voice"]) for b in data["branches"]] == [
        ("9", "urgent", 1, 1, 0),
        ("1", "steps", 1, 1, 0),
        ("2", "removal", 1, 0, 1),
        ("3", "school", 1, 0, 1),
        ("4", "talk", 0, 0, 0),
    ]
    assert data["branches"][0]["share"] == pytest.approx(1 / 6)
    assert data["endings"] == {"goodbye": 2, "too_many_tries": 1, "hung_up": 3, "other": 0,
                               "not_ended": 0}
    assert sorted((h["step"], h["calls"]) for h in data["hang_up_at"]) == [
        ("main", 1), ("school", 1), ("urgent", 1)]
    assert data["calls_with_too_many_tries"] == 1
    assert data["calls_with_errors"] == 0
    # Offered to A, D (after the essentials) and E; asked for by A; sent by the local sender.
    assert data["texts"] == {"offered": 3, "asked": 1, "sent": 1, "delivered": 0, "failed": 0,
                             "waiting": 0, "opted_out": 0}
    assert data["median_call_seconds"] == 67.5  # 10 30 45 | 90 120 200
    assert data["calls_with_length"] == 6


def test_delivery_and_failure_come_from_the_outbox_statuses(figures_app):
    with figures_app.app_context(), store.begin() as conn:
        conn.execute(sa.update(store.outbox).values(status="delivered"))
        now = store.utcnow()
        base = {"to_hash": "x", "body": "b", "segments": 1, "next_attempt_at": now,
                "created_at": now, "updated_at": now, "simulated": False}
        conn.execute(sa.insert(store.outbox), [
            dict(base, call_key="k1", status="failed"),
            dict(base, call_key="k2", status="undelivered"),
            dict(base, call_key="k3", status="queued"),
            dict(base, call_key="k4", status="opted_out"),
            dict(base, call_key="k5", status="delivered", simulated=True),  # not counted
            dict(base, call_key="k6", status="staged"),  # never asked for: not counted
        ])
    with figures_app.app_context():
        texts = stats.figures(stats.window_start("7d"))["texts"]
    assert texts == {"offered": 3, "asked": 1, "sent": 0, "delivered": 1, "failed": 2,
                     "waiting": 1, "opted_out": 1}


def test_calls_before_the_window_are_left_out(tmp_path):
    app = make_app(tmp_path)
    dial(app)  # today
    with app.app_context():
        events.flush()
        old = events.hour() - timedelta(days=10)
        with store.begin() as conn:
            row = {"at": old, "call_key": "old1", "step": None, "detail": None, "value": None,
                   "simulated": False}
            conn.execute(sa.insert(events.events), [
                dict(row, kind="call_started"),
                dict(row, kind="step", step="main"),
                dict(row, kind="call_ended", detail="completed", value=5),
            ])
        week = stats.figures(stats.window_start("7d"))
        month = stats.figures(stats.window_start("30d"))
    assert week["calls"] == 1 and week["endings"]["not_ended"] == 1
    assert month["calls"] == 2 and month["hang_up_at"] == [{"step": "main", "calls": 1}]
    assert len(month["per_day"]) == 30 and month["median_call_seconds"] == 5


def test_the_window_is_whole_days_or_hours():
    now = store.utcnow().replace(year=2026, month=11, day=26, hour=13, minute=42)
    assert stats.window_start("7d", now).isoformat() == "2026-11-20T00:00:00"
    assert stats.window_start("1d", now).isoformat() == "2026-11-26T00:00:00"
    assert stats.window_start("24h", now).isoformat() == "2026-11-25T14:00:00"
    for bad in ("", "7", "0d", "7w", "-1d", "99999d"):
        with pytest.raises(ValueError):
            stats.window_start(bad, now)


def test_no_number_no_call_sid_and_no_speech_are_kept(tmp_path):
    app = make_app(tmp_path)
    caller = dial(app)
    caller.say("my daughter Jessica sent a photo, what do I do")
    caller.press("#")
    caller.press("1")
    status(app, caller, 61)
    withheld = dial(app, number="anonymous")
    withheld.press("#")
    withheld.press("1")
    withheld.press("07400999888#")
    with app.app_context():
        events.flush()
        with store.read() as conn:
            rows = conn.execute(sa.select(events.events)).all()
    assert rows
    dump = repr([tuple(row) for row in rows])
    for secret in (caller.call_sid, caller.call_sid[2:], withheld.call_sid, "7400123456",
                   "7400999888", "Jessica", "daughter", "photo"):
        assert secret not in dump
    assert {len(row.call_key) for row in rows} == {32}
    assert all(row.at.minute == 0 and row.at.second == 0 for row in rows)  # to the hour
    with app.app_context():  # and not the outbox's key for the call either
        assert store.call_key(caller.call_sid)[:32] not in dump
    assert {row.kind for row in rows} <= set(events.KINDS)


def test_one_calls_events_join_up_and_simulated_calls_are_marked(tmp_path):
    app = make_app(tmp_path)
    real, practice = dial(app), dial(app, simulated=True)
    real.press("3")
    practice.press("3")
    with app.app_context():
        events.flush()
        with store.read() as conn:
            rows = conn.execute(sa.select(events.events).order_by(events.events.c.id)).all()
        real_key = events.event_call_key(real.call_sid)
    mine = [row for row in rows if row.call_key == real_key]
    assert [(row.kind, row.step, row.detail) for row in mine] == [
        ("call_started", None, None), ("step", "welcome", None), ("step", "main", None),
        ("choice", "main", "3"), ("step", "school", None)]
    assert not any(row.simulated for row in mine)
    others = [row for row in rows if row.call_key != real_key]
    assert others and all(row.simulated for row in others)


def test_recording_never_breaks_or_slows_a_call_when_the_database_is_gone(tmp_path, caplog):
    app = make_app(tmp_path)
    with app.app_context(), store.begin() as conn:
        conn.execute(sa.text("DROP TABLE events"))
    caller = dial(app)
    turn = caller.press("1")
    assert turn.status == 200 and "steps" in turn.steps
    writer = events.writer(app)
    writer.flush()
    assert writer.dropped > 0 and not writer.accepting()  # paused after the error
    before = writer.dropped
    started = time.perf_counter()
    turn = caller.press("1")  # while paused: nothing is queued, nothing waits
    assert time.perf_counter() - started < 1.0
    writer.flush()  # the webhook is handed to the writer in batches, off the request thread
    assert turn.status == 200 and writer.dropped > before and writer.queue.empty()
    assert "could not record" in caplog.text


def test_a_failing_hook_is_logged_not_raised(tmp_path, monkeypatch, caplog):
    app = make_app(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(events, "rows_for", broken)
    turn = dial(app)
    assert turn.turns[-1].status == 200 and turn.turns[-1].waiting == "menu"
    events.flush(app)  # the rows are worked out on the writer's thread
    assert "could not record the events" in caplog.text


def test_a_webhook_that_failed_is_counted_as_an_error(tmp_path, monkeypatch):
    app = make_app(tmp_path)
    from ivr.call import engine

    caller = dial(app)
    monkeypatch.setattr(engine, "answer", lambda *a, **k: 1 / 0)
    caller.press("1")
    status(app, caller, 20)
    with app.app_context():
        data = stats.figures(stats.window_start("1d"))
    assert data["calls_with_errors"] == 1 and data["calls"] == 1


def test_the_staff_page_needs_the_staff_login(client):
    response = client.get("/staff/stats")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_the_staff_page_shows_the_figures_with_a_chart_and_tables(figures_app):
    from conftest import staff_log_in

    web = figures_app.test_client()
    staff_log_in(web, figures_app)
    response = web.get("/staff/stats?since=7d")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<svg" in html and 'role="img"' in html and "<title" in html
    assert html.count("<table") >= 4 and '<th scope="col"' in html
    assert re.search(r"<dt>Calls</dt><dd>6</dd>", html)
    assert "67.5" not in html and "1 min 08 s" in html  # the median, rounded for people
    assert "school" in html and "17%" in html
    assert "(2 in this period)" in html
    # No CDN, no inline script or style: the page obeys the staff pages' CSP.
    assert "<script" not in html and "style=" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    css = web.get("/staff/stats/static/stats.css")
    assert css.status_code == 200 and b".columns__bar" in css.data


def test_the_staff_page_explains_a_bad_period(staff_client):
    response = staff_client.get("/staff/stats?since=forever")
    assert response.status_code == 400
    assert "is not a period like 7d" in response.get_data(as_text=True)


def test_ivr_stats_prints_the_figures_and_json(figures_app):
    runner = figures_app.test_cli_runner()
    result = runner.invoke(cli.main, ["stats", "--since", "7d"])
    assert result.exit_code == 0, result.output
    assert "Calls: 6" in result.output and "simulator calls left out: 2" in result.output
    assert re.search(r"3 school\s+1\s+17%\s+by key 0, by voice 1", result.output)
    assert re.search(r"hung up\s+3", result.output)
    assert "offered 3, asked for 1; sent 1, delivered 0" in result.output
    as_json = runner.invoke(cli.main, ["stats", "--since", "7d", "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["calls"] == 6
    bad = runner.invoke(cli.main, ["stats", "--since", "a while"])
    assert bad.exit_code == 2 and "not a period" in bad.output


def test_purge_trims_old_events_and_still_purges_the_outbox(tmp_path):
    app = make_app(tmp_path)
    dial(app).press("1")
    with app.app_context():
        events.flush()
        with store.begin() as conn:
            conn.execute(sa.insert(events.events), [
                {"at": events.hour() - timedelta(days=500), "call_key": "old", "kind": "call_started",
                 "simulated": False}])
            recent = conn.execute(sa.select(sa.func.count()).select_from(events.events)).scalar()
    result = app.test_cli_runner().invoke(cli.main, ["purge", "--older-than", "30d"])
    assert result.exit_code == 0, result.output
    assert ("0 texts, 0 local texts, 0 delivery reports, 0 inbound messages deleted "
            "(older than 30d)") in result.output
    assert "1 anonymous events deleted (older than 400d)" in result.output
    with app.app_context(), store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events.events)).scalar() == recent - 1
    shorter = app.test_cli_runner().invoke(cli.main, ["purge", "--events-older-than", "0d"])
    assert shorter.exit_code == 0 and f"{recent - 1} anonymous events deleted" in shorter.output
    wrong = app.test_cli_runner().invoke(cli.main, ["purge", "--events-older-than", "soon"])
    assert wrong.exit_code == 2


def test_the_writer_drops_rows_rather_than_wait_when_its_queue_is_full(app, monkeypatch):
    writer = events.Writer(app, maxsize=2)
    monkeypatch.setattr(writer, "_ensure_thread", lambda: None)  # nobody drains the queue
    rows = [{"kind": "step"}, {"kind": "step"}]
    started = time.perf_counter()
    for _ in range(5):
        writer.put(rows)
    assert time.perf_counter() - started < 0.1
    assert writer.queue.qsize() == 2 and writer.dropped == 6


# -- figures that train: practice calls included on request ------------------------------------


def test_practice_calls_are_counted_only_when_asked_and_then_marked(figures_app):
    with figures_app.app_context():
        real = stats.figures(stats.window_start("7d"))
        practice = stats.figures(stats.window_start("7d"), practice=True)
    assert (real["calls"], real["practice_included"], real["practice_calls"]) == (6, False, 0)
    assert (practice["calls"], practice["practice_included"], practice["practice_calls"]) == (8, True, 2)
    assert practice["simulated_calls_left_out"] == 0
    removal = {b["key"]: b["calls"] for b in practice["branches"]}["2"]
    assert removal == 3  # E, and the two practice calls
    assert practice["texts"]["asked"] == 3 and practice["texts"]["sent"] == 3


def test_the_staff_page_has_the_practice_switch_and_marks_its_figures(figures_app):
    from conftest import staff_log_in

    web = figures_app.test_client()
    staff_log_in(web, figures_app)
    plain = web.get("/staff/stats?since=7d").get_data(as_text=True)
    assert 'name="practice" value="1"' in plain and "Practice calls included" not in plain
    assert re.search(r"<dt>Calls</dt><dd>6</dd>", plain)
    page = web.get("/staff/stats?since=30d&practice=1").get_data(as_text=True)
    assert re.search(r"<dt>Calls</dt><dd>8</dd>", page)
    assert "<strong>Practice calls included:</strong>" in page
    assert "2 of these 8 calls were practice calls" in page
    assert 'href="/staff/stats?since=7d&amp;practice=1"' in page  # the period keeps the switch
    assert 'name="since" value="30d"' in page and " checked" in page


def test_ivr_stats_practice_says_so(figures_app):
    result = figures_app.test_cli_runner().invoke(cli.main, ["stats", "--practice"])
    assert "Calls: 8" in result.output and "PRACTICE CALLS INCLUDED: 2" in result.output

def test_rows_are_stored_and_read_back_the_same_on_both_databases(tmp_path, database_url):
    # SQLite's rows go through the driver's executemany (ivr/call/events.py: _insert):
    # the hour must compare as SQLAlchemy's own, or the figures would miss events.
    app = make_app(tmp_path, DATABASE_URL=database_url)
    at = events.hour()
    rows = [{"at": at, "call_key": "k" * 32, "kind": "choice", "step": "main", "detail": "1",
             "via": "key", "value": None, "simulated": False},
            {"at": at, "call_key": "k" * 32, "kind": "call_ended", "step": None, "detail": "completed",
             "via": None, "value": 95, "simulated": True}]
    with app.app_context():
        assert events.writer(app).write(rows)
        [real] = events.load(at)
        [simulated] = events.load(at, simulated=True)
        assert events.load(at + timedelta(hours=1)) == [] and events.load(at - timedelta(hours=1))
    assert (real.at, real.kind, real.step, real.detail, real.via, real.value) == (
        at, "choice", "main", "1", "key", None)
    assert (simulated.at, simulated.kind, simulated.value, simulated.simulated) == (
        at, "call_ended", 95, True)
