"""Run Calm Line's benchmarks and print one table, each figure beside its baseline.

    .venv/bin/python -m bench                 # all four, small (about 10 minutes)
    .venv/bin/python -m bench --big           # longer runs, more calls, 2,000 texts
    .venv/bin/python -m bench --only drain    # one of: webhooks, consent, drain, understanding

Needs wrk (`apt-get install -y wrk`) for the webhooks and PostgreSQL
(TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test)
for the drain; a part whose tool is missing is skipped and says why. All load
goes to 127.0.0.1. Results (the table, JSON, server logs) go to
bench/results/<time>/ (git-ignored); BENCHMARKS.md explains the figures.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.common import ROOT, have_wrk, table

TARGETS = {"webhooks": 0.9, "consent": 1.2, "drain": 1.1, "understanding_p99_ms": 1.0,
           "understanding_right": 0.95}
# The line's requests/s against each reference, on menu steps and on the mix (issue 16).
WEBHOOK_TARGETS = {"sample": 1.0, "least": 0.9}
NAMES = {"sample": "Twilio's sample style", "least": "the least correct webhook",
         "constant": "a constant document"}


def _postgres_ok(url: str) -> bool:
    from ivr import store

    return store.answers(url)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["webhooks", "consent", "drain", "understanding"],
                        action="append",
                        help="run only this part (repeatable)")
    parser.add_argument("--big", action="store_true",
                        help="bigger run: 20 s rounds, 32 connections, 1,000 calls a phase, "
                             "2,000 texts")
    parser.add_argument("--seconds", type=float, help="webhooks: seconds per wrk run (8)")
    parser.add_argument("--rounds", type=int, help="webhooks and consent: alternating rounds (5)")
    parser.add_argument("--connections", type=int, help="webhooks: concurrent callers (16)")
    parser.add_argument("--calls", type=int, default=60,
                        help="webhooks: distinct recorded calls to replay (60)")
    parser.add_argument("--consent-calls", type=int, help="consent: calls per phase (300)")
    parser.add_argument("--consent-rate", type=float, default=40.0,
                        help="consent: calls a second (40)")
    parser.add_argument("--slow", type=float, default=5.0, help="consent: slow Twilio's seconds (5)")
    parser.add_argument("--texts", type=int, help="drain: texts to send (500)")
    parser.add_argument("--rate", type=float, default=50.0,
                        help="drain: SMS_RATE_PER_SECOND of each worker (50)")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                        help="webhooks and consent: the line's database, a fresh SQLite file "
                             "(the app's default) or a fresh schema on PostgreSQL (sqlite)")
    parser.add_argument("--database-url", help="webhooks and consent: this database instead")
    parser.add_argument("--postgres-url", help="drain: PostgreSQL (default TEST_POSTGRES_URL)")
    parser.add_argument("--out", type=Path, help="where results go (bench/results/<time>)")
    args = parser.parse_args(argv)

    parts = args.only or ["understanding", "webhooks", "consent", "drain"]
    big = args.big
    seconds = args.seconds or (20 if big else 8)
    rounds = args.rounds or 5  # alternating rounds, as issue J measured the references
    connections = args.connections or (32 if big else 16)
    consent_calls = args.consent_calls or (1000 if big else 300)
    texts = args.texts or (2000 if big else 500)
    out = args.out or ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"{command.strip()}  ->  {out}")
    print(f"machine: {platform.node()}, {platform.python_implementation()} "
          f"{platform.python_version()}, {_cpus()} CPUs, load {_load()}")

    rows, skipped, raw = [], [], {}
    schema = None
    if args.db == "postgres" and not args.database_url and {"webhooks", "consent"} & set(parts):
        from bench.drain import POSTGRES_URL, Schema

        url = args.postgres_url or POSTGRES_URL
        if not _postgres_ok(url):
            print(f"PostgreSQL is not reachable at {url}")
            return 2
        schema = Schema(url).__enter__()
        args.database_url = schema.url
    try:
        return _run(args, parts, rows, skipped, raw, out, started, command, seconds, rounds,
                    connections, consent_calls, texts)
    finally:
        if schema is not None:
            schema.__exit__(None, None, None)


def _run(args, parts, rows, skipped, raw, out, started, command, seconds, rounds, connections,
         consent_calls, texts) -> int:
    db = "PostgreSQL" if args.database_url and "postgres" in args.database_url else "SQLite"

    if "understanding" in parts:
        from bench import understanding

        result = understanding.run()
        s = result.summary
        raw["understanding"] = {"right": s.right, "total": s.total, "held_right": s.held_right,
                                "urgent_right": s.urgent_right, "urgent_total": s.urgent_total,
                                "p50_ms": result.p50_ms, "p99_ms": result.p99_ms}
        (out / "understanding.md").write_text(result.markdown + "\n")
        rows += [
            ["understanding: eval set right", f"{s.right}/{s.total} ({s.accuracy:.1%})", "", "",
             f">= {TARGETS['understanding_right']:.0%}, urgent 100%",
             _met(s.accuracy >= TARGETS["understanding_right"] and s.urgent_right == s.urgent_total)
             + f" (urgent {s.urgent_right}/{s.urgent_total}, held-out {s.held_right}/{s.held_total})"],
            ["understanding: one utterance, CPU p99", f"{result.p99_ms:.3f} ms", "", "",
             f"< {TARGETS['understanding_p99_ms']:g} ms",
             _met(result.p99_ms < TARGETS["understanding_p99_ms"]) + f" (p50 {result.p50_ms:.3f} ms)"],
        ]

    if "webhooks" in parts:
        if not have_wrk():
            skipped.append("webhooks: wrk is not installed (apt-get install -y wrk)")
        else:
            from bench import webhooks

            result = webhooks.run(seconds=seconds, connections=connections, rounds=rounds,
                                  calls=args.calls, database_url=args.database_url, out=out)
            raw["webhooks"] = {
                "best": {f"{app}/{which}": asdict(r) for (app, which), r in result.best.items()},
                "rounds": {f"{app}/{which}": [r.rps for r in got]
                           for (app, which), got in result.each_round.items()},
                "rss_mb": result.rss_mb, "requests": result.requests,
                "menu_requests": result.menu_requests, "db_share": result.db_share,
                "mean_bytes": result.mean_bytes}
            errors = sum(r.errors for r in result.best.values())
            rows += _webhook_rows(result, db)
            skipped.append("webhooks: req/s are each app's best round; each ratio (req/s, p99) is "
                           "the median over rounds of the line's figure / the reference's, run "
                           "back to back in the same round; RSS: gunicorn's master and workers")
            if errors:
                skipped.append(f"webhooks: {errors} failed or non-2xx answers (see {out})")

    if "consent" in parts:
        from bench import consent

        result = consent.run(calls=consent_calls, calls_per_second=args.consent_rate,
                             slow=args.slow, rounds=rounds, database_url=args.database_url, out=out)
        raw["consent"] = {"fast_p50": result.fast.p50, "fast_p99": result.fast.p99,
                          "slow_p50": result.slow.p50, "slow_p99": result.slow.p99,
                          "ratio": result.ratio, "texts_sent": result.texts_sent,
                          "samples": len(result.fast.consent_ms)}
        rows += [
            [f"consent step ({db}) p99, Twilio at {args.slow:g} s vs at once",
             f"{result.slow.p99:.1f} ms", f"{result.fast.p99:.1f} ms", f"{result.ratio:.2f}x",
             f"<= {TARGETS['consent']}x", _met(result.ratio <= TARGETS["consent"])],
            ["consent step p50", f"{result.slow.p50:.1f} ms", f"{result.fast.p50:.1f} ms",
             f"{result.slow.p50 / result.fast.p50:.2f}x", "", ""],
        ]

    if "drain" in parts:
        from bench import drain

        url = args.postgres_url or drain.POSTGRES_URL
        if not _postgres_ok(url):
            skipped.append(f"drain: PostgreSQL is not reachable at {url}")
        else:
            results = drain.run(count=texts, rate=args.rate, database_url=url, out=out)
            raw["drain"] = [asdict(r) | {"ideal": r.ideal, "ratio": r.ratio} for r in results]
            for r in results:
                rows.append([f"drain: {r.count} texts, {r.workers} worker(s) x {r.rate:g}/s",
                             f"{r.seconds:.2f} s", f"{r.ideal:.2f} s (ideal)", f"{r.ratio:.2f}x",
                             f"<= {TARGETS['drain']}x, 0 dup",
                             _met(r.ratio <= TARGETS["drain"] and r.duplicates == 0 and not r.lost)
                             + f" ({r.duplicates} dup, {r.lost} lost)"])

    report = table(rows, ["figure", "Calm Line", "baseline", "ratio", "target", "met"])
    elapsed = time.monotonic() - started
    print()
    print(report)
    for note in skipped:
        print(f"skipped/note: {note}")
    print(f"\n{elapsed:.0f} s in all")
    (out / "results.md").write_text(f"`{command.strip()}`\n\n{report}\n\n"
                                    + "".join(f"- {n}\n" for n in skipped))
    (out / "results.json").write_text(json.dumps({"command": command, "seconds": elapsed,
                                                  "results": raw, "notes": skipped}, indent=2))
    return 0


def _webhook_rows(result, db: str) -> list[list[str]]:
    """requests/s of the line beside each reference, per request set; then p99 and memory."""
    rows = []
    for which, label in (("menu", f"menu steps ({result.menu_requests} requests)"),
                         ("mix", f"whole calls, the recorded mix ({result.requests}; {db})")):
        line = result.best["line", which]
        for app in ("sample", "least", "constant"):
            ref, ratio = result.best[app, which], result.ratio_to(app, which)
            target = WEBHOOK_TARGETS.get(app)
            p99_ok = result.p99_ratio_to(app, which) <= 1.0
            rows.append([f"{label}: req/s vs {NAMES[app]}", f"{line.rps:,.0f}", f"{ref.rps:,.0f}",
                         f"{ratio:.2f}x", f">= {target}x, p99 no worse" if target else "",
                         _met(ratio >= target and p99_ok) if target else ""])
        for app in ("sample", "least"):
            rows.append([f"{label}: p99 vs {NAMES[app]} (medians over rounds)",
                         f"{result.p99_median('line', which):.1f} ms",
                         f"{result.p99_median(app, which):.1f} ms",
                         f"{result.p99_ratio_to(app, which):.2f}x", "", ""])
    for app in ("sample", "least", "constant"):
        rows.append([f"web RSS after the run vs {NAMES[app]}", f"{result.rss_mb['line']:.0f} MB",
                     f"{result.rss_mb[app]:.0f} MB",
                     f"{result.rss_mb['line'] / max(result.rss_mb[app], 0.1):.2f}x", "", ""])
    return rows


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _load() -> str:
    import os

    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
