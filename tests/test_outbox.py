"""The outbox the voice webhooks write to: consent, keyed-in numbers, release, opt-outs, privacy."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import make_app, wait_for

from ivr import cli, store
from ivr.texts import body as textbody
from ivr.texts import outbox, worker

MOBILE = "+447400123456"
OTHER_MOBILE = "+447911123456"
LANDLINE = "+442079460123"


@pytest.fixture
def app(tmp_path, database_url):
    return make_app(tmp_path, DATABASE_URL=database_url)


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def rows():
    with store.read() as conn:
        return conn.execute(sa.select(store.outbox).order_by(store.outbox.c.id)).all()


def opt_outs():
    with store.read() as conn:
        return set(conn.execute(sa.select(store.opt_outs.c.number_hash)).scalars())


def send_due(app, **kwargs) -> int:
    return worker.Worker(app, **kwargs).run_once()


# -- consent --


def test_a_yes_from_a_mobile_holds_a_text_for_the_callers_own_number(ctx):
    assert outbox.request_text("CA-yes", MOBILE, ["removal", "talk"]) == "queued"
    [row] = rows()
    assert row.status == outbox.HELD
    assert row.to_number == MOBILE
    assert row.to_hash == store.number_hash(MOBILE)
    assert json.loads(row.branches) == ["removal", "talk"]
    assert row.body == textbody.compose(ctx.extensions["calm_line.flow"], ["removal", "talk"])
    assert row.segments == textbody.segments(row.body)
    assert row.call_key == store.call_key("CA-yes") and "CA-yes" not in row.call_key
    assert not row.simulated


def test_only_steps_of_the_flow_are_kept_as_branches(ctx):
    outbox.request_text("CA-junk", MOBILE, ["talk", "x" * 5000, "urgent", "talk", None])
    [row] = rows()
    assert json.loads(row.branches) == ["talk", "urgent"]


def test_a_national_format_mobile_is_written_in_e164(ctx):
    assert outbox.request_text("CA-nat", "07400 123456", []) == "queued"
    assert rows()[0].to_number == MOBILE


def test_a_held_text_waits_for_the_end_of_the_call(ctx):
    outbox.request_text("CA-wait", MOBILE, ["removal"])
    assert send_due(ctx) == 0
    assert outbox.local_sent() == []
    assert outbox.release_call("CA-wait", "completed") == 1
    assert send_due(ctx) == 1
    [sent] = outbox.local_sent()
    assert sent["body"] == rows()[0].body


@pytest.mark.parametrize("caller", [None, "", "anonymous", "client:anonymous", LANDLINE,
                                    "+44", "not a number", "+4420" + "1" * 40])
def test_withheld_landline_or_junk_numbers_need_a_keyed_in_mobile(ctx, caller):
    assert outbox.request_text("CA-need", caller, ["talk"]) == "need_number"
    assert rows() == []


def test_a_number_that_said_stop_gets_no_text(ctx):
    outbox.opt_out(MOBILE)
    assert outbox.request_text("CA-stopped", MOBILE, ["talk"]) == "opted_out"
    assert rows() == []
    assert outbox.request_text("CA-stopped", MOBILE, ["talk"]) == "opted_out"


def test_a_retried_webhook_never_makes_a_second_text(ctx):
    assert outbox.request_text("CA-retry", MOBILE, ["removal"]) == "queued"
    assert outbox.request_text("CA-retry", MOBILE, ["removal", "urgent"]) == "queued"
    [row] = rows()
    assert json.loads(row.branches) == ["removal"]  # the first answer stands
    outbox.release_call("CA-retry", "completed")
    outbox.release_call("CA-retry", "completed")
    assert outbox.request_text("CA-retry", MOBILE, ["removal"]) == "queued"
    assert send_due(ctx) == 1
    assert len(outbox.local_sent()) == 1


def test_retries_arriving_at_the_same_moment_make_one_text(ctx):
    answers, barrier = [], threading.Barrier(6)

    def ask():
        with ctx.app_context():
            barrier.wait()
            answers.append(outbox.request_text("CA-race", MOBILE, ["talk"]))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["queued"] * 6
    assert len(rows()) == 1


def test_when_the_database_is_down_the_request_raises(ctx):
    ctx.extensions[store.EXTENSION] = store.make_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(sa.exc.OperationalError):
        outbox.request_text("CA-down", MOBILE, ["talk"])


# -- a keyed-in number ------------------------------------------------------------------


def test_a_keyed_in_number_is_read_back_then_confirmed(ctx):
    assert outbox.staged_number("CA-key") is None
    outbox.stage_number("CA-key", OTHER_MOBILE, ["school", "removal"])
    assert outbox.staged_number("CA-key") == OTHER_MOBILE
    assert rows()[0].status == outbox.STAGED
    outbox.release_call("CA-other", "completed")  # another call ending changes nothing
    assert send_due(ctx) == 0  # a staged number is never sent
    assert outbox.confirm_number("CA-key") == "queued"
    assert outbox.confirm_number("CA-key") == "queued"  # a retried webhook
    [row] = rows()
    assert (row.status, row.to_number) == (outbox.HELD, OTHER_MOBILE)
    outbox.release_call("CA-key", "completed")
    assert send_due(ctx) == 1
    assert len(outbox.local_sent("CA-key")) == 1


def test_keying_in_again_replaces_the_staged_number(ctx):
    outbox.stage_number("CA-again", OTHER_MOBILE, ["talk"])
    outbox.stage_number("CA-again", MOBILE, ["talk"])
    assert outbox.staged_number("CA-again") == MOBILE
    assert len(rows()) == 1


def test_a_confirmed_text_is_not_changed_by_a_late_keyed_in_number(ctx):
    outbox.stage_number("CA-late", OTHER_MOBILE, ["talk"])
    outbox.confirm_number("CA-late")
    outbox.stage_number("CA-late", MOBILE, ["talk"])
    [row] = rows()
    assert (row.status, row.to_number) == (outbox.HELD, OTHER_MOBILE)


@pytest.mark.parametrize("upsert", [True, False], ids=["one-upsert", "read-then-write"])
def test_a_number_keyed_in_after_an_abandoned_one_is_kept_and_returned(ctx, monkeypatch,
                                                                        upsert):
    """The one INSERT ... ON CONFLICT statement and the older SQLite's path agree: an
    abandoned row is replaced; a decided one is left as it is. (The flag chooses only
    for SQLite: on PostgreSQL both runs take the upsert.)"""
    monkeypatch.setattr(outbox, "_UPSERT_SQLITE", upsert)
    assert outbox.stage_number("CA-abandon", OTHER_MOBILE, ["talk"]) == OTHER_MOBILE
    outbox.release_call("CA-abandon", "completed")  # never confirmed: abandoned
    assert [(r.status, r.to_number) for r in rows()] == [(outbox.ABANDONED, None)]
    assert outbox.stage_number("CA-abandon", MOBILE, ["talk"]) == MOBILE
    [row] = rows()
    assert (row.status, row.to_number, row.to_hash) == (outbox.STAGED, MOBILE,
                                                        store.number_hash(MOBILE))
    assert outbox.confirm_number("CA-abandon") == "queued"
    # decided: the new number is ignored, and the one kept is what is read back
    assert outbox.stage_number("CA-abandon", OTHER_MOBILE, ["talk"]) == MOBILE
    assert [(r.status, r.to_number) for r in rows()] == [(outbox.HELD, MOBILE)]


def test_a_keyed_in_number_that_said_stop_gets_no_text(ctx):
    outbox.opt_out(OTHER_MOBILE)
    outbox.stage_number("CA-kstop", OTHER_MOBILE, ["talk"])
    assert outbox.confirm_number("CA-kstop") == "opted_out"
    assert outbox.confirm_number("CA-kstop") == "opted_out"
    [row] = rows()
    assert row.status == outbox.OPTED_OUT and row.to_number is None
    outbox.release_call("CA-kstop", "completed")
    assert send_due(ctx) == 0


def test_confirming_with_nothing_keyed_in_raises(ctx):
    with pytest.raises(LookupError):
        outbox.confirm_number("CA-nothing")


def test_a_number_never_confirmed_is_forgotten_when_the_call_ends(ctx):
    outbox.stage_number("CA-hungup", OTHER_MOBILE, ["talk"])
    assert outbox.release_call("CA-hungup", "completed") == 0
    [row] = rows()
    assert (row.status, row.to_number) == (outbox.ABANDONED, None)
    assert outbox.staged_number("CA-hungup") is None
    with pytest.raises(LookupError):
        outbox.confirm_number("CA-hungup")


def test_a_number_never_confirmed_is_forgotten_even_without_a_status_callback(ctx):
    outbox.stage_number("CA-lost", OTHER_MOBILE, ["talk"])
    hold = timedelta(minutes=ctx.config["TEXT_HOLD_MINUTES"])
    send_due(ctx, clock=lambda: store.utcnow() + hold + timedelta(minutes=1))
    [row] = rows()
    assert (row.status, row.to_number) == (outbox.ABANDONED, None)


def test_a_withheld_caller_who_keys_in_a_number_can_still_say_yes_again(ctx):
    assert outbox.request_text("CA-w", "anonymous", ["talk"]) == "need_number"
    outbox.stage_number("CA-w", MOBILE, ["talk"])
    assert outbox.request_text("CA-w", "anonymous", ["talk"]) == "need_number"
    assert outbox.confirm_number("CA-w") == "queued"
    assert outbox.request_text("CA-w", "anonymous", ["talk"]) == "queued"
    assert len(rows()) == 1


# -- release --


@pytest.mark.parametrize("status", ["completed", "busy", "no-answer", "failed", "canceled"])
def test_any_final_call_status_releases_the_text_once(ctx, status):
    outbox.request_text("CA-rel", MOBILE, ["talk"])
    assert outbox.release_call("CA-rel", status) == 1
    assert outbox.release_call("CA-rel", status) == 0
    assert rows()[0].status == outbox.QUEUED


def test_releasing_a_call_that_asked_for_nothing_is_harmless(ctx):
    assert outbox.release_call("CA-none", "completed") == 0
    assert rows() == []


def test_the_safety_net_sends_a_text_whose_call_never_reported_its_end(ctx):
    outbox.request_text("CA-net", MOBILE, ["talk"])
    hold = timedelta(minutes=ctx.config["TEXT_HOLD_MINUTES"])
    assert send_due(ctx, clock=lambda: store.utcnow() + hold - timedelta(minutes=1)) == 0
    assert send_due(ctx, clock=lambda: store.utcnow() + hold + timedelta(seconds=1)) == 1
    assert len(outbox.local_sent()) == 1
    assert outbox.release_call("CA-net", "completed") == 0  # the late callback: nothing more


def test_the_hold_time_is_a_setting(tmp_path, database_url):
    app = make_app(tmp_path, DATABASE_URL=database_url, TEXT_HOLD_MINUTES=0)
    with app.app_context():
        outbox.request_text("CA-zero", MOBILE, ["talk"])
        assert send_due(app) == 1


# -- the simulator's texts ------------------------------------------------------------------


def test_simulated_texts_never_reach_twilio_even_with_an_account(tmp_path, database_url,
                                                                  fake_twilio, twilio_settings):
    app = make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)
    with app.app_context():
        assert outbox.request_text("CA-sim", MOBILE, ["urgent"], simulated=True) == "queued"
        assert outbox.release_call("CA-sim", "completed") == 1
        [sent] = outbox.local_sent("CA-sim")  # at once: no worker needed
        assert sent["simulated"] is True
        assert sent["to"] == "+44*******456"
        assert sent["body"] == textbody.compose(app.extensions["calm_line.flow"], ["urgent"])
        assert sent["segments"] == textbody.segments(sent["body"])
        assert outbox.release_call("CA-sim", "completed") == 0
        # The safety net path goes through the worker: still never to Twilio.
        outbox.stage_number("CA-sim2", OTHER_MOBILE, ["talk"], simulated=True)
        outbox.confirm_number("CA-sim2")
        hold = timedelta(minutes=app.config["TEXT_HOLD_MINUTES"])
        assert send_due(app, clock=lambda: store.utcnow() + hold * 2) == 1
        assert len(outbox.local_sent("CA-sim2")) == 1
        assert len(outbox.local_sent()) == 2
    assert fake_twilio.requests == []


def test_local_sent_lists_newest_first_and_filters_by_call(ctx):
    for call in ("CA-a", "CA-b"):
        outbox.request_text(call, MOBILE, ["talk"], simulated=True)
        outbox.release_call(call, "completed")
    assert len(outbox.local_sent()) == 2
    assert len(outbox.local_sent("CA-a")) == 1
    assert outbox.local_sent("CA-unknown") == []
    assert set(outbox.local_sent()[0]) == {"to", "body", "segments", "created", "simulated"}


def test_the_local_run_sends_texts_from_a_thread_of_the_web_process(tmp_path, database_url):
    app = make_app(tmp_path, DATABASE_URL=database_url, LOCAL_WORKER=True)
    background = app.extensions[outbox.WORKER_EXTENSION]
    try:
        with app.app_context():
            outbox.request_text("CA-local", MOBILE, ["talk"])
            outbox.release_call("CA-local", "completed")
            wait_for(lambda: rows()[0].status == outbox.SENT, "the local sender thread")
            assert len(outbox.local_sent("CA-local")) == 1
            assert rows()[0].status == outbox.SENT
    finally:
        background.stop()
    assert not background.thread.is_alive()


def test_tests_and_twilio_accounts_get_no_background_thread(tmp_path, twilio_settings):
    assert outbox.WORKER_EXTENSION not in make_app(tmp_path / "a").extensions
    with_twilio = make_app(tmp_path / "b", LOCAL_WORKER=True, **twilio_settings)
    assert outbox.WORKER_EXTENSION not in with_twilio.extensions


# -- STOP and privacy --


def test_stop_cancels_texts_still_waiting_for_that_number(ctx):
    outbox.request_text("CA-s1", MOBILE, ["talk"])
    outbox.request_text("CA-s2", MOBILE, ["talk"])
    outbox.release_call("CA-s2", "completed")
    outbox.request_text("CA-s3", OTHER_MOBILE, ["talk"])
    assert outbox.opt_out(MOBILE) == 2
    assert outbox.opt_out(MOBILE) == 0  # a repeated STOP
    assert [(r.status, r.to_number) for r in rows()] == [
        (outbox.OPTED_OUT, None), (outbox.OPTED_OUT, None), (outbox.HELD, OTHER_MOBILE)]
    assert opt_outs() == {store.number_hash(MOBILE)}
    assert outbox.number_opted_out(MOBILE)
    assert outbox.opt_in(MOBILE)
    assert not outbox.number_opted_out(MOBILE)
    assert outbox.request_text("CA-s4", MOBILE, ["talk"]) == "queued"


def test_a_number_is_wiped_once_its_text_is_done_but_stop_still_matches(ctx):
    outbox.request_text("CA-p", MOBILE, ["talk"])
    outbox.release_call("CA-p", "completed")
    send_due(ctx)
    [row] = rows()
    assert row.status == outbox.SENT
    assert row.to_number is None
    assert row.to_hash == store.number_hash(MOBILE)
    with store.read() as conn:
        dump = repr([conn.execute(sa.select(table)).all()
                     for table in (store.outbox, store.local_texts)])
    assert "7400123456" not in dump and "07400" not in dump
    outbox.opt_out(MOBILE)
    assert outbox.request_text("CA-p2", MOBILE, ["talk"]) == "opted_out"


def test_no_log_line_holds_a_whole_number(ctx, caplog):
    caplog.set_level("DEBUG")
    outbox.request_text("CA-log", MOBILE, ["talk"])
    outbox.request_text("CA-log2", LANDLINE, ["talk"])
    outbox.stage_number("CA-log2", OTHER_MOBILE, ["talk"])
    outbox.confirm_number("CA-log2")
    outbox.release_call("CA-log", "completed")
    outbox.release_call("CA-log2", "completed")
    send_due(ctx)
    outbox.opt_out(MOBILE)
    assert caplog.records
    for number in (MOBILE, OTHER_MOBILE, LANDLINE):
        assert number[3:] not in caplog.text
    assert "CA-log" not in caplog.text


# -- purge --


def test_purge_deletes_old_finished_rows_and_keeps_waiting_texts_and_opt_outs(ctx):
    outbox.request_text("CA-old", MOBILE, ["talk"], simulated=True)
    outbox.release_call("CA-old", "completed")  # sent to the local record
    outbox.request_text("CA-waiting", OTHER_MOBILE, ["talk"])
    outbox.opt_out(LANDLINE)
    assert outbox.purge(timedelta(days=30)) == {"texts": 0, "local_texts": 0,
                                                "delivery_reports": 0, "inbound_messages": 0}
    later = store.utcnow() + timedelta(days=31)
    assert outbox.purge(timedelta(days=30), now=later) == {"texts": 1, "local_texts": 1,
                                                           "delivery_reports": 0,
                                                           "inbound_messages": 0}
    [row] = rows()
    assert row.status == outbox.HELD
    assert opt_outs() == {store.number_hash(LANDLINE)}


def test_the_purge_command(ctx):
    outbox.request_text("CA-cmd", MOBILE, ["talk"], simulated=True)
    outbox.release_call("CA-cmd", "completed")
    runner = ctx.test_cli_runner()
    result = runner.invoke(cli.main, ["purge", "--older-than", "30d"])
    assert result.exit_code == 0, result.output
    assert "0 texts" in result.output and len(rows()) == 1
    result = runner.invoke(cli.main, ["purge", "--older-than", "0m"])
    assert result.exit_code == 0, result.output
    assert "1 texts" in result.output and rows() == []
    result = runner.invoke(cli.main, ["purge", "--older-than", "a month"])
    assert result.exit_code == 2
    assert "30d" in result.output


@pytest.mark.parametrize(("text", "expected"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
    (" 7d ", timedelta(days=7)),
])
def test_parse_age(text, expected):
    assert outbox.parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "1w", "1.5d"])
def test_parse_age_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError):
        outbox.parse_age(text)
