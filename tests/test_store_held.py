"""The store's side of held jobs: jobs queued ahead of their slot, the worker runspaces of
the processes the engine forks and holds for them, and the claim that hands a held process
its job."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from taskops.errors import NotFound
from taskops.model import Availability, JobState, RunspaceKind, RunspaceState
from taskops.store import JobStart, RunspaceRow, Store

T0 = datetime(2026, 1, 16, 14, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.for_sqlite(tmp_path / "s.db")
    yield store
    store.close()


def queue(store: Store, name: str, *, slot: datetime | None = None, **more: Any) -> int:
    """A queued job of the task ``app.<name>``; its id."""
    return store.insert_job(
        name=name,
        owner="TaskEngine" if slot is not None else "Manual",
        state=JobState.QUEUED,
        queued_at=T0,
        task_id=f"app.{name}",
        app="app",
        scheduled_for=slot,
        **more,
    )


def start_of(store: Store, job_id: int) -> JobStart:
    job = store.get_job(job_id)
    return JobStart(job_id=job.id, name=job.name, task_id=job.task_id, app=job.app, owner=job.owner)


def lifecycle(row: RunspaceRow) -> tuple[Any, ...]:
    return (row.state, row.availability, row.pid, row.closed_at)


def test_queued_jobs_due_by_leaves_out_jobs_queued_ahead_of_their_slot(store: Store) -> None:
    manual = queue(store, "Manual")
    due = queue(store, "Due", slot=T0)
    on_the_dot = queue(store, "OnTheDot", slot=T0 + timedelta(seconds=30))
    ahead = queue(store, "Ahead", slot=T0 + timedelta(minutes=1))

    assert [j.id for j in store.queued_jobs()] == [manual, due, on_the_dot, ahead]
    by = T0 + timedelta(seconds=30)
    assert [j.id for j in store.queued_jobs(due_by=by)] == [manual, due, on_the_dot]
    assert [j.id for j in store.queued_jobs(due_by=T0 - timedelta(hours=1))] == [manual]
    assert [j.id for j in store.queued_jobs(due_by=by, limit=2)] == [manual, due]


def test_next_queued_gives_the_jobs_next_in_line_with_their_commands(store: Store) -> None:
    secret = {"kind": "python", "script": "/s/t.py", "env": {"API_TOKEN": "s3cr3t-value"}}
    first = queue(store, "First", slot=T0, command=secret)
    stopped = queue(store, "Stopped", slot=T0)
    ahead = queue(store, "Ahead", slot=T0 + timedelta(hours=1), command={"argv": ["true"]})
    last = queue(store, "Last")
    store.request_stop(stopped, reason="stopped by alice", now=T0)

    assert store.next_queued(limit=10) == [
        (start_of(store, first), secret),  # not masked: the engine runs it
        (start_of(store, last), {}),  # due since it was queued, before the slot below
        (start_of(store, ahead), {"argv": ["true"]}),  # queued ahead of its slot: in line
    ]
    assert [start.job_id for start, _ in store.next_queued(limit=2)] == [first, last]
    assert start_of(store, first) == JobStart(
        job_id=first, name="First", task_id="app.First", app="app", owner="TaskEngine"
    )


def test_open_workers_opens_an_available_runspace_without_a_process_per_job(
    store: Store,
) -> None:
    jobs = [queue(store, "A", slot=T0), queue(store, "B")]
    starts = [start_of(store, job_id) for job_id in jobs]

    ids = store.open_workers(starts, now=T0)
    assert len(ids) == 2 and ids == sorted(ids)
    for start, runspace_id in zip(starts, ids, strict=True):
        row = store.runspace_row(runspace_id)
        assert (row.kind, row.state, row.availability, row.pid, row.create_time) == (
            RunspaceKind.WORKER.value,
            RunspaceState.OPENING.value,
            Availability.AVAILABLE.value,
            None,
            None,
        )
        assert (row.job_id, row.task_id, row.app, row.owner, row.purpose) == (
            start.job_id,
            start.task_id,
            "app",
            start.owner,
            start.name,
        )
        assert (row.host, row.opened_at, row.closed_at) == (socket.gethostname(), T0, None)
    assert store.get_job(jobs[0]).state is JobState.QUEUED  # the jobs are not started
    assert store.open_workers([], now=T0) == []


def test_close_workers_closes_live_runspaces_and_leaves_closed_ones_be(store: Store) -> None:
    starts = [start_of(store, queue(store, name)) for name in ("A", "B", "C")]
    a, b, c = store.open_workers(starts, now=T0)
    store.close_workers([a], now=T0)

    store.close_workers([a, b], now=LATER)
    assert lifecycle(store.runspace_row(a)) == ("Closed", "None", None, T0)  # as it was
    assert lifecycle(store.runspace_row(b)) == ("Closed", "None", None, LATER)
    assert lifecycle(store.runspace_row(c)) == ("Opening", "Available", None, None)
    store.close_workers([], now=LATER)
    assert lifecycle(store.runspace_row(c)) == ("Opening", "Available", None, None)


def test_close_unstarted_workers_closes_those_of_jobs_still_queued_on_the_host(
    store: Store,
) -> None:
    waiting, running, closed = (queue(store, name) for name in ("Waiting", "Running", "Closed"))
    starts = {job_id: start_of(store, job_id) for job_id in (waiting, running, closed)}
    rs_waiting, rs_running, rs_closed = store.open_workers(list(starts.values()), now=T0)
    store.close_workers([rs_closed], now=T0)
    store.start_jobs([starts[running]], now=T0, held={running: (rs_running, 4242, 12.5)})
    here = socket.gethostname()

    assert store.close_unstarted_workers(host=f"not-{here}", now=LATER) == 0
    assert lifecycle(store.runspace_row(rs_waiting)) == ("Opening", "Available", None, None)

    assert store.close_unstarted_workers(host=here, now=LATER) == 1
    assert lifecycle(store.runspace_row(rs_waiting)) == ("Closed", "None", None, LATER)
    assert lifecycle(store.runspace_row(rs_running)) == ("Opened", "Busy", 4242, None)
    assert lifecycle(store.runspace_row(rs_closed)) == ("Closed", "None", None, T0)
    assert store.get_job(waiting).state is JobState.QUEUED  # the job itself is kept
    assert store.close_unstarted_workers(host=here, now=LATER) == 0


def test_drop_queued_deletes_only_jobs_still_queued(store: Store) -> None:
    dropped, kept, running, stopped = (
        queue(store, name, slot=T0 + timedelta(minutes=1)) for name in ("D", "K", "R", "S")
    )
    store.start_jobs([start_of(store, running)], now=T0)
    store.request_stop(stopped, reason="stopped by alice", now=T0)

    assert store.drop_queued([dropped, running, stopped, 999]) == [dropped]
    with pytest.raises(NotFound):
        store.get_job(dropped)
    assert store.get_job(kept).state is JobState.QUEUED
    assert store.get_job(running).state is JobState.RUNNING
    assert store.get_job(stopped).state is JobState.STOPPED
    assert store.drop_queued([]) == []
    assert store.drop_queued([dropped]) == []


def test_start_jobs_hands_held_processes_their_jobs_in_their_own_runspaces(
    store: Store,
) -> None:
    held, fresh, timed, stopped = (
        queue(store, name, slot=T0, command={"argv": [name]})
        for name in ("Held", "Fresh", "Timed", "Stopped")
    )
    starts = {job_id: start_of(store, job_id) for job_id in (held, fresh, timed, stopped)}
    rs_held, rs_stopped = store.open_workers([starts[held], starts[stopped]], now=T0)
    store.request_stop(stopped, reason="stopped by alice", now=T0)  # while its process waited
    before = len(store.runspace_rows())
    claimed_at = LATER - timedelta(milliseconds=200)

    claimed = store.start_jobs(
        list(starts.values()),
        now=LATER,
        held={held: (rs_held, 4242, 12.5), stopped: (rs_stopped, 4343, 13.5)},
        start_times={held: claimed_at, timed: claimed_at},
    )
    assert [(start.job_id, command) for start, command, _ in claimed] == [
        (held, {"argv": ["Held"]}),
        (fresh, {"argv": ["Fresh"]}),
        (timed, {"argv": ["Timed"]}),
    ]
    runspaces = {start.job_id: runspace_id for start, _, runspace_id in claimed}
    assert runspaces[held] == rs_held
    assert len(store.runspace_rows()) == before + 2  # one each for fresh and timed only

    job = store.get_job(held)
    assert (job.state, job.started_at, job.pid, job.runspace_id) == (
        JobState.RUNNING,
        claimed_at,
        4242,
        rs_held,
    )
    assert store.job_process(held)[:2] == (4242, 12.5)
    row = store.runspace_row(rs_held)
    assert (row.state, row.availability, row.pid, row.create_time, row.job_id) == (
        RunspaceState.OPENED.value,
        Availability.BUSY.value,
        4242,
        12.5,
        held,
    )

    assert store.get_job(fresh).started_at == LATER  # no start time given: now
    assert store.get_job(timed).started_at == claimed_at
    for job_id in (fresh, timed):
        row = store.runspace_row(runspaces[job_id])
        assert (row.state, row.availability, row.pid, row.job_id) == (
            RunspaceState.OPENING.value,
            Availability.BUSY.value,
            None,
            job_id,
        )

    job = store.get_job(stopped)  # not claimed: its process is not recorded
    assert (job.state, job.pid, job.runspace_id) == (JobState.STOPPED, None, None)
    assert lifecycle(store.runspace_row(rs_stopped)) == ("Opening", "Available", None, None)


def test_a_slot_with_a_job_is_never_also_recorded_as_skipped(store: Store) -> None:
    queued_ahead = queue(store, "Tick", slot=LATER)  # by an engine that died, say
    assert store.record_skip("app.Tick", LATER, reason="still running", now=T0) is False
    assert store.skipped_runs("app.Tick") == []
    assert store.get_job(queued_ahead).state is JobState.QUEUED
    earlier = LATER - timedelta(seconds=1)
    assert store.record_skip("app.Tick", earlier, reason="still running", now=T0) is True
    assert store.skipped_runs("app.Tick") == [(earlier, "still running")]
