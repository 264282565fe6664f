"""Crashes, restarts, standby engines and downtime: no slot runs twice, no run is lost."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import taskops
from taskops.engine.engine import Engine
from taskops.inspect.processes import tagged_processes
from taskops.model import JobState
from taskops.testing import wait_for

if TYPE_CHECKING:
    from conftest import EngineProcess

Wait = Callable[..., Any]


def holder_pid(ops: taskops.TaskOps) -> int | None:
    status = ops.engine.status()
    return status["pid"] if status["running"] else None


def test_sigkilled_engine_restarted_adopts_survivors_and_fails_the_lost(
    eops: taskops.TaskOps,
    engine_process: Callable[[], EngineProcess],
    start_engine: Callable[..., Engine],
    wait_finished: Wait,
) -> None:
    eops.tasks.enable("global.Echo")  # every second, all along
    first = engine_process()
    wait_for(lambda: holder_pid(eops) == first.pid, what="the engine to take the lease")
    eops.tasks.update("global.Slow", {"parameters": {"NAP": 4}})
    survivor = eops.tasks.run("global.Slow")
    lost = eops.jobs.start(["sh", "-c", "sleep 60"])
    for job in (survivor, lost):
        wait_for(
            lambda j=job: tagged_processes(j.id, eops.store.store_id()), what=f"job {job.id} to run"
        )
    echo_runs = wait_for(
        lambda: len(eops.jobs.list(task="global.Echo")) >= 2 and eops.jobs.list(task="global.Echo"),
        what="Echo to run under the first engine",
    )
    first.kill()  # a crash: nothing is stopped, nothing recorded
    for process in tagged_processes(lost.id, eops.store.store_id()):
        process.kill()  # this one dies while no engine watches
    assert eops.jobs.get(survivor.id).state is JobState.RUNNING
    start_engine(lease_ttl=2.0)  # takes the dead engine's lease at once
    ended = wait_finished(eops, lost.id)
    assert ended.state is JobState.FAILED
    assert "process was gone" in (ended.error or "")
    assert eops.jobs.get(survivor.id).state is JobState.RUNNING  # adopted, still running
    adopted = wait_finished(eops, survivor.id)
    assert adopted.state is JobState.COMPLETED
    assert f"end {survivor.id}" in eops.jobs.output(survivor.id)["text"]
    wait_for(
        lambda: len(eops.jobs.list(task="global.Echo", limit=None)) >= len(echo_runs) + 2,
        what="Echo to run under the second engine",
    )
    eops.tasks.disable("global.Echo")
    slots = [j.scheduled_for for j in eops.jobs.list(task="global.Echo", limit=None)]
    assert len(slots) == len(set(slots))


def test_two_engines_one_store_standby_takes_over_and_no_slot_runs_twice(
    eops: taskops.TaskOps, engine_process: Callable[[], EngineProcess]
) -> None:
    eops.tasks.enable("global.Echo")
    engines = [engine_process(), engine_process()]
    active_pid = wait_for(lambda: holder_pid(eops), what="one engine to be active")
    active = next(e for e in engines if e.pid == active_pid)
    standby = next(e for e in engines if e.pid != active_pid)
    wait_for(lambda: "standing by" in standby.output(), what="the other to stand by")
    wait_for(lambda: len(eops.jobs.list(task="global.Echo")) >= 3, what="three runs")
    before = {j.scheduled_for for j in eops.jobs.list(task="global.Echo", limit=None)}
    active.kill()
    wait_for(lambda: holder_pid(eops) == standby.pid, timeout=15, what="the takeover")
    wait_for(
        lambda: len(eops.jobs.list(task="global.Echo", limit=None)) >= len(before) + 3,
        what="runs after the takeover",
    )
    eops.tasks.disable("global.Echo")
    jobs = eops.jobs.list(task="global.Echo", limit=None)
    slots = sorted(j.scheduled_for for j in jobs if j.scheduled_for)
    assert len(slots) == len(set(slots))
    skipped = {slot for slot, _ in eops.store.skipped_runs("global.Echo", limit=1000)}
    assert not skipped & set(slots)
    # every second from the first slot to the last ran or was recorded as skipped
    covered = sorted(set(slots) | skipped)
    gaps = [b - a for a, b in itertools.pairwise(covered) if b - a > timedelta(seconds=1)]
    assert gaps == []


def test_sigterm_stops_running_jobs_before_the_engine_exits(
    eops: taskops.TaskOps,
    engine_process: Callable[[], EngineProcess],
    run_stubborn: Callable[..., Any],
) -> None:
    engine = engine_process()
    wait_for(lambda: holder_pid(eops) == engine.pid, what="the engine to be active")
    job = run_stubborn(eops)
    os.kill(engine.pid, signal.SIGTERM)
    assert engine.process.wait(20) == 0
    ended = eops.jobs.get(job.id)
    assert ended.state is JobState.STOPPED and ended.stop_reason == "engine shutdown"
    assert tagged_processes(job.id, eops.store.store_id()) == []
    assert holder_pid(eops) is None
    assert "stopped" in engine.output()


def test_misfire_policy_after_downtime(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine]
) -> None:
    now = eops.clock.now()
    hour_ago = now - timedelta(hours=1)
    # an engine that last handled slots an hour ago, and whose lease has expired since
    eops.store.acquire_lease("gone", pid=1, now=hour_ago, ttl=5)
    eops.store.renew_lease("gone", now=hour_ago, ttl=5, checkpoint=hour_ago)
    eops.tasks.update("global.Slow", {"schedule": "*/5 * * * *", "misfire": "once"})
    eops.tasks.update("global.Slow", {"enabled": True, "parameters": {"NAP": 0}})
    eops.tasks.update("global.Fails", {"schedule": "*/5 * * * *", "enabled": True})
    start_engine()
    job = wait_for(lambda: eops.jobs.list(task="global.Slow"), what="the one late run")[0]
    assert job.scheduled_for is not None and hour_ago < job.scheduled_for < now
    assert eops.jobs.list(task="global.Fails") == []  # skip: nothing runs before its next slot
