"""A text keeps trying through a Twilio outage of up to a day (SMS_GIVE_UP_AFTER), with the
backoff capped, then fails with a metric and a /readyz warning.

The worker runs against the fake Twilio API failing every request, on a clock of
its own that jumps to each retry (a day is not waited for).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import make_app
from prometheus_client.parser import text_string_to_metric_families
from test_worker import creates, queue, the_row

from ivr import config, store
from ivr.texts import outbox, worker

TOKEN = "metrics-token-0123456789abcdef"
DAY = timedelta(hours=24)
CAP = 1800.0


@pytest.fixture
def app(tmp_path, database_url, twilio_settings):
    # Waits capped at half an hour (not the default five minutes): fewer tries to a day.
    settings = dict(twilio_settings, SMS_RETRY_BASE_SECONDS=2.0, SMS_RETRY_MAX_SECONDS=CAP,
                    METRICS_TOKEN=TOKEN)
    return make_app(tmp_path, DATABASE_URL=database_url, **settings)


def run_through_an_outage(app, fake_twilio, until: timedelta):
    """Send with every request failing (5xx), jumping the clock to each retry, until the
    text fails or `until` has passed. Returns (row, the waits between tries)."""
    fake_twilio.fail_next(100_000)
    with app.app_context():
        queue("CA-outage")
        started = now = store.utcnow()
        sender = worker.Worker(app, clock=lambda: now)
        waits = []
        while now - started <= until:
            sender.run_once()
            row = the_row()
            if row.status != outbox.QUEUED:
                return row, waits
            waits.append((row.next_attempt_at - now).total_seconds())
            now = row.next_attempt_at
        return the_row(), waits


def test_a_text_keeps_trying_for_a_day_with_capped_waits_then_fails(app, fake_twilio):
    row, waits = run_through_an_outage(app, fake_twilio, until=DAY + timedelta(hours=1))
    assert row.status == outbox.FAILED and row.gave_up_at is not None
    assert DAY <= row.gave_up_at - row.released_at <= DAY + timedelta(seconds=CAP)
    assert max(waits) <= CAP  # SMS_RETRY_MAX_SECONDS
    assert len(creates(fake_twilio)) == row.attempts > 40
    assert fake_twilio.messages == []


def test_a_text_is_not_given_up_inside_the_day(app, fake_twilio):
    row, _ = run_through_an_outage(app, fake_twilio, until=DAY - timedelta(minutes=10))
    assert row.status == outbox.QUEUED and row.gave_up_at is None and row.to_number


def test_a_text_given_up_shows_in_metrics_and_readyz(app, fake_twilio):
    web = app.test_client()
    assert web.get("/readyz").get_json()["warnings"] == []
    run_through_an_outage(app, fake_twilio, until=DAY + timedelta(hours=1))
    ready = web.get("/readyz").get_json()
    assert any("given up" in w and "SMS_GIVE_UP_AFTER" in w for w in ready["warnings"])
    page = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    figures = {s.name: s.value for f in text_string_to_metric_families(page.get_data(as_text=True))
               for s in f.samples if not s.labels}
    assert figures["calm_line_texts_given_up_last_day"] == 1


def test_a_shorter_give_up_is_a_setting(tmp_path, database_url, twilio_settings, fake_twilio):
    app = make_app(tmp_path, DATABASE_URL=database_url,
                   **dict(twilio_settings, SMS_GIVE_UP_AFTER=3600.0, SMS_RETRY_BASE_SECONDS=2.0))
    row, _ = run_through_an_outage(app, fake_twilio, until=DAY)
    assert row.status == outbox.FAILED
    assert timedelta(hours=1) <= row.gave_up_at - row.released_at <= timedelta(hours=1, minutes=5)


def test_the_backoff_is_capped_however_many_tries():
    assert worker.backoff(5000, 2.0, 300.0, rand=lambda: 1.0) == 300.0
    assert worker.backoff(1, 2.0, 300.0, rand=lambda: 0.0) == 1.0


@pytest.mark.parametrize(("raw", "seconds"), [("24h", 86400), ("90m", 5400), ("1d", 86400),
                                              ("86400", 86400), ("2.5h", 9000)])
def test_give_up_after_reads_durations(raw, seconds):
    assert config.from_env({"SMS_GIVE_UP_AFTER": raw})["SMS_GIVE_UP_AFTER"] == seconds


def test_the_default_is_a_day_and_nonsense_is_refused(tmp_path):
    assert config.from_env({})["SMS_GIVE_UP_AFTER"] == 86400
    with pytest.raises(config.SettingError, match="SMS_GIVE_UP_AFTER"):
        config.from_env({"SMS_GIVE_UP_AFTER": "forever"})
    with pytest.raises(config.SettingError, match="SMS_GIVE_UP_AFTER"):
        make_app(tmp_path, SMS_GIVE_UP_AFTER=120.0, SMS_RETRY_MAX_SECONDS=300.0)
