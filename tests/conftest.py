"""Fixtures that build a temporary site with real files and a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import taskops
from taskops.testing import FakeClock, make_site

STANDARD_TASKS: dict[str, list[dict[str, Any]]] = {
    "global": [
        {
            "name": "Cleanup",
            "description": "Clean up old data",
            "schedule": "0 3 * * *",
            "scriptPath": "tasks/cleanup.py",
            "parameters": {"RETENTION_DAYS": 30},
            "environment": {"DATA_PATH": "data", "API_TOKEN": "s3cr3t-value"},
        },
        {
            "name": "Heartbeat",
            "description": "Say the site is alive",
            "schedule": "*/15 * * * *",
            "scriptPath": "tasks/heartbeat.py",
            "enabled": False,
        },
    ],
    "WebHostMetrics": [
        {
            "name": "MetricsCollection",
            "description": "Collect server metrics",
            "schedule": "* * * * * */15",
            "scriptPath": "tasks/collect.py",
        },
        {
            "name": "MetricsCsvCleanup",
            "description": "Rotate metric CSV files",
            "schedule": "0 2 * * *",
            "timezone": "Europe/Berlin",
            "scriptPath": "tasks/csv_cleanup.py",
        },
    ],
    "vault": [
        {
            "name": "VaultBackup",
            "description": "Back up the vault",
            "schedule": "30 1 * * *",
            "scriptPath": "tasks/backup.py",
            "termination": {"maxRuntime": 60, "maxFailures": 2},
        },
    ],
}

START = datetime(2026, 1, 16, 14, 5, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", STANDARD_TASKS, timezone="UTC")


@pytest.fixture
def ops(site_dir: Path, clock: FakeClock) -> Iterator[taskops.TaskOps]:
    with taskops.open_site(site_dir, user="alice", clock=clock) as opened:
        yield opened
