"""``taskops.analytics``: figures drawn from the frames of ``ops.stats()``,
``ops.history()`` and ``ops.runspace_samples()`` of a real store (a site in Europe/Berlin, a
fake clock), checked on their traces' data, their empty states and the columns they need."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import taskops
from taskops.analytics import (
    STATE_COLOURS,
    daily_runs_figure,
    duration_trend_figure,
    failures_heatmap,
    runs_timeline,
    runspace_memory_figure,
    success_rate_figure,
)
from taskops.errors import InvalidInput
from taskops.model import JobState, RunspaceKind
from taskops.store import RunspaceSample
from taskops.testing import FakeClock, make_site
from taskops.ui.format import STATE_COLOURS as DASHBOARD_STATES
from taskops.ui.jobs import TEXT_COLOURS

ZONE = "Europe/Berlin"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
"""A Tuesday; winter: Berlin is UTC+1, so the window of 6 hours is 07:00-13:00 there."""
CLEANUP = "global.Cleanup"
BACKUP = "vault.VaultBackup"
AD_HOC = "(ad-hoc jobs)"
DAYS = ["2026-03-08", "2026-03-09", "2026-03-10"]
GREEN, RED, BLUE, ORANGE = "#2e7d32", "#c62828", "#1565c0", "#e65100"


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[taskops.TaskOps]:
    tasks = {
        "global": [{"name": "Cleanup", "schedule": "0 3 * * *", "scriptPath": "tasks/c.py"}],
        "vault": [{"name": "VaultBackup", "schedule": "30 1 * * *", "scriptPath": "tasks/b.py"}],
    }
    site = make_site(tmp_path / "site", tasks, timezone=ZONE)
    with taskops.open_site(site, user="alice", clock=FakeClock(NOW)) as opened:
        yield opened


def at(text: str) -> datetime:
    """An aware UTC time from ``YYYY-MM-DD HH:MM[:SS]``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def run(
    ops: taskops.TaskOps,
    start: datetime,
    seconds: float | None,
    *,
    state: JobState = JobState.COMPLETED,
    task_id: str | None = CLEANUP,
    app: str = "global",
    name: str | None = None,
) -> int:
    """A job queued a second before ``start``, started then and, unless ``seconds`` is
    None (still running), ended ``seconds`` later in ``state``."""
    return ops.store.insert_job(
        name=name or f"Task_{task_id}_{start:%Y%m%d_%H%M%S}",
        owner="Manual",
        state=state if seconds is not None else JobState.RUNNING,
        queued_at=start - timedelta(seconds=1),
        task_id=task_id,
        app=app,
        started_at=start,
        ended_at=start + timedelta(seconds=seconds) if seconds is not None else None,
    )


@pytest.fixture
def three_days(ops: taskops.TaskOps) -> taskops.TaskOps:
    """Runs of the 3 days up to NOW (2026-03-08..10 in Berlin)."""
    run(ops, at("2026-03-08 09:00"), 7.0)
    run(ops, at("2026-03-09 08:00"), 10.0)
    run(ops, at("2026-03-09 08:10"), 20.0)
    run(ops, at("2026-03-09 08:20"), 30.0, state=JobState.FAILED)
    run(ops, at("2026-03-09 08:30"), 40.0, state=JobState.STOPPED)
    run(ops, at("2026-03-09 23:30"), 5.0)  # 00:30 on the 10th in Berlin
    run(ops, at("2026-03-10 09:00"), 15.0, state=JobState.TERMINATED)
    run(ops, at("2026-03-10 11:00"), None)  # running: not counted
    run(ops, at("2026-03-10 10:00"), 100.0, task_id=BACKUP, app="vault")
    run(ops, at("2026-03-09 12:00"), 2.0, state=JobState.FAILED, task_id=None, name="adhoc-1")
    return ops


def traces(figure: go.Figure) -> list[tuple[str, str | None]]:
    return [(trace.type, trace.name) for trace in figure.data]


def notes(figure: go.Figure) -> list[str]:
    return [note.text for note in figure.layout.annotations]


def test_state_colours_are_the_dashboards() -> None:
    assert set(STATE_COLOURS) == {state.value for state in JobState}
    for state, colour in STATE_COLOURS.items():
        assert colour == TEXT_COLOURS[DASHBOARD_STATES[state]], state


# -- daily_runs_figure -----------------------------------------------------------------------


def test_daily_runs_figure_of_one_tasks_days(three_days: taskops.TaskOps) -> None:
    stats = three_days.stats(days=3, by=None, task=CLEANUP)
    figure = daily_runs_figure(stats)

    assert traces(figure) == [
        ("bar", "Succeeded"),
        ("bar", "Failed"),
        ("bar", "Stopped"),
        ("scatter", "Success rate"),
    ]
    succeeded, failed, stopped, rate = figure.data
    assert [t.marker.color for t in (succeeded, failed, stopped)] == [GREEN, RED, ORANGE]
    assert rate.line.color == BLUE
    for trace in figure.data:
        assert list(trace.x) == DAYS
    # the stack is the day's runs: Terminated is a failure, Stopped neither
    assert list(succeeded.y) == [1, 2, 1]
    assert list(failed.y) == [0, 1, 1]
    assert list(stopped.y) == [0, 1, 0]
    assert list(rate.y) == [100.0, 50.0, 50.0]
    assert (succeeded.yaxis, rate.yaxis) == ("y", "y2")
    # every point's hover: runs, successes, failures, rate, mean and p95 duration
    assert [list(row) for row in rate.customdata] == [
        [1, 1, 0, "100%", "7.0 s", "7.0 s"],
        [4, 2, 1, "50%", "25.0 s", "38.5 s"],
        [2, 1, 1, "50%", "10.0 s", "14.5 s"],
    ]
    assert [list(row) for row in succeeded.customdata] == [list(r) for r in rate.customdata]
    assert "success rate" in rate.hovertemplate and "p95" in succeeded.hovertemplate
    layout = figure.layout
    assert layout.title.text == "Last 7 days"
    assert (layout.barmode, layout.height, layout.legend.orientation) == ("stack", 260, "h")
    assert layout.yaxis.title.text == "runs"
    assert tuple(layout.yaxis2.range) == (0, 100) and layout.yaxis2.ticksuffix == "%"
    assert notes(figure) == []


def test_daily_runs_figure_counts_every_run_of_a_busy_task(ops: taskops.TaskOps) -> None:
    """No cap on the runs counted (the task chart once read the last 1,000 only)."""
    first = at("2026-03-10 00:00")
    ops.store.insert_jobs(
        [
            {
                "name": f"Task_Cleanup_{n}",
                "owner": "TaskEngine",
                "state": JobState.FAILED if n % 10 == 0 else JobState.COMPLETED,
                "queued_at": first + timedelta(seconds=30 * n),
                "task_id": CLEANUP,
                "app": "global",
                "started_at": first + timedelta(seconds=30 * n),
                "ended_at": first + timedelta(seconds=30 * n + 2),
            }
            for n in range(1200)
        ]
    )
    figure = daily_runs_figure(ops.stats(days=2, by=None, task=CLEANUP), title="Two days")
    succeeded, failed, _stopped, rate = figure.data
    assert list(succeeded.y) == [0, 1080] and list(failed.y) == [0, 120]
    assert list(rate.y) == [None, 90.0]
    assert figure.layout.title.text == "Two days"


def test_daily_runs_figure_without_runs_says_so(ops: taskops.TaskOps) -> None:
    run(ops, at("2026-03-10 08:00"), 5.0, task_id=BACKUP, app="vault")
    quiet = daily_runs_figure(ops.stats(days=7, by=None, task=CLEANUP))
    assert notes(quiet) == ["No runs in these days"]
    assert len(quiet.data[0].x) == 7 and list(quiet.data[0].y) == [0] * 7
    assert list(quiet.data[3].y) == [None] * 7
    nothing = daily_runs_figure(ops.stats(days=7, by="task", task=CLEANUP))
    assert notes(nothing) == ["No runs in these days"]
    assert [len(trace.x) for trace in nothing.data] == [0, 0, 0, 0]


def test_daily_runs_figure_refuses_missing_columns_and_several_tasks(
    three_days: taskops.TaskOps,
) -> None:
    stats = three_days.stats(days=3, by=None)
    with pytest.raises(InvalidInput, match="missing columns: p95_duration") as caught:
        daily_runs_figure(stats.drop(columns=["p95_duration"]))
    assert "stats" in caught.value.fields()
    with pytest.raises(InvalidInput, match="a day twice"):
        daily_runs_figure(three_days.stats(days=3, by="task"))


# -- success_rate_figure ---------------------------------------------------------------------


def test_success_rate_per_task_worst_first(three_days: taskops.TaskOps) -> None:
    figure = success_rate_figure(three_days.stats(days=3))
    # over the window: ad-hoc 0 of 1, Cleanup 4 of 7, VaultBackup 1 of 1
    assert traces(figure) == [("scatter", AD_HOC), ("scatter", CLEANUP), ("scatter", BACKUP)]
    adhoc, cleanup, backup = figure.data
    for trace in figure.data:
        assert list(trace.x) == DAYS
    assert list(adhoc.y) == [None, 0.0, None]
    assert list(cleanup.y) == [100.0, 50.0, 50.0]
    assert list(backup.y) == [None, None, 100.0]
    assert [list(row) for row in cleanup.customdata] == [[1, 1, 0], [4, 2, 1], [2, 1, 1]]
    assert "%{customdata[0]} runs" in cleanup.hovertemplate
    assert cleanup.connectgaps is False
    layout = figure.layout
    assert layout.title.text == "Success rate"
    assert tuple(layout.yaxis.range) == (0, 100) and layout.yaxis.ticksuffix == "%"
    assert layout.legend.title.text in ("", None)
    assert notes(figure) == []


def test_success_rate_keeps_the_lowest_groups(three_days: taskops.TaskOps) -> None:
    figure = success_rate_figure(three_days.stats(days=3), limit=2, title="Worst")
    assert [trace.name for trace in figure.data] == [AD_HOC, CLEANUP]
    assert figure.layout.legend.title.text == "lowest 2 of 3"
    assert figure.layout.title.text == "Worst"


def test_success_rate_per_app_and_over_all_runs(three_days: taskops.TaskOps) -> None:
    by_app = success_rate_figure(three_days.stats(days=3, by="app"))
    assert [trace.name for trace in by_app.data] == ["global", "vault"]  # 4 of 8, 1 of 1
    assert list(by_app.data[0].y) == [100.0, 40.0, 50.0]
    total = success_rate_figure(three_days.stats(days=3, by=None))
    assert traces(total) == [("scatter", "All runs")]
    [line] = total.data
    assert list(line.x) == DAYS
    assert line.y[:2] == (100.0, 40.0) and line.y[2] == pytest.approx(200 / 3)
    assert line.line.color == BLUE
    assert total.layout.legend.orientation == "h"


def test_success_rate_without_runs_says_so(ops: taskops.TaskOps) -> None:
    for stats in (ops.stats(days=7), ops.stats(days=7, by=None)):
        figure = success_rate_figure(stats)
        assert figure.data == ()
        assert notes(figure) == ["No runs in these days"]
    days = success_rate_figure(ops.stats(days=7, by=None)).layout.xaxis.range
    assert tuple(days) == ("2026-03-04", "2026-03-10")


@pytest.mark.parametrize(("limit", "field"), [(0, "limit"), (True, "limit"), (2.5, "limit")])
def test_success_rate_refuses_bad_input(ops: taskops.TaskOps, limit: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        success_rate_figure(ops.stats(), limit=limit)
    assert field in caught.value.fields()
    with pytest.raises(InvalidInput, match="missing columns: successes, success_rate"):
        success_rate_figure(ops.stats().drop(columns=["successes", "success_rate"]))


# -- failures_heatmap ------------------------------------------------------------------------


def test_failures_heatmap_of_tasks_by_day(three_days: taskops.TaskOps) -> None:
    figure = failures_heatmap(three_days.stats(days=3))
    [heatmap] = figure.data
    assert heatmap.type == "heatmap"
    # VaultBackup never failed: left out; the most failures on top
    assert list(heatmap.y) == [CLEANUP, AD_HOC]
    assert list(heatmap.x) == ["Sun 08 Mar", "Mon 09 Mar", "Tue 10 Mar"]
    assert [list(row) for row in heatmap.z] == [[0, 1, 1], [0, 1, 0]]
    assert [list(row) for row in heatmap.text] == [["", "1", "1"], ["", "1", ""]]
    assert [list(row) for row in heatmap.customdata] == [[1, 4, 2], [0, 1, 0]]
    assert heatmap.zmin == 0 and heatmap.zmax == 1
    assert heatmap.colorscale[-1][1] == RED
    assert figure.layout.yaxis.autorange == "reversed"
    assert figure.layout.title.text == "Failures"
    assert notes(figure) == []
    assert list(failures_heatmap(three_days.stats(days=3), limit=1).data[0].y) == [CLEANUP]


def test_failures_heatmap_empty_states(ops: taskops.TaskOps) -> None:
    empty = failures_heatmap(ops.stats(days=3))
    assert empty.data == () and notes(empty) == ["No runs in these days"]
    run(ops, at("2026-03-10 08:00"), 5.0)
    run(ops, at("2026-03-10 08:30"), 5.0, state=JobState.STOPPED)
    fine = failures_heatmap(ops.stats(days=3))
    assert fine.data == () and notes(fine) == ["No failures in these days"]


def test_failures_heatmap_needs_a_task_column(ops: taskops.TaskOps) -> None:
    with pytest.raises(InvalidInput, match="missing columns: task_id"):
        failures_heatmap(ops.stats(by=None))
    with pytest.raises(InvalidInput, match="missing columns: task_id"):
        failures_heatmap(ops.stats(by="app"))
    with pytest.raises(InvalidInput) as caught:
        failures_heatmap(ops.stats(), limit=0)
    assert "limit" in caught.value.fields()


# -- duration_trend_figure -------------------------------------------------------------------


def test_duration_trend_per_day_of_the_timezone(three_days: taskops.TaskOps) -> None:
    history = three_days.history(task=CLEANUP)
    figure = duration_trend_figure(history, timezone=ZONE)
    assert traces(figure) == [("scatter", "Median"), ("scatter", "p95")]
    median, p95 = figure.data
    assert list(median.x) == list(p95.x) == DAYS
    # the running job is left out; the 23:30 UTC run is on the 10th in Berlin
    assert list(median.y) == [7.0, 25.0, 10.0]
    assert list(p95.y) == pytest.approx([7.0, 38.5, 14.5])
    assert list(median.customdata) == [1, 4, 2]
    # the same percentile as ops.stats
    stats = three_days.stats(days=3, by=None, task=CLEANUP)
    assert list(p95.y) == pytest.approx(stats["p95_duration"].tolist())
    assert (median.line.color, p95.line.dash) == (BLUE, "dash")
    assert figure.layout.yaxis.title.text == "seconds"
    assert figure.layout.title.text == "Duration"
    # in New York the 23:30 UTC run is on the 9th: of 5, 10, 20, 30, 40 the p95 is 38
    new_york = duration_trend_figure(history, timezone="America/New_York", title="NY")
    assert list(new_york.data[0].x) == DAYS
    assert list(new_york.data[0].y) == [7.0, 20.0, 15.0]
    assert new_york.data[1].y[1] == pytest.approx(np.quantile([5, 10, 20, 30, 40], 0.95))
    assert new_york.layout.title.text == "NY"


def test_duration_trend_leaves_gaps_on_days_without_runs(ops: taskops.TaskOps) -> None:
    run(ops, at("2026-03-06 10:00"), 4.0)
    run(ops, at("2026-03-09 10:00"), 8.0)
    figure = duration_trend_figure(ops.history(), timezone=ZONE)
    median = figure.data[0]
    assert list(median.x) == ["2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09"]
    assert list(median.y) == [4.0, None, None, 8.0]
    assert list(median.customdata) == [1, 0, 0, 1]
    assert median.connectgaps is False


def test_duration_trend_without_ended_runs_says_so(ops: taskops.TaskOps) -> None:
    assert notes(duration_trend_figure(ops.history(), timezone=ZONE)) == [
        "No ended runs in these days"
    ]
    run(ops, at("2026-03-10 11:00"), None)
    figure = duration_trend_figure(ops.history(), timezone=ZONE)
    assert figure.data == () and notes(figure) == ["No ended runs in these days"]


def test_duration_trend_refuses_bad_frames(ops: taskops.TaskOps) -> None:
    history = ops.history()
    with pytest.raises(InvalidInput, match="missing columns: duration"):
        duration_trend_figure(history.drop(columns=["duration"]), timezone=ZONE)
    naive = history.assign(started_at=history["started_at"].dt.tz_localize(None))
    with pytest.raises(InvalidInput, match="started_at must be timezone-aware"):
        duration_trend_figure(naive, timezone=ZONE)
    seconds = history.assign(duration=history["duration"].dt.total_seconds())
    with pytest.raises(InvalidInput, match="duration must be timedeltas"):
        duration_trend_figure(seconds, timezone=ZONE)
    with pytest.raises(InvalidInput, match="unknown timezone"):
        duration_trend_figure(history, timezone="Mars/Olympus_Mons")


# -- runs_timeline ---------------------------------------------------------------------------


def test_runs_timeline_of_the_last_hours(three_days: taskops.TaskOps) -> None:
    ops = three_days
    run(ops, at("2026-03-10 05:00"), 5400.0, state=JobState.FAILED)  # into the window
    run(ops, at("2026-03-10 04:00"), 3600.0)  # ended before the window: left out
    short = run(ops, at("2026-03-10 11:45"), 1.0, task_id=None, name="adhoc-report")
    queued = ops.store.insert_job(
        name="waiting",
        owner="Manual",
        state=JobState.QUEUED,
        queued_at=at("2026-03-10 11:30"),
        task_id=BACKUP,
        app="vault",
    )
    never = ops.store.insert_job(
        name="dropped",
        owner="Manual",
        state=JobState.QUEUED,
        queued_at=at("2026-03-10 11:40"),
        task_id=CLEANUP,
        app="global",
    )
    ops.store.request_stop(never, reason="not wanted", now=at("2026-03-10 11:41"))

    figure = runs_timeline(ops.history(since=NOW - timedelta(days=1)), now=NOW)

    # one trace per state present, in the dashboard's order, in its colour
    assert traces(figure) == [
        ("bar", "Completed"),
        ("bar", "Failed"),
        ("bar", "Running"),
        ("bar", "Terminated"),
        ("bar", "Queued"),
    ]
    for trace in figure.data:
        assert trace.marker.color == STATE_COLOURS[trace.name]
        assert trace.orientation == "h"
    done, failed, running, terminated, waiting = figure.data
    # wall-clock times in Berlin; widths in milliseconds, at least 1/400 of 6 hours
    assert list(done.y) == [BACKUP, "adhoc-report"]
    assert list(done.base) == ["2026-03-10 11:00:00", "2026-03-10 12:45:00"]
    assert list(done.x) == [100_000.0, 54_000.0]
    assert list(done.customdata[1]) == [
        short,
        "adhoc-report",
        "2026-03-10 12:45:00",
        "2026-03-10 12:45:01",
        "1.0 s",
    ]
    assert (list(failed.y), list(failed.base), list(failed.x)) == (
        [CLEANUP],
        ["2026-03-10 06:00:00"],
        [5_400_000.0],
    )
    assert list(failed.customdata[0])[2:] == [
        "2026-03-10 06:00:00",
        "2026-03-10 07:30:00",
        "1 h 30 min",
    ]
    # running and queued jobs reach now
    assert (list(running.base), list(running.x)) == (["2026-03-10 12:00:00"], [3_600_000.0])
    assert list(running.customdata[0])[3:] == ["now", "running"]
    assert (list(terminated.base), list(terminated.x)) == (["2026-03-10 10:00:00"], [54_000.0])
    assert list(waiting.y) == [BACKUP]
    assert (list(waiting.base), list(waiting.x)) == (["2026-03-10 12:30:00"], [1_800_000.0])
    assert list(waiting.customdata[0])[:2] == [queued, "waiting"]

    layout = figure.layout
    assert layout.title.text == "Last 6 hours"
    assert tuple(layout.xaxis.range) == ("2026-03-10 07:00:00", "2026-03-10 13:00:00")
    assert list(layout.yaxis.categoryarray) == ["adhoc-report", CLEANUP, BACKUP]
    assert layout.yaxis.autorange == "reversed"
    assert layout.barmode == "overlay"
    assert layout.height == 200
    assert notes(figure) == []

    # the last hour: the short run, the running job and the queued one
    recent = runs_timeline(ops.history(), now=NOW, hours=1, title="Now")
    assert [trace.name for trace in recent.data] == ["Completed", "Running", "Queued"]
    assert recent.layout.title.text == "Now"
    assert tuple(recent.layout.xaxis.range) == ("2026-03-10 12:00:00", "2026-03-10 13:00:00")


def test_runs_timeline_bars_keep_their_wall_clock_across_dst(ops: taskops.TaskOps) -> None:
    """01:30 CET to 03:30 CEST on 2026-03-29 is an hour; drawn in wall-clock time it
    spans two."""
    run(ops, at("2026-03-29 00:30"), 3600.0)
    figure = runs_timeline(ops.history(), now=at("2026-03-29 02:00"), hours=3)
    [bar] = figure.data
    assert list(bar.base) == ["2026-03-29 01:30:00"] and list(bar.x) == [7_200_000.0]
    assert list(bar.customdata[0])[2:] == [
        "2026-03-29 01:30:00",
        "2026-03-29 03:30:00",
        "1 h 0 min",
    ]


def test_runs_timeline_without_runs_says_so(ops: taskops.TaskOps) -> None:
    run(ops, at("2026-03-10 01:00"), 60.0)
    figure = runs_timeline(ops.history(), now=NOW)
    assert figure.data == ()
    assert notes(figure) == ["No runs in the last 6 hours"]
    assert tuple(figure.layout.xaxis.range) == ("2026-03-10 07:00:00", "2026-03-10 13:00:00")
    assert notes(runs_timeline(ops.history(), now=NOW, hours=1)) == ["No runs in the last 1 hour"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"now": datetime(2026, 3, 10, 12, 0)}, "now"),
        ({"hours": 0}, "hours"),
        ({"hours": -1.5}, "hours"),
        ({"hours": True}, "hours"),
        ({"hours": "6"}, "hours"),
    ],
)
def test_runs_timeline_refuses_bad_arguments(
    ops: taskops.TaskOps, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        runs_timeline(ops.history(), **{"now": NOW, **arguments})
    assert field in caught.value.fields()


def test_runs_timeline_refuses_missing_columns(ops: taskops.TaskOps) -> None:
    with pytest.raises(InvalidInput, match="missing columns: queued_at, ended_at"):
        runs_timeline(ops.history().drop(columns=["ended_at", "queued_at"]), now=NOW)
    with pytest.raises(InvalidInput, match="must be a pandas DataFrame"):
        runs_timeline([], now=NOW)  # type: ignore[arg-type]


# -- runspace_memory_figure ------------------------------------------------------------------


def samples(ops: taskops.TaskOps, *points: tuple[float | None, int | None]) -> pd.DataFrame:
    """A runspace with a sample every 2 seconds from NOW; its ``ops.runspace_samples``."""
    runspace = ops.store.open_runspace(kind=RunspaceKind.WORKER, owner="TaskEngine", now=NOW)
    for offset, (memory, threads) in enumerate(points):
        ops.store.record_samples(
            [
                RunspaceSample(
                    runspace_id=runspace, memory_mb=memory, thread_count=threads, handle_count=1
                )
            ],
            now=NOW + timedelta(seconds=2 * offset),
        )
    return ops.runspace_samples(runspace)


def test_memory_figure_of_runspace_samples(ops: taskops.TaskOps) -> None:
    frame = samples(ops, (10.5, 2), (None, None), (12.25, 3))
    figure = runspace_memory_figure(frame)
    assert traces(figure) == [("scatter", "Memory (MB)"), ("scatter", "Threads")]
    memory, threads = figure.data
    # the site's wall-clock time (Berlin, an hour ahead of UTC)
    assert list(memory.x) == ["2026-03-10 13:00:00", "2026-03-10 13:00:02", "2026-03-10 13:00:04"]
    assert list(memory.y) == [10.5, None, 12.25]
    assert list(threads.y) == [2, None, 3]
    assert memory.connectgaps is False and memory.mode == "lines+markers"
    assert (memory.yaxis, threads.yaxis) == ("y", "y2")
    assert (memory.line.color, threads.line.shape) == (BLUE, "hv")
    layout = figure.layout
    assert layout.title.text == "Memory over time"
    assert layout.height == 260
    assert layout.yaxis.title.text == "MB" and layout.yaxis2.title.text == "threads"
    assert layout.yaxis2.dtick == 1  # whole threads
    assert notes(figure) == []
    utc = runspace_memory_figure(frame, timezone="UTC", title="Runspace 7")
    assert utc.data[0].x[0] == "2026-03-10 12:00:00"
    assert utc.layout.title.text == "Runspace 7"


def test_memory_figure_thread_ticks_and_many_samples(ops: taskops.TaskOps) -> None:
    figure = runspace_memory_figure(samples(ops, *[(1.0, 40)] * 61))
    assert figure.layout.yaxis2.dtick == 10
    assert figure.data[0].mode == "lines"


def test_memory_figure_of_no_samples_says_so(ops: taskops.TaskOps) -> None:
    figure = runspace_memory_figure(samples(ops))
    assert [trace.x for trace in figure.data] == [(), ()]
    assert notes(figure) == ["No samples yet"]
    assert figure.layout.xaxis.showticklabels is False


def test_memory_figure_refuses_bad_frames_and_zones(ops: taskops.TaskOps) -> None:
    frame = samples(ops, (10.5, 2))
    with pytest.raises(InvalidInput, match="missing columns: threads") as caught:
        runspace_memory_figure(frame.drop(columns=["threads"]))
    assert "samples" in caught.value.fields()
    naive = frame.assign(time=frame["time"].dt.tz_localize(None))
    with pytest.raises(InvalidInput, match="time must be timezone-aware"):
        runspace_memory_figure(naive)
    with pytest.raises(InvalidInput, match="unknown timezone"):
        runspace_memory_figure(frame, timezone="Mars/Olympus_Mons")
