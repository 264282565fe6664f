"""The code stays as pyproject.toml says: ruff's lint and format, mypy strict on the package
and the benchmarks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def check(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_lint() -> None:
    check("ruff", "check", "--no-cache", ".")


def test_ruff_format() -> None:
    check("ruff", "format", "--check", "--no-cache", ".")


@pytest.mark.slow
def test_mypy_strict() -> None:
    check("mypy", "--no-incremental", "taskops", "bench")
