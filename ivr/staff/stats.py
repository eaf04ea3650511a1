"""The figures: is the line helping? Counted from anonymous events, never from callers.

``figures(start)`` reads the ``events`` table (ivr/events.py) and the outbox's
statuses (counts only, no join: texts are matched to nothing) and returns
plain data. Staff see it at ``/staff/stats`` (same login as the simulator)
and in a terminal with ``ivr stats --since 7d``. Simulator calls are left out.

"Where callers hang up" is the last step a call entered when Twilio's status
callback said ``completed`` and no goodbye step had been played.
"""
from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import click
import sqlalchemy as sa
from flask import Blueprint, current_app, render_template, request
from flask.cli import with_appcontext

from ivr import store
from ivr.call import events
from ivr.staff import login as staff

bp = Blueprint("stats", __name__, url_prefix="/staff/stats", template_folder="templates",
               static_folder="static", static_url_path="/static")
bp.after_request(staff.secure_headers)

DEFAULT_SINCE = "7d"
CHOICES_OF_SINCE = ("1d", "7d", "30d", "90d")
_SINCE = re.compile(r"^\s*(\d{1,4})\s*([dh])\s*$")
MAX_DAYS = 3660

# The outbox's statuses, grouped the way staff ask about them.
TEXT_GROUPS = {
    "held": "waiting", "queued": "waiting", "sending": "waiting",
    "accepted": "sent", "sent": "sent",
    "delivered": "delivered",
    "undelivered": "failed", "failed": "failed",
    "opted_out": "opted_out",
}
ENDINGS = ("goodbye", "too_many_tries", "hung_up", "other", "not_ended")
ENDING_LABELS = {
    "goodbye": "goodbye (heard the end)",
    "too_many_tries": "too many tries",
    "hung_up": "hung up",
    "other": "busy / failed / cancelled",
    "not_ended": "no end reported yet",
}


# -- the window -----------------------------------------------------------------------------


def window_start(since: str, now: datetime | None = None) -> datetime:
    """'7d' -> midnight UTC six days ago (7 whole days with today); '12h' -> 12 hours ago."""
    found = _SINCE.match(since or "")
    if not found or int(found.group(1)) < 1:
        raise ValueError(f"{since!r} is not a period like 7d, 30d or 24h")
    amount, unit = int(found.group(1)), found.group(2)
    now = now or store.utcnow()
    if unit == "d":
        if amount > MAX_DAYS:
            raise ValueError(f"{since!r} is longer than {MAX_DAYS} days")
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=amount - 1)
    return events.hour(now) - timedelta(hours=amount - 1)


# -- the figures ----------------------------------------------------------------------------


def _text_counts(start: datetime, practice: bool = False) -> dict[str, int]:
    table = store.outbox
    query = (sa.select(table.c.status, sa.func.count())
             .where(table.c.created_at >= start).group_by(table.c.status))
    if not practice:
        query = query.where(table.c.simulated == sa.false())
    counts = dict.fromkeys(("waiting", "sent", "delivered", "failed", "opted_out"), 0)
    with store.read() as conn:
        for status, count in conn.execute(query):
            group = TEXT_GROUPS.get(status)
            if group:
                counts[group] += count
    return counts


def _simulated_calls(start: datetime) -> int:
    table = events.events
    query = (sa.select(sa.func.count(sa.distinct(table.c.call_key)))
             .where(table.c.at >= start, table.c.kind == "call_started", table.c.simulated))
    with store.read() as conn:
        return conn.execute(query).scalar() or 0


def _events(start: datetime, practice: bool) -> list:
    """The events of real calls, and with practice those of simulator calls too, in order."""
    rows = list(events.load(start))
    if practice:
        rows = sorted(rows + list(events.load(start, simulated=True)), key=lambda row: row.id)
    return rows


def figures(start: datetime, now: datetime | None = None, flow=None,
            practice: bool = False) -> dict:
    """Every figure for calls that started at or after ``start`` (needs an app context).

    practice=True counts the simulator's practice calls too, for training staff to read
    the page; the result says so ("practice_included"), and the page marks it.
    """
    now = now or store.utcnow()
    flow = flow or current_app.extensions["calm_line.flow"]
    events.flush()
    calls: dict[str, list] = defaultdict(list)
    started: dict[str, datetime] = {}
    practice_calls = set()
    for row in _events(start, practice):
        if row.simulated:
            practice_calls.add(row.call_key)
        if row.call_key is None:
            continue
        if row.kind == "call_started":
            started.setdefault(row.call_key, row.at)
        calls[row.call_key].append(row)
    # Only calls that started in the window (a call from before it may end inside it).
    calls = {key: rows for key, rows in calls.items() if key in started}

    per_day = Counter(at.date() for at in started.values())
    days, day = [], start.date()
    while day <= now.date():
        days.append({"day": day.isoformat(), "weekday": day.strftime("%a"), "calls": per_day[day]})
        day += timedelta(days=1)

    home = flow.nodes.get(flow.home)
    choices = [(c.key, c.to) for c in home.choices] if home is not None else []
    chosen: dict[str, set] = defaultdict(set)
    via: dict[str, Counter] = defaultdict(Counter)
    endings: Counter = Counter()
    hang_ups: Counter = Counter()
    offered = asked = too_many = errors = 0
    durations = []
    languages: Counter = Counter()
    for key, rows in calls.items():
        kinds = {row.kind for row in rows}
        chose = [row.detail for row in rows if row.kind == "language"]
        languages[chose[-1] if chose else getattr(flow, "code", "en-GB")] += 1
        offered += "text_offered" in kinds
        asked += "text_accepted" in kinds
        too_many += "too_many_tries" in kinds
        errors += "error" in kinds
        for row in rows:
            if row.kind == "choice" and row.step == flow.home:
                if key not in chosen[row.detail]:
                    via[row.detail][row.via or "key"] += 1
                chosen[row.detail].add(key)
        ended = [row for row in rows if row.kind == "ended"]
        status = [row for row in rows if row.kind == "call_ended"]
        if ended:
            ending = ended[-1].detail if ended[-1].detail in ENDINGS else "goodbye"
        elif status:
            ending = "hung_up" if status[-1].detail == "completed" else "other"
        else:
            ending = "not_ended"
        endings[ending] += 1
        if ending == "hung_up":
            steps = [row.step for row in rows if row.kind == "step"]
            hang_ups[steps[-1] if steps else "(before any step)"] += 1
        seconds = [row.value for row in status if row.value is not None]
        if seconds:
            durations.append(max(seconds))

    total = len(calls)
    known = {key for key, _ in choices}
    branches = [
        {"key": key, "step": to, "calls": len(chosen[key]), "share": _share(len(chosen[key]), total),
         "by_key": via[key]["key"], "by_voice": via[key]["voice"]}
        for key, to in choices
    ] + [
        {"key": key, "step": "(no longer in the flow)", "calls": len(chosen[key]),
         "share": _share(len(chosen[key]), total), "by_key": via[key]["key"],
         "by_voice": via[key]["voice"]}
        for key in sorted(set(chosen) - known) if key.isdigit()
    ]
    texts = {"offered": offered, "asked": asked, **_text_counts(start, practice)}
    return {
        "since": start.isoformat(timespec="minutes") + "Z",
        "until": now.isoformat(timespec="minutes") + "Z",
        "calls": total,
        "practice_included": practice,
        "practice_calls": len(practice_calls & set(calls)),
        "simulated_calls_left_out": 0 if practice else _simulated_calls(start),
        "per_day": days,
        "branches": branches,
        "endings": {name: endings[name] for name in ENDINGS},
        "hang_up_at": [{"step": step, "calls": count} for step, count in hang_ups.most_common()],
        "languages": dict(languages.most_common()),  # calls by the language they ended in
        "calls_with_too_many_tries": too_many,
        "calls_with_errors": errors,
        "texts": texts,
        "median_call_seconds": statistics.median(durations) if durations else None,
        "calls_with_length": len(durations),
    }


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def percent(share: float) -> str:
    return f"{round(share * 100)}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


# -- charts: server-rendered SVG geometry ----------------------------------------------------


def column_chart(days: list[dict], width: int = 640, height: int = 220) -> dict:
    """Calls per day as columns: coordinates for an inline SVG (no script, no CDN)."""
    left, right, top, bottom = 36, 8, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([d["calls"] for d in days] + [1])
    step = _nice_step(peak)
    top_value = -(-peak // step) * step
    slot = plot_w / max(len(days), 1)
    bar_w = max(min(slot * 0.7, 48), 2)
    label_every = max(1, round(len(days) / 10))
    bars = []
    for index, day in enumerate(days):
        h = plot_h * day["calls"] / top_value
        x = left + index * slot + (slot - bar_w) / 2
        bars.append({
            "x": round(x, 1), "y": round(top + plot_h - h, 1), "w": round(bar_w, 1),
            "h": round(h, 1), "calls": day["calls"], "day": day["day"],
            "label": day["day"][5:] if index % label_every == 0 else "",
            "label_x": round(x + bar_w / 2, 1), "value_y": round(top + plot_h - h - 4, 1),
        })
    ticks = [{"value": v, "y": round(top + plot_h - plot_h * v / top_value, 1)}
             for v in range(0, top_value + 1, step)]
    return {"width": width, "height": height, "left": left, "right": width - right,
            "baseline": top + plot_h, "label_y": top + plot_h + 16, "bars": bars,
            "ticks": ticks, "show_values": len(days) <= 31}


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if peak / step <= 5:
            return step
    return max(1, peak // 5)


def bar_rows(items: list[tuple[str, int, str]], width: int = 520, row_h: int = 28) -> dict:
    """Horizontal bars: (label, value, text shown after the bar)."""
    label_w, plot_w = 130, width - 130 - 60
    peak = max([value for _, value, _ in items] + [1])
    rows = [{
        "label": label, "value": value, "text": text,
        "y": index * row_h, "w": round(plot_w * value / peak, 1),
        "text_x": round(label_w + plot_w * value / peak + 6, 1),
    } for index, (label, value, text) in enumerate(items)]
    return {"width": width, "height": max(len(rows), 1) * row_h, "label_w": label_w,
            "rows": rows, "row_h": row_h}


# -- the staff page ---------------------------------------------------------------------------


@bp.get("")
@staff.login_required
def page():
    since = request.args.get("since", DEFAULT_SINCE)
    practice = request.args.get("practice") == "1"
    error = None
    try:
        start = window_start(since)
    except ValueError as exc:
        error, since = str(exc), DEFAULT_SINCE
        start = window_start(since)
    data = figures(start, practice=practice)
    branch_chart = bar_rows([(f"{b['key']} {b['step']}", b["calls"], percent(b["share"]))
                             for b in data["branches"]])
    hang_up_chart = bar_rows([(h["step"], h["calls"], str(h["calls"]))
                              for h in data["hang_up_at"][:8]])
    status = 400 if error else 200
    return render_template(
        "stats/page.html", data=data, since=since, error=error, choices=CHOICES_OF_SINCE,
        chart=column_chart(data["per_day"]), branch_chart=branch_chart,
        hang_up_chart=hang_up_chart, percent=percent, duration=duration,
        ending_labels=ENDING_LABELS, practice=practice,
    ), status


def init_app(app) -> None:
    app.register_blueprint(bp)
    if hasattr(staff, "add_page"):
        staff.add_page(app, "Figures", "stats.page")


# -- `ivr stats` ------------------------------------------------------------------------------


def report(data: dict) -> str:
    """The figures as plain text for a terminal."""
    left_out = (f"PRACTICE CALLS INCLUDED: {data['practice_calls']} of them (for training)"
                if data.get("practice_included")
                else f"simulator calls left out: {data['simulated_calls_left_out']}")
    lines = [
        f"Calm Line figures from {data['since']} to {data['until']} (UTC)",
        f"Calls: {data['calls']}    median length: {duration(data['median_call_seconds'])}"
        f"    ({left_out})",
        "",
        "Calls per day",
    ]
    peak = max([d["calls"] for d in data["per_day"]] + [1])
    for day in data["per_day"]:
        bar = "#" * round(30 * day["calls"] / peak)
        lines.append(f"  {day['day']} {day['weekday']}  {day['calls']:>5}  {bar}")
    if data.get("languages"):
        lines += ["", "Calls by language: " + ", ".join(
            f"{code} {count}" for code, count in data["languages"].items())]
    lines += ["", "Main menu: share of calls choosing each branch"]
    for b in data["branches"]:
        lines.append(f"  {b['key']} {b['step']:<14} {b['calls']:>5}  {percent(b['share']):>4}"
                     f"   by key {b['by_key']}, by voice {b['by_voice']}")
    lines += ["", "How calls ended"]
    for name, count in data["endings"].items():
        lines.append(f"  {ENDING_LABELS[name]:<28} {count:>5}")
    lines.append(f"  calls with too many tries somewhere: {data['calls_with_too_many_tries']}")
    lines += ["", "Where callers hung up (the last step they entered)"]
    if not data["hang_up_at"]:
        lines.append("  nobody hung up before the end")
    for item in data["hang_up_at"]:
        lines.append(f"  {item['step']:<20} {item['calls']:>5}")
    t = data["texts"]
    lines += [
        "",
        "Texts",
        f"  offered {t['offered']}, asked for {t['asked']}; sent {t['sent']}, "
        f"delivered {t['delivered']}, failed {t['failed']}, waiting {t['waiting']}, "
        f"opted out {t['opted_out']}",
    ]
    if data["calls_with_errors"]:
        lines += ["", f"Calls that heard the safety message after an error: {data['calls_with_errors']}"]
    return "\n".join(lines)


@click.command("stats")
@click.option("--since", default=DEFAULT_SINCE, show_default=True,
              help="The period: 7d (whole days, with today), 30d, 24h.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--practice", is_flag=True,
              help="Count the simulator's practice calls too (for training; marked as such).")
@with_appcontext
def stats_command(since, as_json, practice):
    """This period's anonymous figures (simulator calls left out unless --practice)."""
    try:
        start = window_start(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    data = figures(start, practice=practice)
    click.echo(json.dumps(data, indent=2) if as_json else report(data))


