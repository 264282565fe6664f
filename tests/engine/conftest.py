"""A site with real scripts, opened with the real clock, and engines with short intervals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import taskops
from taskops.engine.engine import Engine
from taskops.inspect.processes import tagged_processes
from taskops.testing import make_site, wait_for

SCRIPTS: dict[str, str] = {
    "tasks/echo.sh": """#!/bin/sh
echo "job=$TASKOPS_JOB_ID task=$TASKOPS_TASK_ID runspace=$TASKOPS_RUNSPACE_ID"
echo "count=$COUNT mode=$MODE site=$TASKOPS_SITE"
echo "to stderr" >&2
""",
    "tasks/slow.sh": """#!/bin/sh
echo "start $TASKOPS_JOB_ID"
sleep "${NAP:-3}"
echo "end $TASKOPS_JOB_ID"
""",
    # ignores SIGTERM, and so does the child it leaves in its group
    "tasks/stubborn.sh": """#!/bin/sh
trap '' TERM
sleep 300 &
echo "started $TASKOPS_JOB_ID"
while true; do sleep 0.2; done
""",
    "tasks/fails.sh": """#!/bin/sh
echo "working"
echo "vault file is corrupt" >&2
exit 3
""",
    "tasks/fail.py": """def run(ctx):
    ctx.logger.info("opening the vault")
    raise ValueError("bad vault file")
""",
    "tasks/report.py": """import time


def run(ctx):
    ctx.logger.info("params %s", sorted(ctx.params.items()))
    ctx.progress(0.5, "half way")
    time.sleep(float(ctx.params.get("NAP", 0)))
    ctx.logger.info("done")
""",
}

TASKS: dict[str, list[dict[str, Any]]] = {
    "global": [
        {
            "name": "Echo",
            "schedule": "* * * * * *",
            "scriptPath": "tasks/echo.sh",
            "enabled": False,
            "parameters": {"COUNT": 3},
            "environment": {"MODE": "test", "API_TOKEN": "s3cr3t-value"},
        },
        {
            "name": "Slow",
            "schedule": "0 3 * * *",
            "scriptPath": "tasks/slow.sh",
            "enabled": False,
            "parameters": {"NAP": 3},
        },
        {
            "name": "Stubborn",
            "schedule": "0 3 * * *",
            "scriptPath": "tasks/stubborn.sh",
            "enabled": False,
            "termination": {"maxRuntime": 1, "killOnTimeout": True},
        },
        {
            "name": "Fails",
            "schedule": "0 3 * * *",
            "scriptPath": "tasks/fails.sh",
            "enabled": False,
        },
        {
            "name": "Report",
            "schedule": "0 3 * * *",
            "scriptPath": "tasks/report.py",
            "enabled": False,
            "parameters": {"NAP": 0, "LIMIT": 7},
        },
    ],
    "vault": [
        {
            "name": "Backup",
            "schedule": "0 3 * * *",
            "scriptPath": "../../tasks/fail.py",
            "enabled": True,
            "termination": {"maxFailures": 2},
        },
    ],
}

FAST = {"poll_interval": 0.05, "stop_grace": 1.0, "lease_ttl": 3.0, "heartbeat": 0.5}


def write_scripts(site: Path) -> None:
    for rel, text in SCRIPTS.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)


@pytest.fixture
def esite(tmp_path: Path) -> Path:
    site = make_site(tmp_path / "site", TASKS, timezone="UTC", scripts=False)
    write_scripts(site)
    return site


@pytest.fixture
def eops(esite: Path) -> Iterator[taskops.TaskOps]:
    with taskops.open_site(esite, user="alice") as ops:
        yield ops
        ops.engine.stop()
        job_ids = ops.store.job_ids()
        store_id = ops.store.store_id()
    for job_id in job_ids:  # never leave a process behind, whatever the test did
        for process in tagged_processes(job_id, store_id):
            process.kill()


@pytest.fixture
def start_engine(eops: taskops.TaskOps) -> Callable[..., Engine]:
    def start(**options: Any) -> Engine:
        engine = eops.engine.start(**{"sampler": None, **FAST, **options})
        assert engine.active
        return engine

    return start


def _cli(*args: str, site: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskops.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TASKOPS_SITE": str(site)},
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``taskops ...`` on the site (``$TASKOPS_SITE``) as another process, as an
    operator would."""
    return _cli


def _wait_finished(ops: taskops.TaskOps, job_id: int, timeout: float = 15) -> Any:
    def ended() -> Any:
        job = ops.jobs.get(job_id)
        return job if job.state.finished else None

    return wait_for(ended, timeout=timeout, what=f"job {job_id} to end")


@pytest.fixture
def wait_finished() -> Callable[..., Any]:
    """``wait_finished(ops, job_id, timeout=15)``: the job once it has ended."""
    return _wait_finished


def _run_stubborn(ops: taskops.TaskOps) -> Any:
    ops.tasks.update("global.Stubborn", {"termination": {"maxRuntime": 600}})
    job = ops.tasks.run("global.Stubborn")
    wait_for(
        lambda: len(tagged_processes(job.id, ops.store.store_id())) >= 2,
        what="the job and its child",
    )
    return job


@pytest.fixture
def run_stubborn() -> Callable[..., Any]:
    """``run_stubborn(ops)``: run ``global.Stubborn`` now (no timeout) and return its job
    once it and the child it leaves in its group run (the engine must be running)."""
    return _run_stubborn


class EngineProcess:
    """``taskops engine`` in a process of its own, as an operator runs it."""

    def __init__(self, site: Path, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskops.cli",
                "engine",
                "--site",
                str(site),
                "--poll",
                "0.05",
                "--lease-ttl",
                "2",
                "--grace",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def engine_process(tmp_path: Path, esite: Path) -> Iterator[Callable[[], EngineProcess]]:
    started: list[EngineProcess] = []

    def start() -> EngineProcess:
        started.append(EngineProcess(esite, tmp_path / f"engine{len(started)}.log"))
        return started[-1]

    yield start
    for engine in started:
        engine.kill()
