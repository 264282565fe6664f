"""Execution history and runspace samples as plotly figures: pure functions, no I/O.

The service hands out the site's records as pandas frames (``ops.history()``,
``ops.stats()``, ``ops.runspace_samples()``, see ``taskops.service.history``); these
functions turn such a frame into a figure. Views wrap the figures
(``plotly.graph_objects.FigureWidget(figure)``) and never compute anything themselves.

Each function says which columns it reads and raises ``InvalidInput`` naming the ones
missing (and a time column without a timezone). An empty frame, or one without a run,
draws the axes with a note saying so ("No runs in these days").

plotly.js ignores UTC offsets, so times reach it as the wall-clock time of the frame's
timezone (the site's, as the service hands them out) or of the one asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from taskops.cron import load_timezone
from taskops.errors import InvalidInput, Problem
from taskops.model import JobState

__all__ = [
    "STATE_COLOURS",
    "daily_runs_figure",
    "duration_trend_figure",
    "failures_heatmap",
    "runs_timeline",
    "runspace_memory_figure",
    "success_rate_figure",
]

_GREEN = "#2e7d32"
_RED = "#c62828"
_BLUE = "#1565c0"
_ORANGE = "#e65100"
_DEEP_ORANGE = "#d84315"
_GREY = "#757575"
_BLUE_GREY = "#546e7a"

STATE_COLOURS = {
    JobState.COMPLETED.value: _GREEN,
    JobState.FAILED.value: _RED,
    JobState.RUNNING.value: _BLUE,
    JobState.STOPPED.value: _ORANGE,
    JobState.TERMINATED.value: _DEEP_ORANGE,
    JobState.QUEUED.value: _BLUE_GREY,
}
"""Job state -> its colour in the figures: the dashboard's (green, red, blue, orange,
deep orange, blue-grey)."""

_COUNTS = ("day", "runs", "successes", "failures", "success_rate")
_STATS = (*_COUNTS, "mean_duration", "p95_duration")
_GROUPS = ("task_id", "app")
_AD_HOC = "(ad-hoc jobs)"
_LEGEND_ON_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1}
_DAY_HOVER = "%{x|%a %d %b}"
_TIMELINE_MIN_WIDTH = 1 / 400
"""The narrowest bar of ``runs_timeline``, as a share of its window."""


# -- runs per day (ops.stats) ----------------------------------------------------------------


def daily_runs_figure(stats: pd.DataFrame, *, title: str = "Last 7 days") -> go.Figure:
    """A compact chart of one row per day of ``ops.stats()`` (``by=None``, or one task's
    rows: ``ops.stats(days=7, by=None, task=task_id)``, as the task detail shows):
    stacked bars of the runs that succeeded, failed and were stopped (left axis, runs: the
    stack is the day's ``runs``) and a line of the success rate (right axis, 0-100 %, a
    gap on a day without runs). Every point's hover gives the day's runs, successes,
    failures, success rate and mean and p95 duration. About 260 px high, legend across
    the top. A frame without rows or without a run says "No runs in these days".

    Reads the columns ``day``, ``runs``, ``successes``, ``failures``, ``success_rate``,
    ``mean_duration`` and ``p95_duration``. Raises ``InvalidInput`` when one is missing
    or a day comes twice (the rows of several tasks: pick one, or use ``by=None``).
    """
    _require(stats, _STATS, "stats")
    rows = stats.sort_values("day", kind="stable")
    days = [_day_text(day) for day in rows["day"].tolist()]
    if len(set(days)) != len(days):
        raise InvalidInput.from_problems(
            [Problem(field="stats", message="has a day twice: one task's rows, or by=None")]
        )
    runs = _ints(rows["runs"])
    successes = _ints(rows["successes"])
    failures = _ints(rows["failures"])
    stopped = [max(0, r - s - f) for r, s, f in zip(runs, successes, failures, strict=True)]
    rates = _floats(rows["success_rate"])
    hover = [
        [
            count,
            done,
            failed,
            "—" if rate is None else f"{rate:.0%}",
            _seconds_text(mean),
            _seconds_text(p95),
        ]
        for count, done, failed, rate, mean, p95 in zip(
            runs,
            successes,
            failures,
            rates,
            _floats(rows["mean_duration"]),
            _floats(rows["p95_duration"]),
            strict=True,
        )
    ]
    template = (
        _DAY_HOVER + "<br>%{customdata[0]} runs: %{customdata[1]} succeeded,"
        " %{customdata[2]} failed<br>success rate: %{customdata[3]}"
        "<br>duration: mean %{customdata[4]}, p95 %{customdata[5]}<extra></extra>"
    )

    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for counts, name, colour in (
        (successes, "Succeeded", _GREEN),
        (failures, "Failed", _RED),
        (stopped, "Stopped", _ORANGE),
    ):
        figure.add_trace(
            go.Bar(
                x=days,
                y=counts,
                name=name,
                marker_color=colour,
                customdata=hover,
                hovertemplate=template,
            ),
            secondary_y=False,
        )
    figure.add_trace(
        go.Scatter(
            x=days,
            y=[None if rate is None else rate * 100 for rate in rates],
            name="Success rate",
            mode="lines+markers",
            line={"color": _BLUE, "width": 2},
            connectgaps=False,
            cliponaxis=False,
            customdata=hover,
            hovertemplate=template,
        ),
        secondary_y=True,
    )
    _layout(figure, title=title, height=260, legend=_LEGEND_ON_TOP)
    figure.update_layout(barmode="stack", bargap=0.25, hovermode="closest")
    if sum(runs) == 0:
        _note(figure, "No runs in these days")
    _day_axis(figure, len(days))
    figure.update_yaxes(title_text="runs", rangemode="tozero", secondary_y=False)
    # make_subplots syncs the right axis' ticks to the left one's: 0, 25, .. 100 % instead
    figure.update_yaxes(
        title_text="success rate",
        range=[0, 100],
        tickmode="linear",
        tick0=0,
        dtick=25,
        ticksuffix="%",
        showgrid=False,
        secondary_y=True,
    )
    return _figure(figure)


def success_rate_figure(
    stats: pd.DataFrame, *, title: str = "Success rate", limit: int = 10
) -> go.Figure:
    """The success rate per day (0-100 %) of an ``ops.stats()`` frame: one line per task
    (``by="task"``) or app (``by="app"``), or one line over all runs (``by=None``). A day
    without runs is a gap in its line; the hover gives the day's runs, successes and
    failures.

    With groups, at most ``limit`` lines: those of the groups with the lowest success
    rate over the whole window (ties: more failures first, then by name), worst first;
    groups without a run in the window are left out. When some are left out the legend
    says "lowest <limit> of <groups>". Ad-hoc jobs (``task_id`` None) are "(ad-hoc
    jobs)". About 300 px high. A frame without a run says "No runs in these days".

    Reads ``day``, ``runs``, ``successes``, ``failures``, ``success_rate`` and the group
    column ``task_id`` or ``app`` when there is one. Raises ``InvalidInput`` when one of
    these is missing or ``limit`` is not a whole number of at least 1.
    """
    _require(stats, _COUNTS, "stats")
    _positive_whole(limit, "limit")
    group = next((column for column in _GROUPS if column in stats.columns), None)
    rows = stats.sort_values("day", kind="stable")
    lines: list[tuple[str, pd.DataFrame]] = []
    legend_title = ""
    if group is None:
        if sum(_ints(rows["runs"])) > 0:
            lines.append(("All runs", rows))
    else:
        labels = pd.Series([_label(key) for key in rows[group].tolist()], index=rows.index)
        ranked: list[tuple[float, int, str]] = []
        for label, part in rows.groupby(labels, sort=False):
            runs, failures = sum(_ints(part["runs"])), sum(_ints(part["failures"]))
            if runs:
                ranked.append((sum(_ints(part["successes"])) / runs, -failures, str(label)))
        ranked.sort()
        if len(ranked) > limit:
            legend_title = f"lowest {limit} of {len(ranked)}"
        lines = [(label, rows[labels == label]) for _rate, _f, label in ranked[:limit]]

    figure = go.Figure()
    for name, part in lines:
        rates = _floats(part["success_rate"])
        figure.add_trace(
            go.Scatter(
                x=[_day_text(day) for day in part["day"].tolist()],
                y=[None if rate is None else rate * 100 for rate in rates],
                name=name,
                mode="lines+markers",
                line={"color": _BLUE, "width": 2} if group is None else {"width": 2},
                connectgaps=False,
                cliponaxis=False,
                customdata=list(
                    zip(
                        _ints(part["runs"]),
                        _ints(part["successes"]),
                        _ints(part["failures"]),
                        strict=True,
                    )
                ),
                hovertemplate=(
                    "%{fullData.name}<br>" + _DAY_HOVER + ": %{y:.0f}%"
                    "<br>%{customdata[0]} runs: %{customdata[1]} succeeded,"
                    " %{customdata[2]} failed<extra></extra>"
                ),
            )
        )
    legend: dict[str, Any] = (
        dict(_LEGEND_ON_TOP) if group is None else {"title": {"text": legend_title}}
    )
    _layout(figure, title=title, height=300, legend=legend)
    figure.update_layout(hovermode="closest", showlegend=bool(lines))
    if not lines:
        _note(figure, "No runs in these days")
    days = sorted({_day_text(day) for day in rows["day"].tolist()})
    _day_axis(figure, len(days), span=days)
    figure.update_yaxes(title_text="success rate", range=[0, 100], ticksuffix="%")
    return _figure(figure)


def failures_heatmap(stats: pd.DataFrame, *, title: str = "Failures", limit: int = 20) -> go.Figure:
    """The failed runs (``Failed`` or ``Terminated``) of each task and day of an
    ``ops.stats(by="task")`` frame: a heatmap of tasks (rows) by days (columns), white
    for none to red for the most, each cell with its count (empty for 0) and, on hover,
    the day's runs.

    Tasks without a failure in the window are left out; of the rest at most ``limit``
    rows, those with the most failures (ties by id), most failures at the top. Ad-hoc jobs
    are the row "(ad-hoc jobs)". The height grows with the rows (from 200 px). A frame
    without a run says "No runs in these days", one without a failure "No failures in
    these days".

    Reads ``task_id``, ``day``, ``runs`` and ``failures``. Raises ``InvalidInput`` when
    one is missing or ``limit`` is not a whole number of at least 1.
    """
    _require(stats, ("task_id", "day", "runs", "failures"), "stats")
    _positive_whole(limit, "limit")
    labels = [_label(key) for key in stats["task_id"].tolist()]
    row_days = [_day(day) for day in stats["day"].tolist()]
    days = sorted(set(row_days))
    failed: dict[tuple[str, date], int] = {}
    runs: dict[tuple[str, date], int] = {}
    totals: dict[str, int] = {}
    for cell, count, run_count in zip(
        zip(labels, row_days, strict=True),
        _ints(stats["failures"]),
        _ints(stats["runs"]),
        strict=True,
    ):
        failed[cell] = failed.get(cell, 0) + count
        runs[cell] = runs.get(cell, 0) + run_count
        totals[cell[0]] = totals.get(cell[0], 0) + count
    failing = [label for label, total in totals.items() if total]
    tasks = sorted(failing, key=lambda label: (-totals[label], label))[:limit]

    figure = go.Figure()
    if tasks:
        z = [[failed.get((task, day), 0) for day in days] for task in tasks]
        figure.add_trace(
            go.Heatmap(
                z=z,
                x=[_day_label(day) for day in days],
                y=tasks,
                text=[["" if count == 0 else str(count) for count in row] for row in z],
                texttemplate="%{text}",
                customdata=[[runs.get((task, day), 0) for day in days] for task in tasks],
                colorscale=[[0.0, "#ffffff"], [1.0, _RED]],
                zmin=0,
                zmax=max(1, max(max(row) for row in z)),
                showscale=False,
                xgap=2,
                ygap=2,
                hovertemplate="%{y}<br>%{x}: %{z} failed of %{customdata} runs<extra></extra>",
            )
        )
    _layout(figure, title=title, height=max(200, 90 + 28 * len(tasks)), legend=None)
    if not tasks:
        no_runs = sum(_ints(stats["runs"])) == 0
        _note(figure, "No runs in these days" if no_runs else "No failures in these days")
    figure.update_xaxes(type="category", side="bottom", showticklabels=bool(tasks))
    figure.update_yaxes(type="category", autorange="reversed", automargin=True)
    return _figure(figure)


# -- runs (ops.history) ----------------------------------------------------------------------


def duration_trend_figure(
    history: pd.DataFrame, *, timezone: str, title: str = "Duration"
) -> go.Figure:
    """The median and the 95th percentile (linear between the nearest ranks, as
    ``ops.stats`` computes it) of the duration of the runs of an ``ops.history()`` frame
    that have ended, per calendar day of ``timezone`` on which they started: two lines in
    seconds, every day from the first to the last with a run (a gap on a day without
    one), the runs counted in the hover. About 260 px high, legend across the top. A
    frame without an ended run says "No ended runs in these days".

    Reads ``started_at`` (timezone-aware) and ``duration`` (timedeltas; NaT until a run
    has ended). Raises ``InvalidInput`` when one is missing, ``started_at`` has no
    timezone, ``duration`` is not timedeltas, or ``timezone`` is unknown.
    """
    _require(history, ("started_at", "duration"), "history")
    zone = load_timezone(timezone)
    started = _aware(history["started_at"], "history", "started_at")
    if not pd.api.types.is_timedelta64_dtype(history["duration"].dtype):
        raise InvalidInput.from_problems(
            [Problem(field="history", message="duration must be timedeltas")]
        )
    ended = history["duration"].notna() & started.notna()
    seconds = history["duration"][ended].dt.total_seconds()
    days = started[ended].dt.tz_convert(zone).dt.date
    by_day = seconds.groupby(days.to_numpy(dtype=object), sort=True)
    median, p95, count = by_day.median(), by_day.quantile(0.95), by_day.count()

    figure = go.Figure()
    if len(count):
        first, last = pd.Timestamp(count.index[0]), pd.Timestamp(count.index[-1])
        calendar = [moment.date() for moment in pd.date_range(first, last, freq="D")]
        x = [day.isoformat() for day in calendar]
        runs = [int(count.get(day, 0)) for day in calendar]
        for values, name, line in (
            (median, "Median", {"color": _BLUE, "width": 2}),
            (p95, "p95", {"color": _DEEP_ORANGE, "width": 2, "dash": "dash"}),
        ):
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=[float(values[day]) if day in values.index else None for day in calendar],
                    name=name,
                    mode="lines+markers",
                    line=line,
                    connectgaps=False,
                    customdata=runs,
                    hovertemplate="%{y:.1f} s of %{customdata} runs",
                )
            )
    else:
        x = []
    _layout(figure, title=title, height=260, legend=_LEGEND_ON_TOP)
    figure.update_layout(hovermode="x unified")
    if not x:
        _note(figure, "No ended runs in these days")
    _day_axis(figure, len(x))
    figure.update_xaxes(hoverformat="%a %d %b")  # the day atop the unified hover
    figure.update_yaxes(title_text="seconds", rangemode="tozero")
    return _figure(figure)


def runs_timeline(
    history: pd.DataFrame, *, now: datetime, hours: float = 6, title: str | None = None
) -> go.Figure:
    """A Gantt chart of the ``hours`` before ``now`` from an ``ops.history()`` frame: one
    row per task (its id; an ad-hoc job's row is its name), sorted by name, and a bar per
    run from its start to its end, coloured by state (``STATE_COLOURS``, one legend entry
    per state present). A running job's bar (no end yet) reaches ``now``; so does a
    queued job's, from the time it was queued. The runs drawn are those whose bar
    overlaps the window, so one that started earlier shows where it ran into it; a bar
    is at least 1/400 of the window wide so that a run of a second stays visible (the
    hover gives its real times). Times are those of ``started_at``'s timezone. The height
    grows with the rows (from 200 px); legend across the top. The title defaults to
    "Last <hours> hours". Without a run in the window it says "No runs in the last
    <hours> hours".

    Reads ``job_id``, ``task_id``, ``name``, ``state``, ``queued_at``, ``started_at`` and
    ``ended_at``. Raises ``InvalidInput`` when one is missing, a time column has no
    timezone, ``now`` is naive or ``hours`` is not a number above 0.
    """
    _require(
        history,
        ("job_id", "task_id", "name", "state", "queued_at", "started_at", "ended_at"),
        "history",
    )
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not hours > 0:
        raise InvalidInput.from_problems(
            [Problem(field="hours", message=f"must be a number above 0, not {hours!r}")]
        )
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidInput.from_problems(
            [Problem(field="now", message=f"must be a timezone-aware datetime, not {now!r}")]
        )
    started = _aware(history["started_at"], "history", "started_at")
    zone = started.dt.tz
    queued = _aware(history["queued_at"], "history", "queued_at").dt.tz_convert(zone)
    ended = _aware(history["ended_at"], "history", "ended_at").dt.tz_convert(zone)
    end = pd.Timestamp(now).tz_convert(zone)
    window = pd.Timedelta(hours=hours)
    begin = end - window
    # wall-clock times (see the module): widths too, so a bar ends at its wall-clock end
    local_end = end.tz_localize(None)
    narrowest = window * _TIMELINE_MIN_WIDTH

    states = [str(state) for state in history["state"].tolist()]
    bars: dict[str, list[tuple[str, pd.Timestamp, pd.Timedelta, list[Any]]]] = {}
    for job_id, task_id, name, state, queue, start, stop in zip(
        history["job_id"].tolist(),
        history["task_id"].tolist(),
        history["name"].tolist(),
        states,
        queued.tolist(),
        started.tolist(),
        ended.tolist(),
        strict=True,
    ):
        if pd.isna(start):
            if state != JobState.QUEUED.value or pd.isna(queue):
                continue  # never ran, or was stopped while queued
            start, stop = queue, pd.NaT
        finish = end if pd.isna(stop) else stop
        if start > end or finish < begin:
            continue
        left = start.tz_localize(None)
        width = max(finish.tz_localize(None) - left, narrowest)
        info = [
            int(job_id),
            name,
            _clock_text(start),
            "now" if pd.isna(stop) else _clock_text(stop),
            state.lower() if pd.isna(stop) else _seconds_text((stop - start).total_seconds()),
        ]
        label = str(task_id) if task_id is not None else str(name)
        bars.setdefault(state, []).append((label, left, width, info))

    figure = go.Figure()
    rows = sorted({label for runs in bars.values() for label, *_rest in runs})
    for state, colour in STATE_COLOURS.items():
        runs = bars.get(state)
        if not runs:
            continue
        figure.add_trace(
            go.Bar(
                orientation="h",
                y=[label for label, *_rest in runs],
                base=[left.strftime("%Y-%m-%d %H:%M:%S") for _label, left, *_rest in runs],
                x=[width.total_seconds() * 1000 for _label, _left, width, _info in runs],
                name=state,
                marker={"color": colour, "line": {"width": 0}},
                opacity=0.9,
                customdata=[info for *_rest, info in runs],
                hovertemplate=(
                    "%{y}<br>job %{customdata[0]} %{customdata[1]}"
                    "<br>%{customdata[2]} → %{customdata[3]} (%{customdata[4]})"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    span = f"{hours:g} hour" + ("" if hours == 1 else "s")
    _layout(
        figure,
        title=f"Last {span}" if title is None else title,
        height=max(200, 90 + 28 * len(rows)),
        legend=_LEGEND_ON_TOP,
    )
    figure.update_layout(barmode="overlay", bargap=0.3, hovermode="closest")
    if not rows:
        _note(figure, f"No runs in the last {span}")
    figure.update_xaxes(
        type="date",
        range=[
            begin.tz_localize(None).strftime("%Y-%m-%d %H:%M:%S"),
            local_end.strftime("%Y-%m-%d %H:%M:%S"),
        ],
    )
    figure.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=rows,
        autorange="reversed",
        automargin=True,
        showticklabels=bool(rows),
    )
    return _figure(figure)


# -- runspace samples (ops.runspace_samples) -------------------------------------------------


def runspace_memory_figure(
    samples: pd.DataFrame, *, title: str = "Memory over time", timezone: str | None = None
) -> go.Figure:
    """A compact line chart of ``ops.runspace_samples()``: memory in MB over time (left
    axis) and the thread count as a step line (right axis), times shown in ``timezone``
    (default: the frame's own, the site's). A gap where a sample could not be read stays
    a gap. An empty frame gives empty axes with the note "No samples yet". About 260 px
    high, legend across the top.

    Reads ``time`` (timezone-aware), ``memory_mb`` (NaN: not read) and ``threads``
    (``<NA>``: unknown). Raises ``InvalidInput`` when one is missing, ``time`` has no
    timezone, or ``timezone`` is unknown.
    """
    _require(samples, ("time", "memory_mb", "threads"), "samples")
    moments = _aware(samples["time"], "samples", "time")
    if timezone is not None:
        moments = moments.dt.tz_convert(load_timezone(timezone))
    times = [None if pd.isna(moment) else _clock_text(moment) for moment in moments.tolist()]
    memory = _floats(samples["memory_mb"])
    threads = [None if pd.isna(count) else int(count) for count in samples["threads"].tolist()]

    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Scatter(
            x=times,
            y=memory,
            name="Memory (MB)",
            mode="lines+markers" if len(times) <= 60 else "lines",
            line={"color": _BLUE, "width": 2},
            connectgaps=False,
            hovertemplate="%{x|%H:%M:%S}<br>memory: %{y:.1f} MB<extra></extra>",
        ),
        secondary_y=False,
    )
    figure.add_trace(
        go.Scatter(
            x=times,
            y=threads,
            name="Threads",
            mode="lines",
            line={"color": _GREY, "width": 1, "dash": "dot", "shape": "hv"},
            connectgaps=False,
            hovertemplate="%{x|%H:%M:%S}<br>threads: %{y}<extra></extra>",
        ),
        secondary_y=True,
    )
    _layout(figure, title=title, height=260, legend=_LEGEND_ON_TOP, left=50)
    figure.update_layout(hovermode="x unified")
    if not times:
        _note(figure, "No samples yet")
    figure.update_xaxes(type="date", showticklabels=bool(times))
    figure.update_yaxes(title_text="MB", rangemode="tozero", secondary_y=False)
    # whole threads only: about four ticks, never a fraction of a thread
    known = [count for count in threads if count is not None]
    step = {"dtick": max(1, math.ceil(max(known) / 4))} if known else {}
    figure.update_yaxes(
        title_text="threads", rangemode="tozero", showgrid=False, secondary_y=True, **step
    )
    return _figure(figure)


# -- shared parts ----------------------------------------------------------------------------


def _require(frame: Any, columns: Sequence[str], field: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput.from_problems(
            [Problem(field=field, message=f"must be a pandas DataFrame, not {type(frame)}")]
        )
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise InvalidInput.from_problems(
            [Problem(field=field, message=f"missing columns: {', '.join(missing)}")]
        )


def _aware(times: pd.Series, field: str, column: str) -> pd.Series:
    """``times`` when they are timezone-aware datetimes."""
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise InvalidInput.from_problems(
            [
                Problem(
                    field=field,
                    message=f"{column} must be timezone-aware datetimes, not {times.dtype}",
                )
            ]
        )
    return times


def _positive_whole(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput.from_problems(
            [Problem(field=field, message=f"must be a whole number of at least 1, not {value!r}")]
        )


def _ints(column: pd.Series) -> list[int]:
    return [int(value) for value in column.tolist()]


def _floats(column: pd.Series) -> list[float | None]:
    """Floats, None for NaN (a gap in a line)."""
    return [None if pd.isna(value) else float(value) for value in column.tolist()]


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _day_text(value: Any) -> str:
    return _day(value).isoformat()


def _day_label(day: date) -> str:
    return day.strftime("%a %d %b")


def _label(key: Any) -> str:
    """A group's name in a legend or on an axis: ad-hoc jobs have no task."""
    return _AD_HOC if key is None or (isinstance(key, float) and math.isnan(key)) else str(key)


def _clock_text(moment: Any) -> str:
    return str(pd.Timestamp(moment).strftime("%Y-%m-%d %H:%M:%S"))


def _seconds_text(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _layout(
    figure: go.Figure,
    *,
    title: str,
    height: int,
    legend: dict[str, Any] | None,
    left: int = 40,
) -> None:
    figure.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        height=height,
        margin={"l": left, "r": 40, "t": 40, "b": 30},
    )
    if legend is not None:
        figure.update_layout(legend=legend)


def _note(figure: go.Figure, text: str) -> None:
    """The empty state: ``text`` in the middle of the plot."""
    figure.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 14, "color": _GREY},
    )


def _day_axis(figure: go.Figure, days: int, *, span: Sequence[str] = ()) -> None:
    """A date axis labelled by weekday and date: one tick per day while they fit (plotly
    picks the ticks of longer ranges); ``span`` (ISO days) fixes the range when no trace
    gives it."""
    daily = {"dtick": 86_400_000} if 0 < days <= 14 else {}
    extent = {"range": [span[0], span[-1]]} if span and not figure.data else {}
    figure.update_xaxes(type="date", tickformat="%a %d %b", showticklabels=days > 0, **daily)
    figure.update_xaxes(**extent)


def _figure(figure: Any) -> go.Figure:
    result: go.Figure = figure
    return result
