"""GET /metrics: Prometheus text a monitoring system can parse, for staff or a token only."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import AUTH_TOKEN, make_app, sign, staff_log_in
from prometheus_client.parser import text_string_to_metric_families

from ivr import store
from ivr.call.caller import Caller, FlaskTransport

TOKEN = "metrics-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def scrape(app, headers=BEARER) -> dict[tuple[str, tuple], float]:
    """name + sorted labels -> value, from the parsed exposition."""
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def metrics_app(tmp_path):
    return make_app(tmp_path, METRICS_TOKEN=TOKEN)


def test_metrics_need_a_token_or_the_staff_login(metrics_app):
    web = metrics_app.test_client()
    refused = web.get("/metrics")
    assert refused.status_code == 401 and "Bearer" in refused.headers["WWW-Authenticate"]
    assert web.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert web.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert web.get("/metrics", headers=BEARER).status_code == 200
    staff_log_in(web, metrics_app)
    assert web.get("/metrics").status_code == 200


def test_without_a_token_setting_no_token_is_accepted(app):
    assert app.test_client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert app.test_client().get("/metrics", headers={"Authorization": "Bearer None"}).status_code == 401


def test_webhook_latency_is_a_histogram_by_webhook_and_counts_go_by_step(metrics_app):
    for _ in range(3):
        caller = Caller(FlaskTransport(metrics_app))
        caller.dial()
        caller.press("2")
        caller.hang_up()
    samples = scrape(metrics_app)
    count = "calm_line_webhook_seconds_count"
    assert samples[(count, (("webhook", "voice.incoming"),))] == 3
    assert samples[(count, (("webhook", "voice.answer"),))] >= 3
    assert samples[(count, (("webhook", "voice.status"),))] == 3
    assert samples[("calm_line_webhook_seconds_bucket",
                    (("le", "+Inf"), ("webhook", "voice.status")))] == 3
    assert samples[("calm_line_webhook_seconds_sum", (("webhook", "voice.incoming"),))] > 0
    # By step, a counter: one series per step rather than one per step and bucket.
    requests = "calm_line_webhook_requests_total"
    assert samples[(requests, (("step", "main"), ("webhook", "voice.answer")))] == 3
    assert samples[(requests, (("step", "-"), ("webhook", "voice.incoming")))] == 3
    assert not any(name.startswith("calm_line_webhook_seconds") and dict(labels).get("step")
                   for name, labels in samples)


def test_an_unknown_step_is_one_label_not_a_new_series_per_path(metrics_app):
    web = metrics_app.test_client()
    for path in ("/voice/answer/nope-1", "/voice/answer/nope-2"):
        params = {"CallSid": "CA1"}
        web.post(path, data=params, headers={"X-Twilio-Signature": sign(path, params)})
    samples = scrape(metrics_app)
    steps = {dict(labels).get("step") for (name, labels) in samples
             if name == "calm_line_webhook_requests_total"}
    assert "unknown" in steps and not any(s and s.startswith("nope") for s in steps)


def test_errors_are_counted_by_kind(metrics_app, monkeypatch):
    web = metrics_app.test_client()
    web.post("/voice", data={"CallSid": "CA1"}, headers={"X-Twilio-Signature": "wrong"})
    params = {"CallSid": "CA2", "ErrorCode": "11200"}
    web.post("/voice/fallback", data=params, headers={"X-Twilio-Signature": sign("/voice/fallback", params)})
    from ivr.call import engine

    monkeypatch.setattr(engine, "start", lambda *a, **k: 1 / 0)
    params = {"CallSid": "CA3"}
    answered = web.post("/voice", data=params, headers={"X-Twilio-Signature": sign("/voice", params)})
    assert answered.status_code == 200 and (b"999" in answered.data or b"9 9 9" in answered.data)
    samples = scrape(metrics_app)
    errors = "calm_line_webhook_errors_total"
    assert samples[(errors, (("kind", "bad_signature"), ("webhook", "voice.incoming")))] == 1
    assert samples[(errors, (("kind", "fallback_used"), ("webhook", "voice.fallback")))] == 1
    assert samples[(errors, (("kind", "safety_message"), ("webhook", "voice.incoming")))] == 1


def test_texts_and_the_outbox_backlog_come_from_the_database(metrics_app):
    caller = Caller(FlaskTransport(metrics_app))
    caller.dial()
    caller.press("#")
    caller.press("1")  # yes to the text: held until the call ends
    with metrics_app.app_context(), store.begin() as conn:
        now = store.utcnow()
        row = {"to_hash": "x", "body": "b", "segments": 1, "created_at": now, "updated_at": now,
               "simulated": False}
        conn.execute(sa.insert(store.outbox), [
            dict(row, call_key="k1", status="queued", next_attempt_at=now - timedelta(minutes=10)),
            dict(row, call_key="k2", status="queued", next_attempt_at=now - timedelta(minutes=2)),
            dict(row, call_key="k3", status="queued", next_attempt_at=now + timedelta(minutes=5)),
            dict(row, call_key="k4", status="failed", next_attempt_at=now),
            dict(row, call_key="k5", status="sent", next_attempt_at=now, simulated=True),
        ])
    samples = scrape(metrics_app)
    texts = {dict(labels)["status"]: value for (name, labels), value in samples.items()
             if name == "calm_line_texts"}
    assert texts["held"] == 1 and texts["queued"] == 3 and texts["failed"] == 1
    assert texts["sent"] == 0 and texts["delivered"] == 0  # simulator texts are left out
    assert samples[("calm_line_outbox_due", ())] == 2
    assert 595 <= samples[("calm_line_outbox_oldest_due_seconds", ())] <= 660
    assert samples[("calm_line_database_up", ())] == 1
    assert samples[("calm_line_flow_loaded", ())] == 1
    assert samples[("calm_line_events_dropped_total", ())] == 0


def test_the_database_being_down_is_a_metric_not_an_error(tmp_path):
    app = make_app(tmp_path, upgrade=False, METRICS_TOKEN=TOKEN,
                   DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    samples = scrape(app)
    assert samples[("calm_line_database_up", ())] == 0
    assert ("calm_line_outbox_due", ()) not in samples


def test_each_app_counts_its_own_requests(tmp_path):
    first = make_app(tmp_path / "a", METRICS_TOKEN=TOKEN)
    second = make_app(tmp_path / "b", METRICS_TOKEN=TOKEN)
    Caller(FlaskTransport(first)).dial()
    key = ("calm_line_webhook_seconds_count", (("webhook", "voice.incoming"),))
    assert scrape(first)[key] == 1
    assert scrape(second).get(key, 0) == 0


def test_with_several_web_processes_the_counts_add_up(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR: whichever gunicorn worker answers sees every worker's counts."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import make_app
        from ivr.call.caller import Caller, FlaskTransport
        app = make_app(__import__("pathlib").Path(sys.argv[1]), METRICS_TOKEN={TOKEN!r})
        for _ in range(int(sys.argv[2])):
            Caller(FlaskTransport(app)).dial()
        if sys.argv[3] == "scrape":
            body = app.test_client().get("/metrics", headers={{"Authorization": "Bearer {TOKEN}"}})
            print(body.get_data(as_text=True))
    """)
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(folder))
    for index, (calls, then) in enumerate(((2, "-"), (3, "scrape"))):
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / str(index)), str(calls), then],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    counts = [line for line in done.stdout.splitlines()
              if line.startswith("calm_line_webhook_seconds_count") and "voice.incoming" in line]
    assert counts and float(counts[0].rsplit(" ", 1)[1]) == 5


def test_metrics_auth_token_never_shows_in_the_page(metrics_app):
    body = metrics_app.test_client().get("/metrics", headers=BEARER).get_data(as_text=True)
    assert TOKEN not in body and AUTH_TOKEN not in body


_OBSERVE_BOTH_WAYS = """
import sys
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from ivr.metrics import BUCKETS, observe_all

amounts = [0.0, 0.0004, 0.001, 0.0010001, 0.003, 0.02, 0.02, 0.7, 14.0, 15.0, 99.0, 0.26]
registry = CollectorRegistry()
own = None if len(sys.argv) > 1 else registry
one_by_one = Histogram("by_one", "h", ["webhook"], buckets=BUCKETS, registry=own)
together = Histogram("by_all", "h", ["webhook"], buckets=BUCKETS, registry=own)
for amount in amounts:
    one_by_one.labels("voice.answer").observe(amount)
observe_all(together.labels("voice.answer"), amounts[:5])
observe_all(together.labels("voice.answer"), amounts[5:])  # two folds add up
if own is None:
    from prometheus_client import multiprocess
    multiprocess.MultiProcessCollector(registry)
print(generate_latest(registry).decode())
"""


@pytest.mark.parametrize("multiprocess", [False, True])
def test_a_folds_timings_give_the_histogram_that_observing_each_gives(tmp_path, multiprocess):
    """observe_all writes each bucket once a fold (in multiprocess mode a write to a shared
    file under a lock); the figures must be exactly those of observe(), edges included."""
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = []
    if multiprocess:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
        argv = ["multiprocess"]
    done = subprocess.run([sys.executable, "-c", _OBSERVE_BOTH_WAYS, *argv], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    samples = {}
    for family in text_string_to_metric_families(done.stdout):
        for sample in family.samples:
            if sample.name.startswith(("by_one", "by_all")) and not sample.name.endswith("created"):
                name = sample.name.replace("by_one", "h").replace("by_all", "h")
                key = (name, tuple(sorted(sample.labels.items())))
                samples.setdefault(sample.name[:6], {})[key] = sample.value
    sums = [{k: v for k, v in samples[way].items() if k[0] == "h_sum"} for way in ("by_one", "by_all")]
    assert list(sums[1].values()) == pytest.approx(list(sums[0].values()))  # added in another order
    assert ({k: v for k, v in samples["by_one"].items() if k[0] != "h_sum"}
            == {k: v for k, v in samples["by_all"].items() if k[0] != "h_sum"})
    counts = {k: v for k, v in samples["by_one"].items() if k[0] == "h_count"}
    assert list(counts.values()) == [12]
    buckets = {dict(k[1])["le"]: v for k, v in samples["by_one"].items() if k[0] == "h_bucket"}
    assert (buckets["0.001"], buckets["0.0025"], buckets["15.0"], buckets["+Inf"]) == (3, 4, 11, 12)
