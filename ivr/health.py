"""Health checks, both cheap.

GET /healthz: the process is up (and says whether the flow is loaded). Point a
load balancer here: the voice line keeps working through a database outage,
so a web process must not be taken out of service for one.

GET /readyz: for monitoring. 200 when the flow is loaded, the database answers
and the outbox is not backing up (the oldest text due to be sent has waited
less than READY_OUTBOX_MAX_WAIT_SECONDS, default 300); 503 naming what is
wrong otherwise. One indexed query. ``warnings`` lists what needs a look but
does not stop the line (texts refused at the hourly ceiling, texts given up).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_SECONDS = 300.0
# Features add ReadyWarning objects: the line still works, but someone should look
# (texts refused at the hourly ceiling, texts given up). Each adds one column to
# the one query, so /readyz stays one round trip however many there are.
WARNINGS = "calm_line.ready_warnings"


class ReadyWarning(Protocol):
    def column(self, now: datetime, config: Mapping) -> Any:
        """A scalar subquery (SQLAlchemy) read with the backlog."""

    def warning(self, value: Any, config: Mapping) -> str | None:
        """The warning its value means, or None."""


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok", flow="calm_line.flow" in current_app.extensions)


def _max_wait() -> float:
    return float(current_app.config.get("READY_OUTBOX_MAX_WAIT_SECONDS") or DEFAULT_MAX_WAIT_SECONDS)


@bp.get("/readyz")
def readyz():
    from ivr import metrics, store

    checks: dict[str, str] = {}
    warnings: list[str] = []
    outbox: dict[str, float] = {}
    checks["flow"] = "ok" if "calm_line.flow" in current_app.extensions else "not loaded"
    try:
        now = store.utcnow()
        hooks: list[ReadyWarning] = list(current_app.extensions.get(WARNINGS, ()))
        query = metrics._due_query(now).add_columns(
            *(hook.column(now, current_app.config) for hook in hooks))
        with store.read() as conn:
            due, oldest, *values = conn.execute(query).one()
        due = due or 0
        waited = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        found = (hook.warning(value, current_app.config) for hook, value in zip(hooks, values, strict=True))
        warnings = [text for text in found if text]
    except Exception as exc:
        log.warning("readyz: the database did not answer (%s)", type(exc).__name__)
        checks["database"] = f"not answering ({type(exc).__name__})"
        checks["outbox"] = "unknown"
    else:
        checks["database"] = "ok"
        limit = _max_wait()
        outbox = {"due": due, "oldest_due_seconds": round(waited, 1), "limit_seconds": limit}
        checks["outbox"] = ("ok" if waited <= limit
                            else f"backing up: a text has waited {waited:.0f} s (limit {limit:.0f} s)")
    ready = all(value == "ok" for value in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks, outbox=outbox,
                       warnings=warnings)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
