"""The SQLite store, shared by several processes at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

import taskops
from taskops.errors import Conflict, NotFound
from taskops.model import JobState, RunspaceKind
from taskops.store import JobStart, Store, schema

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
