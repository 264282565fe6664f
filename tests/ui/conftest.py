"""Fixtures of the widget tests: a temporary copy of the demo site, opened as alice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import taskops
from taskops.demo import create_demo_site


@pytest.fixture
def demo_site(tmp_path: Path) -> Path:
    site = tmp_path / "demo"
    create_demo_site(site)
    return site


@pytest.fixture
def demo_ops(demo_site: Path) -> Iterator[taskops.TaskOps]:
    with taskops.open_site(demo_site, user="alice") as ops:
        yield ops
