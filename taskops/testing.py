"""Fakes for tests and notebooks: real code, shared instead of copied into each test."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ["FakeClock", "RecordingContext", "make_site", "wait_for"]

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], *, timeout: float = 10.0, what: str = "the condition"
) -> T:
    """Poll ``condition`` until it returns something truthy and return that; raise
    ``TimeoutError`` naming ``what`` at the deadline. (Tests wait on conditions, never on
    bare sleeps.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


_SCRIPT = """def run(ctx):\n    ctx.logger.info("hello from %s", ctx.task)\n"""


def make_site(
    root: Path,
    tasks: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    timezone: str | None = None,
    scripts: bool = True,
) -> Path:
    """Write a site with real files: ``tasks`` maps an app (``global`` or an app name) to
    its YAML task entries. With ``scripts``, a small Python script is written at each
    task's script path that does not exist yet. Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for app, entries in tasks.items():
        app_dir = root if app == "global" else root / "apps" / app
        document: dict[str, Any] = {"tasks": [dict(e) for e in entries]}
        if app == "global" and timezone:
            document["timezone"] = timezone
        (app_dir / "config").mkdir(parents=True, exist_ok=True)
        (app_dir / "config" / "tasks.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        for entry in entries:
            path = entry.get("scriptPath")
            if scripts and isinstance(path, str) and not Path(path).is_absolute():
                script = (app_dir / path).resolve()
                if script.is_relative_to(root.resolve()) and not script.exists():
                    script.parent.mkdir(parents=True, exist_ok=True)
                    script.write_text(_SCRIPT)
    if "global" not in tasks and timezone:
        (root / "config").mkdir(parents=True, exist_ok=True)
        (root / "config" / "tasks.yaml").write_text(yaml.safe_dump({"timezone": timezone}))
    return root


class FakeClock:
    """A clock that moves only when told. ``now()`` is timezone-aware (UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 16, 14, 5, 30, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, **kwargs: float) -> datetime:
        """Move forward by ``seconds`` (and/or ``minutes=``, ``hours=``...); returns the new now."""
        with self._lock:
            self._now += timedelta(seconds=seconds, **kwargs)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.astimezone(UTC)


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class RecordingContext:
    """A task context (``run(ctx)``) that records what the task logs and reports.

    It has the attributes a real job's context has: ``task``, ``app``, ``job_id``,
    ``params``, ``env``, ``logger``, ``progress(fraction, message)``, ``site_dir`` and
    ``data_dir``.
    """

    site_dir: Path
    data_dir: Path
    task: str = "global.Test"
    app: str = "global"
    job_id: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    progress_reports: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.logger = logging.getLogger(f"taskops.testing.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(_ListHandler(self.lines))

    def progress(self, fraction: float, message: str = "") -> None:
        self.progress_reports.append((fraction, message))
