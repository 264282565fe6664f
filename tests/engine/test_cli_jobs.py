"""``taskops jobs`` and ``taskops runspaces`` as an operator types them, against an engine."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import taskops
from taskops.engine.engine import Engine
from taskops.model import JobState
from taskops.testing import wait_for

Cli = Callable[..., subprocess.CompletedProcess[str]]
Wait = Callable[..., Any]


def test_jobs_commands_start_list_show_tail_remove(
    eops: taskops.TaskOps,
    esite: Path,
    start_engine: Callable[..., Engine],
    cli: Cli,
    wait_finished: Wait,
) -> None:
    start_engine()
    started = cli(
        "jobs", "start", "--name", "Hello", "--", "sh", "-c", "echo hi; echo oops >&2", site=esite
    )
    assert started.returncode == 0, started.stderr
    job_id = int(started.stdout.split()[2])
    wait_finished(eops, job_id)
    listing = cli("jobs", "list", site=esite)
    assert "Hello" in listing.stdout and "Completed" in listing.stdout
    as_json = json.loads(cli("jobs", "list", "--state", "completed", "--json", site=esite).stdout)
    assert [j["id"] for j in as_json] == [job_id]
    shown = json.loads(cli("jobs", "show", str(job_id), "--json", site=esite).stdout)
    assert shown["output"] == "hi\n" and shown["owner"] == "Manual"
    assert cli("jobs", "tail", str(job_id), "--stream", "stderr", site=esite).stdout == "oops\n"
    assert cli("jobs", "tail", str(job_id), "--follow", site=esite).stdout == "hi\n"
    assert cli("jobs", "remove", str(job_id), site=esite).returncode == 0
    again = cli("jobs", "remove", str(job_id), site=esite)
    assert again.returncode == 3 and "no job" in again.stderr
    bad = cli("jobs", "list", "--state", "Sleeping", site=esite)
    assert bad.returncode == 2 and "unknown job state" in bad.stderr


def test_runspaces_commands_list_show_and_close_with_the_typed_id(
    eops: taskops.TaskOps, esite: Path, start_engine: Callable[..., Engine], cli: Cli
) -> None:
    start_engine()
    eops.tasks.update("global.Slow", {"parameters": {"NAP": 60}})
    job = eops.tasks.run("global.Slow")
    worker = wait_for(
        lambda: [r for r in eops.runspaces.list() if r.job_id == job.id and r.pid],
        what="the worker runspace",
    )[0]
    listing = cli("runspaces", "list", site=esite)
    assert "engine" in listing.stdout and "worker" in listing.stdout
    shown = json.loads(cli("runspaces", "show", str(worker.id), site=esite).stdout)
    assert shown["pid"] == worker.pid and shown["environment"]["TASKOPS_JOB_ID"] == str(job.id)
    wrong = cli("runspaces", "close", str(worker.id), "--confirm", "1234", site=esite)
    assert wrong.returncode == 4 and "confirm" in wrong.stderr
    assert eops.jobs.get(job.id).state is JobState.RUNNING
    closed = cli("runspaces", "close", str(worker.id), "--confirm", str(worker.id), site=esite)
    assert closed.returncode == 0, closed.stderr
    assert wait_for(lambda: eops.jobs.get(job.id).state.finished and eops.jobs.get(job.id))
    assert eops.jobs.get(job.id).state is JobState.STOPPED
