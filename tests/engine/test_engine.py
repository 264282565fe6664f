"""The engine on the real path: real processes and process groups, a real SQLite file."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

import taskops
from taskops.engine import engine as engine_module
from taskops.engine.engine import Engine
from taskops.errors import Conflict, InvalidInput, NotFound
from taskops.inspect.processes import tagged_processes
from taskops.inspect.sampler import RunspaceSampler
from taskops.model import MASK, Availability, JobState, RunspaceState
from taskops.store import Store
from taskops.testing import wait_for

Cli = Callable[..., subprocess.CompletedProcess[str]]
Wait = Callable[..., Any]


def test_scheduled_jobs_run_as_process_groups_with_tags_and_output_files(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine]
) -> None:
    eops.tasks.enable("global.Echo")  # every second
    start_engine()
    jobs = wait_for(
        lambda: [j for j in eops.jobs.list(task="global.Echo") if j.state.finished][:2] or None,
        what="two runs of Echo",
    )
    eops.tasks.disable("global.Echo")
    job = jobs[-1]
    assert job.state is JobState.COMPLETED and job.exit_code == 0
    assert job.owner == "TaskEngine"
    assert job.scheduled_for is not None and job.scheduled_for.microsecond == 0
    stamp = job.scheduled_for.strftime("%Y%m%d_%H%M%S")
    assert job.name == f"Task_Echo_{stamp}"
    out = eops.jobs.output(job.id)
    assert f"job={job.id} task=global.Echo runspace={job.runspace_id}" in out["text"]
    assert "count=3 mode=test" in out["text"]
    assert out["done"] and out["nextOffset"] == len(out["text"].encode())
    err = eops.jobs.output(job.id, "stderr")
    assert err["text"] == "to stderr\n"
    folder = eops.site.jobs_dir / str(job.id)
    assert (folder / "stdout.log").is_file() and (folder / "stderr.log").is_file()
    assert job.output_bytes == len(out["text"].encode()) + len(err["text"].encode())
    # context: secrets masked in what leaves the service
    data = job.to_dict()
    assert data["environment"]["API_TOKEN"] == MASK
    assert data["parameters"] == {"COUNT": 3}
    assert data["script"].endswith("tasks/echo.sh")
    slots = [j.scheduled_for for j in eops.jobs.list(task="global.Echo")]
    assert len(slots) == len(set(slots))


def test_run_now_works_on_a_disabled_task_from_another_process(
    eops: taskops.TaskOps,
    esite: Path,
    start_engine: Callable[..., Engine],
    cli: Cli,
    wait_finished: Wait,
) -> None:
    start_engine()
    done = cli("tasks", "run", "global.Fails", "--json", site=esite)
    assert done.returncode == 0, done.stderr
    queued = json.loads(done.stdout)
    # the answer is read back after the insert: by then the engine (polling every 0.2 s,
    # forking in a few ms) may have started this quick job, or even seen it fail
    assert queued["state"] in ("Queued", "Running", "Failed") and queued["owner"] == "Manual"
    assert queued["name"].startswith("Task_Fails_")
    job = wait_finished(eops, queued["id"])
    assert job.state is JobState.FAILED
    assert job.exit_code == 3
    assert job.error == "vault file is corrupt"  # the last line on stderr
    assert job.scheduled_for is None
    audit = [r for r in eops.audit_log.records() if r["action"] == "task.run"]
    assert audit[-1]["target"] == "global.Fails" and audit[-1]["details"]["jobId"] == job.id


def test_a_python_task_gets_its_context_and_reports_progress(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    start_engine()
    eops.tasks.update("global.Report", {"parameters": {"NAP": 1.5, "LIMIT": 7}})
    job = eops.tasks.run("global.Report")
    progress = wait_for(lambda: eops.jobs.get(job.id).progress, what="the job's progress to show")
    assert progress == 0.5
    assert eops.jobs.get(job.id).progress_message == "half way"
    job = wait_finished(eops, job.id)
    assert job.state is JobState.COMPLETED, eops.jobs.output(job.id, "stderr")
    text = eops.jobs.output(job.id)["text"]
    assert "params [('LIMIT', 7), ('NAP', 1.5)]" in text  # JSON types kept
    assert text.splitlines()[0].startswith("[20")  # timestamped lines


def test_consecutive_failures_disable_the_task_with_audit_and_notification(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    start_engine()
    first = wait_finished(eops, eops.tasks.run("vault.Backup").id)
    assert first.state is JobState.FAILED
    assert first.exit_code == 1 and first.error == "ValueError: bad vault file"
    assert "Traceback" in eops.jobs.output(first.id, "stderr")["text"]
    assert eops.tasks.get("vault.Backup").enabled
    second = wait_finished(eops, eops.tasks.run("vault.Backup").id)
    assert second.state is JobState.FAILED
    task = wait_for(
        lambda: (t := eops.tasks.get("vault.Backup")) and not t.enabled and t,
        what="the task to be disabled",
    )
    assert task.status.value == "Disabled"
    # the audit line is written once the change is made: wait for it too
    disabled = wait_for(
        lambda: [r for r in eops.audit_log.records() if r["action"] == "task.disable"],
        what="the task.disable audit line",
    )
    assert disabled[-1]["user"] == "taskops-engine"
    assert "2 consecutive failed runs" in disabled[-1]["details"]["reason"]
    # the engine disables the task, then notifies: wait for the notification too
    wait_for(
        lambda: any(n.kind == "auto_disable" for n in eops.notifications.list()),
        what="the auto-disable notification",
    )
    kinds = [n.kind for n in eops.notifications.list()]
    assert kinds.count("failure") == 2 and "auto_disable" in kinds
    newest = eops.notifications.list()[0]
    assert newest.kind == "auto_disable" and newest.task_id == "vault.Backup"
    assert eops.notifications.list(after_id=newest.id) == []
    with pytest.raises(InvalidInput):
        eops.notifications.list(after_id=-1)
    # Run Now still works on the disabled task
    third = wait_finished(eops, eops.tasks.run("vault.Backup").id)
    assert third.state is JobState.FAILED


def test_timeout_kills_the_whole_group_even_children_ignoring_sigterm(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    start_engine()
    job = eops.tasks.run("global.Stubborn")
    wait_for(lambda: tagged_processes(job.id, eops.store.store_id()), what="the job's processes")
    wait_for(
        lambda: len(tagged_processes(job.id, eops.store.store_id())) >= 2, what="the child to start"
    )
    ended = wait_finished(eops, job.id)
    assert ended.state is JobState.TERMINATED
    assert "maximum runtime of 1 s" in (ended.error or "")
    assert tagged_processes(job.id, eops.store.store_id()) == []
    # the end is recorded first, the notification right after
    wait_for(lambda: eops.store.notifications(), what="the timeout notification")
    assert [n.kind for n in eops.store.notifications()] == ["timeout"]


def test_over_time_without_kill_keeps_running_and_is_flagged(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    start_engine()
    eops.tasks.update("global.Slow", {"termination": {"maxRuntime": 1, "killOnTimeout": False}})
    job = eops.tasks.run("global.Slow")
    flagged = wait_for(lambda: (j := eops.jobs.get(job.id)).over_time and j, what="the flag")
    assert flagged.state is JobState.RUNNING
    ended = wait_finished(eops, job.id)
    assert ended.state is JobState.COMPLETED and ended.over_time
    assert "end" in eops.jobs.output(job.id)["text"]
    assert [n.kind for n in eops.store.notifications()] == ["timeout"]


def test_stop_from_another_process_leaves_no_survivors(
    eops: taskops.TaskOps,
    esite: Path,
    start_engine: Callable[..., Engine],
    cli: Cli,
    run_stubborn: Callable[..., Any],
) -> None:
    start_engine()
    job = run_stubborn(eops)
    done = cli("jobs", "stop", str(job.id), site=esite)
    assert done.returncode == 0, done.stderr
    assert "Stopped" in done.stdout
    ended = eops.jobs.get(job.id)
    assert ended.state is JobState.STOPPED
    assert ended.stop_reason and "stopped by" in ended.stop_reason
    assert tagged_processes(job.id, eops.store.store_id()) == []
    with pytest.raises(Conflict, match="ended already"):
        eops.jobs.stop(job.id)
    assert [r["action"] for r in eops.audit_log.records()][-2] == "job.stop"


def test_overlapping_slots_are_skipped_and_recorded(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine]
) -> None:
    eops.tasks.update("global.Slow", {"schedule": "* * * * * *", "enabled": True})
    start_engine()
    wait_for(lambda: len(eops.store.skipped_runs("global.Slow")) >= 2, what="skipped slots")
    eops.tasks.disable("global.Slow")
    jobs = eops.jobs.list(task="global.Slow")
    assert len([j for j in jobs if j.state is JobState.RUNNING]) <= 1
    slot, reason = eops.store.skipped_runs("global.Slow")[0]
    assert "still running" in reason
    assert slot not in {j.scheduled_for for j in jobs}


def test_concurrency_cap_queues_first_in_first_out(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    eops.settings.update({"maxConcurrentTasks": 1})
    start_engine()
    jobs = [eops.jobs.start(["sh", "-c", "sleep 0.4; echo $TASKOPS_JOB_ID"]) for _ in range(4)]
    wait_for(lambda: eops.jobs.get(jobs[0].id).state is JobState.RUNNING, what="the first")
    assert [eops.jobs.get(j.id).state for j in jobs[1:]] == [JobState.QUEUED] * 3
    ended = [wait_finished(eops, j.id) for j in jobs]
    assert all(j.state is JobState.COMPLETED for j in ended)
    for before, after in itertools.pairwise(ended):
        assert after.started_at >= before.ended_at  # one at a time, in order


def test_jobs_list_filters_get_remove_and_restart(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    start_engine()
    ok = wait_finished(eops, eops.jobs.start("tasks/echo.sh", name="EchoByHand").id)
    bad = wait_finished(eops, eops.tasks.run("global.Fails").id)
    assert ok.state is JobState.COMPLETED and ok.name == "EchoByHand" and ok.task_id is None
    assert [j.id for j in eops.jobs.list(state="failed")] == [bad.id]
    assert [j.id for j in eops.jobs.list(state=["Completed", "Failed"])] == [bad.id, ok.id]
    assert [j.id for j in eops.jobs.list(owner="manual")] == [bad.id, ok.id]
    assert [j.id for j in eops.jobs.list(search="byhand")] == [ok.id]
    assert eops.jobs.list(owner="TaskEngine") == []
    with pytest.raises(InvalidInput, match="unknown job state"):
        eops.jobs.list(state="Done")
    with pytest.raises(NotFound):
        eops.jobs.get(999)
    with pytest.raises(Conflict, match="only a failed job"):
        eops.jobs.restart(ok.id)
    again = eops.jobs.restart(bad.id)
    assert again.task_id == "global.Fails" and again.id != bad.id
    wait_finished(eops, again.id)
    eops.jobs.remove(bad.id)
    assert bad.id not in [j.id for j in eops.jobs.list()]
    assert bad.id in [j.id for j in eops.tasks.history("global.Fails")]
    with pytest.raises(NotFound):
        eops.jobs.remove(bad.id)
    running = eops.tasks.run("global.Slow")
    wait_for(lambda: eops.jobs.get(running.id).state is JobState.RUNNING, what="running")
    with pytest.raises(Conflict, match="stop it before removing"):
        eops.jobs.remove(running.id)
    with pytest.raises(Conflict, match="running already"):
        eops.tasks.run("global.Slow")  # maxInstances 1


def test_output_pages_by_byte_offset_and_follow_streams_until_the_end(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine]
) -> None:
    start_engine()
    script = 'for i in 1 2 3 4 5; do echo "line $i é"; sleep 0.2; done'
    job = eops.jobs.start(["sh", "-c", script])
    chunks = list(eops.jobs.follow(job.id, timeout=20))
    text = "".join(chunks)
    assert text == "".join(f"line {i} é\n" for i in range(1, 6))
    assert len(chunks) > 1  # it arrived while the job ran
    first = eops.jobs.output(job.id, offset=0, limit=8)  # ends inside "é": not split
    assert first["text"] == "line 1 " and first["nextOffset"] == 7
    rest = eops.jobs.output(job.id, offset=first["nextOffset"])
    assert first["text"] + rest["text"] == text and rest["done"]
    with pytest.raises(InvalidInput):
        eops.jobs.output(job.id, stream="stdin")
    with pytest.raises(InvalidInput):
        eops.jobs.output(job.id, offset=-1)


PRINTER = """import os, sys, time
from pathlib import Path

print("first", sys.stdout.line_buffering, os.environ.get("PYTHONUNBUFFERED"))
go = Path(__file__).with_name("go")
deadline = time.monotonic() + 30
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go within 30 s")
    time.sleep(0.01)
for i in range(20000):
    print("line", i)
"""


def test_a_python_jobs_block_buffered_prints_reach_its_log_while_it_runs(
    eops: taskops.TaskOps,
    esite: Path,
    start_engine: Callable[..., Engine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python's default: stdout to a file is block-buffered (no write(2) per line)
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    start_engine()
    script = esite / "tasks" / "printer.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(PRINTER)
    job = eops.jobs.start("tasks/printer.py")
    # the runner's flusher writes the first line out while the task waits, unflushed
    first = wait_for(
        lambda: eops.jobs.output(job.id)["text"], timeout=20, what="the job's first line"
    )
    assert first == "first False None\n"
    assert eops.jobs.get(job.id).state is JobState.RUNNING
    script.with_name("go").touch()
    text = "".join(eops.jobs.follow(job.id, timeout=30))
    assert text == first + "".join(f"line {i}\n" for i in range(20000))
    done = eops.jobs.get(job.id)
    assert (done.state, done.exit_code) == (JobState.COMPLETED, 0), done.error


def test_ad_hoc_jobs_validate_their_input(eops: taskops.TaskOps) -> None:
    with pytest.raises(InvalidInput, match="owner"):
        eops.jobs.start(["true"], owner="Nobody")
    with pytest.raises(InvalidInput, match="command line"):
        eops.jobs.start("echo 'unclosed")
    with pytest.raises(InvalidInput, match="empty"):
        eops.jobs.start("  ")
    assert eops.jobs.list() == []
    job = eops.jobs.start("echo hi", owner="vault", app="vault")
    assert job.owner == "vault" and job.state is JobState.QUEUED
    assert job.name.startswith("Job_echo_")


def test_retention_deletes_old_rows_and_output_folders(eops: taskops.TaskOps) -> None:
    now = eops.clock.now()
    old = eops.store.insert_job(
        name="old",
        owner="Manual",
        state=JobState.COMPLETED,
        queued_at=now - timedelta(days=40),
        started_at=now - timedelta(days=40),
        ended_at=now - timedelta(days=40),
    )
    recent = eops.store.insert_job(
        name="recent",
        owner="Manual",
        state=JobState.COMPLETED,
        queued_at=now - timedelta(days=2),
        ended_at=now - timedelta(days=2),
    )
    for job_id in (old, recent):
        (eops.site.jobs_dir / str(job_id)).mkdir(parents=True)
        (eops.site.jobs_dir / str(job_id) / "stdout.log").write_text("x")
    eops.settings.update({"taskHistoryRetention": 30})
    engine = eops.engine.start(sampler=None, poll_interval=0.05)
    engine.run_retention()
    assert eops.store.job_ids() == {recent}
    # the engine's first turn applies the rule too, and may be the one deleting the folder
    wait_for(lambda: not (eops.site.jobs_dir / str(old)).exists(), what="the old folder gone")
    assert (eops.site.jobs_dir / str(recent)).exists()


def test_graceful_stop_stops_running_jobs_and_hands_the_lease_back(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine]
) -> None:
    start_engine()
    job = eops.tasks.run("global.Stubborn")
    eops.tasks.update("global.Stubborn", {"termination": {"maxRuntime": 600}})
    wait_for(lambda: tagged_processes(job.id, eops.store.store_id()), what="the job to run")
    assert eops.engine.status()["running"]
    eops.engine.stop()
    ended = eops.jobs.get(job.id)
    assert ended.state is JobState.STOPPED and ended.stop_reason == "engine shutdown"
    assert tagged_processes(job.id, eops.store.store_id()) == []
    assert not eops.engine.status()["running"]
    assert "no engine is running" in eops.engine.status()["message"]


def test_webhook_receives_notifications_as_json(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        eops.settings.update({"notificationWebhook": url})
        start_engine()
        job = wait_finished(eops, eops.tasks.run("global.Fails").id)
        wait_for(lambda: received, what="the webhook POST")
        assert received[0]["kind"] == "failure" and received[0]["jobId"] == job.id
        assert received[0]["taskId"] == "global.Fails"
        note = wait_for(
            lambda: (n := eops.store.notifications()) and n[0].delivery and n[0],
            what="the delivery to be recorded",
        )
        assert note.delivery == "delivered: HTTP 204"
        eops.settings.update({"enableNotifications": False})
        wait_finished(eops, eops.tasks.run("global.Fails").id)
        assert len(eops.store.notifications()) == 1
    finally:
        server.shutdown()


def test_job_output_of_100_mb_goes_to_disk_not_into_the_engine(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    start_engine()
    me = psutil.Process()
    before = me.memory_info().rss
    job = eops.jobs.start(["sh", "-c", "head -c 104857600 /dev/zero | tr '\\0' x"])
    ended = wait_finished(eops, job.id, timeout=60)
    assert ended.state is JobState.COMPLETED
    assert ended.output_bytes == 100 * 1024 * 1024
    growth_mb = (me.memory_info().rss - before) / 2**20
    assert growth_mb < 20


def test_stop_without_an_engine_signals_the_group_from_here(
    eops: taskops.TaskOps,
    start_engine: Callable[..., Engine],
    wait_finished: Wait,
    run_stubborn: Callable[..., Any],
) -> None:
    start_engine()
    job = run_stubborn(eops)
    eops.engine.stop(stop_jobs=False)  # as after a crash: the job runs on, unwatched
    assert tagged_processes(job.id, eops.store.store_id()) and not eops.engine.status()["running"]
    stopped = eops.jobs.stop(job.id)
    assert stopped.state is JobState.STOPPED
    assert "no engine was running" in (stopped.stop_reason or "")
    assert tagged_processes(job.id, eops.store.store_id()) == []


def test_runspaces_of_the_engine_and_its_workers_live_and_close(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    start_engine(sampler=RunspaceSampler(eops.store, interval=0.2))
    (engine_space,) = eops.runspaces.list(kind="engine")
    assert engine_space.pid == os.getpid() and engine_space.owner == "TaskEngine"
    assert engine_space.state is RunspaceState.OPENED
    with pytest.raises(Conflict, match="task engine"):
        eops.runspaces.close(engine_space.id, str(engine_space.id))
    eops.tasks.update("global.Slow", {"parameters": {"NAP": 30}})
    job = eops.tasks.run("global.Slow")
    # (opened with the claim, it gets its process in the next transaction)
    worker = wait_for(
        lambda: [r for r in eops.runspaces.list(kind="worker") if r.job_id == job.id and r.pid],
        what="the job's runspace with its process",
    )[0]
    assert worker.availability is Availability.BUSY and worker.task_id == "global.Slow"
    assert worker.pid == eops.jobs.get(job.id).pid
    wait_for(lambda: eops.runspaces.get(worker.id).memory_mb, what="a memory sample")
    wait_for(lambda: len(eops.runspaces.memory_history(worker.id)) >= 2, what="history")
    diagnostics = eops.runspaces.diagnostics(worker.id)
    assert diagnostics["environment"]["TASKOPS_JOB_ID"] == str(job.id)
    with pytest.raises(Conflict, match="confirm"):
        eops.runspaces.close(worker.id, "nope")
    assert eops.jobs.get(job.id).state is JobState.RUNNING
    eops.runspaces.close(worker.id, str(worker.id))
    ended = wait_finished(eops, job.id)
    assert ended.state is JobState.STOPPED
    assert ended.stop_reason == f"runspace {worker.id} force-closed by alice"
    assert eops.runspaces.get(worker.id).state is RunspaceState.CLOSED
    eops.engine.stop()
    assert eops.runspaces.get(engine_space.id).state is RunspaceState.CLOSED


def test_the_idle_engine_reads_the_queue_only_after_a_commit_yet_sees_jobs_queued_elsewhere(
    eops: taskops.TaskOps,
    esite: Path,
    start_engine: Callable[..., Engine],
    wait_finished: Wait,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Idle, the engine polls every poll interval (0.05 s here) but reads the queue only
    when the store's change count moved (else once a ``LOOK_AT_LEAST``, a minute here):
    a job queued by another connection, with no wake-up, still starts at once."""
    monkeypatch.setattr(engine_module, "LOOK_AT_LEAST", 60.0)
    reads: list[float] = []
    real = eops.store.queued_starts

    def counted(**kwargs: Any) -> Any:
        reads.append(time.monotonic())
        return real(**kwargs)

    monkeypatch.setattr(eops.store, "queued_starts", counted)
    start_engine(heartbeat=30.0)
    time.sleep(0.5)  # start-up's own writes settle
    reads.clear()
    time.sleep(2.0)
    assert len(reads) <= 1, reads  # 40 polls, nothing committed
    other = Store.for_sqlite(eops.site.data_dir / "taskops.db")  # another connection
    try:
        queued_at = time.monotonic()
        job_id = other.insert_job(
            name="from elsewhere",
            owner="Manual",
            state=JobState.QUEUED,
            queued_at=datetime.now(UTC),
            command={"kind": "exec", "argv": ["true"], "cwd": None},
        )
    finally:
        other.close()
    job = wait_finished(eops, job_id)
    assert job.state is JobState.COMPLETED
    assert job.started_at is not None
    assert time.monotonic() - queued_at < 10
    started = [t for t in reads if t >= queued_at]
    assert started and started[0] - queued_at < 1.0  # seen by its commit
