"""The ``taskops`` command, run as a real process on a real site."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def taskops_cmd() -> list[str]:
    script = Path(sys.executable).parent / "taskops"
    found = str(script) if script.exists() else shutil.which("taskops")
    return [found] if found else [sys.executable, "-m", "taskops.cli"]


def run(*args: str, site: Path | None = None, check: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TASKOPS_SITE"}
    if site is not None:
        env["TASKOPS_SITE"] = str(site)
    done = subprocess.run(
        [*taskops_cmd(), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == check, (done.stdout, done.stderr)
    return done


@pytest.mark.slow
def test_demo_creates_the_site_and_lists_its_tasks(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    first = run("demo", "--create-only", "--dir", str(target))
    assert "Created the demo site" in first.stdout
    assert "NEXT RUN" in first.stdout
    assert (target / "config" / "tasks.yaml").is_file()
    assert first.stderr == ""  # the demo site has no errors
    rows = [line for line in first.stdout.splitlines() if "." in line.split("  ")[0]]
    assert len(rows) >= 6
    second = run("demo", "--create-only", "--dir", str(target))
    assert "Using the demo site" in second.stdout

    listed = json.loads(run("tasks", "list", "--json", "--site", str(target)).stdout)
    apps = {t["app"] for t in listed}
    assert {"global", "WebHostMetrics", "vault"} <= apps
    enabled = [t for t in listed if t["enabled"]]
    assert enabled and all(t["nextRun"] for t in enabled)


def test_list_filters_and_json(site_dir: Path) -> None:
    listed = json.loads(run("tasks", "list", "--json", "--app", "vault", site=site_dir).stdout)
    assert [t["id"] for t in listed] == ["vault.VaultBackup"]
    disabled = json.loads(run("tasks", "list", "--disabled", "--json", site=site_dir).stdout)
    assert [t["id"] for t in disabled] == ["global.Heartbeat"]
    text = run("tasks", "list", "--search", "metric", site=site_dir).stdout
    assert "WebHostMetrics.MetricsCollection" in text and "vault.VaultBackup" not in text


def test_show_disable_enable_export_delete_restore(site_dir: Path) -> None:
    shown = run("tasks", "show", "global.Cleanup", site=site_dir).stdout
    assert "scheduleText" in shown and "At 03:00 AM" in shown
    assert "s3cr3t" not in shown
    out = json.loads(run("tasks", "disable", "global.Cleanup", "--json", site=site_dir).stdout)
    assert out["status"] == "Disabled"
    out = json.loads(run("tasks", "enable", "global.Cleanup", "--json", site=site_dir).stdout)
    assert out["status"] == "Enabled"
    exported = json.loads(run("tasks", "export", "global.Cleanup", site=site_dir).stdout)
    assert exported["environment"]["API_TOKEN"] == "********"
    assert (
        "Deleted global.Cleanup" in run("tasks", "delete", "global.Cleanup", site=site_dir).stdout
    )
    listed = json.loads(run("tasks", "list", "--json", site=site_dir).stdout)
    assert "global.Cleanup" not in [t["id"] for t in listed]
    run("tasks", "restore", "global.Cleanup", site=site_dir)
    audit = (site_dir / "data" / "logs" / "audit.log").read_text().splitlines()
    assert [json.loads(line)["action"] for line in audit] == [
        "task.disable",
        "task.enable",
        "task.delete",
        "task.restore",
    ]


def test_errors_exit_with_a_message(site_dir: Path, tmp_path: Path) -> None:
    missing = run("tasks", "show", "vault.Nope", site=site_dir, check=3)
    assert "no task vault.Nope" in missing.stderr
    bad = run("tasks", "list", "--status", "Sleeping", site=site_dir, check=2)
    assert "unknown status" in bad.stderr
    nosite = run("tasks", "list", check=2)
    assert "--site" in nosite.stderr
    gone = run("tasks", "list", "--site", str(tmp_path / "nowhere"), check=2)
    assert "no site folder" in gone.stderr


def test_site_errors_are_listed_and_warned(site_dir: Path) -> None:
    (site_dir / "apps" / "vault" / "config" / "tasks.yaml").write_text("tasks: [\n")
    listed = run("tasks", "list", site=site_dir)
    assert "warning: apps/vault/config/tasks.yaml: invalid YAML" in listed.stderr
    assert "global.Cleanup" in listed.stdout
    errors = json.loads(run("tasks", "errors", "--json", site=site_dir).stdout)
    assert errors[0]["file"] == "apps/vault/config/tasks.yaml"


def test_demo_refuses_a_folder_that_holds_something_else(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    done = run("demo", "--create-only", "--dir", str(target), check=1)
    assert "not empty" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]

    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    done = run("demo", "--create-only", "--dir", str(a_file), check=1)
    assert "it is a file" in done.stderr and "Traceback" not in done.stderr
    assert a_file.read_text() == "x"


def test_serve_refuses_a_kernel_idle_timeout_that_is_no_whole_number(site_dir: Path) -> None:
    for bad in ("-1", "abc", "2.5"):
        done = run("serve", "--site", str(site_dir), "--kernel-idle-timeout", bad, check=2)
        assert "--kernel-idle-timeout" in done.stderr, done.stderr
    help_text = run("serve", "--help").stdout
    assert "--kernel-idle-timeout SECONDS" in help_text


def test_the_server_culls_idle_unconnected_kernels(tmp_path: Path) -> None:
    from taskops.server.serve import DEFAULT_KERNEL_IDLE_TIMEOUT, cull_interval, server_argv

    def argv(**kwargs: int) -> list[str]:
        return server_argv(
            tmp_path, ip="127.0.0.1", port=8765, token="t", open_browser=False, **kwargs
        )

    default = argv()
    assert f"--MappingKernelManager.cull_idle_timeout={DEFAULT_KERNEL_IDLE_TIMEOUT}" in default
    assert "--MappingKernelManager.cull_interval=60" in default
    # a kernel an open page is connected to is never culled
    assert "--MappingKernelManager.cull_connected=False" in default
    assert "--ServerApp.default_url=/apps/WebHostTaskManagement/" in default
    short = argv(kernel_idle_timeout=4)
    assert "--MappingKernelManager.cull_idle_timeout=4" in short
    assert "--MappingKernelManager.cull_interval=1" in short
    assert "--MappingKernelManager.cull_idle_timeout=0" in argv(kernel_idle_timeout=0)  # never
    assert [cull_interval(t) for t in (0, 1, 4, 40, 300, 3600)] == [1, 1, 1, 10, 60, 60]
    with pytest.raises(ValueError, match="0 or more"):
        argv(kernel_idle_timeout=-1)
