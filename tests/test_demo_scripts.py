"""The demo site: its YAML loads cleanly, every script does its real work, the copy is safe.

Each Python script is imported from the copied site and its ``run(ctx)`` called with the
parameters and environment of its YAML entry; the shell script runs as a real process, the
way the engine runs it. Durations are parameters, so the long task runs in no time on the
same code path.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import json
import os
import random
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import taskops.demo as demo
from taskops.cron import Schedule
from taskops.demo import DEMO_SOURCE, create_demo_site
from taskops.site import Catalog, Site
from taskops.testing import RecordingContext

TIMESTAMP = re.compile(r"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] ")
EXPECTED_TASKS = {
    "global.HealthCheck",
    "global.LogRotation",
    "global.SearchReindex",
    "global.DiskUsageReport",
    "WebHostMetrics.MetricsCollection",
    "WebHostMetrics.MetricsRollup",
    "WebHostMetrics.MetricsCsvCleanup",
    "vault.VaultBackup",
    "vault.VaultKeyRotation",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    target = tmp_path / "site"
    assert create_demo_site(target) is True
    return target


def entries(site: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Task id -> (app, normalized YAML entry), as the site's catalog reads them."""
    snapshot = Catalog(Site(site)).snapshot()
    return {tid: (task.app, dict(task.spec)) for tid, task in snapshot.tasks.items()}


def script_of(site: Path, task_id: str) -> Path:
    app, entry = entries(site)[task_id]
    return Site(site).resolve_script(app, entry["scriptPath"])


def load(site: Path, task_id: str) -> ModuleType:
    path = script_of(site, task_id)
    spec = importlib.util.spec_from_file_location(f"demo_{task_id.replace('.', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context(site: Path, task_id: str, **overrides: Any) -> RecordingContext:
    """A context with the task's YAML parameters (``overrides`` replace some) and environment."""
    app, entry = entries(site)[task_id]
    return RecordingContext(
        site_dir=site,
        data_dir=site / "data",
        task=task_id,
        app=app,
        params={**entry.get("parameters", {}), **overrides},
        env={k: str(v) for k, v in entry.get("environment", {}).items()},
    )


def run_task(site: Path, task_id: str, **overrides: Any) -> RecordingContext:
    ctx = context(site, task_id, **overrides)
    load(site, task_id).run(ctx)
    return ctx


def all_files_text(folder: Path) -> str:
    out = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out.append(gzip.decompress(data) if path.suffix == ".gz" else data)
    return b"\n".join(out).decode("utf-8", "replace")


# --- the site as a whole -------------------------------------------------------------------


def test_the_demo_site_loads_without_errors(site: Path) -> None:
    snapshot = Catalog(Site(site)).snapshot()
    assert snapshot.errors == []
    assert set(snapshot.tasks) == EXPECTED_TASKS
    assert set(entries(site)) == EXPECTED_TASKS


def test_the_site_has_the_kinds_of_tasks_the_demo_promises(site: Path) -> None:
    tasks = entries(site)
    disabled = {tid for tid, (_, e) in tasks.items() if not e.get("enabled", True)}
    assert disabled == {"global.DiskUsageReport"}
    assert {tid for tid, (_, e) in tasks.items() if e.get("timezone")} == {"vault.VaultKeyRotation"}
    start = datetime(2026, 1, 16, 14, 5, 30, tzinfo=UTC)
    fast = set()
    for tid, (_, entry) in tasks.items():
        first, second = Schedule.parse(entry["schedule"], "UTC").next_runs(2, start=start)
        if second - first <= timedelta(seconds=30):
            fast.add(tid)
    assert len(fast) >= 3, fast
    assert script_of(site, "global.LogRotation").suffix == ".sh"
    _, backup = tasks["vault.VaultBackup"]
    assert 0 < backup["parameters"]["FAILURE_RATE"] < 1
    _, reindex = tasks["global.SearchReindex"]
    planned = (reindex["parameters"]["STEPS"] - 1) * reindex["parameters"]["STEP_SECONDS"]
    assert 120 <= planned < reindex["termination"]["maxRuntime"]


def test_every_script_belongs_to_exactly_one_task_and_exists(site: Path) -> None:
    used = [script_of(site, tid).resolve() for tid in entries(site)]
    assert all(p.is_file() for p in used)
    shipped = [p.resolve() for p in site.rglob("tasks/*") if p.is_file()]
    assert sorted(used) == sorted(shipped)
    python = {tid for tid in entries(site) if script_of(site, tid).suffix == ".py"}
    assert python == set(WRITES)  # each one is also run as __main__ below
    for tid in python:
        assert callable(load(site, tid).run), tid


# --- WebHostMetrics ------------------------------------------------------------------------


def test_metrics_collection_appends_samples_to_the_current_csv(site: Path) -> None:
    for _ in range(2):
        ctx = run_task(site, "WebHostMetrics.MetricsCollection", SAMPLE_SECONDS=0.01)
    files = sorted((site / "data" / "demo" / "metrics").glob("metrics_*.csv"))
    # Two runs straddle a 10-minute boundary only when the clock says so: allow two files.
    rows = [row for f in files for row in _csv_rows(f)]
    assert 1 <= len(files) <= 2 and len(rows) == 2
    for row in rows:
        datetime.fromisoformat(row["time"])
        for name in ("cpu_percent", "memory_percent", "disk_percent"):
            assert 0.0 <= float(row[name]) <= 100.0
        assert float(row["load_1m"]) >= 0.0
    assert any(files[-1].name in line for line in ctx.lines)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as source:
        return list(csv.DictReader(source))


def _write_csv(path: Path, rows: list[tuple[datetime, float]], *, packed: bool = False) -> None:
    lines = ["time,cpu_percent,memory_percent,disk_percent,load_1m"]
    lines += [f"{t.isoformat(timespec='seconds')},{cpu},50.0,40.0,0.5" for t, cpu in rows]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if packed:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def test_metrics_rollup_averages_the_window_including_compressed_files(site: Path) -> None:
    folder = site / "data" / "demo" / "metrics"
    now = datetime.now().astimezone()
    _write_csv(
        folder / "metrics_20260101_1000.csv",
        [(now - timedelta(minutes=120), 90.0), (now - timedelta(minutes=5), 10.0)],
    )
    _write_csv(
        folder / "metrics_20260101_1010.csv.gz", [(now - timedelta(minutes=1), 20.0)], packed=True
    )
    _write_csv(folder / "metrics_20260101_1020.csv", [(now - timedelta(minutes=3), 30.0)])

    ctx = run_task(site, "WebHostMetrics.MetricsRollup")

    rollup = json.loads((folder / "rollup.json").read_text())
    assert rollup["windowMinutes"] == 60 and rollup["samples"] == 3
    assert rollup["metrics"]["cpu_percent"] == {"avg": 20.0, "min": 10.0, "max": 30.0, "last": 20.0}
    assert rollup["metrics"]["memory_percent"]["avg"] == 50.0
    assert any("rolled up 3 samples" in line for line in ctx.lines)


def test_metrics_rollup_with_no_samples_writes_an_empty_rollup(site: Path) -> None:
    ctx = run_task(site, "WebHostMetrics.MetricsRollup")
    rollup = json.loads((site / "data" / "demo" / "metrics" / "rollup.json").read_text())
    assert rollup["samples"] == 0 and rollup["metrics"] == {}
    assert any("no samples" in line for line in ctx.lines)


def test_metrics_csv_cleanup_compresses_finished_files_and_deletes_expired(site: Path) -> None:
    folder = site / "data" / "demo" / "metrics"
    now = datetime.now()
    names = [f"metrics_{now - timedelta(minutes=m):%Y%m%d_%H%M}.csv" for m in (30, 20, 10)]
    contents = {}
    for minutes, name in zip((30, 20, 10), names, strict=True):
        _write_csv(folder / name, [(now.astimezone() - timedelta(minutes=minutes), 1.0)])
        contents[name] = (folder / name).read_bytes()
    _write_csv(folder / "metrics_20200101_0000.csv.gz", [(now.astimezone(), 1.0)], packed=True)
    (folder / "notes.txt").write_text("not a metrics file")

    ctx = run_task(site, "WebHostMetrics.MetricsCsvCleanup")

    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [names[0] + ".gz", names[1] + ".gz", names[2], "notes.txt"]
    )
    for name in names[:2]:
        assert gzip.decompress((folder / f"{name}.gz").read_bytes()) == contents[name]
    assert (folder / names[2]).read_bytes() == contents[names[2]]
    assert any("2 compressed, 1 deleted" in line for line in ctx.lines)

    again = run_task(site, "WebHostMetrics.MetricsCsvCleanup")
    assert any("0 compressed, 0 deleted" in line for line in again.lines)


# --- vault ---------------------------------------------------------------------------------


def _backups(site: Path) -> list[Path]:
    return sorted((site / "data" / "demo" / "vault" / "backups").glob("vault_*.json"))


def test_vault_backup_verifies_each_copy_and_keeps_the_last_n(site: Path) -> None:
    made: list[str] = []
    for _ in range(7):
        run_task(site, "vault.VaultBackup", FAILURE_RATE=0)
        made.append(_backups(site)[-1].name)
    vault = (site / "data" / "demo" / "vault" / "vault.json").read_bytes()
    kept = _backups(site)
    assert [p.name for p in kept] == made[-5:]  # KEEP_BACKUPS: 5 in the YAML; oldest pruned
    for backup in kept:
        digest, name = backup.with_name(backup.name + ".sha256").read_text().split()
        assert name == backup.name
        assert digest == hashlib.sha256(backup.read_bytes()).hexdigest()
        assert backup.read_bytes() == vault
    assert len(list(kept[0].parent.iterdir())) == 10  # no stray checksum files


def test_vault_backup_fails_clearly_when_verification_fails(site: Path) -> None:
    run_task(site, "vault.VaultBackup", FAILURE_RATE=0)
    before = sorted(p.name for p in _backups(site)[0].parent.iterdir())
    with pytest.raises(RuntimeError, match=r"backup verification failed .* sha256"):
        run_task(site, "vault.VaultBackup", FAILURE_RATE=1)
    assert sorted(p.name for p in _backups(site)[0].parent.iterdir()) == before


def test_vault_backup_with_its_yaml_failure_rate_fails_now_and_then(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "random", random.Random(20260116).random)
    outcomes = []
    for _ in range(24):
        try:
            run_task(site, "vault.VaultBackup")
            outcomes.append("ok")
        except RuntimeError:
            outcomes.append("failed")
    assert 0 < outcomes.count("failed") < 12, outcomes
    assert len(_backups(site)) == 5


def test_vault_key_rotation_seals_new_versions_and_keeps_the_last_three(site: Path) -> None:
    for _ in range(4):
        ctx = run_task(site, "vault.VaultKeyRotation")
    token = context(site, "vault.VaultKeyRotation").env["VAULT_TOKEN"]
    vault = json.loads((site / "data" / "demo" / "vault" / "vault.json").read_text())
    versions = vault["keys"]["api-signing-key"]
    assert [v["version"] for v in versions] == [2, 3, 4]
    module = load(site, "vault.VaultKeyRotation")
    keys = [module.unseal(v["sealed"], token, "api-signing-key", v["version"]) for v in versions]
    assert [hashlib.sha256(k).hexdigest()[:16] for k in keys] == [
        v["fingerprint"] for v in versions
    ]
    assert len(set(keys)) == 3 and all(len(k) == 32 for k in keys)
    assert vault["tokenSha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert any("rotated api-signing-key to version 4" in line for line in ctx.lines)


def test_vault_key_rotation_refuses_a_wrong_or_missing_token(site: Path) -> None:
    run_task(site, "vault.VaultKeyRotation")
    path = site / "data" / "demo" / "vault" / "vault.json"
    before = path.read_bytes()
    module = load(site, "vault.VaultKeyRotation")
    wrong = context(site, "vault.VaultKeyRotation")
    wrong.env = {"VAULT_TOKEN": "someone-elses-token"}
    with pytest.raises(PermissionError, match="does not open this vault"):
        module.run(wrong)
    missing = context(site, "vault.VaultKeyRotation")
    missing.env = {}
    with pytest.raises(RuntimeError, match="VAULT_TOKEN is not set"):
        module.run(missing)
    assert path.read_bytes() == before


def test_no_script_reveals_the_vault_token(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = context(site, "vault.VaultKeyRotation").env["VAULT_TOKEN"]
    lines: list[str] = []
    for _ in range(2):
        lines += run_task(site, "vault.VaultKeyRotation").lines
        lines += run_task(site, "vault.VaultBackup", FAILURE_RATE=0).lines
    lines += run_task(site, "global.SearchReindex", STEP_SECONDS=0).lines
    lines += run_task(site, "global.DiskUsageReport").lines
    printed = capsys.readouterr()
    assert lines and all(token not in line for line in lines)
    assert token not in printed.out + printed.err
    assert token not in all_files_text(site / "data")


# --- global tasks --------------------------------------------------------------------------


def test_health_check_writes_status_and_trims_history(site: Path) -> None:
    ctx = run_task(site, "global.HealthCheck", MIN_FREE_PERCENT=0)
    folder = site / "data" / "demo" / "health"
    status = json.loads((folder / "status.json").read_text())
    assert status["healthy"] is True
    checks = {c["name"]: c for c in status["checks"]}
    assert checks["writable"]["ok"] and checks["disk"]["ok"]
    assert checks["metrics"] == {
        "name": "metrics",
        "ok": False,
        "critical": False,
        "detail": "no samples yet",
    }
    assert any(line.startswith("warn metrics") for line in ctx.lines)

    run_task(site, "WebHostMetrics.MetricsCollection", SAMPLE_SECONDS=0.01)
    for _ in range(4):
        run_task(site, "global.HealthCheck", MIN_FREE_PERCENT=0, KEEP_HISTORY=3)
    status = json.loads((folder / "status.json").read_text())
    assert all(c["ok"] for c in status["checks"])
    history = (folder / "history.jsonl").read_text().splitlines()
    assert len(history) == 3 and all(json.loads(h)["healthy"] for h in history)


def test_health_check_fails_when_the_disk_is_too_full(site: Path) -> None:
    with pytest.raises(RuntimeError, match=r"unhealthy: disk: .*% free"):
        run_task(site, "global.HealthCheck", MIN_FREE_PERCENT=101)
    status = json.loads((site / "data" / "demo" / "health" / "status.json").read_text())
    assert status["healthy"] is False


def test_search_reindex_indexes_step_by_step_with_progress(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo_dir = site / "data" / "demo"
    (demo_dir / "logs").mkdir(parents=True)
    (demo_dir / "logs" / "access.log").write_text('"GET /apps/vault/api/v1/status" 200\n')
    (demo_dir / "logs" / "access.log.1.gz").write_bytes(gzip.compress(b"zebra crossing\n"))
    (demo_dir / "vault").mkdir()
    (demo_dir / "vault" / "vault.json").write_text('{"entries": {"hidden": "quasar"}}')
    pauses: list[float] = []
    module = load(site, "global.SearchReindex")
    monkeypatch.setattr(module.time, "sleep", pauses.append)

    ctx = context(site, "global.SearchReindex")  # the YAML's 36 steps of 5 s, without waiting
    module.run(ctx)

    assert pauses == [5.0] * 35
    fractions = [f for f, _ in ctx.progress_reports]
    assert fractions == [0.0] + [step / 36 for step in range(1, 37)]
    assert ctx.progress_reports[-1][1].startswith("2/2 files")
    index = json.loads((demo_dir / "search" / "index.json").read_text())
    assert index["files"] == 2
    assert index["postings"]["zebra"] == ["logs/access.log.1.gz"]
    assert index["postings"]["vault"] == ["logs/access.log"]
    assert "quasar" not in index["postings"]  # the vault is never indexed
    assert dict(index["top"])["zebra"] == 1


def test_disk_usage_report_sums_folders_with_their_subfolders(site: Path) -> None:
    data = site / "data"
    (data / "demo" / "a" / "b").mkdir(parents=True)
    (data / "demo" / "a" / "x.bin").write_bytes(b"x" * 1000)
    (data / "demo" / "a" / "b" / "y.bin").write_bytes(b"y" * 500)

    ctx = run_task(site, "global.DiskUsageReport")

    report = json.loads((data / "demo" / "reports" / "disk_usage.json").read_text())
    folders = {f["path"]: (f["bytes"], f["files"]) for f in report["folders"]}
    assert folders["demo/a"] == (1500, 2)
    assert folders["demo/a/b"] == (500, 1)
    assert folders["."] == (1500, 2)
    assert [f["path"] for f in report["folders"]][:2] == [".", "demo"]
    assert len(ctx.lines) == min(10, len(folders)) + 1


def test_log_rotation_script_rotates_and_keeps_the_newest(site: Path) -> None:
    script = script_of(site, "global.LogRotation")
    data = site / "data"
    logs = data / "demo" / "logs"
    _, entry = entries(site)["global.LogRotation"]
    params = {k: str(v) for k, v in entry["parameters"].items()}

    def sh(**overrides: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ["PATH"], "TASKOPS_DATA_DIR": str(data), **params, **overrides}
        done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert all(TIMESTAMP.match(line) for line in done.stdout.splitlines()), done.stdout
        return done

    first = sh()  # the YAML's parameters: 200 lines, far below 64 KiB
    assert len((logs / "access.log").read_text().splitlines()) == 200
    assert "rotated access.log" not in first.stdout and not list(logs.glob("*.gz"))

    # 100 lines are at least 7 KiB: above MAX_KB=4 every run rotates.
    for _ in range(5):
        sh(LINES_PER_RUN="100", MAX_KB="4", KEEP="3")
    assert sorted(p.name for p in logs.iterdir()) == [
        "access.log",
        "access.log.1.gz",
        "access.log.2.gz",
        "access.log.3.gz",
    ]
    assert (logs / "access.log").stat().st_size == 0
    line = re.compile(r'^10\.0\.0\.\d+ - - \[.+\] "GET /\S* HTTP/1\.1" \d{3} \d+$')
    for rotated in logs.glob("*.gz"):
        lines = gzip.decompress(rotated.read_bytes()).decode().splitlines()
        assert len(lines) == 100 and all(line.match(x) for x in lines)

    lowered = sh(KEEP="1")
    assert "deleted access.log.3.gz" in lowered.stdout
    assert sorted(p.name for p in logs.iterdir()) == ["access.log", "access.log.1.gz"]


def test_log_rotation_script_defaults_to_the_sites_data_folder(site: Path) -> None:
    script = script_of(site, "global.LogRotation")
    env = {"PATH": os.environ["PATH"]}
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert len((site / "data" / "demo" / "logs" / "access.log").read_text().splitlines()) == 200


# --- scripts without the runner ------------------------------------------------------------

FAST = {"SAMPLE_SECONDS": "0", "STEPS": "2", "STEP_SECONDS": "0", "FAILURE_RATE": "0"}
# What each script leaves under <data>/demo/ (a glob).
WRITES = {
    "global.HealthCheck": "health/status.json",
    "global.SearchReindex": "search/index.json",
    "global.DiskUsageReport": "reports/disk_usage.json",
    "WebHostMetrics.MetricsCollection": "metrics/metrics_*.csv",
    "WebHostMetrics.MetricsRollup": "metrics/rollup.json",
    "WebHostMetrics.MetricsCsvCleanup": "metrics/metrics_*.csv.gz",
    "vault.VaultBackup": "vault/backups/vault_*.json.sha256",
    "vault.VaultKeyRotation": "vault/vault.json",
}


@pytest.mark.parametrize("task_id", sorted(WRITES))
def test_each_python_script_runs_as_main(site: Path, task_id: str) -> None:
    demo_dir = site / "data" / "demo"
    if task_id == "WebHostMetrics.MetricsCsvCleanup":  # give it a finished file to compress
        now = datetime.now()
        for minutes in (20, 10):
            _write_csv(
                demo_dir
                / "metrics"
                / f"metrics_{now - timedelta(minutes=minutes):%Y%m%d_%H%M}.csv",
                [],
            )
    _, entry = entries(site)[task_id]
    token = "main-token-that-must-not-show"
    env = {
        "PATH": os.environ["PATH"],
        "TASKOPS_SITE": str(site),
        **{k: str(v) for k, v in entry.get("parameters", {}).items()},
        **{k: str(v) for k, v in entry.get("environment", {}).items()},
        **{k: v for k, v in FAST.items() if k in entry.get("parameters", {})},
        "MIN_FREE_PERCENT": "0",
        "VAULT_TOKEN": token,
    }
    done = subprocess.run(
        [sys.executable, str(script_of(site, task_id))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=site.parent,
    )
    assert done.returncode == 0, done.stderr
    output = (done.stdout + done.stderr).splitlines()
    assert output and all(TIMESTAMP.match(line) for line in output), output
    assert token not in done.stdout + done.stderr
    assert list(demo_dir.glob(WRITES[task_id])), f"no {WRITES[task_id]} under <data>/demo"


# --- create_demo_site ----------------------------------------------------------------------


def _tree(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def test_create_demo_site_copies_the_whole_site_once(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    assert create_demo_site(target) is True
    assert _tree(target) == _tree(DEMO_SOURCE)
    assert not (target / "data").exists()

    tasks_file = target / "config" / "tasks.yaml"
    tasks_file.write_text(tasks_file.read_text() + "# my edit\n")
    (target / "apps" / "mine").mkdir()
    assert create_demo_site(target) is False
    assert tasks_file.read_text().endswith("# my edit\n")
    assert (target / "apps" / "mine").is_dir()


def test_create_demo_site_fills_an_empty_folder(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    assert create_demo_site(target) is True
    assert (target / "config" / "tasks.yaml").is_file()


def test_create_demo_site_refuses_a_folder_that_is_not_a_site(tmp_path: Path) -> None:
    target = tmp_path / "projects"
    target.mkdir()
    (target / "thesis.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty and holds no taskops site"):
        create_demo_site(target)
    assert _tree(target) == ["thesis.txt"]

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="it is a file"):
        create_demo_site(a_file)


def test_create_demo_site_makes_shell_scripts_executable_and_skips_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Package data installed without modes: the copy must still get runnable scripts.
    source = tmp_path / "source"
    assert create_demo_site(source) is True
    for script in source.rglob("*.sh"):
        script.chmod(0o644)
    (source / "tasks" / "__pycache__").mkdir()
    (source / "tasks" / "__pycache__" / "health_check.cpython-311.pyc").write_bytes(b"\0")
    monkeypatch.setattr(demo, "DEMO_SOURCE", source)

    target = tmp_path / "target"
    assert create_demo_site(target) is True
    shell = list(target.rglob("*.sh"))
    assert shell and all(stat.S_IMODE(p.stat().st_mode) == 0o755 for p in shell)
    assert not list(target.rglob("__pycache__"))


def test_shipped_shell_scripts_are_executable(site: Path) -> None:
    for script in site.rglob("*.sh"):
        assert os.access(script, os.X_OK), script
        assert script.read_text().startswith("#!/bin/sh\n")
