"""A text too long for TEXT_MAX_SEGMENTS goes as two: in order, each exactly once (issue 14)."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from conftest import make_app
from test_worker import MOBILE, creates, mobile, queue, the_row

from ivr import store
from ivr.texts import body as textbody
from ivr.texts import outbox, sender, worker

EVERY_BRANCH = ("urgent", "steps", "steps_more", "removal", "removal_more", "talk")


@pytest.fixture
def ctx(tmp_path, database_url, twilio_settings):
    """An app that sends through the fake Twilio, on SQLite and PostgreSQL, in its context."""
    app = make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)
    with app.app_context():
        yield app


def parts_for(app, branches=EVERY_BRANCH) -> list[str]:
    parts = textbody.compose_parts(app.extensions["calm_line.flow"], sorted(branches))
    assert len(parts) == 2  # the shipped words need two texts for every branch
    return parts


def test_a_long_text_goes_as_two_texts_in_order_once_each(ctx, fake_twilio):
    queue("CA-two", branches=EVERY_BRANCH)
    row = the_row()
    assert row.segments == sum(textbody.segments(p) for p in parts_for(ctx))
    worker.Worker(ctx).run_once()
    assert worker.Worker(ctx).run_once() == 0
    assert [r.form["Body"] for r in creates(fake_twilio)] == parts_for(ctx)
    row = the_row()
    assert (row.status, row.parts_sent, row.to_number) == (outbox.ACCEPTED, 1, None)
    assert row.message_sid == fake_twilio.messages[-1]["sid"]


def test_a_failure_on_the_second_part_never_sends_the_first_again(ctx, fake_twilio):
    queue("CA-two-fail", branches=EVERY_BRANCH)
    assert worker.Worker(ctx).run_once(limit=1) == 1  # the first part only
    assert the_row().status == outbox.QUEUED and the_row().parts_sent == 1
    fake_twilio.fail_next(2)
    worker.Worker(ctx).run_once()
    bodies = [m["body"] for m in fake_twilio.messages]
    assert bodies == parts_for(ctx)
    assert len(creates(fake_twilio)) == 4  # part 1, two failures, part 2
    assert the_row().status == outbox.ACCEPTED


def test_stop_between_the_parts_stops_the_second(ctx, fake_twilio):
    queue("CA-two-stop", branches=EVERY_BRANCH)
    worker.Worker(ctx).run_once(limit=1)
    outbox.opt_out(MOBILE)
    worker.Worker(ctx).run_once()
    assert [m["body"] for m in fake_twilio.messages] == parts_for(ctx)[:1]
    assert the_row().status == outbox.OPTED_OUT


def test_a_short_text_is_still_one_text(ctx, fake_twilio):
    queue("CA-one", branches=("talk",))
    worker.Worker(ctx).run_once()
    [message] = fake_twilio.messages
    assert "(1/" not in message["body"] and "0800 1111" in message["body"]
    assert the_row().parts is None


def test_a_practice_call_records_both_parts_in_order(ctx):
    assert outbox.request_text("CA-sim", MOBILE, list(EVERY_BRANCH), simulated=True) == "queued"
    outbox.release_call("CA-sim", "completed")
    recorded = [text["body"] for text in reversed(outbox.local_sent("CA-sim"))]
    assert recorded == parts_for(ctx)


def test_parallel_workers_send_each_part_once_and_in_order(tmp_path, database_url,
                                                          twilio_settings, fake_twilio):
    app = make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)
    count = 8
    with app.app_context():
        for i in range(count):
            queue(f"CA-ppar{i}", mobile(i), branches=EVERY_BRANCH)
        parts = parts_for(app)
    fake_twilio.set_latency(0.005)
    fake_twilio.fail_next(3)
    barrier, errors = threading.Barrier(3), []

    def run():
        with app.app_context():
            one = worker.Worker(app, sender=sender.TwilioSender(app.config))
            barrier.wait()
            try:
                one.run_once()
            except Exception as exc:  # pragma: no cover - the failure we look for
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for i in range(count):
        assert [m["body"] for m in fake_twilio.messages if m["to"] == mobile(i)] == parts
    with app.app_context(), store.read() as conn:
        statuses = conn.execute(sa.select(store.outbox.c.status)).scalars().all()
    assert statuses == [outbox.ACCEPTED] * count


def test_a_whole_call_texts_every_number_it_heard(app, call):
    caller = call()
    for key in ("9", "4", "#", "1"):  # urgent (101), talk (Childline, the NSPCC), a text
        turn = caller.press(key)
    assert turn.steps[-1] == "text_queued"
    caller.hang_up()
    with app.app_context():
        worker.Worker(app).run_once()
        bodies = [text["body"] for text in reversed(outbox.local_sent(caller.call_sid))]
    text = "\n".join(bodies)
    flow = app.extensions["calm_line.flow"]
    for name in ("police", "childline", "nspcc", "emergency"):
        assert flow.numbers[name] in text, name
    ceop = flow.links["ceop"]
    assert f"{ceop.label}:\n{ceop.url}" in text


def test_a_practice_call_shows_both_texts_in_order(runner):
    from ivr.staff.simulator.cli import simulate

    # what to do now, down to where to find more help (its links), the NSPCC, 999, then
    # an image removed and the other ways: enough links for a text in two parts
    result = runner.invoke(simulate, ["--keys", "1,1,1,4,9,0,2,1,#,1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Sent as 2 texts, in this order." in result.output
    body = [line[4:] for line in result.output.splitlines() if line.startswith("  | ")]
    first = next(i for i, line in enumerate(body) if line.endswith("(1/2)"))
    second = next(i for i, line in enumerate(body) if line.endswith("(2/2)"))
    assert first < second and "Reply STOP to stop texts." in body[second:]
