"""The engine on the demo site: every task runs through the runner or as an executable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import taskops
from taskops.demo import create_demo_site
from taskops.inspect.processes import tagged_processes
from taskops.model import MASK, JobState
from taskops.testing import wait_for

Wait = Callable[..., Any]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[taskops.TaskOps]:
    site = tmp_path / "demo"
    create_demo_site(site)
    with taskops.open_site(site, user="operator") as ops:
        yield ops
        ops.engine.stop()
        ids = ops.store.job_ids()
        store_id = ops.store.store_id()
    for job_id in ids:
        for process in tagged_processes(job_id, store_id):
            process.kill()


def test_every_demo_task_runs_now_through_the_engine(
    demo: taskops.TaskOps, wait_finished: Wait
) -> None:
    for task in demo.tasks.list():  # only Run Now in this test: no scheduled slot interferes
        if task.enabled:
            demo.tasks.disable(task.id)
    demo.engine.start(sampler=None, poll_interval=0.05, stop_grace=1.0)
    quick = [
        "global.HealthCheck",
        "global.LogRotation",
        "global.DiskUsageReport",
        "WebHostMetrics.MetricsCollection",
        "WebHostMetrics.MetricsRollup",
        "WebHostMetrics.MetricsCsvCleanup",
        "vault.VaultKeyRotation",
    ]
    for task_id in quick:
        job = wait_finished(demo, demo.tasks.run(task_id).id, timeout=30)
        stderr = demo.jobs.output(job.id, "stderr")["text"]
        assert job.state is JobState.COMPLETED, f"{task_id}: {job.error}\n{stderr}"
        assert demo.jobs.output(job.id)["text"], f"{task_id} wrote nothing"
    rotation = demo.jobs.list(task="vault.VaultKeyRotation")[0]
    assert rotation.to_dict()["environment"]["VAULT_TOKEN"] == MASK
    assert "demo-vault-token" not in demo.jobs.output(rotation.id)["text"]
    # VaultBackup fails about one run in four, on purpose: either way it ends with a reason
    backup = wait_finished(demo, demo.tasks.run("vault.VaultBackup").id, timeout=30)
    assert backup.state in (JobState.COMPLETED, JobState.FAILED)
    assert backup.state is JobState.COMPLETED or backup.error
    # SearchReindex takes minutes and reports progress: watch it move, then stop it
    reindex = demo.tasks.run("global.SearchReindex")
    progress = wait_for(
        lambda: demo.jobs.get(reindex.id).progress, timeout=30, what="reindex progress"
    )
    assert 0 < progress < 1
    stopped = demo.jobs.stop(reindex.id)
    assert stopped.state is JobState.STOPPED
