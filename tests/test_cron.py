"""Schedules: validation, human text, fire times and the DST rules (DESIGN.md §2).

Every time here is fixed: ``start`` is the fake clock. Fire times are compared as UTC
instants: two datetimes sharing a ``ZoneInfo`` compare by wall clock and ignore ``fold``
(02:15 CET, second fold, would sort before 02:30 CEST), and a datetime inside a repeated hour
never compares equal to one of another zone (PEP 495), whichever fold it is.

The 2026 transitions used below:

- Europe/Berlin spring-forward 2026-03-29 01:00 UTC (02:00 CET -> 03:00 CEST);
- Europe/Berlin fall-back 2026-10-25 01:00 UTC (03:00 CEST -> 02:00 CET);
- America/New_York spring-forward 2026-03-08 07:00 UTC (02:00 EST -> 03:00 EDT);
- America/New_York fall-back 2026-11-01 06:00 UTC (02:00 EDT -> 01:00 EST).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from taskops import cron
from taskops.cron import ALIASES, Schedule, load_timezone
from taskops.errors import InvalidInput
from taskops.testing import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
START = datetime(2026, 1, 16, 14, 5, 30, tzinfo=UTC)
MINUTES_15 = timedelta(minutes=15)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def instants(times: Sequence[datetime]) -> list[datetime]:
    return [t.astimezone(UTC) for t in times]


def instant(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def gaps(times: Sequence[datetime]) -> set[timedelta]:
    points = instants(times)
    return {b - a for a, b in pairwise(points)}


def on_local_day(times: Sequence[datetime], day: int) -> list[datetime]:
    return [t for t in times if t.day == day]


def test_the_transitions_used_here_are_where_the_tests_say() -> None:
    for before, after, zone in [
        (utc(2026, 3, 29, 0, 59), utc(2026, 3, 29, 1, 0), BERLIN),
        (utc(2026, 10, 25, 0, 59), utc(2026, 10, 25, 1, 0), BERLIN),
        (utc(2026, 3, 8, 6, 59), utc(2026, 3, 8, 7, 0), NEW_YORK),
        (utc(2026, 11, 1, 5, 59), utc(2026, 11, 1, 6, 0), NEW_YORK),
    ]:
        assert before.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset()


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("* * * *", "has 4 fields"),
        ("* * * * * * *", "year field is not supported"),
        ("0 0 1 1 * * 2030", "has 7 fields"),
        ("61 * * * *", "minute field '61' is out of range (allowed: 0-59)"),
        ("0 24 * * *", "hour field '24' is out of range"),
        ("0 0 32 * *", "day-of-month field '32' is out of range"),
        ("0 0 1 13 *", "month field '13' is out of range"),
        ("0 0 * * 8", "day-of-week field '8' is out of range"),
        ("* * * * * 60", "second field '60' is out of range"),
        ("0 0 1 foo *", "month field 'foo' is not valid"),
        ("0 0 1 JNU *", "month field 'JNU' is not valid (expected 1-12 or JAN-DEC"),
        ("0 0 * * funday", "day-of-week field 'funday' is not valid"),
        ("0 0 * * 5L", "day-of-week field '5L' is not valid (expected 0-7 or SUN-SAT"),
        ("*/0 * * * *", "minute field '*/0' has a step of 0"),
        ("0-61/5 * * * *", "minute field '0-61/5' is out of range"),
        ("H * * * *", "hashed (H) and random (R) values are not supported"),
        ("0 R * * *", "hour field 'R'"),
        ("@fortnightly", "unknown alias '@fortnightly'; expected one of @yearly"),
        ("@reboot", "@reboot is not supported"),
        ("@daily 3", "unknown alias"),
        ("0 0 30 2 *", "never fires: day-of-month 30 does not occur in February"),
        ("0 0 31 4,6 *", "never fires"),
    ],
)
def test_bad_schedules_name_the_schedule_field_and_say_what_is_wrong(
    expression: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        Schedule.parse(expression, "UTC")
    assert set(caught.value.fields()) == {"schedule"}
    assert words in caught.value.fields()["schedule"]
    assert words in str(caught.value)


@pytest.mark.parametrize("value", [42, None, 1.5, ["0", "3", "*", "*", "*"]])
def test_a_schedule_that_is_not_a_string_is_refused(value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        Schedule.parse(value)
    message = caught.value.fields()["schedule"]
    assert message == f"must be a cron expression string, not {type(value).__name__}"


def test_invalid_input_is_a_value_error_and_comes_from_croniter_where_croniter_refused() -> None:
    with pytest.raises(ValueError):
        Schedule.parse("61 * * * *")


def test_an_unknown_timezone_names_the_timezone_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        Schedule.parse("0 3 * * *", "Mars/Olympus")
    assert set(caught.value.fields()) == {"timezone"}
    assert "unknown timezone 'Mars/Olympus'" in caught.value.fields()["timezone"]


def test_both_problems_come_in_one_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        Schedule.parse("61 * * * *", "Mars/Olympus")
    assert set(caught.value.fields()) == {"schedule", "timezone"}
    assert "schedule: minute field '61'" in str(caught.value)
    assert "timezone: unknown timezone" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Mars/Olympus", "unknown timezone"),
        ("europe/berlin", "unknown timezone"),
        ("Europe", "unknown timezone"),  # a folder of the tz database, not a zone
        ("zone.tab", "unknown timezone"),  # a file of the tz database, not a zone
        ("../etc/passwd", "unknown timezone"),
        ("Europe//Berlin", "unknown timezone"),
        ("/etc/localtime", "not a file path"),
        ("C:\\Windows", "not a file path"),
        ("", "is empty"),
        ("  ", "is empty"),
        (7, "not int"),
    ],
)
def test_load_timezone_refuses_unknown_and_malformed_names(name: Any, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_timezone(name)
    assert set(caught.value.fields()) == {"timezone"}
    assert words in caught.value.fields()["timezone"]


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Etc/GMT+5"])
def test_load_timezone_returns_the_zone(name: str) -> None:
    assert load_timezone(name) == ZoneInfo(name)


def test_constructing_directly_validates_like_parse() -> None:
    with pytest.raises(InvalidInput):
        Schedule(expression="61 * * * *")
    schedule = Schedule(expression=" 0 3 * * * ", timezone="Europe/Berlin")
    assert schedule == Schedule.parse("0 3 * * *", "Europe/Berlin")
    assert hash(schedule) == hash(Schedule.parse("0 3 * * *", "Europe/Berlin"))
    assert repr(schedule) == "Schedule(expression='0 3 * * *', timezone='Europe/Berlin')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.expression = "0 4 * * *"  # type: ignore[misc]
    with pytest.raises(InvalidInput):
        dataclasses.replace(schedule, timezone="Mars/Olympus")


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 ? * MON",
        "0 0 L * *",
        "0 0 * * L5",
        "0 0 15W * *",
        "0 0 * * MON#2",
        "0 0 * JAN-MAR mon-fri",
        "0 0 * * 5-7",
        "0 0 29 2 *",
        "0 0 31 2 MON",  # day-of-month OR day-of-week: every Monday in February
        "59/15 * * * *",
        "*/90 * * * * *",
    ],
)
def test_what_croniter_accepts_parses_and_describes_without_raising(expression: str) -> None:
    schedule = Schedule.parse(expression)
    text = schedule.describe()
    assert isinstance(text, str) and text
    assert schedule.next_run(start=START) is not None


# -- forms and aliases -----------------------------------------------------------------------


def test_the_expression_is_kept_stripped_and_fields_are_normalized() -> None:
    schedule = Schedule.parse("  0\t3  * * *\n", "Europe/Berlin")
    assert schedule.expression == "0\t3  * * *"
    assert schedule.fields == "0 3 * * *"
    assert schedule.timezone == "Europe/Berlin"
    assert schedule.zone == BERLIN
    assert not schedule.has_seconds


def test_the_default_timezone_is_utc() -> None:
    schedule = Schedule.parse("0 3 * * *")
    assert schedule.timezone == "UTC"
    assert schedule.next_run(start=START) == utc(2026, 1, 17, 3, 0)


@pytest.mark.parametrize(
    ("alias", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases_expand_to_five_fields(alias: str, fields: str) -> None:
    schedule = Schedule.parse(alias)
    assert schedule.expression == alias
    assert schedule.fields == fields
    assert not schedule.has_seconds
    assert schedule.next_runs(2, start=START) == Schedule.parse(fields).next_runs(2, start=START)


def test_the_aliases_are_the_documented_seven() -> None:
    assert sorted(ALIASES) == sorted(
        ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]
    )


def test_alias_fire_times() -> None:
    assert Schedule.parse("@weekly").next_run(start=START) == utc(2026, 1, 18, 0, 0)  # Sunday
    assert Schedule.parse("@monthly").next_run(start=START) == utc(2026, 2, 1, 0, 0)
    assert Schedule.parse("@yearly").next_run(start=START) == utc(2027, 1, 1, 0, 0)
    assert Schedule.parse("@hourly").next_run(start=START) == utc(2026, 1, 16, 15, 0)


@pytest.mark.parametrize(
    ("expression", "interval_like"),
    [
        ("*/15 * * * *", True),
        ("0 * * * *", True),
        ("0 */1 * * *", True),
        ("0 0-23 * * *", True),
        ("30 * * * 1-5", True),
        ("* * * * * */10", True),
        ("@hourly", True),
        ("0 3 * * *", False),
        ("*/15 2 * * *", False),
        ("0 0-22 * * *", False),
        ("0 */2 * * *", False),
        ("@daily", False),
    ],
)
def test_interval_like_means_the_hour_field_covers_every_hour(
    expression: str, interval_like: bool
) -> None:
    assert Schedule.parse(expression).is_interval_like is interval_like


# -- seconds (6 fields, seconds last) --------------------------------------------------------


def test_six_fields_put_seconds_last() -> None:
    schedule = Schedule.parse("* * * * * */15")
    assert schedule.has_seconds
    assert schedule.fields == "* * * * * */15"
    assert schedule.describe() == "Every 15 seconds"
    assert schedule.next_runs(4, start=START + timedelta(microseconds=500_000)) == [
        utc(2026, 1, 16, 14, 5, 45),
        utc(2026, 1, 16, 14, 6, 0),
        utc(2026, 1, 16, 14, 6, 15),
        utc(2026, 1, 16, 14, 6, 30),
    ]


def test_a_seconds_value_last_is_the_second_of_the_minute() -> None:
    schedule = Schedule.parse("0 3 * * * 30")
    assert schedule.describe() == "At 03:00:30 AM"
    assert schedule.next_runs(2, start=START) == [
        utc(2026, 1, 17, 3, 0, 30),
        utc(2026, 1, 18, 3, 0, 30),
    ]


def test_seconds_schedules_follow_absolute_time_across_spring_forward() -> None:
    schedule = Schedule.parse("* * * * * */20", "Europe/Berlin")
    runs = schedule.next_runs(4, start=utc(2026, 3, 29, 0, 59, 30))
    assert instants(runs) == [
        utc(2026, 3, 29, 0, 59, 40),
        utc(2026, 3, 29, 1, 0, 0),
        utc(2026, 3, 29, 1, 0, 20),
        utc(2026, 3, 29, 1, 0, 40),
    ]
    assert [r.isoformat() for r in runs[:2]] == [
        "2026-03-29T01:59:40+01:00",
        "2026-03-29T03:00:00+02:00",
    ]


# -- human text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("*/15 * * * *", "Every 15 minutes"),
        ("0 3 * * *", "At 03:00 AM"),
        ("30 14 * * *", "At 02:30 PM"),
        ("* * * * *", "Every minute"),
        ("0 * * * *", "Every hour"),
        ("@daily", "At 12:00 AM"),
        ("0 0 * * 1-5", "At 12:00 AM, Monday through Friday"),
        ("0 0 * * mon-fri", "At 12:00 AM, Monday through Friday"),
        ("0 0 1 jan *", "At 12:00 AM, on day 1 of the month, only in January"),
        ("0 0 l * *", "At 12:00 AM, on the last day of the month"),
        ("0 0 * * l5", "At 12:00 AM, on the last Friday of the month"),
        ("* * * * * */15", "Every 15 seconds"),
        ("*/15 * * * * 0", "Every 15 minutes"),
        ("0 3 * * * 30", "At 03:00:30 AM"),
    ],
)
def test_describe_gives_human_text(expression: str, text: str) -> None:
    assert Schedule.parse(expression).describe() == text


def test_describe_falls_back_to_the_expression(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(expression: str, options: object = None) -> str:
        raise RuntimeError("cannot word it")

    def broken_describer(expression: str, options: object) -> None:
        raise RuntimeError("cannot word it either")

    monkeypatch.setattr(cron, "get_description", broken)
    monkeypatch.setattr(cron, "_Describer", broken_describer)
    cron._describe.cache_clear()
    assert Schedule.parse("7 7 7 7 *").describe() == "7 7 7 7 *"
    cron._describe.cache_clear()


@pytest.mark.parametrize(
    "expression",
    ["0 3 * * *", "*/15 9-17 * * 1-5", "30 2 1 */3 *", "* * * * * */20", "@weekly", "0 0 L * *"],
)
def test_the_fast_describer_words_as_the_library_does(expression: str) -> None:
    parsed = Schedule.parse(expression)
    options = cron._describe_options()
    source = parsed._parsed.description_input
    assert parsed.describe() == str(cron.get_description(source, options))


# -- fire times ------------------------------------------------------------------------------


def test_next_runs_in_a_timezone() -> None:
    schedule = Schedule.parse("0 3 * * *", "Europe/Berlin")
    runs = schedule.next_runs(3, start=START)
    assert instants(runs) == [
        utc(2026, 1, 17, 2, 0),
        utc(2026, 1, 18, 2, 0),
        utc(2026, 1, 19, 2, 0),
    ]
    assert all(r.tzinfo == BERLIN and (r.hour, r.minute) == (3, 0) for r in runs)
    summer = schedule.next_runs(1, start=utc(2026, 7, 1, 12, 0))
    assert instants(summer) == [utc(2026, 7, 2, 1, 0)]


def test_start_may_be_in_any_timezone() -> None:
    schedule = Schedule.parse("0 3 * * *", "Europe/Berlin")
    for zone in (UTC, BERLIN, NEW_YORK, ZoneInfo("Asia/Kolkata")):
        assert instants(schedule.next_runs(2, start=START.astimezone(zone))) == [
            utc(2026, 1, 17, 2, 0),
            utc(2026, 1, 18, 2, 0),
        ]


def test_runs_are_strictly_after_start() -> None:
    schedule = Schedule.parse("*/15 * * * *", "Europe/Berlin")
    at_a_run = utc(2026, 1, 16, 14, 15)
    assert schedule.next_run(start=at_a_run) == utc(2026, 1, 16, 14, 30)
    assert schedule.next_run(start=at_a_run - timedelta(microseconds=1)) == at_a_run


def test_next_run_is_the_first_of_next_runs() -> None:
    schedule = Schedule.parse("30 1 * * *", "America/New_York")
    assert schedule.next_run(start=START) == schedule.next_runs(1, start=START)[0]
    assert schedule.next_runs(0, start=START) == []


def test_a_naive_start_or_a_negative_count_is_a_programming_error() -> None:
    schedule = Schedule.parse("0 3 * * *")
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_run(start=datetime(2026, 1, 16, 14, 5))
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.runs_between(START, datetime(2026, 1, 20))
    with pytest.raises(ValueError, match="n must be"):
        schedule.next_runs(-1, start=START)


# -- DST: spring-forward ---------------------------------------------------------------------


def test_daily_0230_runs_once_at_the_jump_in_berlin() -> None:
    schedule = Schedule.parse("30 2 * * *", "Europe/Berlin")
    runs = schedule.next_runs(4, start=utc(2026, 3, 27, 0, 0))
    assert instants(runs) == [
        utc(2026, 3, 27, 1, 30),
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST, the first instant after the jump
        utc(2026, 3, 30, 0, 30),
    ]
    assert runs[2].isoformat() == "2026-03-29T03:00:00+02:00"


def test_daily_0230_runs_once_at_the_jump_in_new_york() -> None:
    schedule = Schedule.parse("30 2 * * *", "America/New_York")
    runs = schedule.next_runs(3, start=utc(2026, 3, 7, 0, 0))
    assert instants(runs) == [
        utc(2026, 3, 7, 7, 30),
        utc(2026, 3, 8, 7, 0),  # 03:00 EDT
        utc(2026, 3, 9, 6, 30),
    ]
    assert runs[1].isoformat() == "2026-03-08T03:00:00-04:00"


@pytest.mark.parametrize(
    ("zone", "jump"),
    [
        ("Europe/Berlin", utc(2026, 3, 29, 1, 0)),
        ("America/New_York", utc(2026, 3, 8, 7, 0)),
    ],
)
def test_skipped_wall_times_collapse_into_one_run_at_the_jump(zone: str, jump: datetime) -> None:
    schedule = Schedule.parse("*/15 2 * * *", zone)
    runs = schedule.runs_between(jump - timedelta(days=2), jump + timedelta(days=2))
    day = jump.astimezone(ZoneInfo(zone)).day
    assert instants(on_local_day(runs, day)) == [jump]
    assert [r.minute for r in on_local_day(runs, day - 1)] == [0, 15, 30, 45]
    assert [r.minute for r in on_local_day(runs, day + 1)] == [0, 15, 30, 45]


def test_a_run_at_the_jump_instant_itself_still_runs_once() -> None:
    schedule = Schedule.parse("*/15 2,3 * * *", "Europe/Berlin")
    runs = schedule.runs_between(utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 12, 0))
    assert instants(runs) == [
        utc(2026, 3, 29, 1, 0),  # 02:00-02:45 (skipped) and 03:00 CEST, once
        utc(2026, 3, 29, 1, 15),
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 29, 1, 45),
    ]


def test_every_15_minutes_follows_absolute_time_across_spring_forward() -> None:
    schedule = Schedule.parse("*/15 * * * *", "Europe/Berlin")
    runs = schedule.runs_between(utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 4, 0))
    assert len(runs) == 24
    assert gaps(runs) == {MINUTES_15}
    walls = [r.strftime("%H:%M%z") for r in runs]
    assert walls[8:12] == ["01:15+0100", "01:30+0100", "01:45+0100", "03:00+0200"]
    assert not any(r.hour == 2 for r in runs)


def test_an_interval_like_schedule_does_not_run_at_the_jump_for_a_skipped_time() -> None:
    schedule = Schedule.parse("30 * * * *", "Europe/Berlin")
    runs = schedule.runs_between(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 3, 0))
    assert [r.isoformat() for r in runs] == [
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:30:00+02:00",  # 02:30 does not exist; nothing runs at the jump
        "2026-03-29T04:30:00+02:00",
    ]
    assert gaps(runs) == {timedelta(hours=1)}


def test_hourly_has_23_runs_on_the_spring_forward_day() -> None:
    schedule = Schedule.parse("0 * * * *", "America/New_York")
    runs = schedule.runs_between(utc(2026, 3, 8, 0, 0), utc(2026, 3, 9, 12, 0))
    assert len(on_local_day(runs, 8)) == 23
    assert gaps(runs) == {timedelta(hours=1)}


# -- DST: fall-back --------------------------------------------------------------------------


def test_daily_0230_runs_once_at_its_first_occurrence_in_berlin() -> None:
    schedule = Schedule.parse("30 2 * * *", "Europe/Berlin")
    runs = schedule.next_runs(3, start=utc(2026, 10, 24, 12, 0))
    assert instants(runs) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST; 02:30 CET (01:30 UTC) does not run
        utc(2026, 10, 26, 1, 30),
        utc(2026, 10, 27, 1, 30),
    ]
    assert runs[0].isoformat() == "2026-10-25T02:30:00+02:00"


def test_daily_0130_runs_once_at_its_first_occurrence_in_new_york() -> None:
    schedule = Schedule.parse("30 1 * * *", "America/New_York")
    runs = schedule.next_runs(3, start=utc(2026, 10, 31, 12, 0))
    assert instants(runs) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT; 01:30 EST (06:30 UTC) does not run
        utc(2026, 11, 2, 6, 30),
        utc(2026, 11, 3, 6, 30),
    ]
    assert runs[0].isoformat() == "2026-11-01T01:30:00-04:00"


def test_a_fixed_schedule_inside_the_repeated_hour_runs_in_the_first_pass_only() -> None:
    schedule = Schedule.parse("*/15 2 * * *", "Europe/Berlin")
    runs = schedule.runs_between(utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 12, 0))
    assert instants(runs) == [utc(2026, 10, 25, 0, m) for m in (0, 15, 30, 45)]


def test_every_15_minutes_follows_absolute_time_across_fall_back() -> None:
    schedule = Schedule.parse("*/15 * * * *", "Europe/Berlin")
    runs = schedule.runs_between(utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 4, 0))
    assert len(runs) == 24
    assert gaps(runs) == {MINUTES_15}
    walls = [r.strftime("%H:%M%z") for r in runs]
    assert walls[6:16] == [
        "01:45+0200",
        "02:00+0200",
        "02:15+0200",
        "02:30+0200",
        "02:45+0200",
        "02:00+0100",
        "02:15+0100",
        "02:30+0100",
        "02:45+0100",
        "03:00+0100",
    ]


@pytest.mark.parametrize(
    ("zone", "transition"),
    [
        ("Europe/Berlin", utc(2026, 3, 29, 1, 0)),
        ("Europe/Berlin", utc(2026, 10, 25, 1, 0)),
        ("America/New_York", utc(2026, 3, 8, 7, 0)),
        ("America/New_York", utc(2026, 11, 1, 6, 0)),
    ],
)
def test_every_15_minutes_is_evenly_spaced_through_each_transition(
    zone: str, transition: datetime
) -> None:
    schedule = Schedule.parse("*/15 * * * *", zone)
    start = transition - timedelta(hours=3)
    runs = schedule.runs_between(start, transition + timedelta(hours=3))
    assert instants(runs) == [start + MINUTES_15 * k for k in range(1, 25)]


@pytest.mark.parametrize(
    ("zone", "day_start", "day"),
    [
        ("Europe/Berlin", utc(2026, 10, 24, 22, 0), 25),
        ("America/New_York", utc(2026, 11, 1, 4, 0), 1),
    ],
)
def test_hourly_has_25_runs_on_the_fall_back_day(zone: str, day_start: datetime, day: int) -> None:
    schedule = Schedule.parse("0 * * * *", zone)
    runs = schedule.runs_between(day_start - timedelta(seconds=1), day_start + timedelta(hours=30))
    assert len(on_local_day(runs, day)) == 25
    assert gaps(runs) == {timedelta(hours=1)}


# -- DST: where start lies -------------------------------------------------------------------


def test_start_inside_the_second_fold() -> None:
    start = utc(2026, 10, 25, 1, 10)  # 02:10 CET, the second 02:10 of the night
    assert start.astimezone(BERLIN).fold == 1
    every_15 = Schedule.parse("*/15 * * * *", "Europe/Berlin")
    assert instants(every_15.next_runs(4, start=start)) == [
        utc(2026, 10, 25, 1, 15),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 25, 1, 45),
        utc(2026, 10, 25, 2, 0),
    ]
    daily = Schedule.parse("30 2 * * *", "Europe/Berlin")
    assert instants(daily.next_runs(1, start=start)) == [utc(2026, 10, 26, 1, 30)]
    three = Schedule.parse("0 3 * * *", "Europe/Berlin")
    assert instants(three.next_runs(1, start=start)) == [utc(2026, 10, 25, 2, 0)]
    as_local = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=BERLIN)
    assert instants(every_15.next_runs(4, start=as_local)) == instants(
        every_15.next_runs(4, start=start)
    )


def test_start_inside_the_first_pass_of_the_repeated_hour() -> None:
    start = utc(2026, 10, 25, 0, 20)  # 02:20 CEST
    every_15 = Schedule.parse("*/15 * * * *", "Europe/Berlin")
    assert instants(every_15.next_runs(6, start=start)) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 0, 45),
        utc(2026, 10, 25, 1, 0),  # 02:00 CET: its first pass was before start
        utc(2026, 10, 25, 1, 15),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 25, 1, 45),
    ]
    daily = Schedule.parse("30 2 * * *", "Europe/Berlin")
    assert instant(daily.next_run(start=start)) == utc(2026, 10, 25, 0, 30)
    after_first_pass = utc(2026, 10, 25, 0, 40)
    assert instant(daily.next_run(start=after_first_pass)) == utc(2026, 10, 26, 1, 30)


def test_start_just_before_and_at_the_jump() -> None:
    daily = Schedule.parse("30 2 * * *", "Europe/Berlin")
    jump = utc(2026, 3, 29, 1, 0)
    assert daily.next_run(start=jump - timedelta(seconds=1)) == jump
    assert daily.next_run(start=jump) == utc(2026, 3, 30, 0, 30)


# -- runs_between (missed slots) -------------------------------------------------------------


def test_runs_between_across_spring_forward() -> None:
    schedule = Schedule.parse("30 2 * * *", "Europe/Berlin")
    runs = schedule.runs_between(utc(2026, 3, 27, 0, 0), utc(2026, 3, 31, 0, 0))
    assert instants(runs) == [
        utc(2026, 3, 27, 1, 30),
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 30, 0, 30),
    ]


def test_runs_between_across_fall_back() -> None:
    schedule = Schedule.parse("*/30 * * * *", "America/New_York")
    runs = schedule.runs_between(utc(2026, 11, 1, 4, 45), utc(2026, 11, 1, 7, 0))
    assert instants(runs) == [
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 6, 0),
        utc(2026, 11, 1, 6, 30),
        utc(2026, 11, 1, 7, 0),
    ]
    assert [r.strftime("%H:%M %Z") for r in runs] == [
        "01:00 EDT",
        "01:30 EDT",
        "01:00 EST",
        "01:30 EST",
        "02:00 EST",
    ]


def test_runs_between_excludes_start_includes_end_and_honours_limit() -> None:
    schedule = Schedule.parse("0 * * * *", "Europe/Berlin")
    at = utc(2026, 1, 16, 15, 0)
    assert schedule.runs_between(at, at) == []
    assert schedule.runs_between(at - timedelta(seconds=1), at) == [at]
    assert schedule.runs_between(at, at - timedelta(hours=5)) == []
    every_minute = Schedule.parse("* * * * *")
    day = every_minute.runs_between(START, START + timedelta(days=1), limit=10)
    assert instants(day) == [utc(2026, 1, 16, 14, 6) + timedelta(minutes=k) for k in range(10)]
    assert every_minute.runs_between(START, START + timedelta(days=1), limit=0) == []


def test_an_engine_stepping_a_fake_clock_sees_each_slot_once() -> None:
    schedule = Schedule.parse("*/20 * * * *", "America/New_York")
    clock = FakeClock(utc(2026, 11, 1, 4, 50))
    seen: list[datetime] = []
    while clock.now() < utc(2026, 11, 1, 8, 0):
        slot = schedule.next_run(start=clock.now())
        assert slot is not None
        seen.append(slot)
        clock.set(slot)
    expected = schedule.runs_between(utc(2026, 11, 1, 4, 50), utc(2026, 11, 1, 8, 0))
    assert instants(seen) == instants(expected)
    assert gaps(seen) == {timedelta(minutes=20)}


# -- properties over a year ------------------------------------------------------------------

EXPRESSIONS = [
    "*/15 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "*/15 2 * * *",
    "30 1 * * 0",
    "0 0-3 * * *",
    "* * * * * */20",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


@cache
def year_of_starts(zone: ZoneInfo) -> list[datetime]:
    starts = [utc(2026, 1, 1, 0, 7) + timedelta(hours=73 * k, seconds=k % 61) for k in range(120)]
    transition_edges: list[datetime] = []
    hour = utc(2026, 1, 1, 0, 0)
    while hour.year == 2026:
        following = hour + timedelta(hours=1)
        if hour.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            transition_edges += [following + timedelta(minutes=m) for m in (-75, -31, 0, 29, 61)]
        hour = following
    return starts + transition_edges


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_runs_increase_strictly_after_start_and_extend_as_prefixes(
    expression: str, zone_name: str
) -> None:
    schedule = Schedule.parse(expression, zone_name)
    zone = ZoneInfo(zone_name)
    for start in year_of_starts(zone):
        longer = schedule.next_runs(8, start=start)
        points = instants(longer)
        assert len(points) == 8
        assert points[0] > start
        assert all(a < b for a, b in pairwise(points))
        assert all(r.tzinfo == zone for r in longer)
        assert instants(schedule.next_runs(3, start=start)) == points[:3]
        assert instant(schedule.next_run(start=start)) == points[0]
        assert instants(schedule.runs_between(start, points[-1])) == points
        if not schedule.is_interval_like:
            assert all(r.fold == 0 for r in longer)
