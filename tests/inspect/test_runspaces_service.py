"""``ops.runspaces`` on real processes, a real SQLite store and the real audit log."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

import taskops
from taskops.inspect.processes import JOB_TAG, STORE_TAG, create_time_of, tagged_processes
from taskops.inspect.sampler import RunspaceSampler
from taskops.model import MASK, Availability, JobState, Runspace, RunspaceKind, RunspaceState
from taskops.store.store import RunspaceSample
from taskops.testing import FakeClock, wait_for

Spawn = Callable[..., subprocess.Popen[bytes]]


def tagged(job_id: int) -> list[psutil.Process]:
    """Live processes carrying the job's environment tag, of any store."""
    return tagged_processes(job_id, None)


def open_process_row(
    ops: taskops.TaskOps,
    pid: int,
    *,
    kind: RunspaceKind = RunspaceKind.KERNEL,
    owner: str = "alice",
    job_id: int | None = None,
    create_time: float | None = None,
    host: str | None = None,
) -> int:
    return ops.store.open_runspace(
        kind=kind,
        owner=owner,
        now=ops.clock.now(),
        pid=pid,
        create_time=create_time if create_time is not None else create_time_of(pid),
        job_id=job_id,
        purpose="test",
        availability=Availability.BUSY if kind is RunspaceKind.WORKER else Availability.AVAILABLE,
        host=host,
    )


def running_job(ops: taskops.TaskOps) -> int:
    """A Running job with an id no other test run on this machine uses: job ids start at 1
    in every fresh store, and the stop ladder (ours, or that of engine tests running at the
    same time) ends every process tagged with its job's id."""
    job_id = ops.store.insert_job(
        name="Task_Stubborn_20260116_140530",
        owner="Manual",
        state=JobState.QUEUED,
        queued_at=ops.clock.now(),
        task_id="global.Stubborn",
        app="global",
    )
    unique = random.randrange(10**8, 10**9)
    engine = sa.create_engine(ops.store.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE jobs SET id = :new WHERE id = :old"), {"new": unique, "old": job_id}
            )
    finally:
        engine.dispose()
    assert ops.store.claim_job(unique, now=ops.clock.now())
    return unique


def close_records(ops: taskops.TaskOps) -> list[dict[str, object]]:
    return [r for r in ops.audit_log.records() if r["action"] == "runspace.close"]


# -- list and get --------------------------------------------------------------------------


@pytest.fixture
def rows(ops: taskops.TaskOps, clock: FakeClock) -> dict[str, int]:
    """Rows without processes (listing only reads the store), opened 10 minutes apart."""
    store = ops.store
    out = {
        "engine": store.open_runspace(
            kind=RunspaceKind.ENGINE, owner="TaskEngine", now=clock.now(), purpose="task engine"
        )
    }
    clock.advance(minutes=10)
    out["worker"] = store.open_runspace(
        kind=RunspaceKind.WORKER,
        owner="Manual",
        now=clock.now(),
        job_id=7,
        purpose="Job_x",
        availability=Availability.BUSY,
    )
    clock.advance(minutes=10)
    out["remote"] = store.open_runspace(
        kind=RunspaceKind.KERNEL, owner="Alice", now=clock.now(), host="other-host.example"
    )
    out["closed"] = store.open_runspace(kind=RunspaceKind.WORKER, owner="Manual", now=clock.now())
    clock.advance(minutes=5)
    store.close_runspace(out["closed"], state=RunspaceState.BROKEN, now=clock.now(), exit_code=2)
    clock.advance(minutes=5)
    return out


def ids(spaces: list[Runspace]) -> list[int]:
    return [s.id for s in spaces]


def test_list_filters(ops: taskops.TaskOps, rows: dict[str, int]) -> None:
    live = [rows["engine"], rows["worker"], rows["remote"]]
    spaces = ops.runspaces
    assert ids(spaces.list()) == live
    assert ids(spaces.list(include_closed=True)) == [*live, rows["closed"]]
    assert ids(spaces.list(state="OPENED")) == live
    assert ids(spaces.list(state="broken")) == [rows["closed"]]  # closed states include them
    assert ids(spaces.list(state=RunspaceState.CLOSED)) == []
    assert ids(spaces.list(owner="manual")) == [rows["worker"]]
    assert ids(spaces.list(owner="MANUAL", include_closed=True)) == [
        rows["worker"],
        rows["closed"],
    ]
    assert ids(spaces.list(kind="Kernel")) == [rows["remote"]]
    assert ids(spaces.list(kind="worker", state="opened")) == [rows["worker"]]
    assert ids(spaces.list(min_age=0)) == live
    assert ids(spaces.list(min_age=20 * 60)) == [rows["engine"], rows["worker"]]
    assert ids(spaces.list(min_age="1500")) == [rows["engine"]]
    assert ids(spaces.list(min_age=3600)) == []


def test_list_ages_and_remote_availability(ops: taskops.TaskOps, rows: dict[str, int]) -> None:
    by_id = {s.id: s for s in ops.runspaces.list(include_closed=True)}
    assert by_id[rows["engine"]].age_seconds == 30 * 60
    assert by_id[rows["worker"]].availability is Availability.BUSY
    remote = by_id[rows["remote"]]
    assert remote.availability is Availability.REMOTE
    assert remote.host == "other-host.example"
    closed = by_id[rows["closed"]]
    assert closed.age_seconds == 5 * 60  # until it closed, not until now
    assert (closed.state, closed.exit_code) == (RunspaceState.BROKEN, 2)
    assert closed.to_dict()["availability"] == "None"


def test_closed_ones_older_than_a_day_are_not_listed(
    ops: taskops.TaskOps, rows: dict[str, int], clock: FakeClock
) -> None:
    clock.advance(hours=25)
    assert rows["closed"] not in ids(ops.runspaces.list(include_closed=True))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"state": "Running"}, "Opening, Opened, Closing, Closed, Broken"),
        ({"kind": "thread"}, "engine, worker, kernel"),
        ({"min_age": -1}, "min_age"),
        ({"min_age": "old"}, "min_age"),
        ({"min_age": True}, "min_age"),
        ({"min_age": float("nan")}, "min_age"),
    ],
)
def test_list_rejects_bad_filters(
    ops: taskops.TaskOps, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(taskops.InvalidInput, match=message):
        ops.runspaces.list(**arguments)  # type: ignore[arg-type]


def test_get(ops: taskops.TaskOps, rows: dict[str, int]) -> None:
    space = ops.runspaces.get(str(rows["worker"]))
    assert (space.id, space.kind, space.owner, space.job_id) == (
        rows["worker"],
        RunspaceKind.WORKER,
        "Manual",
        7,
    )
    data = space.to_dict()
    for key in ("id", "kind", "pid", "state", "availability", "owner", "createdAt"):
        assert key in data
    with pytest.raises(taskops.NotFound, match="no runspace 999"):
        ops.runspaces.get(999)
    with pytest.raises(taskops.NotFound, match="whole numbers"):
        ops.runspaces.get("abc")


def test_memory_history(ops: taskops.TaskOps, rows: dict[str, int], clock: FakeClock) -> None:
    worker = rows["worker"]
    start = clock.now()
    for memory, threads in ((10.5, 2), (None, None), (12.0, 3)):
        ops.store.record_samples(
            [
                RunspaceSample(
                    runspace_id=worker,
                    memory_mb=memory,
                    thread_count=threads,
                    handle_count=None,
                )
            ],
            now=clock.now(),
        )
        clock.advance(2)
    history = ops.runspaces.memory_history(worker)
    assert history == [
        {"time": start.isoformat(), "memoryMB": 10.5, "threads": 2},
        {"time": (start + timedelta(seconds=2)).isoformat(), "memoryMB": None, "threads": None},
        {"time": (start + timedelta(seconds=4)).isoformat(), "memoryMB": 12.0, "threads": 3},
    ]
    since = (start + timedelta(seconds=2)).isoformat()
    assert len(ops.runspaces.memory_history(worker, since=since)) == 2
    assert ops.runspaces.memory_history(rows["engine"]) == []
    with pytest.raises(taskops.InvalidInput, match="timezone"):
        ops.runspaces.memory_history(worker, since="2026-01-16T14:05:30")
    with pytest.raises(taskops.NotFound):
        ops.runspaces.memory_history(999)


# -- with a real clock and a sampler ----------------------------------------------------------


def test_sampled_numbers_show_in_list_and_history(site_dir: Path, spawn: Spawn) -> None:
    with taskops.open_site(site_dir, user="alice") as ops:
        child = spawn(mb=50)
        row = open_process_row(ops, child.pid)
        sampler = RunspaceSampler(ops.store, interval=0.05)
        sampler.start()
        try:
            wait_for(lambda: len(ops.runspaces.memory_history(row)) >= 3, what="3 samples")
        finally:
            sampler.stop()
        [space] = ops.runspaces.list(kind="kernel")
        assert space.memory_mb is not None and 50 <= space.memory_mb <= 150
        assert space.thread_count is not None and space.thread_count >= 1
        assert space.sampled_at is not None and space.age_seconds > 0
        points = ops.runspaces.memory_history(row)
        assert all(p["memoryMB"] is not None and 50 <= p["memoryMB"] <= 150 for p in points)


# -- diagnostics ----------------------------------------------------------------------------


def test_diagnostics_reads_the_process_and_masks_secrets(
    ops: taskops.TaskOps, spawn: Spawn, tmp_path: Path
) -> None:
    params = {"DB_PASSWORD": "pw-hidden", "COUNT": 3, "nested": {"apiKey": "k-hidden"}}
    child = spawn(
        mb=20,
        env={
            "API_TOKEN": "s3cr3t-value",
            "PLAIN_SETTING": "visible-value",
            "TASKOPS_PARAMS": json.dumps(params),
        },
    )
    row = open_process_row(ops, child.pid)
    data = ops.runspaces.diagnostics(row)

    assert (data["id"], data["pid"], data["kind"]) == (row, child.pid, "kernel")
    assert str(tmp_path / "child.py") in data["commandLine"]
    assert data["cwd"] == str(tmp_path)
    env = data["environment"]
    assert env["API_TOKEN"] == MASK
    assert env["PLAIN_SETTING"] == "visible-value"
    assert json.loads(env["TASKOPS_PARAMS"]) == {
        "DB_PASSWORD": MASK,
        "COUNT": 3,
        "nested": {"apiKey": MASK},
    }
    text = json.dumps(data)
    for secret in ("s3cr3t-value", "pw-hidden", "k-hidden"):
        assert secret not in text
    assert data["threadCount"] >= 1
    assert data["openFiles"] >= 0 and data["handleCount"] >= 3
    assert 20 <= data["memory"]["rssMB"] <= 120
    assert data["memoryMB"] == data["memory"]["rssMB"]  # read now, not the last sample
    assert data["memory"]["vmsMB"] >= data["memory"]["rssMB"]
    assert data["memory"]["ussMB"] is None or data["memory"]["ussMB"] > 0
    assert data["status"] in ("sleeping", "running")
    assert data["children"] == 0
    assert data["processCreatedAt"] is not None and data["diagnosedAt"] is not None


def test_diagnostics_refuses_what_it_cannot_read(ops: taskops.TaskOps, spawn: Spawn) -> None:
    child = spawn()
    start = create_time_of(child.pid)
    assert start is not None
    reused = open_process_row(ops, child.pid, create_time=start - 100)
    remote = open_process_row(ops, child.pid, host="other-host.example")
    no_process = ops.store.open_runspace(
        kind=RunspaceKind.WORKER, owner="Manual", now=ops.clock.now()
    )
    with pytest.raises(taskops.Conflict, match="changed or gone"):
        ops.runspaces.diagnostics(reused)
    with pytest.raises(taskops.Conflict, match="remote"):
        ops.runspaces.diagnostics(remote)
    with pytest.raises(taskops.Conflict, match="no process"):
        ops.runspaces.diagnostics(no_process)
    with pytest.raises(taskops.NotFound):
        ops.runspaces.diagnostics("x")


# -- force-close ----------------------------------------------------------------------------


def test_close_with_a_wrong_confirmation_touches_nothing(
    ops: taskops.TaskOps, spawn: Spawn
) -> None:
    child = spawn()
    row = open_process_row(ops, child.pid)
    for wrong in (row + 1, str(row + 1), "", "yes", None, True):
        with pytest.raises(taskops.Conflict, match="type the runspace id to confirm"):
            ops.runspaces.close(row, wrong)  # type: ignore[arg-type]
    assert child.poll() is None
    assert ops.runspaces.get(row).state is RunspaceState.OPENED
    assert {r["result"] for r in close_records(ops)} == {"failure"}


def test_close_of_the_engine_is_refused(ops: taskops.TaskOps) -> None:
    me = os.getpid()
    row = open_process_row(ops, me, kind=RunspaceKind.ENGINE, owner="TaskEngine")
    with pytest.raises(taskops.Conflict, match="taskops engine"):
        ops.runspaces.close(row, str(row))
    assert ops.runspaces.get(row).state is RunspaceState.OPENED


def test_close_of_a_worker_leaves_no_survivor(ops: taskops.TaskOps, spawn: Spawn) -> None:
    job_id = running_job(ops)
    child = spawn(env={JOB_TAG: str(job_id), STORE_TAG: ops.store.store_id()}, stubborn=True)
    wait_for(lambda: len(tagged(job_id)) == 3, what="the worker and its two children")
    row = open_process_row(ops, child.pid, kind=RunspaceKind.WORKER, owner="Manual", job_id=job_id)

    closed = ops.runspaces.close(row, str(row), grace=0.3)

    assert tagged(job_id) == []
    assert closed.state is RunspaceState.CLOSED
    assert closed.closed_at is not None
    # no engine runs here: the job's end is recorded by the close itself, as Stopped
    job = ops.jobs.get(job_id)
    assert job.state is JobState.STOPPED
    assert job.stop_reason == f"runspace {row} force-closed by alice (no engine was running)"
    [record] = close_records(ops)
    assert record["user"] == "alice"
    assert record["target"] == f"runspace:{row}"
    assert record["result"] == "success"
    assert record["details"] == {
        "kind": "worker",
        "pid": child.pid,
        "jobId": job_id,
        "ended": "kill",
    }


def test_close_of_a_worker_whose_job_ended(ops: taskops.TaskOps, spawn: Spawn) -> None:
    job_id = running_job(ops)
    ops.store.finish_job(
        job_id,
        state=JobState.COMPLETED,
        ended_at=ops.clock.now(),
        exit_code=0,
        error=None,
        output_bytes=0,
    )
    child = spawn(env={JOB_TAG: str(job_id), STORE_TAG: ops.store.store_id()})
    row = open_process_row(ops, child.pid, kind=RunspaceKind.WORKER, owner="Manual", job_id=job_id)
    closed = ops.runspaces.close(row, row, grace=2)
    assert closed.state is RunspaceState.CLOSED
    assert child.wait(timeout=5) == -signal.SIGTERM
    assert close_records(ops)[-1]["details"]["ended"] == "term"  # type: ignore[index]


@pytest.mark.parametrize("session", [True, False], ids=["group-leader", "single-process"])
def test_close_of_a_kernel(ops: taskops.TaskOps, spawn: Spawn, session: bool) -> None:
    child = spawn(session=session)
    row = open_process_row(ops, child.pid)
    closed = ops.runspaces.close(row, f" {row} ")
    assert closed.state is RunspaceState.CLOSED
    assert child.wait(timeout=5) == -signal.SIGTERM
    assert close_records(ops)[-1]["details"] == {
        "kind": "kernel",
        "pid": child.pid,
        "jobId": None,
        "ended": "term",
    }


def test_close_of_a_changed_or_gone_process(ops: taskops.TaskOps, spawn: Spawn) -> None:
    child = spawn()
    start = create_time_of(child.pid)
    assert start is not None
    reused = open_process_row(ops, child.pid, create_time=start - 100)
    with pytest.raises(taskops.Conflict, match="process changed or gone"):
        ops.runspaces.close(reused, str(reused))
    assert child.poll() is None  # the process that has the pid now is left alone
    assert ops.runspaces.get(reused).state is RunspaceState.BROKEN

    gone = open_process_row(ops, child.pid)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=5)
    with pytest.raises(taskops.Conflict, match="process changed or gone"):
        ops.runspaces.close(gone, gone)
    assert ops.runspaces.get(gone).state is RunspaceState.BROKEN


def test_close_of_a_remote_or_unknown_runspace(ops: taskops.TaskOps, spawn: Spawn) -> None:
    child = spawn()
    remote = open_process_row(ops, child.pid, host="other-host.example")
    with pytest.raises(taskops.Conflict, match="remote"):
        ops.runspaces.close(remote, str(remote))
    assert child.poll() is None
    with pytest.raises(taskops.NotFound):
        ops.runspaces.close(999, "999")
    with pytest.raises(taskops.InvalidInput, match="grace"):
        ops.runspaces.close(remote, str(remote), grace=-1)


def test_close_is_audited_as_the_acting_user(ops: taskops.TaskOps, spawn: Spawn) -> None:
    child = spawn()
    row = open_process_row(ops, child.pid)
    ops.as_user("bob").runspaces.close(row, str(row))
    [record] = close_records(ops)
    assert (record["user"], record["result"]) == ("bob", "success")


def test_diagnostics_lists_the_files_the_process_has_mapped(
    ops: taskops.TaskOps, spawn: Spawn
) -> None:
    child = spawn()
    row = open_process_row(ops, child.pid)
    modules = ops.runspaces.diagnostics(row)["modules"]
    assert modules == sorted(set(modules)) and len(modules) >= 2
    assert all(Path(path).is_absolute() and Path(path).is_file() for path in modules)
    assert not any(path.startswith("[") for path in modules)  # [heap], [stack], [vdso]
    # the interpreter it runs (the real file behind the venv's link) and the C library
    assert os.path.realpath(psutil.Process(child.pid).exe()) in modules
    assert any(Path(path).name.startswith("libc.so") for path in modules)
