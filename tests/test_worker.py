"""The worker against the fake Twilio API: once each, retries, final errors, rate, parallel workers."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from conftest import AUTH_TOKEN, FROM_NUMBER, make_app
from twilio.base.exceptions import TwilioRestException

from ivr import cli, store
from ivr.texts import body as textbody
from ivr.texts import outbox, sender, worker

MOBILE = "+447400123456"
MESSAGES = "/2010-04-01/Accounts/{}/Messages.json"


def mobile(i: int) -> str:
    return f"+4474001230{i:02d}"


@pytest.fixture
def app(tmp_path, database_url, twilio_settings):
    return make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def queue(call_sid: str, number: str = MOBILE, branches=("talk", "removal")) -> None:
    assert outbox.request_text(call_sid, number, list(branches)) == "queued"
    assert outbox.release_call(call_sid, "completed") == 1


def the_row():
    with store.read() as conn:
        [row] = conn.execute(sa.select(store.outbox)).all()
    return row


def creates(fake) -> list:
    """Requests that tried to create a message."""
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/Messages.json")]


# -- sending --


def test_a_due_text_is_sent_once_with_the_links_and_a_status_callback(ctx, fake_twilio):
    queue("CA-1")
    assert worker.Worker(ctx).run_once() == 1
    assert worker.Worker(ctx).run_once() == 0
    [request] = creates(fake_twilio)
    assert request.path == MESSAGES.format(fake_twilio.account_sid)
    assert request.auth_ok
    assert request.form["To"] == MOBILE
    assert request.form["From"] == FROM_NUMBER
    assert request.form["StatusCallback"] == "http://localhost/sms/status"
    assert request.form["Body"] == textbody.compose(ctx.extensions["calm_line.flow"],
                                                    ["removal", "talk"])
    assert "0808 800 5000" in request.form["Body"]
    [message] = fake_twilio.messages
    row = the_row()
    assert row.status == outbox.ACCEPTED
    assert row.message_sid == message["sid"]
    assert row.segments == int(message["num_segments"])
    assert row.attempts == 1
    assert row.to_number is None  # Twilio has it now; we never send it again


def test_a_messaging_service_is_used_instead_of_a_from_number(tmp_path, twilio_settings,
                                                              fake_twilio):
    sid = "MG" + "1" * 32
    app = make_app(tmp_path, **dict(twilio_settings, TWILIO_FROM_NUMBER=None,
                                    TWILIO_MESSAGING_SERVICE_SID=sid, PUBLIC_BASE_URL=None))
    with app.app_context():
        queue("CA-mg")
        worker.Worker(app).run_once()
    [request] = creates(fake_twilio)
    assert request.form["MessagingServiceSid"] == sid
    assert "From" not in request.form
    assert "StatusCallback" not in request.form  # no public address to call back


def test_without_an_account_texts_go_to_the_local_record(tmp_path, database_url, fake_twilio):
    app = make_app(tmp_path, DATABASE_URL=database_url)
    with app.app_context():
        assert isinstance(app.extensions[sender.EXTENSION], sender.LocalSender)
        queue("CA-local")
        assert worker.Worker(app).run_once() == 1
        [sent] = outbox.local_sent("CA-local")
        assert "nspcc.org.uk" in sent["body"]
        assert the_row().status == outbox.SENT
    assert fake_twilio.requests == []


def test_the_worker_command_drains_and_exits(ctx, fake_twilio):
    queue("CA-cmd1", mobile(1))
    queue("CA-cmd2", mobile(2))
    result = ctx.test_cli_runner().invoke(cli.main, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "2 text(s) tried" in result.output
    assert sorted(m["to"] for m in fake_twilio.messages) == [mobile(1), mobile(2)]


# -- retries --


@pytest.mark.parametrize("trouble", ["5xx", "503", "429", "dropped"])
def test_twilio_failing_n_times_then_the_text_goes_exactly_once(ctx, fake_twilio, trouble):
    failures = 3
    if trouble == "5xx":
        fake_twilio.fail_next(failures)
    elif trouble == "503":
        fake_twilio.fail_next(failures, status=503, code=20503)
    elif trouble == "429":
        fake_twilio.rate_limit_next(failures)
    else:
        fake_twilio.drop_next(failures)
    queue("CA-retry")
    worker.Worker(ctx).run_once()  # SMS_RETRY_BASE_SECONDS=0: each retry is due at once
    assert len(creates(fake_twilio)) == failures + 1
    assert len(fake_twilio.messages) == 1
    row = the_row()
    assert (row.status, row.attempts) == (outbox.ACCEPTED, failures + 1)
    assert row.message_sid == fake_twilio.messages[0]["sid"]


def test_a_retry_waits_for_its_backoff(tmp_path, database_url, twilio_settings, fake_twilio):
    app = make_app(tmp_path, DATABASE_URL=database_url,
                   **dict(twilio_settings, SMS_RETRY_BASE_SECONDS=60))
    with app.app_context():
        fake_twilio.fail_next(1)
        queue("CA-backoff")
        assert worker.Worker(app).run_once() == 1
        row = the_row()
        assert (row.status, row.attempts, row.error_code) == (outbox.QUEUED, 1, 20500)
        assert row.to_number == MOBILE  # still needed for the retry
        assert row.next_attempt_at > row.updated_at + timedelta(seconds=29)
        assert worker.Worker(app).run_once() == 0  # not due yet
        assert len(creates(fake_twilio)) == 1
        later = worker.Worker(app, clock=lambda: store.utcnow() + timedelta(minutes=2))
        assert later.run_once() == 1
        assert the_row().status == outbox.ACCEPTED
    assert len(fake_twilio.messages) == 1


def test_retries_stop_after_the_limit(tmp_path, database_url, twilio_settings, fake_twilio):
    app = make_app(tmp_path, DATABASE_URL=database_url,
                   **dict(twilio_settings, SMS_MAX_ATTEMPTS=3))
    fake_twilio.fail_next(10)
    with app.app_context():
        queue("CA-limit")
        worker.Worker(app).run_once()
        row = the_row()
    assert len(creates(fake_twilio)) == 3
    assert (row.status, row.attempts, row.to_number) == (outbox.FAILED, 3, None)
    assert fake_twilio.messages == []


@pytest.mark.parametrize("code", [21211, 21614, 21602, 21603, 21604])
def test_a_4xx_refusal_is_final_without_retry(ctx, fake_twilio, code):
    fake_twilio.fail_next(1, status=400, code=code)
    queue("CA-400")
    worker.Worker(ctx).run_once()
    assert len(creates(fake_twilio)) == 1
    row = the_row()
    assert (row.status, row.error_code, row.to_number) == (outbox.FAILED, code, None)
    assert not outbox.number_opted_out(MOBILE)


def test_wrong_credentials_are_final_and_say_what_to_check(tmp_path, database_url,
                                                           twilio_settings, fake_twilio, caplog):
    fake_twilio.auth_token = "not-the-apps-token"
    app = make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)
    with app.app_context():
        queue("CA-401")
        worker.Worker(app).run_once()
        row = the_row()
    assert len(creates(fake_twilio)) == 1
    assert (row.status, row.error_code) == (outbox.FAILED, 20003)
    assert "TWILIO_AUTH_TOKEN" in caplog.text
    assert fake_twilio.auth_token != AUTH_TOKEN


def test_21610_opts_the_number_out_without_retry(ctx, fake_twilio):
    fake_twilio.reject_number(MOBILE, 21610)
    queue("CA-unsub")
    worker.Worker(ctx).run_once()
    assert len(creates(fake_twilio)) == 1
    row = the_row()
    assert (row.status, row.error_code, row.to_number) == (outbox.OPTED_OUT, 21610, None)
    assert outbox.number_opted_out(MOBILE)
    assert outbox.request_text("CA-unsub-2", MOBILE, ["talk"]) == "opted_out"


def test_an_opt_out_is_checked_again_at_send_time(ctx, fake_twilio):
    queue("CA-late-stop")
    with store.begin() as conn:  # as if STOP landed between queueing and sending
        conn.execute(sa.insert(store.opt_outs).values(
            number_hash=store.number_hash(MOBILE), source="sms", created_at=store.utcnow()))
    worker.Worker(ctx).run_once()
    assert fake_twilio.requests == []
    row = the_row()
    assert (row.status, row.to_number) == (outbox.OPTED_OUT, None)


def test_a_database_hiccup_after_twilio_took_the_text_does_not_send_it_twice(ctx, fake_twilio,
                                                                            monkeypatch):
    queue("CA-hiccup")
    real_begin, failures = store.begin, {"left": 0}

    @contextmanager
    def flaky_begin():
        if failures["left"]:
            failures["left"] -= 1
            raise sa.exc.OperationalError("UPDATE outbox", {}, Exception("connection lost"))
        with real_begin() as conn:
            yield conn

    monkeypatch.setattr(store, "begin", flaky_begin)
    twilio = sender.TwilioSender(ctx.config)

    class DatabaseDropsAfterSending:
        kind = "twilio"

        def send(self, *args, **kwargs):
            result = twilio.send(*args, **kwargs)
            failures["left"] = 3
            return result

    sleeps = []
    one = worker.Worker(ctx, sender=DatabaseDropsAfterSending(), sleep=sleeps.append)
    assert one.run_once() == 1
    assert len(sleeps) == 3 and failures["left"] == 0
    assert the_row().status == outbox.ACCEPTED
    after_any_lease = store.utcnow() + timedelta(hours=1)
    assert worker.Worker(ctx, clock=lambda: after_any_lease).run_once() == 0
    assert len(fake_twilio.messages) == 1


@pytest.mark.parametrize(("error", "retryable", "opted_out"), [
    (TwilioRestException(500, "u", code=20500), True, False),
    (TwilioRestException(503, "u"), True, False),
    (TwilioRestException(429, "u", code=20429), True, False),
    (TwilioRestException(400, "u", code=21211), False, False),
    (TwilioRestException(400, "u", code=21610), False, True),
    (TwilioRestException(401, "u", code=20003), False, False),
    (requests.exceptions.ConnectTimeout(), True, False),
    (requests.exceptions.ReadTimeout(), True, False),
    (requests.exceptions.ConnectionError(), True, False),
])
def test_errors_are_sorted_into_retry_or_not(error, retryable, opted_out):
    sorted_error = sender.classify(error)
    assert (sorted_error.retryable, sorted_error.opted_out) == (retryable, opted_out)


# -- backoff and rate --


def test_backoff_doubles_with_jitter_up_to_a_cap():
    assert worker.backoff(1, 2, 300, rand=lambda: 0.0) == 1
    assert worker.backoff(1, 2, 300, rand=lambda: 1.0) == 2
    assert [worker.backoff(n, 2, 300, rand=lambda: 1.0) for n in range(1, 6)] == [2, 4, 8, 16, 32]
    assert worker.backoff(20, 2, 300, rand=lambda: 1.0) == 300
    assert worker.backoff(20, 2, 300, rand=lambda: 0.0) == 150
    assert worker.backoff(3, 2, 300, rand=lambda: 0.5) == 6
    assert worker.backoff(3, 0, 300) == 0


class FakeClock:
    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_rate_limiter_spaces_sends_evenly():
    clock = FakeClock()
    limiter = worker.RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.wait()
    assert clock.sleeps == [0.5, 0.5]
    clock.now += 10  # a quiet spell: no wait
    limiter.wait()
    assert clock.sleeps == [0.5, 0.5]


def test_the_worker_sends_to_twilio_no_faster_than_the_rate(ctx, fake_twilio):
    clock = FakeClock()
    limiter = worker.RateLimiter(1.0, clock=clock, sleep=clock.sleep)
    for i in range(3):
        queue(f"CA-rate{i}", mobile(i))
    assert worker.Worker(ctx, limiter=limiter).run_once() == 3
    assert clock.sleeps == [1.0, 1.0]
    assert len(fake_twilio.messages) == 3


def test_the_default_rate_is_one_text_a_second(tmp_path, fake_twilio, twilio_settings):
    settings = dict(twilio_settings)
    settings.pop("SMS_RATE_PER_SECOND")
    app = make_app(tmp_path, **settings)
    assert worker.Worker(app).limiter.interval == 1.0


# -- claims --


def test_a_claim_is_taken_by_one_worker_only(ctx):
    queue("CA-claim")
    first, second = worker.Worker(ctx), worker.Worker(ctx)
    row = first.claim()
    assert row is not None and row.status == outbox.SENDING
    assert second.claim() is None


def test_a_claim_whose_worker_died_is_taken_again_after_its_lease(ctx, fake_twilio):
    queue("CA-lease")
    dead = worker.Worker(ctx)
    stale = dead.claim()  # ... and the process dies before sending
    assert worker.Worker(ctx).run_once() == 0  # the lease still holds
    after_lease = store.utcnow() + timedelta(minutes=10)
    assert worker.Worker(ctx, clock=lambda: after_lease).run_once() == 1
    assert len(fake_twilio.messages) == 1
    # The old claim can no longer store a result over the new one.
    assert dead._finish(stale, status=outbox.FAILED) is False
    assert the_row().status == outbox.ACCEPTED


def test_parallel_workers_send_every_text_exactly_once(tmp_path, database_url, twilio_settings,
                                                       fake_twilio):
    app = make_app(tmp_path, DATABASE_URL=database_url, **twilio_settings)
    count = 30
    with app.app_context():
        for i in range(count):
            queue(f"CA-par{i}", mobile(i))
    fake_twilio.set_latency(0.005)  # keep each send open long enough to overlap
    fake_twilio.fail_next(5)  # and make some of them come round again
    barrier, errors, tried = threading.Barrier(4), [], []

    def run():
        with app.app_context():
            # Each worker process has its own Twilio client.
            one = worker.Worker(app, sender=sender.TwilioSender(app.config))
            barrier.wait()
            try:
                tried.append(one.run_once())
            except Exception as exc:  # pragma: no cover - the failure we look for
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(tried) == count + 5
    sent_to = sorted(m["to"] for m in fake_twilio.messages)
    assert sent_to == sorted(mobile(i) for i in range(count))
    assert sum(1 for t in tried if t) >= 2, tried  # the work really was shared
    with app.app_context(), store.read() as conn:
        statuses = conn.execute(sa.select(store.outbox.c.status)).scalars().all()
    assert statuses == [outbox.ACCEPTED] * count


@pytest.mark.postgres
def test_on_postgres_the_claim_skips_locked_rows(tmp_path, postgres_url, twilio_settings):
    """A row locked by another transaction is skipped, not waited for."""
    app = make_app(tmp_path, DATABASE_URL=postgres_url, **twilio_settings)
    with app.app_context():
        queue("CA-lock1", mobile(1))
        queue("CA-lock2", mobile(2))
        with store.engine().connect() as other:
            locked = other.begin()
            first = other.execute(sa.select(store.outbox.c.id).order_by(store.outbox.c.id)
                                  .limit(1).with_for_update()).scalar()
            row = worker.Worker(app).claim()  # would block here without SKIP LOCKED
            assert row is not None and row.id != first
            locked.rollback()
