"""Python jobs forked by the runner's fork server: they run, end and are stopped like jobs
started with a new interpreter; a dead server is replaced; a crashed engine's forked jobs
are adopted by the next engine; and without the server the plain start still works."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

import taskops
from taskops.engine.engine import Engine
from taskops.engine.executor import RUNNER, SERVE_FLAG, ForkServer, JobFiles
from taskops.model import JobState
from taskops.testing import wait_for

if TYPE_CHECKING:
    from conftest import EngineProcess

Wait = Callable[..., Any]


def running_pid(ops: taskops.TaskOps, job_id: int) -> int:
    def started() -> int | None:
        job = ops.jobs.get(job_id)
        return job.pid if job.state is JobState.RUNNING and job.pid else None

    return wait_for(started, what=f"job {job_id} to run")


def test_a_python_job_is_forked_by_the_server_and_runs_as_usual(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    engine = start_engine()
    eops.tasks.update("global.Report", {"parameters": {"NAP": 1, "KEY": "v"}})
    job = eops.tasks.run("global.Report")
    pid = running_pid(eops, job.id)
    process = psutil.Process(pid)
    assert engine._forks is not None and process.ppid() == engine._forks.pid
    assert os.getpgid(pid) == pid  # its own process group, for the stop ladder
    done = wait_finished(eops, job.id)
    assert done.state is JobState.COMPLETED and done.exit_code == 0
    text = eops.jobs.output(job.id)["text"]
    assert "params [('KEY', 'v'), ('NAP', 1)]" in text and "done" in text


def test_a_forked_workers_diagnostics_show_the_environment_of_its_job(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine]
) -> None:
    start_engine()
    eops.tasks.update(
        "global.Report", {"parameters": {"NAP": 60}, "environment": {"API_TOKEN": "hush-42"}}
    )
    job = eops.tasks.run("global.Report")
    running_pid(eops, job.id)
    space = eops.jobs.get(job.id).runspace_id
    assert space is not None
    seen = eops.runspaces.diagnostics(space)
    assert seen["forked"] is True and seen["commandLine"][-2:] == [str(RUNNER), SERVE_FLAG]
    environment = seen["environment"]
    assert environment["TASKOPS_JOB_ID"] == str(job.id)  # not the fork server's own
    assert environment["TASKOPS_TASK_ID"] == "global.Report"
    assert environment["NAP"] == "60" and environment["API_TOKEN"] == "********"
    assert "hush-42" not in json.dumps(seen)
    engine_space = next(s for s in eops.runspaces.list() if s.kind.value == "engine")
    assert eops.runspaces.diagnostics(engine_space.id)["forked"] is False
    eops.jobs.stop(job.id)


def test_forked_jobs_report_failures_and_signals(
    eops: taskops.TaskOps,
    start_engine: Callable[..., Engine],
    wait_finished: Wait,
) -> None:
    start_engine()
    failed = wait_finished(eops, eops.jobs.start("tasks/fail.py").id)
    assert failed.state is JobState.FAILED and failed.exit_code == 1
    assert failed.error == "ValueError: bad vault file"
    traceback = eops.jobs.output(failed.id, "stderr")["text"]
    assert "ValueError: bad vault file" in traceback
    assert "_ForkedJob" not in traceback and "During handling" not in traceback  # its own only
    eops.tasks.update("global.Report", {"parameters": {"NAP": 60}})
    job = eops.tasks.run("global.Report")
    os.kill(running_pid(eops, job.id), signal.SIGKILL)  # killed from outside the engine
    killed = wait_finished(eops, job.id)
    assert killed.state is JobState.FAILED and killed.exit_code == -signal.SIGKILL


def test_a_stop_ends_a_forked_job_through_its_cleanup(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    start_engine()
    eops.tasks.update("global.Report", {"parameters": {"NAP": 60}})
    job = eops.tasks.run("global.Report")
    wait_for(lambda: "half way" in eops.jobs.output(job.id)["text"], what="the task to run")
    stopped = eops.jobs.stop(job.id)
    assert stopped.state is JobState.STOPPED and stopped.exit_code == 143


def test_a_dead_fork_server_is_replaced(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    engine = start_engine()
    first = wait_finished(eops, eops.tasks.run("global.Report").id)
    assert first.state is JobState.COMPLETED
    assert engine._forks is not None and engine._forks.pid is not None
    old = engine._forks.pid
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(old) or psutil.Process(old).status() == "zombie")
    again = wait_finished(eops, eops.tasks.run("global.Report").id)
    assert again.state is JobState.COMPLETED
    assert engine._forks.pid not in (None, old)


def test_without_the_fork_server_python_jobs_start_an_interpreter(
    eops: taskops.TaskOps, start_engine: Callable[..., Engine], wait_finished: Wait
) -> None:
    start_engine(fork_server=False)
    eops.tasks.update("global.Report", {"parameters": {"NAP": 1}})
    job = eops.tasks.run("global.Report")
    process = psutil.Process(running_pid(eops, job.id))
    assert process.ppid() == os.getpid()  # the engine's own child
    assert process.cmdline()[1] == str(RUNNER)
    done = wait_finished(eops, job.id)
    assert done.state is JobState.COMPLETED


def test_the_server_refuses_a_missing_folder_and_ends_with_its_engine(tmp_path: Path) -> None:
    server = ForkServer()
    files = JobFiles(tmp_path / "job")
    script = tmp_path / "t.py"
    script.write_text("def run(ctx):\n    print('ran', ctx.job_id)\n")
    env = {"PATH": os.environ["PATH"], "TASKOPS_JOB_ID": "5", "TASKOPS_JOB_DIR": str(files.folder)}
    try:
        with pytest.raises(OSError, match="no working folder"):
            server.run({"script": str(script), "cwd": str(tmp_path / "nope")}, env=env, files=files)
        pid = server.run({"script": str(script), "cwd": str(tmp_path)}, env=env, files=files)
        assert server.exit_code(pid, timeout=10) == 0
        assert files.stdout.read_text() == "ran 5\n"
        assert json.loads(files.result.read_text()) == {"exitCode": 0, "error": None}
        server_pid = server.pid
        assert server_pid is not None
        assert psutil.Process(server_pid).cmdline()[1:] == [str(RUNNER), SERVE_FLAG]
    finally:
        server.close()
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == "zombie"


def test_several_jobs_sent_at_once_all_start(tmp_path: Path) -> None:
    """One write with five requests: the server must answer each, not only the first."""
    server = ForkServer()
    script = tmp_path / "t.py"
    script.write_text("def run(ctx):\n    print('ran', ctx.job_id)\n")
    jobs = []
    for n in range(5):
        files = JobFiles(tmp_path / f"job{n}")
        env = {
            "PATH": os.environ["PATH"],
            "TASKOPS_JOB_ID": str(n),
            "TASKOPS_JOB_DIR": str(files.folder),
        }
        jobs.append(({"script": str(script), "cwd": str(tmp_path)}, env, files))
    try:
        pids = server.run_many(jobs)
        assert all(isinstance(pid, int) for pid in pids)
        assert [server.exit_code(int(pid), timeout=10) for pid in pids] == [0] * 5
        assert [files.stdout.read_text() for _, _, files in jobs] == [
            f"ran {n}\n" for n in range(5)
        ]
    finally:
        server.close()


def test_a_crashed_engines_forked_job_is_adopted_by_the_next(
    eops: taskops.TaskOps,
    engine_process: Callable[[], EngineProcess],
    start_engine: Callable[..., Engine],
    wait_finished: Wait,
) -> None:
    first = engine_process()
    wait_for(lambda: eops.engine.status()["pid"] == first.pid, what="the engine's lease")
    eops.tasks.update("global.Report", {"parameters": {"NAP": 3}})
    job = eops.tasks.run("global.Report")
    pid = running_pid(eops, job.id)
    first.kill()  # a crash: the job's process runs on
    assert psutil.pid_exists(pid)
    start_engine(lease_ttl=2.0)
    done = wait_finished(eops, job.id, timeout=20)
    assert done.state is JobState.COMPLETED  # adopted: its end was seen, not lost
    assert done.exit_code == 0 and "done" in eops.jobs.output(job.id)["text"]
