"""``ops.history()``, ``ops.stats()``, ``ops.audit()`` and ``ops.runspace_samples()``: the
frames' columns and dtypes, their values against jobs written through the store (a real
SQLite file, a fake clock, a site in Europe/Berlin), filters, bad input, and the SQL that
keeps them fast (the time window read through its index)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import taskops
from taskops.errors import InvalidInput, NotFound
from taskops.model import JobState, RunspaceKind
from taskops.service.history import (
    AUDIT_COLUMNS,
    HISTORY_COLUMNS,
    SAMPLE_COLUMNS,
    STATS_FIGURES,
)
from taskops.store import RunspaceSample, Store
from taskops.testing import FakeClock, make_site

ZONE = "Europe/Berlin"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
"""Winter: Berlin is UTC+1."""
CLEANUP = "global.Cleanup"
BACKUP = "vault.VaultBackup"

HISTORY_DTYPES = {
    "job_id": "int64",
    "task_id": "object",
    "app": "object",
    "owner": "object",
    "name": "object",
    "state": "category",
    "scheduled_for": f"datetime64[us, {ZONE}]",
    "queued_at": f"datetime64[us, {ZONE}]",
    "started_at": f"datetime64[us, {ZONE}]",
    "ended_at": f"datetime64[us, {ZONE}]",
    "duration": "timedelta64[us]",
    "exit_code": "Int64",
    "error": "object",
    "output_bytes": "Int64",
}
STATS_DTYPES = {
    "day": "object",
    "runs": "int64",
    "successes": "int64",
    "failures": "int64",
    "success_rate": "float64",
    "mean_duration": "float64",
    "p95_duration": "float64",
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def ops(tmp_path: Path, clock: FakeClock) -> Iterator[taskops.TaskOps]:
    tasks = {
        "global": [{"name": "Cleanup", "schedule": "0 3 * * *", "scriptPath": "tasks/c.py"}],
        "vault": [{"name": "VaultBackup", "schedule": "30 1 * * *", "scriptPath": "tasks/b.py"}],
    }
    site = make_site(tmp_path / "site", tasks, timezone=ZONE)
    with taskops.open_site(site, user="alice", clock=clock) as opened:
        yield opened


def run(
    store: Store,
    start: datetime,
    seconds: float | None,
    *,
    state: JobState = JobState.COMPLETED,
    task_id: str | None = CLEANUP,
    app: str = "global",
    exit_code: int | None = None,
    error: str | None = None,
    output_bytes: int | None = None,
    scheduled: bool = False,
) -> int:
    """A job queued a quarter second before ``start``, claimed at ``start`` and, unless
    ``seconds`` is None, ended ``seconds`` later in ``state``."""
    job_id = store.insert_job(
        name=f"Task_{task_id}_{start:%Y%m%d_%H%M%S%f}",
        owner="TaskEngine" if scheduled else "Manual",
        state=JobState.QUEUED,
        queued_at=start - timedelta(seconds=0.25),
        task_id=task_id,
        app=app,
        scheduled_for=start.replace(microsecond=0) if scheduled else None,
    )
    assert store.claim_job(job_id, now=start)
    if seconds is not None:
        assert store.finish_job(
            job_id,
            state=state,
            ended_at=start + timedelta(seconds=seconds),
            exit_code=exit_code,
            error=error,
            output_bytes=output_bytes,
        )
    return job_id


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


def at(text: str) -> datetime:
    """An aware UTC time from ``YYYY-MM-DD HH:MM[:SS]``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- history ---------------------------------------------------------------------------------


def test_history_has_the_documented_columns_dtypes_and_values(ops: taskops.TaskOps) -> None:
    store = ops.store
    start = datetime(2026, 3, 9, 8, 15, 30, 123456, tzinfo=UTC)
    done = run(store, start, 12.5, exit_code=0, output_bytes=2048, scheduled=True)
    failed = run(
        store,
        start + timedelta(hours=1),
        3.0,
        state=JobState.FAILED,
        exit_code=2,
        error="ValueError: bad row",
        output_bytes=10,
    )
    running = run(store, start + timedelta(hours=2), None, task_id=BACKUP, app="vault")
    adhoc = run(store, start + timedelta(hours=3), 1.0, task_id=None, exit_code=0)
    queued = store.insert_job(
        name="waiting",
        owner="Manual",
        state=JobState.QUEUED,
        queued_at=start - timedelta(seconds=1),
        task_id=CLEANUP,
    )

    frame = ops.history()

    assert list(frame.columns) == list(HISTORY_COLUMNS)
    assert dtypes(frame) == HISTORY_DTYPES
    state_dtype = frame["state"].dtype
    assert isinstance(state_dtype, pd.CategoricalDtype)
    assert list(state_dtype.categories) == [s.value for s in JobState]
    # oldest first by the start, the queue time of a job that never started: the job
    # queued a second before `start` (and never started) comes before the run started then
    assert frame["job_id"].tolist() == [queued, done, failed, running, adhoc]

    rows = frame.set_index("job_id")
    job = store.get_job(done)
    assert rows.at[done, "started_at"] == job.started_at
    assert rows.at[done, "started_at"].microsecond == 123456
    assert str(rows.at[done, "started_at"].tzinfo) == ZONE
    assert rows.at[done, "started_at"].hour == 9  # 08:15 UTC is 09:15 in Berlin in March
    assert rows.at[done, "ended_at"] == job.ended_at
    assert rows.at[done, "queued_at"] == job.queued_at
    assert rows.at[done, "scheduled_for"] == start.replace(microsecond=0)
    assert rows.at[done, "duration"] == timedelta(seconds=12.5)
    assert (rows.at[done, "task_id"], rows.at[done, "app"]) == (CLEANUP, "global")
    assert (rows.at[done, "owner"], rows.at[done, "name"]) == ("TaskEngine", job.name)
    assert rows.at[done, "state"] == "Completed"
    assert (rows.at[done, "exit_code"], rows.at[done, "output_bytes"]) == (0, 2048)
    assert rows.at[done, "error"] is None

    assert rows.at[failed, "state"] == "Failed"
    assert rows.at[failed, "exit_code"] == 2
    assert rows.at[failed, "error"] == "ValueError: bad row"
    assert rows.at[failed, "duration"] == timedelta(seconds=3)

    assert rows.at[running, "state"] == "Running"
    assert rows.at[running, "app"] == "vault"
    assert pd.isna(rows.at[running, "ended_at"]) and pd.isna(rows.at[running, "duration"])
    assert rows.at[running, "exit_code"] is pd.NA and rows.at[running, "output_bytes"] is pd.NA
    assert pd.isna(rows.at[running, "scheduled_for"])

    assert rows.at[adhoc, "task_id"] is None
    assert pd.isna(rows.at[queued, "started_at"]) and pd.isna(rows.at[queued, "duration"])
    assert rows.at[queued, "state"] == "Queued"


def test_history_of_an_empty_store_has_the_same_columns_and_dtypes(
    ops: taskops.TaskOps,
) -> None:
    frame = ops.history()
    assert frame.empty
    assert list(frame.columns) == list(HISTORY_COLUMNS)
    assert dtypes(frame) == HISTORY_DTYPES
    assert list(frame["state"].cat.categories) == [s.value for s in JobState]
    # a filter that matches nothing gives the same
    run(ops.store, at("2026-03-09 08:00"), 1.0)
    assert dtypes(ops.history(task="nobody.Nothing")) == HISTORY_DTYPES


def test_history_filters_by_task_app_state_and_time(ops: taskops.TaskOps) -> None:
    store = ops.store
    t0 = at("2026-03-09 08:00")
    a = run(store, t0, 5.0)
    b = run(store, t0 + timedelta(hours=1), 5.0, state=JobState.FAILED)
    c = run(store, t0 + timedelta(hours=2), 5.0, task_id=BACKUP, app="vault")
    d = run(store, t0 + timedelta(hours=3), 5.0, state=JobState.TERMINATED)
    never = store.insert_job(
        name="never",
        owner="Manual",
        state=JobState.QUEUED,
        queued_at=t0 + timedelta(hours=4),
        app="global",
    )
    store.request_stop(never, reason="not wanted", now=t0 + timedelta(hours=5))

    def ids(**filters: Any) -> list[int]:
        return ops.history(**filters)["job_id"].tolist()

    assert ids(task=CLEANUP) == [a, b, d]
    assert ids(app="vault") == [c]
    assert ids(state="failed") == [b]
    assert ids(state=["FAILED", JobState.TERMINATED]) == [b, d]
    assert ids(state="Stopped") == [never]
    # since is inclusive, until exclusive, on the start (the queue time when never started)
    assert ids(since=t0 + timedelta(hours=1)) == [b, c, d, never]
    assert ids(until=t0 + timedelta(hours=1)) == [a]
    assert ids(since=t0 + timedelta(hours=3, minutes=30)) == [never]
    assert ids(since=(t0 + timedelta(hours=1)).isoformat(), until=t0 + timedelta(hours=3)) == [
        b,
        c,
    ]
    # every filter at once, the state inside a window and inside a task
    assert ids(task=CLEANUP, since=t0 + timedelta(minutes=30), state="terminated") == [d]
    assert ids(app="global", since=t0, state=["Completed", "Stopped"]) == [a, never]
    assert ids(task=CLEANUP, state="Completed") == [a]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"state": "Exploded"}, "state"),
        ({"state": ["Failed", "nope"]}, "state"),
        ({"since": datetime(2026, 3, 9, 8, 0)}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-03-09T08:00:00"}, "until"),
        ({"since": "2026-03-09T09:00:00+00:00", "until": "2026-03-09T09:00:00+00:00"}, "until"),
        ({"task": 5}, "task"),
        ({"app": ["vault"]}, "app"),
    ],
)
def test_history_refuses_bad_filters_naming_the_field(
    ops: taskops.TaskOps, filters: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        ops.history(**filters)
    assert field in caught.value.fields()


def test_the_window_and_the_state_are_read_through_the_time_index(
    ops: taskops.TaskOps,
) -> None:
    """A 7-day frame of a big store reads the window, not the table: the query the store
    sends is answered through ix_jobs_started (never by a scan, nor by ix_jobs_state,
    which a state such as Completed would walk almost whole)."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM jobs" in statement:
            statements.append((statement, parameters))

    engine = ops.store._engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        ops.history(since=NOW - timedelta(days=7), state="Completed")
        ops.stats(days=7)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) == 2
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = " / ".join(
                row[-1]
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            assert "USING INDEX ix_jobs_started" in plan, plan
            assert "SCAN jobs" not in plan and "ix_jobs_state" not in plan, plan


# -- stats -----------------------------------------------------------------------------------


@pytest.fixture
def three_days(ops: taskops.TaskOps) -> taskops.TaskOps:
    """Runs around the 3 days up to NOW (2026-03-08..10 in Berlin, UTC+1)."""
    store = ops.store
    run(store, at("2026-03-07 22:59:59"), 9.0)  # 23:59:59 on the 7th in Berlin: left out
    run(store, at("2026-03-07 23:00"), 7.0)  # midnight of the 8th in Berlin
    run(store, at("2026-03-09 08:00"), 10.0)
    run(store, at("2026-03-09 08:10"), 20.0)
    run(store, at("2026-03-09 08:20"), 30.0, state=JobState.FAILED)
    run(store, at("2026-03-09 08:30"), 40.0, state=JobState.STOPPED)
    run(store, at("2026-03-09 23:30"), 5.0)  # 00:30 on the 10th in Berlin
    run(store, at("2026-03-10 09:00"), 15.0, state=JobState.TERMINATED)
    run(store, at("2026-03-10 11:00"), None)  # running: not counted
    run(store, at("2026-03-10 10:00"), 100.0, task_id=BACKUP, app="vault")
    run(store, at("2026-03-09 12:00"), 2.0, state=JobState.FAILED, task_id=None)  # ad-hoc
    return ops


def figures(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The rows of a stats frame as tuples, NaN as None, floats rounded to 6 places."""

    def plain(value: Any) -> Any:
        if isinstance(value, float):
            return None if math.isnan(value) else round(value, 6)
        return value

    return [tuple(plain(v) for v in row) for row in frame.itertuples(index=False)]


def test_stats_per_task_and_day_against_a_hand_count(three_days: taskops.TaskOps) -> None:
    frame = three_days.stats(days=3)

    assert list(frame.columns) == ["task_id", *STATS_FIGURES]
    assert dtypes(frame) == {"task_id": "object", **STATS_DTYPES}
    d8, d9, d10 = date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)
    # p95 by hand, linear between the nearest ranks: of 10, 20, 30, 40 the rank 0.95 * 3 =
    # 2.85 lies between 30 and 40: 38.5; of 5 and 15: 5 + 0.95 * 10 = 14.5
    assert figures(frame) == [
        (CLEANUP, d8, 1, 1, 0, 1.0, 7.0, 7.0),
        (CLEANUP, d9, 4, 2, 1, 0.5, 25.0, 38.5),  # Stopped: a run, neither
        (CLEANUP, d10, 2, 1, 1, 0.5, 10.0, 14.5),  # the 23:30 UTC run is on the 10th
        (BACKUP, d8, 0, 0, 0, None, None, None),
        (BACKUP, d9, 0, 0, 0, None, None, None),
        (BACKUP, d10, 1, 1, 0, 1.0, 100.0, 100.0),
        (None, d8, 0, 0, 0, None, None, None),  # ad-hoc jobs, last
        (None, d9, 1, 0, 1, 0.0, 2.0, 2.0),
        (None, d10, 0, 0, 0, None, None, None),
    ]
    p95 = np.quantile([10.0, 20.0, 30.0, 40.0], 0.95)
    assert frame["p95_duration"].iloc[1] == pytest.approx(p95)


def test_stats_of_one_task(three_days: taskops.TaskOps) -> None:
    ops = three_days
    # stopped while queued: it ended, but never ran
    never = ops.store.insert_job(
        name="never",
        owner="Manual",
        state=JobState.QUEUED,
        queued_at=at("2026-03-09 10:00"),
        task_id=CLEANUP,
        app="global",
    )
    ops.store.request_stop(never, reason="not wanted", now=at("2026-03-09 10:01"))
    every_task = ops.stats(days=3)
    cleanup = every_task[every_task["task_id"] == CLEANUP].reset_index(drop=True)

    mine = ops.stats(days=3, task=CLEANUP)
    assert list(mine.columns) == ["task_id", *STATS_FIGURES]
    pd.testing.assert_frame_equal(mine, cleanup)
    per_day = ops.stats(days=3, by=None, task=CLEANUP)
    assert dtypes(per_day) == STATS_DTYPES
    pd.testing.assert_frame_equal(per_day, cleanup.drop(columns=["task_id"]))
    # by app: the task's app, without the ad-hoc job that the whole app has
    by_app = ops.stats(days=3, by="app", task=CLEANUP)
    assert figures(by_app) == [("global", *row[1:]) for row in figures(cleanup)]
    assert figures(ops.stats(days=3, task=BACKUP))[-1] == (
        BACKUP,
        date(2026, 3, 10),
        1,
        1,
        0,
        1.0,
        100.0,
        100.0,
    )


def test_stats_of_a_task_without_runs(three_days: taskops.TaskOps) -> None:
    ops = three_days
    per_day = ops.stats(days=7, by=None, task="global.Nothing")
    assert dtypes(per_day) == STATS_DTYPES
    assert per_day["day"].tolist() == [date(2026, 3, 4) + timedelta(days=n) for n in range(7)]
    assert per_day["runs"].tolist() == [0] * 7 and per_day["success_rate"].isna().all()
    by_task = ops.stats(days=7, task="global.Nothing")
    assert by_task.empty and dtypes(by_task) == {"task_id": "object", **STATS_DTYPES}
    # the runs of the 8th to the 10th are outside a window of one day ending on the 9th
    ops.clock.set(at("2026-03-09 20:00"))
    assert figures(ops.stats(days=1, by=None, task=BACKUP)) == [
        (date(2026, 3, 9), 0, 0, 0, None, None, None)
    ]


def test_the_runs_of_a_task_are_read_through_its_index(three_days: taskops.TaskOps) -> None:
    """``stats(task=...)`` asks the database for that task's ended runs of the window:
    the query goes through ix_jobs_task_started, never a scan."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM jobs" in statement:
            statements.append((statement, parameters))

    engine = three_days.store._engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        three_days.stats(days=7, by=None, task=CLEANUP)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    [(statement, parameters)] = statements
    assert CLEANUP in parameters
    with engine.connect() as conn:
        plan = " / ".join(
            row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        )
    assert "USING INDEX ix_jobs_task_started" in plan, plan
    assert "SCAN jobs" not in plan, plan


def test_stats_by_app_and_over_everything(three_days: taskops.TaskOps) -> None:
    d8, d9, d10 = date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)
    by_app = three_days.stats(days=3, by="app")
    assert list(by_app.columns) == ["app", *STATS_FIGURES]
    assert dtypes(by_app) == {"app": "object", **STATS_DTYPES}
    # global: Cleanup and the ad-hoc job (2 s, failed on the 9th)
    assert figures(by_app) == [
        ("global", d8, 1, 1, 0, 1.0, 7.0, 7.0),
        ("global", d9, 5, 2, 2, 0.4, 20.4, 38.0),
        ("global", d10, 2, 1, 1, 0.5, 10.0, 14.5),
        ("vault", d8, 0, 0, 0, None, None, None),
        ("vault", d9, 0, 0, 0, None, None, None),
        ("vault", d10, 1, 1, 0, 1.0, 100.0, 100.0),
    ]
    assert by_app.loc[1, "p95_duration"] == pytest.approx(np.quantile([2, 10, 20, 30, 40], 0.95))

    total = three_days.stats(days=3, by=None)
    assert list(total.columns) == list(STATS_FIGURES)
    assert dtypes(total) == STATS_DTYPES
    assert figures(total)[1][:4] == (d9, 5, 2, 2)
    assert figures(total)[2][:6] == (d10, 3, 2, 1, round(2 / 3, 6), 40.0)
    assert total["runs"].sum() == by_app["runs"].sum() == three_days.stats(days=3)["runs"].sum()


def test_stats_days_follow_the_site_timezone_across_dst(
    ops: taskops.TaskOps, clock: FakeClock
) -> None:
    """2026-03-29 has 23 hours in Berlin: from 23:00 UTC on the 28th to 22:00 UTC."""
    clock.set(at("2026-03-30 12:00"))
    run(ops.store, at("2026-03-28 22:59"), 1.0)  # the 28th in Berlin: left out
    run(ops.store, at("2026-03-28 23:30"), 2.0)  # 00:30 CET on the 29th
    run(ops.store, at("2026-03-29 21:59"), 3.0)  # 23:59 CEST on the 29th
    run(ops.store, at("2026-03-29 22:00"), 4.0)  # midnight CEST: the 30th
    frame = ops.stats(days=2)
    assert figures(frame)[0][:4] == (CLEANUP, date(2026, 3, 29), 2, 2)
    assert figures(frame)[1][:4] == (CLEANUP, date(2026, 3, 30), 1, 1)
    assert frame["mean_duration"].tolist() == [2.5, 4.0]


def test_stats_of_an_empty_store(ops: taskops.TaskOps) -> None:
    frame = ops.stats()
    assert frame.empty
    assert list(frame.columns) == ["task_id", *STATS_FIGURES]
    assert dtypes(frame) == {"task_id": "object", **STATS_DTYPES}
    total = ops.stats(days=7, by=None)
    assert dtypes(total) == STATS_DTYPES
    assert total["day"].tolist() == [date(2026, 3, 4) + timedelta(days=n) for n in range(7)]
    assert total["runs"].tolist() == [0] * 7
    assert total["success_rate"].isna().all() and total["p95_duration"].isna().all()


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": True}, "days"),
        ({"days": 1.5}, "days"),
        ({"days": "7"}, "days"),
        ({"days": 100_000}, "days"),
        ({"by": "owner"}, "by"),
        ({"by": "Task"}, "by"),
        ({"by": 1}, "by"),
        ({"task": 5}, "task"),
        ({"task": ["global.Cleanup"]}, "task"),
    ],
)
def test_stats_refuses_bad_arguments_naming_the_field(
    ops: taskops.TaskOps, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        ops.stats(**arguments)
    assert field in caught.value.fields()


# -- audit -----------------------------------------------------------------------------------


def test_audit_frame_after_audited_operations(ops: taskops.TaskOps, clock: FakeClock) -> None:
    empty = ops.audit()
    assert empty.empty and list(empty.columns) == list(AUDIT_COLUMNS)
    assert str(empty["time"].dtype) == f"datetime64[us, {ZONE}]"

    ops.tasks.disable(CLEANUP)
    clock.advance(minutes=5)
    with pytest.raises(NotFound):
        ops.tasks.disable("global.Nope")
    clock.advance(minutes=5)
    ops.as_user("bob").tasks.enable(CLEANUP)

    frame = ops.audit()
    assert list(frame.columns) == list(AUDIT_COLUMNS)
    assert dtypes(frame) == {
        "time": f"datetime64[us, {ZONE}]",
        "user": "object",
        "action": "object",
        "target": "object",
        "result": "object",
        "error": "object",
        "details": "object",
    }
    assert frame["action"].tolist() == ["task.disable", "task.disable", "task.enable"]
    assert frame["user"].tolist() == ["alice", "alice", "bob"]
    assert frame["target"].tolist() == [CLEANUP, "global.Nope", CLEANUP]
    assert frame["result"].tolist() == ["success", "failure", "success"]
    assert frame["error"].iloc[0] is None and "global.Nope" in frame["error"].iloc[1]
    assert frame["details"].iloc[0] == {"changes": {"enabled": False}}
    assert frame["time"].tolist() == [
        NOW,
        NOW + timedelta(minutes=5),
        NOW + timedelta(minutes=10),
    ]
    assert frame["time"].iloc[0].hour == 13  # 12:00 UTC in Berlin

    later = ops.audit(since=NOW + timedelta(minutes=5))
    assert later["target"].tolist() == ["global.Nope", CLEANUP]
    assert later.index.tolist() == [0, 1]
    assert ops.audit(since=(NOW + timedelta(hours=1)).isoformat()).empty
    with pytest.raises(InvalidInput) as caught:
        ops.audit(since="2026-03-10 12:00")
    assert "since" in caught.value.fields()


def test_audit_frame_keeps_a_record_whose_time_cannot_be_read(ops: taskops.TaskOps) -> None:
    ops.tasks.disable(CLEANUP)
    with ops.audit_log.path.open("a") as log:
        log.write('{"time": "not a time", "user": "x", "action": "task.enable"}\n')
        log.write("not json at all\n")
    frame = ops.audit()
    assert frame["user"].tolist() == ["alice", "x"]
    assert pd.isna(frame["time"].iloc[1])
    assert frame["details"].iloc[1] == {} and frame["result"].iloc[1] is None
    assert ops.audit(since=NOW - timedelta(days=1))["user"].tolist() == ["alice"]


# -- runspace samples ------------------------------------------------------------------------


def test_runspace_samples_frame(ops: taskops.TaskOps, clock: FakeClock) -> None:
    store = ops.store
    runspace = store.open_runspace(kind=RunspaceKind.WORKER, owner="TaskEngine", now=NOW)
    other = store.open_runspace(kind=RunspaceKind.WORKER, owner="TaskEngine", now=NOW)
    empty = ops.runspace_samples(runspace)
    assert empty.empty and list(empty.columns) == list(SAMPLE_COLUMNS)
    sample_dtypes = {
        "time": f"datetime64[us, {ZONE}]",
        "memory_mb": "float64",
        "threads": "Int64",
    }
    assert dtypes(empty) == sample_dtypes

    first = NOW + timedelta(seconds=2, microseconds=500)
    store.record_samples(
        [
            RunspaceSample(runspace_id=runspace, memory_mb=41.5, thread_count=3, handle_count=9),
            RunspaceSample(runspace_id=other, memory_mb=1.0, thread_count=1, handle_count=1),
        ],
        now=first,
    )
    store.record_samples(
        [
            RunspaceSample(
                runspace_id=runspace, memory_mb=None, thread_count=None, handle_count=None
            )
        ],
        now=first + timedelta(seconds=2),
    )
    frame = ops.runspace_samples(runspace)
    assert dtypes(frame) == sample_dtypes
    assert frame["time"].tolist() == [first, first + timedelta(seconds=2)]
    assert frame["memory_mb"].iloc[0] == 41.5 and np.isnan(frame["memory_mb"].iloc[1])
    assert frame["threads"].iloc[0] == 3 and frame["threads"].iloc[1] is pd.NA
    assert ops.runspace_samples(str(runspace), since=first + timedelta(seconds=1))[
        "time"
    ].tolist() == [first + timedelta(seconds=2)]


@pytest.mark.parametrize("runspace_id", [999, "abc", -1])
def test_runspace_samples_of_an_unknown_runspace(ops: taskops.TaskOps, runspace_id: Any) -> None:
    with pytest.raises(NotFound):
        ops.runspace_samples(runspace_id)


def test_runspace_samples_refuse_a_naive_since(ops: taskops.TaskOps) -> None:
    runspace = ops.store.open_runspace(kind=RunspaceKind.WORKER, owner="Manual", now=NOW)
    with pytest.raises(InvalidInput) as caught:
        ops.runspace_samples(runspace, since=datetime(2026, 3, 10))
    assert "since" in caught.value.fields()
