"""The notebooks under ``notebooks/`` run top to bottom (nbclient, a real kernel) against a
temporary demo site whose engine has produced real history: runs of every quick task, a
backup that keeps failing until the engine disables it, and a reindex left running far
longer than its usual time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

import taskops
from taskops.demo import create_demo_site
from taskops.errors import Conflict
from taskops.model import JobState
from taskops.testing import wait_for

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
QUICK = (
    "global.HealthCheck",
    "global.LogRotation",
    "WebHostMetrics.MetricsCollection",
    "WebHostMetrics.MetricsRollup",
    "WebHostMetrics.MetricsCsvCleanup",
    "vault.VaultKeyRotation",
)


def run_now(ops: taskops.TaskOps, task_id: str) -> int:
    """Run the task now; when a run of its schedule is queued or running (the demo's
    backup is enabled, and its slot may come during the test), once that one has ended."""

    def started() -> int | None:
        try:
            return ops.tasks.run(task_id).id
        except Conflict:
            return None

    return wait_for(started, timeout=60, what=f"a run of {task_id} to start")


def finished(ops: taskops.TaskOps, job_id: int) -> taskops.Job:
    return wait_for(
        lambda: (job := ops.jobs.get(job_id)).state.finished and job,
        timeout=60,
        what=f"job {job_id} to end",
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, taskops.TaskOps]]:
    """The demo site with real history, its engine running in this process."""
    root = tmp_path_factory.mktemp("notebooks") / "demo"
    create_demo_site(root)
    ops = taskops.open_site(root, user="operator")
    for task in ops.tasks.list(enabled=True):  # only the runs made here, in this order
        ops.tasks.disable(task.id)
    ops.tasks.update("global.SearchReindex", {"parameters": {"STEPS": 2, "STEP_SECONDS": 0.2}})
    ops.tasks.update("vault.VaultBackup", {"parameters": {"FAILURE_RATE": 0}})
    ops.tasks.enable("vault.VaultBackup")  # an enabled task the engine can disable
    ops.engine.start(poll_interval=0.05)
    try:
        for _round in range(3):
            for task_id in (*QUICK, "global.SearchReindex", "vault.VaultBackup"):
                finished(ops, run_now(ops, task_id))
        # the storage turns bad: every backup fails until maxFailures disables the task
        ops.tasks.update("vault.VaultBackup", {"parameters": {"FAILURE_RATE": 1}})
        limit = ops.tasks.get("vault.VaultBackup").to_dict()["termination"]["maxFailures"]
        for _ in range(limit):
            if ops.tasks.get("vault.VaultBackup").enabled:
                finished(ops, run_now(ops, "vault.VaultBackup"))
        wait_for(
            lambda: not ops.tasks.get("vault.VaultBackup").enabled,
            timeout=30,
            what="the engine to disable the failing backup",
        )
        # a reindex that hangs: far longer than its usual second
        ops.tasks.update("global.SearchReindex", {"parameters": {"STEPS": 50, "STEP_SECONDS": 60}})
        stuck = ops.tasks.run("global.SearchReindex")
        wait_for(lambda: ops.jobs.get(stuck.id).state is JobState.RUNNING, what="the stuck reindex")
        yield root, ops
    finally:
        ops.engine.stop(timeout=30)
        ops.close()


def run_notebook(name: str, site: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TASKOPS_SITE", str(site))  # the kernel inherits it
    monkeypatch.delenv("TASKOPS_USER", raising=False)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    return notebook


def outputs(notebook: Any) -> str:
    """Every cell's text output and the plain-text of its results, in one string."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def figures(notebook: Any) -> int:
    return sum(
        "application/vnd.plotly.v1+json" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def widgets(notebook: Any) -> int:
    return sum(
        "application/vnd.jupyter.widget-view+json" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def test_why_did_my_task_fail(
    site: tuple[Path, taskops.TaskOps], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ops = site
    notebook = run_notebook("why_did_my_task_fail.ipynb", root, monkeypatch)
    text = outputs(notebook)
    assert "vault.VaultBackup" in text  # the task that failed most
    assert "backup verification failed" in text  # its error, from the history and the output
    assert "FAILURE_RATE" in text and "task.disable" in text  # its parameters, the audit
    assert figures(notebook) >= 1 and widgets(notebook) >= 1


def test_stuck_jobs_and_hungry_runspaces(
    site: tuple[Path, taskops.TaskOps], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, ops = site
    stuck = ops.jobs.list(state="Running", task="global.SearchReindex")[0]
    notebook = run_notebook("stuck_jobs_and_hungry_runspaces.ipynb", root, monkeypatch)
    text = outputs(notebook)
    assert f"job {stuck.id} {stuck.name}: Running" in text  # found as the suspect
    assert f"job {stuck.id}: Stopped" in text  # and stopped by the last cell
    assert ops.jobs.get(stuck.id).state is JobState.STOPPED
    assert figures(notebook) >= 1 and widgets(notebook) >= 1


def test_last_week(site: tuple[Path, taskops.TaskOps], monkeypatch: pytest.MonkeyPatch) -> None:
    root, ops = site
    notebook = run_notebook("last_week.ipynb", root, monkeypatch)
    text = outputs(notebook)
    week = ops.stats(days=7)
    runs, failed = int(week["runs"].sum()), int(week["failures"].sum())
    assert runs > 20 and failed >= 5
    assert f"{runs} runs, {failed} failed, over" in text
    assert figures(notebook) == 4  # success rate, failures, durations, timeline


def test_notebooks_are_stored_without_outputs() -> None:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
        assert notebook.cells[0].cell_type == "markdown", path.name  # each starts with its story
