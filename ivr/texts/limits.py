"""Limits: against SMS pumping (a few texts per number a day, a ceiling per hour for the
line), and the alert when a text is given up after SMS_GIVE_UP_AFTER of failures.

Anyone who can ring the line can ask for a text; these keep a flood of calls
from becoming a flood of paid texts. Both count the outbox rows the callers
said yes to (not keyed-in numbers still unconfirmed, not practice calls), so
they hold across every web process without any state of their own.

When the hourly ceiling is reached, further texts are refused (the caller
hears that the text could not be arranged), a warning is logged, /readyz
lists a warning and /metrics shows calm_line_text_ceiling_reached 1.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from prometheus_client.core import GaugeMetricFamily

from ivr import store

log = logging.getLogger(__name__)

DAY, HOUR = timedelta(days=1), timedelta(hours=1)
_NOT_COUNTED = ("staged", "abandoned")  # never consented to, so never sent


def _counted(since: datetime | sa.BindParameter, table=None):
    table = store.outbox if table is None else table
    # != for each, not NOT IN: an IN list is expanded per execution, which the statements
    # run on the driver's connection (store.PlainConnection) cannot take.
    return sa.and_(table.c.created_at >= since, table.c.simulated == sa.false(),
                   *(table.c.status != status for status in _NOT_COUNTED))


# Built once: they run on the webhook that takes a caller's yes.
_SINCE = sa.select(sa.func.count()).select_from(store.outbox).where(
    _counted(sa.bindparam("since", type_=sa.DateTime)))
_COUNTED = store.outbox.alias("counted")  # counted beside the caller's own row


def texts_last_hour(conn, now: datetime) -> int:
    return conn.execute(_SINCE, {"since": now - HOUR}).scalar() or 0


def today_column(number_hash):
    """Texts to this number in the last day (number_hash: a parameter or the row's column),
    as a column of the caller's statement: the write that takes a yes reads every fact it
    needs in one statement. Its parameter: day_since (count_since gives it)."""
    return (sa.select(sa.func.count()).select_from(_COUNTED)
            .where(_counted(sa.bindparam("day_since", type_=sa.DateTime), _COUNTED),
                   _COUNTED.c.to_hash == number_hash)
            .scalar_subquery().label("today"))


def last_hour_column():
    """The line's texts in the last hour, as a column (its parameter: hour_since)."""
    return (sa.select(sa.func.count()).select_from(_COUNTED)
            .where(_counted(sa.bindparam("hour_since", type_=sa.DateTime), _COUNTED))
            .scalar_subquery().label("last_hour"))


def count_since(now: datetime) -> dict:
    """The parameters of today_column and last_hour_column."""
    return {"day_since": now - DAY, "hour_since": now - HOUR}


def refusal(today: int | None, last_hour: int | None, config=None) -> str | None:
    """Why one more text must be refused (today: this number's texts in the last day,
    last_hour: the line's), or None when it may go."""
    config = config or current_app.config
    per_number = int(config.get("TEXTS_PER_NUMBER_PER_DAY") or 3)
    if (today or 0) >= per_number:
        return f"this number already has {per_number} text(s) today"
    ceiling = int(config.get("TEXTS_PER_HOUR") or 100)
    if (last_hour or 0) >= ceiling:
        log.warning("texts: the ceiling of %d an hour (TEXTS_PER_HOUR) is reached; "
                    "refusing texts until the hour's count falls", ceiling)
        return f"the line's ceiling of {ceiling} texts an hour is reached"
    return None


class CeilingWarning:
    """For /readyz: the ceiling reached (the line works, but texts are being refused)."""

    def column(self, now: datetime, config) -> Any:
        return (sa.select(sa.func.count()).select_from(store.outbox)
                .where(_counted(now - HOUR)).scalar_subquery())

    def warning(self, count: int | None, config) -> str | None:
        ceiling = int(config.get("TEXTS_PER_HOUR") or 100)
        if (count or 0) < ceiling:
            return None
        return (f"texts: {count} in the last hour reached the ceiling of {ceiling} "
                "(TEXTS_PER_HOUR); more are refused")


def _given_up_query(now: datetime):
    table = store.outbox
    return (sa.select(sa.func.count()).select_from(table)
            .where(table.c.gave_up_at >= now - DAY, table.c.simulated == sa.false()))


class GivenUpWarning:
    """For /readyz: texts that failed after trying for SMS_GIVE_UP_AFTER in the last day."""

    def column(self, now: datetime, config) -> Any:
        return _given_up_query(now).scalar_subquery()

    def warning(self, count: int | None, config) -> str | None:
        if not count:
            return None
        hours = float(config.get("SMS_GIVE_UP_AFTER") or 86400) / 3600
        return (f"texts: {count} given up in the last 24 h after failing for {hours:g} h "
                "(SMS_GIVE_UP_AFTER): check Twilio and the worker's log")


class LimitCollector:
    """calm_line_texts_last_hour and calm_line_text_ceiling_reached, read at scrape time."""

    def __init__(self, app):
        self.app = app

    def describe(self):
        return []

    def collect(self):
        try:
            with self.app.app_context(), store.read() as conn:
                now = store.utcnow()
                count = texts_last_hour(conn, now)
                given_up = conn.execute(_given_up_query(now)).scalar() or 0
        except Exception:
            return  # calm_line_database_up already says so
        ceiling = int(self.app.config.get("TEXTS_PER_HOUR") or 100)
        last_hour = GaugeMetricFamily("calm_line_texts_last_hour",
                                      "Texts callers said yes to in the last hour (not practice)")
        last_hour.add_metric([], count)
        reached = GaugeMetricFamily("calm_line_text_ceiling_reached",
                                    "1 when TEXTS_PER_HOUR is reached and texts are refused")
        reached.add_metric([], 1 if count >= ceiling else 0)
        gave_up = GaugeMetricFamily("calm_line_texts_given_up_last_day",
                                    "Texts that failed after SMS_GIVE_UP_AFTER of retries, "
                                    "in the last 24 hours")
        gave_up.add_metric([], given_up)
        yield last_hour
        yield reached
        yield gave_up
