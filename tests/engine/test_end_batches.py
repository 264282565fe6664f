"""Jobs that end in the same turn of the engine are recorded together, in one transaction.

To make several jobs end in one turn, the engine's loop is held in its stop-request poll
(the answer read before the hold) while the jobs are let go and exit; once released, the
loop sees all their exits in one wake-up.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

import taskops
from taskops.engine.engine import Engine
from taskops.model import JobState, RunspaceState
from taskops.store.store import JobEnd, JobEndResult
from taskops.testing import traced_sql, wait_for

Wait = Callable[..., Any]

GATE_SCRIPT = """#!/bin/sh
echo "waiting $TASKOPS_JOB_ID"
while [ ! -e "$GATE" ]; do sleep 0.02; done
if [ "$CODE" != 0 ]; then echo "broken vault $TASKOPS_JOB_ID" >&2; fi
exit "$CODE"
"""


@dataclass
class Held:
    """The engine's loop, held on demand, and the end batches it records."""

    hold: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    batches: list[list[int]] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)  # write transactions per batch


@pytest.fixture
def held(eops: taskops.TaskOps, monkeypatch: pytest.MonkeyPatch) -> Iterator[Held]:
    store = eops.store
    state = Held()
    poll = store.stop_requests
    record = store.finish_jobs
    local = threading.local()

    def stop_requests() -> list[tuple[int, str | None]]:
        found = poll()  # read before the hold: a request made meanwhile is not seen here
        if state.hold.is_set():
            state.hold.clear()
            state.holding.set()
            state.release.wait(30)
        return found

    def finish_jobs(ends: list[JobEnd]) -> list[JobEndResult]:
        local.writes = 0
        try:
            return record(ends)
        finally:
            state.batches.append([end.job_id for end in ends])
            state.writes.append(local.writes)
            local.writes = 0

    def on_statement(sql: str) -> None:  # in the thread that runs it
        if sql == "BEGIN IMMEDIATE" and hasattr(local, "writes"):
            local.writes += 1

    monkeypatch.setattr(store, "stop_requests", stop_requests)
    monkeypatch.setattr(store, "finish_jobs", finish_jobs)
    with traced_sql(store._engine, on_statement):
        yield state
        state.release.set()


@pytest.fixture
def gate(esite: Path, tmp_path: Path) -> Path:
    script = esite / "tasks" / "gate.sh"
    script.write_text(GATE_SCRIPT)
    script.chmod(0o755)
    return tmp_path / "gate-open"


def _running_pids(ops: taskops.TaskOps, job_ids: list[int]) -> list[int] | None:
    pids = []
    for job_id in job_ids:
        if ops.jobs.get(job_id).state is not JobState.RUNNING:
            return None
        pid = ops.store.job_process(job_id)[0]
        if pid is None:
            return None
        pids.append(pid)
    return pids


def _exited(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _end_together(ops: taskops.TaskOps, held: Held, gate: Path, job_ids: list[int]) -> None:
    """Hold the loop once all ``job_ids`` run, open the gate, wait until every one of them
    has exited, and release the loop."""
    pids = wait_for(lambda: _running_pids(ops, job_ids), what="the jobs to run")
    held.hold.set()
    assert held.holding.wait(10), "the engine's loop was not held"
    gate.touch()
    wait_for(lambda: all(_exited(pid) for pid in pids), what="the jobs to exit")
    held.release.set()


def _failures(ops: taskops.TaskOps, task_id: str) -> int:
    with sqlite3.connect(ops.site.data_dir / "taskops.db") as conn:
        row = conn.execute(
            "SELECT consecutive_failures FROM task_runtime WHERE task_id = ?", (task_id,)
        ).fetchone()
    return int(row[0])


def test_jobs_ending_in_one_turn_are_recorded_in_one_transaction(
    eops: taskops.TaskOps,
    esite: Path,
    start_engine: Callable[..., Engine],
    wait_finished: Wait,
    held: Held,
    gate: Path,
) -> None:
    start_engine()
    script = str(esite / "tasks" / "gate.sh")
    ok, bad, stopped = (
        eops.jobs.start(["sh", script], name=name, env={"GATE": str(gate), "CODE": code})
        for name, code in (("Ok", "0"), ("Bad", "3"), ("Stopped", "0"))
    )
    jobs = (ok, bad, stopped)
    pids = wait_for(lambda: _running_pids(eops, [j.id for j in jobs]), what="the jobs to run")
    held.hold.set()
    assert held.holding.wait(10), "the engine's loop was not held"
    # asked to stop while the engine does not look; it ends by itself meanwhile
    eops.jobs.stop(stopped.id, wait=0)
    gate.touch()
    wait_for(lambda: all(_exited(pid) for pid in pids), what="the jobs to exit")
    held.release.set()
    ended = {job.id: wait_finished(eops, job.id) for job in jobs}

    assert sorted(held.batches[-1]) == sorted(ended)  # all three in one batch
    assert held.writes[-1] == 1  # in one write transaction
    assert (ended[ok.id].state, ended[ok.id].exit_code, ended[ok.id].error) == (
        JobState.COMPLETED,
        0,
        None,
    )
    assert ended[bad.id].state is JobState.FAILED and ended[bad.id].exit_code == 3
    assert ended[bad.id].error == f"broken vault {bad.id}"
    assert ended[stopped.id].state is JobState.STOPPED
    assert ended[stopped.id].stop_reason == "stopped by alice"
    assert ended[stopped.id].error is None
    runspaces = {
        job.id: eops.store.runspace_row(job.runspace_id)
        for job in ended.values()
        if job.runspace_id is not None
    }
    assert {job_id: row.state for job_id, row in runspaces.items()} == {
        ok.id: RunspaceState.CLOSED.value,
        bad.id: RunspaceState.BROKEN.value,
        stopped.id: RunspaceState.CLOSED.value,
    }
    assert all(row.closed_at is not None for row in runspaces.values())
    assert runspaces[bad.id].exit_code == 3
    # notified just after the batch is recorded (the rows may be read in between)
    notes = wait_for(eops.notifications.list, what="the failure's notification")
    assert [(n.kind, n.job_id) for n in notes] == [("failure", bad.id)]


def test_failures_ending_together_disable_their_task_once(
    eops: taskops.TaskOps,
    start_engine: Callable[..., Engine],
    wait_finished: Wait,
    held: Held,
    gate: Path,
) -> None:
    eops.tasks.create(
        {
            "app": "global",
            "name": "Gated",
            "schedule": "0 3 * * *",
            "scriptPath": "tasks/gate.sh",
            "enabled": True,
            "maxInstances": 3,
            "parameters": {"GATE": str(gate), "CODE": 4},
            "termination": {"maxFailures": 2},
        }
    )
    start_engine()
    jobs = [eops.tasks.run("global.Gated") for _ in range(3)]
    _end_together(eops, held, gate, [job.id for job in jobs])
    ended = [wait_finished(eops, job.id) for job in jobs]
    assert all(job.state is JobState.FAILED and job.exit_code == 4 for job in ended)
    assert sorted(held.batches[-1]) == [job.id for job in jobs]
    assert held.writes[-1] == 1

    task = wait_for(
        lambda: (t := eops.tasks.get("global.Gated")) and not t.enabled and t,
        what="the task to be disabled",
    )
    assert task.status.value == "Disabled"
    # the notification comes last: once it is there, every audit line is too
    wait_for(
        lambda: any(n.kind == "auto_disable" for n in eops.notifications.list()),
        what="the auto-disable notification",
    )
    disables = [r for r in eops.audit_log.records() if r["action"] == "task.disable"]
    assert len(disables) == 1 and disables[0]["user"] == "taskops-engine"
    assert disables[0]["details"]["reason"] == (
        "disabled after 2 consecutive failed runs (maxFailures 2)"
    )
    notes = eops.notifications.list()
    assert [n.kind for n in notes].count("auto_disable") == 1
    assert sorted(n.job_id for n in notes if n.kind == "failure") == [job.id for job in jobs]
    # counted as if reset when it was disabled: the third failure came after
    assert _failures(eops, "global.Gated") == 1
