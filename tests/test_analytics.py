"""History to frames and figures: ``taskops.analytics`` on Job objects built here."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest

from taskops.analytics import (
    SAMPLE_COLUMNS,
    STATS_COLUMNS,
    daily_run_figure,
    daily_run_stats,
    runspace_memory_figure,
    runspace_samples_frame,
)
from taskops.errors import InvalidInput
from taskops.model import Job, JobState

NOW = datetime(2026, 1, 16, 14, 5, 30, tzinfo=UTC)  # a Friday


def job(
    state: JobState,
    started: datetime | None,
    seconds: float | None = 10.0,
    *,
    ended: bool = True,
    number: int = 1,
) -> Job:
    """A job of ``global.Cleanup`` started at ``started`` that ran ``seconds``."""
    end = started + timedelta(seconds=seconds) if started and seconds is not None else None
    return Job(
        id=number,
        name=f"Task_Cleanup_{number}",
        state=state,
        owner="TaskEngine",
        task_id="global.Cleanup",
        app="global",
        scheduled_for=started,
        queued_at=started or NOW,
        started_at=started,
        ended_at=end if ended else None,
        exit_code=0 if state == JobState.COMPLETED else 1,
        error=None,
        progress=None,
        progress_message=None,
        output_bytes=0,
    )


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def row(frame: pd.DataFrame, day: date) -> dict[str, Any]:
    rows = frame[frame["day"] == day].to_dict("records")
    assert len(rows) == 1
    return rows[0]


def test_columns_dtypes_and_zero_filled_days() -> None:
    frame = daily_run_stats([], now=NOW, timezone="UTC")
    assert tuple(frame.columns) == STATS_COLUMNS
    assert list(frame["day"]) == [date(2026, 1, d) for d in range(10, 17)]
    assert all(type(d) is date for d in frame["day"])
    assert str(frame["runs"].dtype) == "int64"
    assert str(frame["successes"].dtype) == "int64"
    assert str(frame["failures"].dtype) == "int64"
    assert str(frame["success_rate"].dtype) == "float64"
    assert str(frame["mean_duration"].dtype) == "float64"
    assert frame["runs"].sum() == frame["successes"].sum() == frame["failures"].sum() == 0
    assert frame["success_rate"].isna().all()
    assert frame["mean_duration"].isna().all()


def test_counts_rates_and_durations_per_day() -> None:
    jobs = [
        job(JobState.COMPLETED, at(16, 9), 10, number=1),
        job(JobState.COMPLETED, at(16, 10), 20, number=2),
        job(JobState.FAILED, at(16, 11), 30, number=3),
        job(JobState.TERMINATED, at(16, 12), 60, number=4),
        job(JobState.STOPPED, at(14, 8), 5, number=5),  # a run, neither success nor failure
        job(JobState.COMPLETED, at(12, 3), 1.5, number=6),
    ]
    frame = daily_run_stats(jobs, now=NOW, timezone="UTC")
    today = row(frame, date(2026, 1, 16))
    assert (today["runs"], today["successes"], today["failures"]) == (4, 2, 2)
    assert today["success_rate"] == pytest.approx(0.5)
    assert today["mean_duration"] == pytest.approx(30.0)
    stopped = row(frame, date(2026, 1, 14))
    assert (stopped["runs"], stopped["successes"], stopped["failures"]) == (1, 0, 0)
    assert stopped["success_rate"] == 0.0
    assert stopped["mean_duration"] == pytest.approx(5.0)
    monday = row(frame, date(2026, 1, 12))
    assert monday["success_rate"] == 1.0
    assert monday["mean_duration"] == pytest.approx(1.5)
    quiet = row(frame, date(2026, 1, 13))
    assert quiet["runs"] == 0
    assert math.isnan(quiet["success_rate"])
    assert math.isnan(quiet["mean_duration"])


def test_only_ended_runs_inside_the_window_count() -> None:
    jobs = [
        job(JobState.RUNNING, at(16, 14), ended=False, number=1),
        job(JobState.QUEUED, None, None, ended=False, number=2),
        job(JobState.COMPLETED, at(9, 23, 59), number=3),  # the day before the first day
        job(JobState.COMPLETED, at(10, 0, 0), number=4),  # the first day
        job(JobState.COMPLETED, NOW + timedelta(hours=11), number=5),  # tomorrow
    ]
    frame = daily_run_stats(jobs, now=NOW, timezone="UTC")
    assert frame["runs"].tolist() == [1, 0, 0, 0, 0, 0, 0]


def test_days_are_calendar_days_of_the_timezone() -> None:
    # 23:30 UTC on the 15th is 00:30 on the 16th in Berlin and 18:30 on the 15th in New York
    late = job(JobState.COMPLETED, at(15, 23, 30))
    berlin = daily_run_stats([late], now=NOW, timezone="Europe/Berlin")
    assert row(berlin, date(2026, 1, 16))["runs"] == 1
    assert row(berlin, date(2026, 1, 15))["runs"] == 0
    new_york = daily_run_stats([late], now=NOW, timezone="America/New_York")
    assert row(new_york, date(2026, 1, 15))["runs"] == 1
    # and "today" is today there: 23:30 UTC on the 16th is 08:30 on the 17th in Tokyo
    tokyo = daily_run_stats([], now=at(16, 23, 30), timezone="Asia/Tokyo")
    assert tokyo["day"].iloc[-1] == date(2026, 1, 17)
    assert tokyo["day"].iloc[0] == date(2026, 1, 11)


def test_window_length() -> None:
    frame = daily_run_stats([job(JobState.COMPLETED, at(1, 12))], days=30, now=NOW, timezone="UTC")
    assert len(frame) == 30
    assert frame["day"].iloc[0] == date(2025, 12, 18)
    assert row(frame, date(2026, 1, 1))["runs"] == 1
    assert len(daily_run_stats([], days=1, now=NOW, timezone="UTC")) == 1


@pytest.mark.parametrize("days", [0, -3, True, 2.5])
def test_bad_days_are_invalid_input(days: Any) -> None:
    with pytest.raises(InvalidInput, match="days"):
        daily_run_stats([], days=days, now=NOW, timezone="UTC")


def test_bad_timezone_and_naive_now_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown timezone"):
        daily_run_stats([], now=NOW, timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="naive"):
        daily_run_stats([], now=NOW.replace(tzinfo=None), timezone="UTC")


def test_figure_traces() -> None:
    jobs = [
        job(JobState.COMPLETED, at(16, 9), 10, number=1),
        job(JobState.FAILED, at(16, 10), 30, number=2),
        job(JobState.COMPLETED, at(14, 9), 4, number=3),
    ]
    stats = daily_run_stats(jobs, now=NOW, timezone="UTC")
    figure = daily_run_figure(stats)
    assert isinstance(figure, go.Figure)
    kinds = [(trace.type, trace.name) for trace in figure.data]
    assert kinds == [("bar", "Succeeded"), ("bar", "Failed"), ("scatter", "Avg duration")]
    succeeded, failed, duration = figure.data
    days = [f"2026-01-{d}" for d in range(10, 17)]
    assert list(succeeded.x) == list(failed.x) == list(duration.x) == days
    assert list(succeeded.y) == [0, 0, 0, 0, 1, 0, 1]
    assert list(failed.y) == [0, 0, 0, 0, 0, 0, 1]
    assert list(duration.y) == [None, None, None, None, 4.0, None, 20.0]
    assert duration.yaxis == "y2"
    assert succeeded.yaxis == failed.yaxis == "y"
    # the success rate and run count are in every point's hover text
    hover = [tuple(c) for c in succeeded.customdata]
    assert hover == [("no runs", 0)] * 4 + [("100%", 1), ("no runs", 0), ("50%", 2)]
    assert [tuple(c) for c in duration.customdata] == hover
    assert "success rate" in succeeded.hovertemplate
    layout = figure.layout
    assert layout.barmode == "stack"
    assert layout.height == 260
    assert layout.legend.orientation == "h"
    assert layout.title.text == "Last 7 days"
    assert layout.margin.t <= 50 and layout.margin.b <= 50
    assert layout.yaxis2.title.text == "seconds"


def test_figure_title_and_missing_columns() -> None:
    stats = daily_run_stats([], days=14, now=NOW, timezone="UTC")
    assert daily_run_figure(stats, title="Two weeks").layout.title.text == "Two weeks"
    with pytest.raises(InvalidInput, match="mean_duration"):
        daily_run_figure(stats.drop(columns=["mean_duration"]))


# -- runspace samples ------------------------------------------------------------------------


def history_point(seconds: int, memory: float | None, threads: int | None) -> dict[str, Any]:
    return {
        "time": (NOW + timedelta(seconds=seconds)).isoformat(),
        "memoryMB": memory,
        "threads": threads,
    }


def test_samples_frame_columns_and_dtypes() -> None:
    history = [history_point(0, 10.5, 2), history_point(2, None, None), history_point(4, 12, 3)]
    frame = runspace_samples_frame(history)
    assert tuple(frame.columns) == SAMPLE_COLUMNS
    assert isinstance(frame["time"].dtype, pd.DatetimeTZDtype)
    assert str(frame["time"].dt.tz) == "UTC"
    assert frame["time"].tolist() == [NOW + timedelta(seconds=s) for s in (0, 2, 4)]
    assert str(frame["memory_mb"].dtype) == "float64"
    assert frame["memory_mb"].tolist()[0::2] == [10.5, 12.0]
    assert math.isnan(frame["memory_mb"].iloc[1])
    assert str(frame["threads"].dtype) == "Int64"
    assert frame["threads"].iloc[0] == 2 and frame["threads"].iloc[2] == 3
    assert frame["threads"].iloc[1] is pd.NA
    # an offset other than UTC is the same moment in UTC
    berlin = runspace_samples_frame([{**history[0], "time": "2026-01-16T15:05:30+01:00"}])
    assert berlin["time"].iloc[0] == NOW


def test_samples_frame_of_no_samples_keeps_the_dtypes() -> None:
    frame = runspace_samples_frame([])
    assert tuple(frame.columns) == SAMPLE_COLUMNS and len(frame) == 0
    assert isinstance(frame["time"].dtype, pd.DatetimeTZDtype)
    assert str(frame["memory_mb"].dtype) == "float64"
    assert str(frame["threads"].dtype) == "Int64"


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"time": "2026-01-16T14:05:30", "memoryMB": 1.0, "threads": 1}, "no aware time"),
        ({"time": "yesterday", "memoryMB": 1.0, "threads": 1}, "no aware time"),
        ({"time": NOW, "memoryMB": 1.0, "threads": 1}, "no aware time"),
        ({"time": NOW.isoformat(), "threads": 1}, "lacks memoryMB"),
    ],
)
def test_samples_frame_refuses_bad_samples(point: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        runspace_samples_frame([history_point(0, 1.0, 1), point])


def test_memory_figure_traces_in_the_timezone() -> None:
    frame = runspace_samples_frame(
        [history_point(0, 10.5, 2), history_point(2, None, None), history_point(4, 12.25, 3)]
    )
    figure = runspace_memory_figure(frame, timezone="Europe/Berlin")
    assert isinstance(figure, go.Figure)
    assert [(trace.type, trace.name) for trace in figure.data] == [
        ("scatter", "Memory (MB)"),
        ("scatter", "Threads"),
    ]
    memory, threads = figure.data
    # plotly.js ignores offsets: the wall-clock time in Berlin, an hour ahead of UTC
    assert list(memory.x) == ["2026-01-16 15:05:30", "2026-01-16 15:05:32", "2026-01-16 15:05:34"]
    assert list(memory.y) == [10.5, None, 12.25]
    assert list(threads.y) == [2, None, 3]
    assert memory.connectgaps is False
    assert (memory.yaxis, threads.yaxis) == ("y", "y2")
    layout = figure.layout
    assert layout.title.text == "Memory over time"
    assert layout.height == 260
    assert layout.yaxis.title.text == "MB" and layout.yaxis2.title.text == "threads"
    assert layout.annotations == ()
    assert layout.yaxis2.dtick == 1  # whole threads
    many = runspace_samples_frame([history_point(0, 1.0, 40)])
    assert runspace_memory_figure(many).layout.yaxis2.dtick == 10
    assert runspace_memory_figure(frame, title="Runspace 7").layout.title.text == "Runspace 7"


def test_memory_figure_of_no_samples_says_so() -> None:
    figure = runspace_memory_figure(runspace_samples_frame([]))
    assert [trace.x for trace in figure.data] == [(), ()]
    [note] = figure.layout.annotations
    assert note.text == "No samples yet"
    assert figure.layout.xaxis.showticklabels is False


def test_memory_figure_refuses_missing_columns_and_unknown_zones() -> None:
    frame = runspace_samples_frame([history_point(0, 10.5, 2)])
    with pytest.raises(InvalidInput, match="threads"):
        runspace_memory_figure(frame.drop(columns=["threads"]))
    with pytest.raises(InvalidInput, match="unknown timezone"):
        runspace_memory_figure(frame, timezone="Mars/Olympus_Mons")
