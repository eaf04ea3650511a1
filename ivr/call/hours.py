"""Pure: is the dialled line (NSPCC_DIAL_NUMBER) open at a given moment?

A dial step may have an `hours` section in flows.yaml:

    hours:
      weekly:                       # Europe/London; a day not listed is closed
        monday: ["08:00-22:00"]
        saturday: ["09:00-12:00", "13:00-18:00"]
      bank_holidays: closed         # closed, open (as a usual day), or ["10:00-16:00"]
      closed: ["2026-12-25"]        # whole days closed

No `weekly` (or an empty `hours`) means open at every hour; bank holidays
then change nothing unless `bank_holidays` says so. UK bank holidays come
from the `holidays` package, for the nation in the BANK_HOLIDAYS setting
(ENG, England and Wales, by default; WLS, SCT or NIR). "24:00" ends a day.
Outside the hours the line reads the number and says the line may be closed
rather than dialling (engine: the dial step's on_closed, else on_fail).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NATIONS = {"ENG": "England and Wales", "WLS": "Wales", "SCT": "Scotland",
           "NIR": "Northern Ireland"}
DEFAULT_NATION = "ENG"
_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Period = tuple[int, int]  # minutes from midnight: [start, end)


@dataclass(frozen=True)
class Hours:
    weekly: tuple[tuple[Period, ...], ...] | None  # by weekday (Monday 0); None: always open
    bank_holidays: tuple[Period, ...] | None  # None: as the usual day
    closed: frozenset[date] = frozenset()


def _minutes(hour: str, minute: str) -> int | None:
    h, m = int(hour), int(minute)
    if m > 59 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def parse_periods(raw, path: tuple) -> tuple[tuple[Period, ...], list[tuple[tuple, str]]]:
    """["08:00-22:00", ...] -> ((480, 1320), ...), with (path, problem) for each bad one."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return (), [(path, "must be a list of times like \"08:00-22:00\"")]
    periods, problems = [], []
    for index, text in enumerate(raw):
        found = _PERIOD.match(str(text))
        start = found and _minutes(found.group(1), found.group(2))
        end = found and _minutes(found.group(3), found.group(4))
        if not found or start is None or end is None:
            problems.append(((*path, index), f"{text!r} is not a time like \"08:00-22:00\""))
        elif end <= start:
            problems.append(((*path, index), f"{text!r} ends before it starts (a period past "
                                             f"midnight is two: \"22:00-24:00\" and \"00:00-02:00\")"))
        else:
            periods.append((start, end))
    return tuple(sorted(periods)), problems


def _weekly(raw, path: tuple):
    if raw is None or raw == {}:
        return None, []
    if not isinstance(raw, dict):
        return None, [(path, "must map days (monday ... sunday) to times")]
    problems = [((*path, day), f"{day!r} is not a day: use {', '.join(DAYS)}")
                for day in raw if str(day).lower() not in DAYS]
    week = []
    for day in DAYS:
        periods, bad = parse_periods(raw.get(day, []), (*path, day))
        week.append(periods)
        problems += bad
    return tuple(week), problems


def _closed_dates(raw, path: tuple):
    dates, problems = set(), []
    for index, value in enumerate(raw or []):
        if isinstance(value, date):  # YAML reads 2026-12-25 as a date
            dates.add(value)
            continue
        try:
            dates.add(date.fromisoformat(str(value)))
        except ValueError:
            problems.append(((*path, index), f"{value!r} is not a date like 2026-12-25"))
    return frozenset(dates), problems


def parse(raw, path: tuple = ("hours",)) -> tuple[Hours | None, list[tuple[tuple, str]]]:
    """The `hours` section -> Hours (None when there is none), and its problems."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [(path, "must be a mapping with weekly, bank_holidays and closed")]
    problems = [((*path, key), f"{key!r} is not known here: use weekly, bank_holidays, closed")
                for key in raw if key not in ("weekly", "bank_holidays", "closed")]
    weekly, bad = _weekly(raw.get("weekly"), (*path, "weekly"))
    problems += bad
    holiday = raw.get("bank_holidays", "open")
    bank: tuple[Period, ...] | None = None
    if holiday == "closed":
        bank = ()
    elif holiday != "open":
        bank, bad = parse_periods(holiday, (*path, "bank_holidays"))
        problems += bad
    closed, bad = _closed_dates(raw.get("closed"), (*path, "closed"))
    problems += bad
    return Hours(weekly, bank, closed), problems


@lru_cache(maxsize=16)
def _bank_holidays(nation: str, year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.UK(subdiv=nation, years=year))


def local(when: datetime) -> datetime:
    """A moment in Europe/London (a naive one is taken as UTC, as the database keeps them)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo("UTC"))
    return when.astimezone(LONDON)


def is_open(hours: Hours | None, when: datetime, nation: str | None = None) -> bool:
    """True when the line is open at `when` (no hours: always)."""
    if hours is None:
        return True
    now = local(when)
    today = now.date()
    if today in hours.closed:
        return False
    periods: tuple[Period, ...] | None = None
    if hours.bank_holidays is not None and today in _bank_holidays(nation or DEFAULT_NATION,
                                                                    today.year):
        periods = hours.bank_holidays
    elif hours.weekly is not None:
        periods = hours.weekly[today.weekday()]
    if periods is None:
        return True
    minute = now.hour * 60 + now.minute
    return any(start <= minute < end for start, end in periods)


def parse_moment(text: str) -> datetime:
    """"2026-12-25 23:00" (Europe/London) -> an aware datetime; ValueError when it is not one."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment
