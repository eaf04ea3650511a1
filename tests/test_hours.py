"""Opening hours of the dialled line (issue 14): the schedule, the check, the call, --at."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import copy_shipped, make_app

from ivr import config
from ivr.call import hours
from ivr.flowtools.commands import collect
from ivr.staff.simulator.cli import simulate

SCHEDULE = {
    "weekly": {day: ["08:00-22:00"] for day in hours.DAYS[:5]} | {"saturday": ["09:00-12:00"]},
    "bank_holidays": "closed",
    "closed": ["2026-12-24"],
}
DIAL = "+448088005000"


def schedule(raw=SCHEDULE) -> hours.Hours:
    parsed, problems = hours.parse(raw)
    assert problems == []
    return parsed


def london(text: str) -> datetime:
    return hours.parse_moment(text)


@pytest.mark.parametrize(("moment", "open_"), [
    ("2026-12-01 08:00", True),   # a Tuesday, as it opens
    ("2026-12-01 07:59", False),
    ("2026-12-01 21:59", True),
    ("2026-12-01 22:00", False),  # closes at 22:00
    ("2026-12-05 11:00", True),   # Saturday morning
    ("2026-12-05 13:00", False),
    ("2026-12-06 12:00", False),  # Sunday: not listed, closed
    ("2026-12-24 12:00", False),  # a closed date (a Thursday)
    ("2026-12-25 12:00", False),  # Christmas Day: a bank holiday
    ("2026-08-31 12:00", False),  # the summer bank holiday in England and Wales
])
def test_the_weekly_schedule_bank_holidays_and_closed_dates(moment, open_):
    assert hours.is_open(schedule(), london(moment)) is open_


def test_bank_holidays_follow_the_nation_setting():
    # 3 August 2026 is Scotland's summer bank holiday, a Monday like any other in England.
    assert hours.is_open(schedule(), london("2026-08-03 12:00"), "ENG")
    assert not hours.is_open(schedule(), london("2026-08-03 12:00"), "SCT")


def test_times_are_london_times_whatever_the_clock_says():
    # 07:30 UTC in summer is 08:30 in London: open.
    assert hours.is_open(schedule(), datetime(2026, 7, 1, 7, 30, tzinfo=UTC))
    assert not hours.is_open(schedule(), datetime(2026, 1, 6, 7, 30, tzinfo=UTC))


def test_no_schedule_or_an_empty_one_is_always_open():
    assert hours.is_open(None, london("2026-12-25 03:00"))
    assert hours.is_open(schedule({}), london("2026-12-25 03:00"))


@pytest.mark.parametrize(("raw", "says"), [
    ({"weekly": {"mon": ["08:00-22:00"]}}, "'mon' is not a day"),
    ({"weekly": {"monday": ["8am-10pm"]}}, "is not a time"),
    ({"weekly": {"monday": ["22:00-02:00"]}}, "ends before it starts"),
    ({"weekly": {"monday": ["08:00-25:00"]}}, "is not a time"),
    ({"closed": ["25/12/2026"]}, "is not a date"),
    ({"bank_holiday": "closed"}, "is not known here"),
])
def test_a_schedule_that_cannot_be_read_says_why(raw, says):
    _, problems = hours.parse(raw)
    assert any(says in message for _, message in problems), problems


def with_hours(tmp_path, text: str):
    flows, prompts = copy_shipped(tmp_path)
    source = flows.read_text()
    assert "    hours: {}\n" in source
    flows.write_text(source.replace("    hours: {}\n", text))
    return flows, prompts


def test_ivr_check_reads_every_time_in_a_schedule(tmp_path):
    flows, prompts = with_hours(tmp_path, "    hours:\n      weekly:\n        monday: [\"9-5\"]\n")
    problems = [p for p in collect(flows, prompts.parent) if p.severity == "error"]
    assert [p.code for p in problems] == ["E046"]
    assert problems[0].line == flows.read_text().splitlines().index('        monday: ["9-5"]') + 1
    assert "dial_nspcc.hours.weekly.monday.0" in problems[0].message


def test_the_shipped_schedule_is_empty_so_the_line_always_tries(tmp_path):
    app = make_app(tmp_path, NSPCC_DIAL_NUMBER=DIAL)
    node = app.extensions["calm_line.flow"].nodes["dial_nspcc"]
    assert node.hours == hours.Hours(None, None, frozenset())


@pytest.fixture
def hours_app(tmp_path):
    text = "    hours:\n      weekly:\n" + "".join(
        f"        {day}: [\"08:00-22:00\"]\n" for day in hours.DAYS) + \
        "      bank_holidays: closed\n"
    flows, prompts = with_hours(tmp_path, text)
    return make_app(tmp_path, NSPCC_DIAL_NUMBER=DIAL, FLOWS_FILE=str(flows),
                    PROMPTS_DIR=str(prompts.parent))


def play(app, *args):
    result = app.test_cli_runner().invoke(simulate, ["--keys", "4,1", "--json", *args],
                                          catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_simulate_at_a_closed_time_reads_the_number_and_does_not_dial(hours_app):
    data = play(hours_app, "--at", "2026-12-25 23:00")
    last = next(t for t in data["turns"] if t["action"] == "key" and t["value"] == "1")
    said = " ".join(last["said"])
    assert last["steps"] == ["dial_closed", "main"]
    assert "may be closed" in said and "0 8 0 8, 8 0 0, 5 0 0 0" in said
    assert "dialling" not in json.dumps(data)


def test_simulate_at_an_open_time_dials(hours_app):
    data = play(hours_app, "--at", "2026-12-01 10:00")
    assert f"[dialling {DIAL}]" in json.dumps(data)


def test_simulate_at_a_time_that_is_not_one_says_so(hours_app):
    result = hours_app.test_cli_runner().invoke(simulate, ["--at", "Christmas", "--keys", "4"])
    assert result.exit_code == 2 and "is not a time like" in result.output


def test_a_real_call_cannot_choose_its_time(hours_app, twilio_post):
    """CalmLineAt counts only on practice calls; a real caller gets the real clock."""
    from ivr.call import voice

    with hours_app.test_request_context("/voice", method="POST",
                                        data={"CalmLineAt": "2026-12-25 23:00"}):
        assert abs((voice._now() - datetime.now(UTC)).total_seconds()) < 3600


def test_the_nation_setting_is_checked():
    assert config.from_env({})["BANK_HOLIDAYS"] == "ENG"
    assert config.from_env({"BANK_HOLIDAYS": "sct"})["BANK_HOLIDAYS"] == "SCT"
    with pytest.raises(config.SettingError, match="BANK_HOLIDAYS"):
        config.from_env({"BANK_HOLIDAYS": "FR"})
