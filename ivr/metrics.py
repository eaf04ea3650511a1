"""GET /metrics: the line for a monitoring system, in Prometheus' text format.

    calm_line_webhook_seconds{webhook}              how long each webhook took (histogram)
    calm_line_webhook_requests_total{webhook,step}  webhooks answered, by step (a counter: one
                                                    series per step, not one per step and bucket)
    calm_line_webhook_errors_total{webhook,kind}    server_error (5xx), safety_message (a voice
                                                    step failed and read the safety words),
                                                    bad_signature (403), fallback_used
    calm_line_texts{status}                         texts in the outbox by status (not simulated)
    calm_line_outbox_due                            texts due to be sent now
    calm_line_outbox_oldest_due_seconds             how long the oldest due text has waited
    calm_line_database_up                           1 if the database answered this scrape
    calm_line_flow_loaded                           1 if the call flow is loaded
    calm_line_events_dropped_total                  anonymous events this process could not keep

Each app has its own CollectorRegistry (tests make many apps). With several
gunicorn workers, set PROMETHEUS_MULTIPROC_DIR (an empty folder, wiped at
each start) and the webhook histograms and counters of every worker are
added up, whichever worker answers the scrape.

Off the request path: one after-request hook appends one tuple (``Noted``:
references and numbers, nothing worked out) to a deque, timed from the
request object's making (``ivr.security.WebhookRequest``: no before-request hook); they
are added to the histograms and counters by the webhook that notes the FOLD_EVERY-th, or
by a timer thread within FOLD_SECONDS when fewer come (and a scrape adds this process's
first) and hands each batch to the features that
read it (``READERS``: the anonymous events), so another process's newest values can
be that much late on a scrape.

Who may read it: staff who are logged in, or a request with
``Authorization: Bearer <METRICS_TOKEN>``. Everyone else gets 401.
"""
from __future__ import annotations

import atexit
import bisect
import collections
import hmac
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import NamedTuple

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ivr import store
from ivr.call import events

log = logging.getLogger(__name__)

EXTENSION = "calm_line.metrics"
# How a webhook answered before Flask is noted (ivr.call.answers looks it up here rather
# than importing this module, which imports the call's events: imports run one way).
NOTE_SENT = "calm_line.note_sent"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
WEBHOOK_BLUEPRINTS = frozenset({"voice", "sms"})
FOLD_SECONDS = 0.25  # noted webhooks reach the histograms within this
# Under load the fold runs on the webhook that notes the FOLD_EVERY-th, not on the timer's
# thread: a thread working through a batch took the GIL from the webhooks' threads at every
# switch interval while they waited at each socket write (BENCHMARKS.md); a few dozen
# webhooks folded by one of them cost it about a hundred microseconds, and nobody waits.
FOLD_EVERY = 64
OUTBOX_STATUSES = ("staged", "held", "queued", "sending", "accepted", "sent", "delivered",
                   "undelivered", "failed", "opted_out", "abandoned")
DUE_STATUSES = ("held", "queued")

READERS = "calm_line.webhook_readers"  # features that want every noted webhook, in batches
COLLECTORS = "calm_line.collectors"  # features add their collectors here before init_app
STAFF_CHECK = "calm_line.staff_logged_in"  # set by ivr.staff.login.init_app
bp = Blueprint("metrics", __name__)


# -- what the database says, at scrape time -------------------------------------------------


def _due_query(now):
    table = store.outbox
    due = sa.and_(table.c.status.in_(DUE_STATUSES), table.c.next_attempt_at <= now)
    return sa.select(sa.func.count(), sa.func.min(table.c.next_attempt_at)).where(due)


def backlog(conn, now) -> tuple[int, float]:
    """(texts due now, seconds the oldest of them has waited): one indexed query."""
    count, oldest = conn.execute(_due_query(now)).one()
    wait = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return count or 0, wait


def outbox_state(now=None) -> dict:
    """Texts by status (not simulated), and the due texts: how many, the oldest's wait (s)."""
    now = now or store.utcnow()
    table = store.outbox
    with store.read() as conn:
        by_status = dict(conn.execute(
            sa.select(table.c.status, sa.func.count())
            .where(table.c.simulated == sa.false()).group_by(table.c.status)).all())
        count, wait = backlog(conn, now)
    return {"by_status": by_status, "due": count, "oldest_due_seconds": wait}


class LineCollector:
    """Figures read when Prometheus scrapes: the outbox, the database, the flow, events."""

    def __init__(self, app):
        self.app = app

    def describe(self):
        return []  # collected live: nothing to describe ahead

    def collect(self):
        up = GaugeMetricFamily("calm_line_database_up", "1 if the database answered this scrape")
        texts = GaugeMetricFamily("calm_line_texts", "Texts in the outbox by status (simulator "
                                  "texts left out)", labels=["status"])
        due = GaugeMetricFamily("calm_line_outbox_due", "Texts due to be sent now")
        oldest = GaugeMetricFamily("calm_line_outbox_oldest_due_seconds",
                                   "How long the oldest due text has been waiting")
        try:
            with self.app.app_context():
                state = outbox_state()
        except Exception as exc:
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            known = dict.fromkeys(OUTBOX_STATUSES, 0)
            known.update(state["by_status"])
            for status, count in sorted(known.items()):
                texts.add_metric([status], count)
            due.add_metric([], state["due"])
            oldest.add_metric([], state["oldest_due_seconds"])
            yield from (texts, due, oldest)
        flow = GaugeMetricFamily("calm_line_flow_loaded", "1 if the call flow is loaded")
        flow.add_metric([], 1 if "calm_line.flow" in self.app.extensions else 0)
        yield flow
        writer = self.app.extensions.get(events.EXTENSION)
        dropped = CounterMetricFamily("calm_line_events_dropped",
                                      "Anonymous events this process could not keep")
        dropped.add_metric([], writer.dropped if writer is not None else 0)
        yield dropped


# -- webhook timings and errors -------------------------------------------------------------


class Metrics:
    def __init__(self, app):
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.multiprocess = bool(folder)
        if folder:
            os.makedirs(folder, exist_ok=True)  # prometheus-client fails on a missing folder
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the values live in files; a scrape reads them all.
        own = None if self.multiprocess else self.registry
        self.latency = Histogram("calm_line_webhook_seconds", "Time to answer a Twilio webhook",
                                 ["webhook"], buckets=BUCKETS, registry=own)
        self.requests = Counter("calm_line_webhook_requests_total", "Twilio webhooks answered",
                                ["webhook", "step"], registry=own)
        self.errors = Counter("calm_line_webhook_errors_total", "Webhooks that went wrong",
                              ["webhook", "kind"], registry=own)
        self._children: dict = {}
        self.registry.register(LineCollector(app))
        for collector in app.extensions.get(COLLECTORS, ()):  # the features' own figures
            self.registry.register(collector)
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)
        self._flow = app.extensions.get("calm_line.flow")
        self.pending: collections.deque[Noted] = collections.deque()
        self._scheduled = False
        self._fold_lock = threading.Lock()
        # Who else reads the noted webhooks (the anonymous events): each gets every batch.
        self.readers: list[Callable[[list[Noted]], None]] = app.extensions.setdefault(READERS, [])
        _ALL.add(self)

    def note(self, noted: Noted) -> None:
        """Keep one webhook's figures for the next fold: an append; and at every FOLD_EVERY-th
        webhook, the fold of them all, on this webhook's thread."""
        pending = self.pending
        pending.append(noted)
        if len(pending) >= FOLD_EVERY:
            self.fold(wait=False)
        elif not self._scheduled:
            self._scheduled = True
            timer = threading.Timer(FOLD_SECONDS, self._fold_later)
            timer.daemon = True
            timer.start()

    def note_sent(self, endpoint: str, view_args: dict, steps: str, form: dict, seconds: float,
                  language: str | None, heard: tuple | None) -> None:
        """A webhook answered before Flask (ivr.call.answers): noted as _observe would."""
        self.note(Noted(endpoint, view_args, 200, steps, form, seconds, time.time(), language,
                        heard))

    def _fold_later(self) -> None:
        self._scheduled = False  # first: a webhook noted from now on schedules the next fold
        self.fold()

    def fold(self, wait: bool = True) -> None:
        """Add what was noted to the histograms and counters, and hand it to the readers
        (a webhook's thread, a timer's, a scrape, or a reader that wants everything now).
        wait=False: if another thread is folding, leave it to that one."""
        if not self._fold_lock.acquire(blocking=wait):
            return
        try:
            batch = []
            pending = self.pending
            while pending:
                batch.append(pending.popleft())
            if not batch:
                return
            counts: collections.Counter = collections.Counter()
            timings: collections.defaultdict[str, list[float]] = collections.defaultdict(list)
            for noted in batch:
                try:
                    self._add(noted, counts, timings)
                except Exception:  # never let counting break anything
                    log.exception("metrics: could not count a webhook")
            for (metric, labels), count in counts.items():  # one inc() per series a fold
                self._child(metric, *labels).inc(count)
            for webhook, seconds in timings.items():  # one write per bucket a fold
                observe_all(self._child(self.latency, webhook), seconds)
            for reader in self.readers:
                try:
                    reader(batch)
                except Exception:
                    log.exception("metrics: a reader of the noted webhooks failed")
        finally:
            self._fold_lock.release()

    def _child(self, metric, *labels: str):
        """The labelled child, looked up once: .labels() takes a lock and builds a key."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _add(self, noted: Noted, counts: collections.Counter,
             timings: collections.defaultdict[str, list[float]]) -> None:
        webhook, view_args, status, steps, seconds = (noted.webhook, noted.view_args, noted.status,
                                                      noted.steps, noted.seconds)
        node_id = view_args.get("node_id") if view_args else None
        timings[webhook].append(seconds)
        counts[self.requests, (webhook, _step_label(self._flow, node_id))] += 1
        kind = None
        if status >= 500:
            kind = "server_error"
        elif status == 403:
            kind = "bad_signature"
        elif webhook == "voice.fallback":
            kind = "fallback_used"
        elif webhook in events.STEP_ENDPOINTS and status == 200 and steps is None:
            kind = "safety_message"
        if kind:
            counts[self.errors, (webhook, kind)] += 1


def observe_all(child, amounts: list[float]) -> None:
    """Histogram.observe() of every amount, as one write to the sum and one to each bucket
    they fall in. In multiprocess mode every write goes to a shared file under a lock, and
    observing webhooks one by one was a third of the fold (BENCHMARKS.md). It reads how
    prometheus-client lays out a histogram's child (_sum, _buckets, _upper_bounds: one
    bucket each, not cumulative); laid out otherwise, it observes one by one.
    tests/test_metrics.py checks both give the same exposition."""
    total = getattr(child, "_sum", None)
    buckets = getattr(child, "_buckets", None)
    bounds = getattr(child, "_upper_bounds", None)
    if total is None or not buckets or not bounds or len(buckets) != len(bounds):
        for amount in amounts:
            child.observe(amount)
        return
    falls = [0] * len(bounds)
    for amount in amounts:
        index = bisect.bisect_left(bounds, amount)  # the first bound >= amount, as observe()
        if index < len(falls):
            falls[index] += 1
    total.inc(sum(amounts))
    for bucket, count in zip(buckets, falls, strict=True):
        if count:
            bucket.inc(count)


class Noted(NamedTuple):
    """One webhook as the after-request hook saw it: references and numbers, nothing worked out."""

    webhook: str  # the endpoint, "voice.answer"
    view_args: dict | None
    status: int
    steps: str | None  # X-Calm-Line-Steps: the voice step answered with steps
    form: dict[str, str] | None  # the request's form (first values); None if never read
    seconds: float
    at: float  # time.time() when it answered
    language: str | None = None  # X-Calm-Line-Language: "pl-PL", or "pl-PL;chosen" when chosen now
    heard: tuple | None = None  # a menu answer as the webhook understood it: (kind, key, via)


_ALL: weakref.WeakSet[Metrics] = weakref.WeakSet()


@atexit.register
def _fold_all() -> None:  # pragma: no cover - runs at interpreter exit
    for metrics in list(_ALL):
        metrics.fold()


def _step_label(flow, node_id: str | None) -> str:
    if node_id is None:
        return "-"
    return node_id if flow is not None and node_id in flow.nodes else "unknown"


def _observe(response):
    """The one after-request hook of the webhooks: one tuple appended, nothing else."""
    try:
        wrapped = request._get_current_object()  # type: ignore[attr-defined]
        rule = wrapped.url_rule
        if rule is None or rule.endpoint.partition(".")[0] not in WEBHOOK_BLUEPRINTS:
            return response
        ended = time.perf_counter()
        form = wrapped.__dict__.get("form")  # only if the webhook read it: never parse here
        # What the voice webhook answered (its steps, the call's language, how a menu answer
        # was understood), as it left it on the response: no header parsing here.
        steps, language, heard = getattr(response, "calm_line", None) or (None, None, None)
        # A plain dict of strings, not the MultiDict (a list per field): kept for up to
        # FOLD_SECONDS, a MultiDict's lists cost the garbage collector more than the copy.
        current_app.extensions[EXTENSION].note(Noted(
            rule.endpoint, wrapped.view_args, response.status_code, steps,
            form.to_dict() if form else None, ended - getattr(wrapped, "started", ended),
            time.time(), language, heard))
    except Exception:  # never let counting break a webhook
        log.exception("metrics: could not observe %s", request.path)
    return response


# -- the endpoint -----------------------------------------------------------------------------


def _token_ok() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    sent = request.headers.get("Authorization", "")
    if not token or not sent.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(sent[7:].strip().encode(), str(token).encode())


def _staff_ok() -> bool:
    # The staff package registers its check; the platform never imports it.
    check = current_app.extensions.get(STAFF_CHECK)
    try:
        return bool(check and check())
    except Exception:
        return False


@bp.get("/metrics")
def metrics_page():
    if not (_token_ok() or _staff_ok()):
        return Response("Log in as staff, or send Authorization: Bearer <METRICS_TOKEN>.\n",
                        status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="calm-line-metrics"'})
    metrics: Metrics = current_app.extensions[EXTENSION]
    metrics.fold()  # this process's newest figures
    response = Response(generate_latest(metrics.registry), status=200)
    response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> None:
    token = app.config.get("METRICS_TOKEN")
    if token and len(str(token)) < 24:
        log.warning("METRICS_TOKEN is shorter than 24 characters: choose a longer one")
    app.extensions[EXTENSION] = metrics = Metrics(app)
    app.extensions[NOTE_SENT] = metrics.note_sent
    app.after_request(_observe)
    app.register_blueprint(bp)
