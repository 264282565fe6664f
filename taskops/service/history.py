"""The site's records as pandas frames: ``ops.history()``, ``ops.stats()``, ``ops.audit()``
and ``ops.runspace_samples()``.

The database does the filtering: the store bounds the rows by its indexes and hands back
plain columns (times as UTC epoch seconds), and the frames are built column by column with
numpy, never through one Python object per row. ``stats`` reads only the five values it
needs of the runs in its window and aggregates them with numpy (SQLite has no percentile).

Every time in these frames is timezone-aware in the site's timezone (``ops.timezone``),
at microsecond resolution (``datetime64[us, <zone>]``), as the store keeps them; durations
are ``timedelta64[us]``. History, audit and samples run oldest first. An empty result is a
frame with the same columns and dtypes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from taskops.cron import load_timezone
from taskops.errors import InvalidInput, Problem
from taskops.model import JobState
from taskops.service.arguments import aware_time, whole_number
from taskops.service.jobs import parse_states

if TYPE_CHECKING:
    from taskops.service.ops import TaskOps

__all__ = [
    "AUDIT_COLUMNS",
    "HISTORY_COLUMNS",
    "SAMPLE_COLUMNS",
    "STATE_DTYPE",
    "STATS_FIGURES",
    "STATS_GROUPS",
    "audit_frame",
    "history_frame",
    "runspace_sample_frame",
    "stats_frame",
]

HISTORY_COLUMNS = (
    "job_id",
    "task_id",
    "app",
    "owner",
    "name",
    "state",
    "scheduled_for",
    "queued_at",
    "started_at",
    "ended_at",
    "duration",
    "exit_code",
    "error",
    "output_bytes",
)
"""The columns of ``ops.history()``, in order."""

STATS_FIGURES = (
    "day",
    "runs",
    "successes",
    "failures",
    "success_rate",
    "mean_duration",
    "p95_duration",
)
"""The columns of ``ops.stats()`` after its group column (the ``taskops.analytics``
figures ``daily_runs_figure``, ``success_rate_figure`` and ``failures_heatmap`` draw
them)."""

STATS_GROUPS = {"task": "task_id", "app": "app", None: None}
"""``by`` of ``ops.stats()`` -> the column it groups by (None: one row per day)."""

AUDIT_COLUMNS = ("time", "user", "action", "target", "result", "error", "details")
"""The columns of ``ops.audit()``, in order."""

SAMPLE_COLUMNS = ("time", "memory_mb", "threads")
"""The columns of ``ops.runspace_samples()``, in order."""

STATE_DTYPE = pd.CategoricalDtype([state.value for state in JobState])
"""The ``state`` column's dtype: every job state, in the order of ``JobState``."""

_FAILURES = (JobState.FAILED.value, JobState.TERMINATED.value)
_NAT = np.iinfo(np.int64).min
"""The int64 that numpy's datetime64 and timedelta64 read as NaT."""
_MAX_DAYS = 3660


def history_frame(
    ops: TaskOps,
    *,
    task: str | None = None,
    app: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    state: str | JobState | Iterable[str | JobState] | None = None,
) -> pd.DataFrame:
    """``ops.history()``: see there."""
    task = _text_filter(task, "task")
    app = _text_filter(app, "app")
    after = aware_time(since, "since") if since is not None else None
    before = aware_time(until, "until") if until is not None else None
    if after is not None and before is not None and before <= after:
        raise InvalidInput(
            f"until ({before.isoformat()}) must be later than since ({after.isoformat()})",
            problems=[Problem(field="until", message="must be later than since")],
        )
    states = parse_states(state) if state is not None else None
    columns = ops.store.job_history_columns(
        task_id=task, app=app, since=after, until=before, states=states
    )
    zone = load_timezone(ops.timezone)
    started = _microseconds(columns["started_at"])
    ended = _microseconds(columns["ended_at"])
    return pd.DataFrame(
        {
            "job_id": np.asarray(columns["id"], dtype=np.int64),
            "task_id": _objects(columns["task_id"]),
            "app": _objects(columns["app"]),
            "owner": _objects(columns["owner"]),
            "name": _objects(columns["name"]),
            "state": pd.Categorical(columns["state"], dtype=STATE_DTYPE),
            "scheduled_for": _datetimes(_microseconds(columns["scheduled_for"]), zone),
            "queued_at": _datetimes(_microseconds(columns["queued_at"]), zone),
            "started_at": _datetimes(started, zone),
            "ended_at": _datetimes(ended, zone),
            "duration": pd.TimedeltaIndex(_int64(ended - started).view("timedelta64[us]")),
            "exit_code": _nullable_ints(columns["exit_code"]),
            "error": _objects(columns["error"]),
            "output_bytes": _nullable_ints(columns["output_bytes"]),
        },
        columns=list(HISTORY_COLUMNS),
    )


def stats_frame(
    ops: TaskOps, *, days: int = 7, by: str | None = "task", task: str | None = None
) -> pd.DataFrame:
    """``ops.stats()``: see there."""
    whole_number(days, "days", low=1, high=_MAX_DAYS)
    task = _text_filter(task, "task")
    if not (by is None or (isinstance(by, str) and by in STATS_GROUPS)):
        raise InvalidInput(
            f"by must be 'task', 'app' or None, not {by!r}",
            problems=[Problem(field="by", message="must be 'task', 'app' or None")],
        )
    group = STATS_GROUPS[by]
    zone = load_timezone(ops.timezone)
    today = ops.clock.now().astimezone(zone).date()
    calendar = [today - timedelta(days=days - 1 - offset) for offset in range(days)]
    # midnight of every day and of the day after the last; DST makes some days 23 or 25 h
    bounds = [
        datetime.combine(day, time(), tzinfo=zone) for day in [*calendar, today + timedelta(1)]
    ]
    runs = ops.store.run_durations(start=bounds[0], end=bounds[-1], task_id=task)

    started = np.asarray(runs["started_at"], dtype=np.float64)
    day_of_run = np.searchsorted([b.timestamp() for b in bounds], started, side="right") - 1
    if group is None:
        keys: list[Any] = [None]
        key_of_run = np.zeros(len(started), dtype=np.int64)
    else:
        codes, found = pd.factorize(
            np.asarray(runs[group], dtype=object), sort=True, use_na_sentinel=False
        )
        keys = [None if pd.isna(key) else key for key in found]
        key_of_run = codes.astype(np.int64)
    cells = len(keys) * days
    cell_of_run = key_of_run * days + day_of_run
    states = np.asarray(runs["state"], dtype=object)
    duration = np.asarray(runs["duration"], dtype=np.float64)

    count = np.bincount(cell_of_run, minlength=cells)
    successes = np.bincount(
        cell_of_run, weights=states == JobState.COMPLETED.value, minlength=cells
    )
    failures = np.bincount(cell_of_run, weights=np.isin(states, _FAILURES), minlength=cells)
    total = np.bincount(cell_of_run, weights=duration, minlength=cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        success_rate = successes / count
        mean = total / count
    figures: dict[str, Any] = {
        "day": _objects(calendar * len(keys)),
        "runs": count.astype(np.int64),
        "successes": successes.astype(np.int64),
        "failures": failures.astype(np.int64),
        "success_rate": success_rate,
        "mean_duration": mean,
        "p95_duration": _grouped_quantile(cell_of_run, duration, cells, 0.95),
    }
    if group is None:
        return pd.DataFrame(figures, columns=list(STATS_FIGURES))
    return pd.DataFrame(
        {group: _objects([key for key in keys for _ in calendar]), **figures},
        columns=[group, *STATS_FIGURES],
    )


def audit_frame(ops: TaskOps, *, since: datetime | str | None = None) -> pd.DataFrame:
    """``ops.audit()``: see there."""
    after = aware_time(since, "since") if since is not None else None
    records = list(ops.audit_log.records())
    times = pd.to_datetime(
        pd.Series(
            [r.get("time") if isinstance(r.get("time"), str) else None for r in records],
            dtype=object,
        ),
        utc=True,
        errors="coerce",
        format="ISO8601",
    )
    stamps = pd.DatetimeIndex(times).as_unit("us").tz_convert(load_timezone(ops.timezone))
    frame = pd.DataFrame(
        {
            "time": stamps,
            "user": _objects([r.get("user") for r in records]),
            "action": _objects([r.get("action") for r in records]),
            "target": _objects([r.get("target") for r in records]),
            "result": _objects([r.get("result") for r in records]),
            "error": _objects([r.get("error") for r in records]),
            "details": _objects([r.get("details") or {} for r in records]),
        },
        columns=list(AUDIT_COLUMNS),
    )
    if after is not None:
        frame = frame[(frame["time"] >= pd.Timestamp(after)).to_numpy(dtype=bool)]
        frame = frame.reset_index(drop=True)
    return frame


def runspace_sample_frame(
    ops: TaskOps, runspace_id: int | str, *, since: datetime | str | None = None
) -> pd.DataFrame:
    """``ops.runspace_samples()``: see there."""
    number = ops.runspaces.get(runspace_id).id
    after = aware_time(since, "since") if since is not None else None
    columns = ops.store.runspace_sample_columns(number, since=after)
    return pd.DataFrame(
        {
            "time": _datetimes(_microseconds(columns["time"]), load_timezone(ops.timezone)),
            "memory_mb": np.asarray(columns["memory_mb"], dtype=np.float64),
            "threads": _nullable_ints(columns["thread_count"]),
        },
        columns=list(SAMPLE_COLUMNS),
    )


# -- column builders -------------------------------------------------------------------------


def _text_filter(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidInput(
        f"{field} must be a text (an id or a name), not {type(value).__name__}",
        problems=[Problem(field=field, message="must be a text")],
    )


def _microseconds(seconds: Sequence[float | None]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """UTC epoch seconds (None: unset) as whole microseconds in floats (NaN: unset),
    rounded as ``datetime.fromtimestamp`` rounds them."""
    return np.round(np.asarray(seconds, dtype=np.float64) * 1e6)


def _int64(values: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Whole floats as int64, NaN as the NaT value."""
    missing = np.isnan(values)
    out = np.where(missing, 0.0, values).astype(np.int64)
    out[missing] = _NAT
    return out


def _datetimes(micro: np.ndarray[Any, np.dtype[np.float64]], zone: ZoneInfo) -> pd.DatetimeIndex:
    """Epoch microseconds as ``datetime64[us, zone]`` (NaN -> NaT)."""
    utc = pd.DatetimeIndex(_int64(micro).view("datetime64[us]")).tz_localize("UTC")
    return utc.tz_convert(zone)


def _nullable_ints(values: Sequence[int | None]) -> pd.arrays.IntegerArray:
    """``Int64`` with ``<NA>`` for None (through floats: exact below 2**53)."""
    floats = np.asarray(values, dtype=np.float64)
    missing = np.isnan(floats)
    return pd.arrays.IntegerArray(np.where(missing, 0.0, floats).astype(np.int64), missing)


def _objects(values: Sequence[Any]) -> pd.Series:
    """``values`` as they are in an object column: text stays text and None stays None
    (pandas 3 would infer its ``str`` dtype, with NaN for None), a dict stays one cell."""
    cells = np.empty(len(values), dtype=object)
    cells[:] = values
    return pd.Series(cells, dtype=object, copy=False)


def _grouped_quantile(
    groups: np.ndarray[Any, np.dtype[np.int64]],
    values: np.ndarray[Any, np.dtype[np.float64]],
    size: int,
    q: float,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The ``q`` quantile of ``values`` in each of ``size`` groups (``groups`` gives each
    value's), linear between the nearest ranks as ``numpy.quantile`` and pandas do; NaN
    for an empty group. One sort for all groups."""
    order = np.lexsort((values, groups))
    ordered = values[order]
    counts = np.bincount(groups, minlength=size)
    first = np.cumsum(counts) - counts
    position = q * np.maximum(counts - 1, 0)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(counts - 1, 0))
    out = np.full(size, np.nan)
    filled = counts > 0
    below = ordered[(first + low)[filled]]
    above = ordered[(first + high)[filled]]
    out[filled] = below + (above - below) * (position - low)[filled]
    return out
