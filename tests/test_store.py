"""The SQLite store, shared by several processes at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import CompileError

import taskops
from taskops.errors import Conflict, NotFound
from taskops.model import JobState, RunspaceKind, RunspaceState
from taskops.store import JobStart, Store, schema
from taskops.store import store as store_module
from taskops.store.store import JobEnd
from taskops.testing import traced_sql

T0 = datetime(2026, 1, 16, 14, 0, tzinfo=UTC)


def test_sqlite_file_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    store = Store.for_sqlite(tmp_path / "data" / "taskops.db")
    assert store.schema_version() == schema.SCHEMA_VERSION
    store.close()
    with sqlite3.connect(tmp_path / "data" / "taskops.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "meta",
        "custom_tasks",
        "task_overrides",
        "deleted_tasks",
        "jobs",
        "runspaces",
        "runspace_samples",
        "engine_lease",
        "skipped_runs",
        "task_runtime",
        "notifications",
    } <= tables


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.for_sqlite(tmp_path / "x.db").close()
    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(RuntimeError, match="upgrade taskops"):
        Store.for_sqlite(tmp_path / "x.db")


def test_a_slot_runs_once(tmp_path: Path) -> None:
    store = Store.for_sqlite(tmp_path / "x.db")
    store.insert_job(
        name="a",
        owner="TaskEngine",
        state=JobState.QUEUED,
        queued_at=T0,
        task_id="vault.Backup",
        scheduled_for=T0,
    )
    with pytest.raises(Conflict):
        store.insert_job(
            name="b",
            owner="TaskEngine",
            state=JobState.QUEUED,
            queued_at=T0,
            task_id="vault.Backup",
            scheduled_for=T0,
        )
    # Manual runs have no slot and never clash.
    for _ in range(2):
        store.insert_job(
            name="m", owner="Manual", state=JobState.QUEUED, queued_at=T0, task_id="vault.Backup"
        )
    assert len(store.jobs_of_task("vault.Backup")) == 3
    with pytest.raises(NotFound):
        store.get_job(999)


def test_slots_due_together_go_in_claimed_and_recorded_in_batches(tmp_path: Path) -> None:
    store = Store.for_sqlite(tmp_path / "x.db")
    store.insert_job(
        name="a",
        owner="TaskEngine",
        state=JobState.QUEUED,
        queued_at=T0,
        task_id="vault.Backup",
        scheduled_for=T0,
    )
    rows = [
        {
            "name": n,
            "owner": "TaskEngine",
            "state": JobState.QUEUED,
            "queued_at": T0,
            "task_id": task,
            "scheduled_for": T0,
            "command": {"kind": "exec", "argv": ["true"]},
        }
        for n, task in (("b", "vault.Backup"), ("c", "global.Cleanup"), ("d", "global.Other"))
    ]
    ids = store.insert_jobs(rows)
    assert ids[0] is None  # that slot has run already: left out, the others go in
    c_id, d_id = ids[1], ids[2]
    assert c_id is not None and d_id is not None
    assert [j.id for j in store.queued_jobs()] == [1, c_id, d_id]
    store.request_stop(d_id, reason="stopped by alice", now=T0)  # stopped while it waited
    starts = [
        JobStart(job_id=job.id, name=job.name, task_id=job.task_id, app=job.app, owner=job.owner)
        for job in store.queued_jobs()
    ]
    claimed = store.start_jobs(starts, now=T0)
    assert [(start.job_id, command) for start, command, _ in claimed] == [
        (1, {}),
        (c_id, {"kind": "exec", "argv": ["true"]}),
    ]
    assert store.get_job(c_id).state is JobState.RUNNING
    store.set_processes([(c_id, claimed[1][2], 4242, 123.5)])
    assert store.job_process(c_id)[:2] == (4242, 123.5)
    runspace = store.runspace_row(claimed[1][2])
    assert (runspace.pid, runspace.job_id, runspace.kind) == (4242, c_id, RunspaceKind.WORKER.value)


def _writes_and_statements(store: Store) -> tuple[list[str], list[object]]:
    """Lists that fill with the store's transactions ("write"/"read") and the statements it
    hands to SQLAlchemy (one per ``execute``, an ``executemany`` included)."""
    begins: list[str] = []
    statements: list[object] = []

    def on_begin(conn: Connection) -> None:
        begins.append("write" if conn.get_execution_options().get("taskops_write") else "read")

    def on_execute(conn: Connection, clause: object, *_: object) -> None:
        statements.append(clause)

    event.listen(store._engine, "begin", on_begin)
    event.listen(store._engine, "before_execute", on_execute)
    return begins, statements


def _slot_row(
    name: str, task: str | None, slot: datetime | None, **more: object
) -> dict[str, object]:
    return {
        "name": name,
        "owner": "TaskEngine",
        "state": JobState.QUEUED,
        "queued_at": T0,
        "task_id": task,
        "scheduled_for": slot,
        **more,
    }


def test_insert_jobs_keeps_each_slot_once_within_and_across_batches(tmp_path: Path) -> None:
    store = Store.for_sqlite(tmp_path / "x.db")
    odd = T0.replace(microsecond=123457)  # compared as stored (epoch seconds), not re-read
    begins, _ = _writes_and_statements(store)
    first = store.insert_jobs(
        [
            _slot_row("a0", "app.A", T0),
            _slot_row("b0", "app.B", T0, command={"kind": "exec", "argv": ["true"]}),
            _slot_row("a0 again", "app.A", T0),  # the same slot in one batch: the first wins
            _slot_row("manual 1", "app.A", None),  # no slot: never a clash
            _slot_row("manual 2", "app.A", None),
            _slot_row("a odd", "app.A", odd),
            _slot_row("no task", None, T0),
            _slot_row("no task again", None, T0),  # as before: a slot of no task, once
        ]
    )
    second = store.insert_jobs(
        [
            _slot_row("a0 later", "app.A", T0),  # ran in the first batch
            _slot_row("a odd later", "app.A", odd),
            _slot_row("c0", "app.C", T0),
            _slot_row("b1", "app.B", T0.replace(minute=1)),
        ]
    )
    assert begins == ["write", "write"]  # no one-by-one retry after a unique-key error
    assert [i is None for i in first] == [False, False, True, False, False, False, False, True]
    assert [i is None for i in second] == [True, True, False, False]
    ids = [i for i in first + second if i is not None]
    assert ids == sorted(ids) and len(set(ids)) == 8  # in the order of the rows
    names = ["a0", "b0", "manual 1", "manual 2", "a odd", "no task", "c0", "b1"]
    assert [store.get_job(i).name for i in ids] == names
    assert store.job_command(ids[0]) == {}  # a row without a command: none stored
    assert store.job_command(ids[1]) == {"kind": "exec", "argv": ["true"]}
    assert store.get_job(ids[4]).scheduled_for == odd
    assert {j.state for j in store.queued_jobs()} == {JobState.QUEUED}
    assert store.insert_jobs([]) == []
    with pytest.raises(CompileError, match="nosuch"):  # not dropped quietly
        store.insert_jobs([_slot_row("x", "app.X", T0, nosuch=1)])


def test_insert_jobs_retries_one_by_one_when_another_engine_races(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.for_sqlite(tmp_path / "x.db")
    (taken,) = store.insert_jobs([_slot_row("a0", "app.A", T0)])
    # the other engine's row lands after this one looked: the unique key catches it
    monkeypatch.setattr(store_module, "_taken_slots", lambda conn, slots: set())
    ids = store.insert_jobs([_slot_row("b0", "app.B", T0), _slot_row("a0 too", "app.A", T0)])
    assert ids[1] is None and ids[0] is not None and taken is not None
    assert sorted(j.name for j in store.queued_jobs()) == ["a0", "b0"]


def test_start_jobs_claims_only_queued_jobs_once_and_opens_their_runspaces(
    tmp_path: Path,
) -> None:
    store = Store.for_sqlite(tmp_path / "x.db")
    ids = store.insert_jobs(
        [_slot_row(f"j{n}", f"app.T{n}", T0, app="app", command={"n": n}) for n in range(5)]
    )
    assert None not in ids
    ok1, stopped, ended, ok2, taken = (i for i in ids if i is not None)
    store.request_stop(stopped, reason="stopped by alice", now=T0)  # between insert and claim
    store.finish_job(
        ended, state=JobState.FAILED, ended_at=T0, exit_code=1, error="x", output_bytes=0
    )
    assert [start.job_id for start, _, _ in store.start_jobs([_start(store, taken)], now=T0)] == [
        taken
    ]
    starts = [_start(store, i) for i in (ok2, stopped, ok1, ended, ok2, taken)] + [
        JobStart(job_id=999, name="gone", task_id=None, app=None, owner="Manual")
    ]
    later = T0.replace(minute=5)
    claimed = store.start_jobs(starts, now=later)
    assert [(start.job_id, command) for start, command, _ in claimed] == [
        (ok2, {"n": 3}),  # in the order given, the same job once
        (ok1, {"n": 0}),
    ]
    assert store.start_jobs(starts, now=later) == []  # all claimed or ended already
    for start, _, runspace_id in claimed:
        job = store.get_job(start.job_id)
        assert (job.state, job.started_at) == (JobState.RUNNING, later)
        row = store.runspace_row(runspace_id)
        assert (row.job_id, row.task_id, row.app, row.owner, row.purpose) == (
            start.job_id,
            start.task_id,
            "app",
            "TaskEngine",
            start.name,
        )
        assert (row.kind, row.state, row.availability, row.opened_at, row.pid) == (
            RunspaceKind.WORKER.value,
            RunspaceState.OPENING.value,
            "Busy",
            later,
            None,
        )
    assert store.get_job(stopped).state is JobState.STOPPED
    assert store.get_job(ended).state is JobState.FAILED
    assert {row.job_id for row in store.runspace_rows()} == {ok1, ok2, taken}

    store.set_processes([(s.job_id, r, 4000 + n, 10.5 + n) for n, (s, _, r) in enumerate(claimed)])
    for n, (start, _, runspace_id) in enumerate(claimed):
        assert store.job_process(start.job_id)[:2] == (4000 + n, 10.5 + n)
        assert store.get_job(start.job_id).runspace_id == runspace_id
        row = store.runspace_row(runspace_id)
        assert (row.pid, row.create_time, row.state) == (
            4000 + n,
            10.5 + n,
            RunspaceState.OPENED.value,
        )
    store.set_processes([])


def _start(store: Store, job_id: int) -> JobStart:
    job = store.get_job(job_id)
    return JobStart(job_id=job.id, name=job.name, task_id=job.task_id, app=job.app, owner=job.owner)


class _CountingCursor:
    """A DBAPI cursor that notes the SQL of each call made of it (an ``executemany`` over
    many rows is one call)."""

    def __init__(self, cursor: Any, calls: list[str]) -> None:
        self._cursor, self._calls = cursor, calls

    def execute(self, sql: str, *params: Any) -> Any:
        self._calls.append(sql)
        return self._cursor.execute(sql, *params)

    def executemany(self, sql: str, rows: Any) -> Any:
        self._calls.append(sql)
        return self._cursor.executemany(sql, rows)

    def fetchall(self) -> Any:
        return self._cursor.fetchall()


def _batch_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of each call the store's batch transactions (the engine's writes) make of
    their DBAPI cursor."""
    calls: list[str] = []
    real = store_module._Batch.__init__

    def counted(self: Any, cursor: Any, dialect: Any) -> None:
        real(self, _CountingCursor(cursor, calls), dialect)

    monkeypatch.setattr(store_module._Batch, "__init__", counted)
    return calls


@pytest.mark.parametrize("size", [1, 40])
def test_the_start_path_runs_the_same_statements_whatever_the_batch(
    tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statements built per batch, not per row: as many ``execute`` calls (each one an
    ``executemany`` over the rows) for 40 jobs as for one, and on the start path as many
    calls of the database's cursor too, one transaction each. (On SQLite SQLAlchemy runs
    an ``INSERT ... RETURNING`` whose ids must come back in the order of the rows a row
    per cursor call: ``insert_jobs`` does, ahead of the slot; the runspaces opened at the
    start are one ``executemany``, their ids read back by one query.)"""
    store = Store.for_sqlite(tmp_path / "x.db")
    store.insert_jobs([_slot_row("old", "app.Old", T0)])
    rows = [_slot_row("old again", "app.Old", T0)]  # a slot that has run
    rows += [_slot_row(f"j{n}", f"app.T{n}", T0) for n in range(size)]
    _, statements = _writes_and_statements(store)
    calls = _batch_calls(monkeypatch)
    with traced_sql(store._engine) as traced:
        ids = store.insert_jobs(rows)
        inserted = len(statements)
        starts = [_start(store, i) for i in ids if i is not None]
        claimed = store.start_jobs(starts, now=T0)
        started = len([sql for sql in calls if not sql.startswith("BEGIN")])
        calls.clear()
        store.set_processes([(s.job_id, r, 100 + s.job_id, 1.0) for s, _, r in claimed])
        recorded = len([sql for sql in calls if not sql.startswith("BEGIN")])
    assert len(claimed) == size
    assert traced.count("BEGIN IMMEDIATE") == 3  # a write transaction each
    # the slots taken, one INSERT; the jobs read, claimed, their runspaces opened and
    # their ids read; the jobs' and the runspaces' processes
    assert (inserted, started, recorded) == (2, 4, 2)
    assert {space.job_id for space in store.runspace_rows()} == {s.job_id for s in starts}
    for start, _, runspace_id in claimed:  # each job got its own runspace
        assert store.get_job(start.job_id).runspace_id == runspace_id
        assert store.runspace_row(runspace_id).job_id == start.job_id
        assert store.runspace_row(runspace_id).pid == 100 + start.job_id


def test_the_ends_of_a_turn_are_recorded_in_one_write_transaction(tmp_path: Path) -> None:
    store = Store.for_sqlite(tmp_path / "x.db")
    task = "vault.Backup"
    ids = [
        store.insert_job(
            name=f"j{i}", owner="Manual", state=JobState.QUEUED, queued_at=T0, task_id=task
        )
        for i in range(6)
    ]
    starts = [
        JobStart(job_id=i, name=f"j{i}", task_id=task, app="vault", owner="Manual") for i in ids
    ]
    runspaces = {start.job_id: runspace for start, _, runspace in store.start_jobs(starts, now=T0)}
    assert store.record_outcome(task, failed=True, now=T0) == 1  # one failure before
    ok, bad, asked, asked_failed, timed_out, ignored = ids
    for job_id in (asked, asked_failed, ignored):
        store.request_stop(job_id, reason="stopped by bob", now=T0)
    assert store.finish_job(
        ignored, state=JobState.STOPPED, ended_at=T0, exit_code=None, error=None, output_bytes=0
    )  # ended already, by someone else

    def end(
        job_id: int,
        state: JobState,
        code: int | None,
        *,
        stop_reason: str | None = None,
        stopped_if_requested: bool = False,
    ) -> JobEnd:
        return JobEnd(
            job_id=job_id,
            task_id=task,
            runspace_id=runspaces[job_id],
            state=state,
            ended_at=T0,
            exit_code=code,
            error=None if state is JobState.COMPLETED else "boom",
            output_bytes=7,
            stop_reason=stop_reason,
            stopped_if_requested=stopped_if_requested,
        )

    ends = [
        end(bad, JobState.FAILED, 2),
        end(asked_failed, JobState.FAILED, -15, stopped_if_requested=True),
        end(ok, JobState.COMPLETED, 0),
        end(timed_out, JobState.TERMINATED, -9, stop_reason="too long"),
        # a stop request counts only when the engine asks for it
        end(asked, JobState.FAILED, 1),
        end(ignored, JobState.COMPLETED, 0, stopped_if_requested=True),
    ]
    with traced_sql(store._engine) as traced:
        results = store.finish_jobs(ends)
    assert [sql for sql in traced if sql.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]

    assert [(r.job_id, r.recorded, r.state, r.failures) for r in results] == [
        (bad, True, JobState.FAILED, 2),
        (asked_failed, True, JobState.STOPPED, None),  # stopped runs are not counted
        (ok, True, JobState.COMPLETED, 0),
        (timed_out, True, JobState.TERMINATED, 1),
        (asked, True, JobState.FAILED, 2),
        (ignored, False, JobState.STOPPED, None),
    ]
    assert (results[1].error, results[1].stop_reason) == (None, "stopped by bob")
    jobs = {job_id: store.get_job(job_id) for job_id in ids}
    assert [jobs[i].state for i in ids] == [
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.FAILED,
        JobState.STOPPED,
        JobState.TERMINATED,
        JobState.STOPPED,
    ]
    assert (jobs[asked_failed].error, jobs[asked_failed].stop_reason) == (None, "stopped by bob")
    assert jobs[asked_failed].exit_code == -15
    assert (jobs[timed_out].error, jobs[timed_out].stop_reason) == ("boom", "too long")
    assert (jobs[bad].exit_code, jobs[bad].error, jobs[bad].output_bytes) == (2, "boom", 7)
    assert jobs[bad].ended_at == T0
    assert jobs[ignored].output_bytes == 0  # untouched
    closed = {job_id: store.runspace_row(runspaces[job_id]) for job_id in ids}
    assert {job_id: row.state for job_id, row in closed.items()} == {
        ok: RunspaceState.CLOSED.value,
        bad: RunspaceState.BROKEN.value,
        asked: RunspaceState.BROKEN.value,
        asked_failed: RunspaceState.CLOSED.value,
        timed_out: RunspaceState.BROKEN.value,
        ignored: RunspaceState.CLOSED.value,  # its job had ended: the runspace closes still
    }
    assert closed[bad].exit_code == 2 and closed[bad].closed_at == T0
    assert store.finish_jobs([]) == []
    assert store.record_outcome(task, failed=True, now=T0) == 3  # two before this one
    store.reset_failures(task, to=1)
    assert store.record_outcome(task, failed=True, now=T0) == 2


def test_times_come_back_aware_and_equal(tmp_path: Path) -> None:
    store = Store.for_sqlite(tmp_path / "x.db")
    when = datetime(2026, 3, 29, 1, 0, 0, 123456, tzinfo=UTC)
    job_id = store.insert_job(
        name="a",
        owner="Manual",
        state=JobState.COMPLETED,
        queued_at=when,
        started_at=when,
        ended_at=when,
    )
    job = store.get_job(job_id)
    assert job.started_at == when and job.started_at.tzinfo is not None


WORKER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    import taskops
    from taskops.model import JobState

    site, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with taskops.open_site(site, user=f"worker{worker}") as ops:
        for i in range(count):
            name = f"W{worker}T{i}"
            ops.tasks.create({"app": "vault", "name": name, "schedule": "0 4 * * *",
                              "scriptPath": "tasks/backup.py"})
            ops.tasks.update(f"vault.{name}", {"description": f"edited by {worker}"})
            ops.tasks.update("vault.VaultBackup", {"schedule": f"{i % 60} 1 * * *"})
            ops.store.insert_job(name=name, owner="Manual", state=JobState.COMPLETED,
                                 queued_at=datetime.now(UTC), task_id=f"vault.{name}")
            ops.tasks.list()
    """
)


@pytest.mark.slow
def test_several_processes_share_one_store(site_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers, count = 4, 25
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(site_dir), str(w), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
    with taskops.open_site(site_dir) as ops:
        custom = [t for t in ops.tasks.list(app="vault") if not t.is_default]
        assert len(custom) == workers * count
        assert all(t.spec.description.startswith("edited by") for t in custom)
        assert all(len(ops.tasks.history(t.id)) == 1 for t in custom)
        records = list(ops.audit_log.records())
        assert len(records) == workers * count * 3
        assert {r["user"] for r in records} == {f"worker{w}" for w in range(workers)}


V1_JOBS = """CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(400) NOT NULL,
task_id VARCHAR(300), app VARCHAR(128), owner VARCHAR(128) NOT NULL, state VARCHAR(16) NOT NULL,
command JSON, scheduled_for FLOAT, queued_at FLOAT NOT NULL, started_at FLOAT, ended_at FLOAT,
exit_code INTEGER, error TEXT, progress FLOAT, progress_message TEXT, output_bytes BIGINT,
pid INTEGER, host VARCHAR(255), runspace_id INTEGER, stop_requested BOOLEAN NOT NULL,
CONSTRAINT uq_jobs_slot UNIQUE (task_id, scheduled_for))"""
V1_RUNSPACES = """CREATE TABLE runspaces (id INTEGER PRIMARY KEY AUTOINCREMENT,
kind VARCHAR(16) NOT NULL, pid INTEGER NOT NULL, create_time FLOAT NOT NULL,
host VARCHAR(255) NOT NULL, owner VARCHAR(128) NOT NULL, app VARCHAR(128), job_id INTEGER,
purpose TEXT, state VARCHAR(16) NOT NULL, opened_at FLOAT NOT NULL, closed_at FLOAT,
exit_code INTEGER)"""


def test_a_version_1_store_is_migrated_and_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute(V1_JOBS)
        conn.execute(V1_RUNSPACES)
        conn.execute(
            "INSERT INTO jobs (name, owner, state, queued_at, task_id, stop_requested) "
            "VALUES ('old', 'Manual', 'Completed', ?, 'global.A', 0)",
            (T0.timestamp(),),
        )
    store = Store.for_sqlite(path)
    assert store.schema_version() == schema.SCHEMA_VERSION
    (job,) = store.jobs_of_task("global.A")
    assert job.name == "old" and job.over_time is False and job.removed is False
    runspace = store.open_runspace(kind=RunspaceKind.WORKER, owner="Manual", now=T0)
    assert store.runspace_row(runspace).pid is None  # nullable from version 2 on


def test_a_job_queued_ahead_of_its_slot_is_not_active_yet_and_starts_after_one_run_by_hand(
    tmp_path: Path,
) -> None:
    """The engine queues a slot's job shortly before the slot. Until the slot that job is
    not active (Run now must not answer 409 then), and a job queued by hand meanwhile
    starts before it: the slot's overlap check then sees the run by hand."""
    store = Store.for_sqlite(tmp_path / "x.db")
    slot = T0 + timedelta(seconds=2)
    ahead = store.insert_job(
        name="slot",
        owner="TaskEngine",
        state=JobState.QUEUED,
        queued_at=T0,
        task_id="app.T",
        scheduled_for=slot,
    )
    other = store.insert_job(
        name="other", owner="Manual", state=JobState.RUNNING, queued_at=T0, task_id="app.U"
    )
    assert store.active_jobs_by_task(now=T0) == {"app.U": 1}
    by_hand = store.insert_job(
        name="by hand",
        owner="Manual",
        state=JobState.QUEUED,
        queued_at=T0 + timedelta(seconds=1),
        task_id="app.T",
    )
    assert store.active_jobs_by_task(now=T0 + timedelta(seconds=1)) == {"app.T": 1, "app.U": 1}
    assert store.active_jobs_by_task(now=slot) == {"app.T": 2, "app.U": 1}
    assert [j.id for j in store.queued_jobs(due_by=T0 + timedelta(seconds=1))] == [by_hand]
    assert [j.id for j in store.queued_jobs(due_by=slot)] == [by_hand, ahead]
    assert [start.job_id for start, _ in store.next_queued(limit=5)] == [by_hand, ahead]
    assert other not in [j.id for j in store.queued_jobs()]


def test_an_older_store_gets_the_new_indexes_and_the_queue_is_read_by_its_own(
    tmp_path: Path,
) -> None:
    """``create_all`` makes the indexes of new tables only; opening a store made before an
    index was added creates it. The engine's look at the queue then reads the first jobs
    in order from that index instead of sorting every queued job."""
    path = tmp_path / "x.db"
    Store.for_sqlite(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX ix_jobs_queue")
        conn.execute("DROP INDEX ix_runspaces_job")
    store = Store.for_sqlite(path)
    with sqlite3.connect(path) as conn:
        names = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
    assert {"ix_jobs_queue", "ix_runspaces_job", "ix_jobs_state"} <= names
    slot = T0 + timedelta(seconds=5)
    ids = [
        store.insert_job(
            name=f"j{n}",
            owner="Manual",
            state=JobState.QUEUED,
            queued_at=T0,
            task_id=f"app.T{n}",
            scheduled_for=slot if n % 2 else None,
        )
        for n in range(6)
    ]
    assert [s.job_id for s in store.queued_starts(limit=2, due_by=T0)] == [ids[0], ids[2]]
    assert [s.job_id for s in store.queued_starts(limit=9, due_by=slot)] == [
        j.id for j in store.queued_jobs(due_by=slot)
    ]
    assert [s.job_id for s in store.queued_starts(limit=9, due_by=slot)] == ids[0::2] + ids[1::2]
    plan: list[str] = []
    with traced_sql(store._engine) as traced:
        store.queued_starts(limit=2, due_by=T0)
    (query,) = [sql for sql in traced if sql.startswith("SELECT")]
    with sqlite3.connect(path) as conn:
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query)]
    assert any("ix_jobs_queue" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_the_change_count_moves_with_each_commit_from_another_connection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    store = Store.for_sqlite(path)
    first = store.change_count()
    assert first is not None and store.change_count() == first  # nothing committed
    assert store.queued_jobs() == [] and store.change_count() == first  # a read
    store.insert_job(name="j", owner="Manual", state=JobState.QUEUED, queued_at=T0)
    second = store.change_count()
    assert second != first  # this process's own write, on another connection
    subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sqlite3
                with sqlite3.connect({str(path)!r}) as conn:
                    conn.execute("UPDATE jobs SET name = 'renamed'")
                """
            ),
        ],
        check=True,
    )
    assert store.change_count() not in (first, second)  # another process's
    store.close()


def test_a_batch_query_expands_its_lists_once_per_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's batch reads expand an ``IN`` list to its length once, then reuse the
    SQL; each value, and a value of the statement's own, still goes to its place."""
    jobs = schema.jobs
    store = Store.for_sqlite(tmp_path / "x.db")
    states = [JobState.QUEUED, JobState.RUNNING, JobState.QUEUED, JobState.QUEUED]
    ids = [
        store.insert_job(name=f"j{n}", owner="Manual", state=state, queued_at=T0)
        for n, state in enumerate(states)
    ]
    query = (
        sa.select(jobs.c.id, jobs.c.name)
        .where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
        .where(jobs.c.state == JobState.QUEUED.value)  # a value of its own, after the list
        .where(jobs.c.name.in_(sa.bindparam("names", expanding=True)))
        .order_by(jobs.c.id)
    )
    expansions: list[int] = []
    expand = store_module.SQLCompiler.construct_expanded_state

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        expansions.append(1)
        return expand(self, *args, **kwargs)

    monkeypatch.setattr(store_module.SQLCompiler, "construct_expanded_state", counted)
    with store._batch() as batch:
        assert batch.rows(query, ids=ids, names=["j0", "j1", "j3"]) == [
            (ids[0], "j0"),
            (ids[3], "j3"),
        ]
        assert batch.rows(query, ids=ids[2:], names=["j2"]) == [(ids[2], "j2")]
        assert batch.rows(query, ids=ids[1:], names=["j1", "j2", "j0"]) == [(ids[2], "j2")]
        assert batch.rows(query, ids=ids[:2], names=["j0"]) == [(ids[0], "j0")]
        assert batch.rows(query, ids=[ids[3], ids[0]], names=["j3"]) == [(ids[3], "j3")]
    assert len(expansions) == 3  # lengths (4, 3), (2, 1) and (3, 3); the rest reused
    store.close()
