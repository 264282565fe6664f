"""What every benchmark shares: statistics, the printed table, temporary sites and engines.

Each benchmark module under ``bench/`` has ``main(quick: bool) -> list[Table]`` and runs
taskops and its peers in the same run; ``python -m bench`` runs them all (see
``bench/__main__.py``). Nothing here asserts: benchmarks report, tests never time things.
"""

from __future__ import annotations

import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

import taskops
from taskops.testing import make_site, wait_for

__all__ = [
    "Row",
    "Table",
    "engine_process",
    "machine",
    "p50",
    "p99",
    "ratio",
    "site_with_tasks",
]


def p50(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def p99(values: Sequence[float]) -> float:
    """The 99th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))])


def ratio(value: float, reference: float) -> str:
    """``1.23x`` of ``value`` to ``reference``; ``-`` when either is missing."""
    if not reference or reference != reference or value != value:
        return "-"
    return f"{value / reference:.2f}x"


@dataclass
class Row:
    """One line of a table: who was measured and the figures (already formatted)."""

    subject: str
    figures: dict[str, str]


@dataclass
class Table:
    """A benchmark's result: a title, the columns, the rows, and the target line(s)."""

    title: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, subject: str, **figures: Any) -> None:
        self.rows.append(Row(subject, {k: _text(v) for k, v in figures.items()}))

    def markdown(self) -> str:
        head = ["", *self.columns]
        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "|".join("---" for _ in head) + "|",
        ]
        for row in self.rows:
            cells = [row.subject, *(row.figures.get(c, "") for c in self.columns)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.extend(f"\n{note}" for note in self.notes)
        return "\n".join(lines) + "\n"


def _text(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def machine() -> str:
    """One line about the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )


def site_with_tasks(
    root: Path,
    tasks: Sequence[dict[str, Any]],
    *,
    scripts: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
) -> Path:
    """A site whose global app holds ``tasks``; ``scripts`` maps a path in the site to its
    text (``.sh`` files are made executable); ``settings`` become the overrides file."""
    site = make_site(root, {"global": list(tasks)}, timezone="UTC", scripts=False)
    for relative, text in (scripts or {}).items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if path.suffix == ".sh":
            path.chmod(0o755)
    if settings:
        with taskops.open_site(site) as ops:
            ops.settings.update(settings)
    return site


@contextmanager
def engine_process(site: Path, *, timeout: float = 60.0) -> Iterator[psutil.Process]:
    """``taskops engine --site SITE`` as its own process, until the block ends (SIGTERM)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "taskops.cli", "engine", "--site", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with taskops.open_site(site) as ops:
            wait_for(lambda: ops.engine.status()["running"], timeout=timeout, what="the engine")
        yield psutil.Process(process.pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def timed(action: Callable[[], Any]) -> float:
    """Seconds ``action`` took (monotonic clock)."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start
