"""Execution history and runspace samples as pandas frames and plotly figures: pure
functions, no I/O.

The service hands out jobs (``taskops.model.Job``) and runspace samples
(``ops.runspaces.memory_history``); these functions turn them into numbers and pictures.
Views wrap the figures (``plotly.graph_objects.FigureWidget(figure)``) and never compute
anything themselves.

Days are calendar days in a given IANA timezone, so a run at 23:30 UTC lands on the next
day in Berlin. A run counts once it has ended (``ended_at`` set), on the day it started.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from taskops.cron import load_timezone
from taskops.errors import InvalidInput, Problem
from taskops.model import Job, JobState

__all__ = [
    "SAMPLE_COLUMNS",
    "STATS_COLUMNS",
    "daily_run_figure",
    "daily_run_stats",
    "runspace_memory_figure",
    "runspace_samples_frame",
]

STATS_COLUMNS = ("day", "runs", "successes", "failures", "success_rate", "mean_duration")
"""The columns of ``daily_run_stats``, in order."""

SAMPLE_COLUMNS = ("time", "memory_mb", "threads")
"""The columns of ``runspace_samples_frame``, in order."""

_FAILURES = frozenset({JobState.FAILED, JobState.TERMINATED})
_GREEN = "#2e7d32"
_RED = "#c62828"
_BLUE = "#1565c0"
_GREY = "#757575"


def daily_run_stats(
    jobs: Sequence[Job], *, days: int = 7, now: datetime, timezone: str
) -> pd.DataFrame:
    """One row per calendar day in ``timezone`` of the ``days`` days ending with today
    (``now``'s date there), oldest first, days without runs included with zeros.

    Columns: ``day`` (``datetime.date``), ``runs`` (ended runs started that day, int),
    ``successes`` (of them ``Completed``), ``failures`` (``Failed`` or ``Terminated``; a
    ``Stopped`` run is a run but neither), ``success_rate`` (``successes / runs`` as a float
    in 0..1, NaN on a day without runs) and ``mean_duration`` (mean seconds from start to
    end, float, NaN on a day without runs). Jobs that have not ended, or never started,
    are left out; so are runs started before the first day or after today.

    Raises ``InvalidInput`` for ``days`` below 1 or an unknown ``timezone``, and
    ``ValueError`` for a naive ``now``.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InvalidInput.from_problems(
            [Problem(field="days", message=f"must be a whole number of at least 1, not {days!r}")]
        )
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, not naive {now!r}")
    zone = load_timezone(timezone)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    calendar = [first + timedelta(days=offset) for offset in range(days)]

    runs = dict.fromkeys(calendar, 0)
    successes = dict.fromkeys(calendar, 0)
    failures = dict.fromkeys(calendar, 0)
    seconds: dict[date, float] = dict.fromkeys(calendar, 0.0)
    for job in jobs:
        if job.started_at is None or job.ended_at is None:
            continue
        day = job.started_at.astimezone(zone).date()
        if day not in runs:
            continue
        runs[day] += 1
        successes[day] += int(job.state == JobState.COMPLETED)
        failures[day] += int(job.state in _FAILURES)
        seconds[day] += (job.ended_at - job.started_at).total_seconds()

    frame = pd.DataFrame(
        {
            "day": pd.Series(calendar, dtype="object"),
            "runs": pd.Series([runs[d] for d in calendar], dtype="int64"),
            "successes": pd.Series([successes[d] for d in calendar], dtype="int64"),
            "failures": pd.Series([failures[d] for d in calendar], dtype="int64"),
            "success_rate": pd.Series(
                [successes[d] / runs[d] if runs[d] else float("nan") for d in calendar],
                dtype="float64",
            ),
            "mean_duration": pd.Series(
                [seconds[d] / runs[d] if runs[d] else float("nan") for d in calendar],
                dtype="float64",
            ),
        }
    )
    return frame


def daily_run_figure(stats: pd.DataFrame, *, title: str = "Last 7 days") -> go.Figure:
    """A compact chart of ``daily_run_stats``: stacked bars of successes and failures per
    day (left axis, runs), a line of the mean duration (right axis, seconds), and the
    success rate and run count in every point's hover text. About 260 px high, legend
    across the top.

    Raises ``InvalidInput`` when ``stats`` lacks a column of ``STATS_COLUMNS``.
    """
    missing = [column for column in STATS_COLUMNS if column not in stats.columns]
    if missing:
        raise InvalidInput.from_problems(
            [Problem(field="stats", message=f"missing columns: {', '.join(missing)}")]
        )
    days = [d.isoformat() if isinstance(d, date) else str(d) for d in stats["day"]]
    rates = [
        "no runs" if pd.isna(rate) else f"{rate:.0%}" for rate in stats["success_rate"].tolist()
    ]
    runs = [int(count) for count in stats["runs"].tolist()]
    hover_data = list(zip(rates, runs, strict=True))
    bar_hover = (
        "%{x|%a %d %b}<br>%{fullData.name}: %{y}"
        "<br>success rate: %{customdata[0]} of %{customdata[1]} runs<extra></extra>"
    )

    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for column, name, colour in (("successes", "Succeeded", _GREEN), ("failures", "Failed", _RED)):
        figure.add_trace(
            go.Bar(
                x=days,
                y=stats[column].tolist(),
                name=name,
                marker_color=colour,
                customdata=hover_data,
                hovertemplate=bar_hover,
            ),
            secondary_y=False,
        )
    figure.add_trace(
        go.Scatter(
            x=days,
            y=[None if pd.isna(s) else float(s) for s in stats["mean_duration"].tolist()],
            name="Avg duration",
            mode="lines+markers",
            line={"color": _BLUE, "width": 2},
            connectgaps=False,
            customdata=hover_data,
            hovertemplate=(
                "%{x|%a %d %b}<br>avg duration: %{y:.1f} s"
                "<br>success rate: %{customdata[0]} of %{customdata[1]} runs<extra></extra>"
            ),
        ),
        secondary_y=True,
    )
    figure.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        barmode="stack",
        height=260,
        margin={"l": 40, "r": 40, "t": 40, "b": 30},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        hovermode="closest",
        bargap=0.25,
    )
    # one tick per day while they fit; plotly picks the ticks of longer ranges
    daily = {"dtick": 86_400_000} if len(days) <= 14 else {}
    figure.update_xaxes(type="date", tickformat="%a %d %b", **daily)
    figure.update_yaxes(title_text="runs", rangemode="tozero", secondary_y=False)
    figure.update_yaxes(title_text="seconds", rangemode="tozero", showgrid=False, secondary_y=True)
    result: go.Figure = figure
    return result


def runspace_samples_frame(history: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per sample of ``ops.runspaces.memory_history`` (``{"time": ISO,
    "memoryMB": float | None, "threads": int | None}``), in the order given.

    Columns: ``time`` (timezone-aware, UTC), ``memory_mb`` (float64, NaN where the memory
    could not be read) and ``threads`` (nullable ``Int64``, ``<NA>`` where unknown). An
    empty history gives an empty frame with the same columns and dtypes.

    Raises ``InvalidInput`` when a sample lacks a key, or its time is not ISO 8601 text
    with a UTC offset.
    """
    times: list[datetime] = []
    for index, point in enumerate(history):
        missing = [key for key in ("time", "memoryMB", "threads") if key not in point]
        text = point.get("time")
        moment: datetime | None = None
        if not missing and isinstance(text, str):
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                moment = None
        if missing or moment is None or moment.utcoffset() is None:
            why = f"lacks {', '.join(missing)}" if missing else f"has no aware time: {text!r}"
            raise InvalidInput.from_problems(
                [Problem(field=f"history[{index}]", message=f"sample {why}")]
            )
        times.append(moment)
    return pd.DataFrame(
        {
            "time": pd.Series(pd.to_datetime(times, utc=True), dtype="datetime64[ns, UTC]"),
            "memory_mb": pd.Series(
                [float("nan") if p["memoryMB"] is None else float(p["memoryMB"]) for p in history],
                dtype="float64",
            ),
            "threads": pd.Series([p["threads"] for p in history], dtype="Int64"),
        }
    )


def runspace_memory_figure(
    samples: pd.DataFrame, *, title: str = "Memory over time", timezone: str = "UTC"
) -> go.Figure:
    """A compact line chart of ``runspace_samples_frame``: memory in MB over time (left
    axis) and the thread count as a step line (right axis), times shown in ``timezone``.
    A gap where a sample could not be read stays a gap. An empty frame gives empty axes
    with the note "No samples yet". About 260 px high, legend across the top.

    Raises ``InvalidInput`` when ``samples`` lacks a column of ``SAMPLE_COLUMNS`` or
    ``timezone`` is unknown.
    """
    missing = [column for column in SAMPLE_COLUMNS if column not in samples.columns]
    if missing:
        raise InvalidInput.from_problems(
            [Problem(field="samples", message=f"missing columns: {', '.join(missing)}")]
        )
    zone = load_timezone(timezone)
    # plotly.js ignores UTC offsets: hand it the wall-clock time of the chosen zone
    times = [
        pd.Timestamp(moment).tz_convert(zone).strftime("%Y-%m-%d %H:%M:%S")
        for moment in samples["time"].tolist()
    ]
    memory = [None if pd.isna(value) else float(value) for value in samples["memory_mb"].tolist()]
    threads = [None if pd.isna(value) else int(value) for value in samples["threads"].tolist()]

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
    figure.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        height=260,
        margin={"l": 50, "r": 40, "t": 40, "b": 30},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        hovermode="x unified",
    )
    if not times:
        figure.add_annotation(
            text="No samples yet",
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"size": 14, "color": _GREY},
        )
    figure.update_xaxes(type="date", showticklabels=bool(times))
    figure.update_yaxes(title_text="MB", rangemode="tozero", secondary_y=False)
    # whole threads only: about four ticks, never a fraction of a thread
    known = [count for count in threads if count is not None]
    step = {"dtick": max(1, math.ceil(max(known) / 4))} if known else {}
    figure.update_yaxes(
        title_text="threads", rangemode="tozero", showgrid=False, secondary_y=True, **step
    )
    result: go.Figure = figure
    return result
