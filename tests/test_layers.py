"""Layers point one way (DESIGN.md §2): checked on the imports of each module."""

from __future__ import annotations

import ast
from pathlib import Path

import taskops

PACKAGE = Path(taskops.__file__).parent

# module (or package) -> the taskops modules it may import
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "model": set(),
    "clock": set(),
    "cron": {"errors"},
    "spec": {"errors", "model", "cron"},
    "settings": {"errors"},
    "audit": {"model"},
    "site": {"errors", "model", "cron", "spec"},
    "store": {"errors", "model", "store"},
    "inspect": {"errors", "model", "clock", "store"},
    "engine": {"errors", "model", "clock", "cron", "settings", "site", "store", "inspect"},
    "demo": {"engine"},
    "testing": set(),
    "service": {
        "errors",
        "model",
        "clock",
        "cron",
        "spec",
        "settings",
        "audit",
        "site",
        "store",
        "engine",
        "inspect",
        "analytics",
    },
    # pure functions beside the service: history (model objects) -> frames and figures
    "analytics": {"errors", "model", "cron"},
    "server": {"errors", "model", "service"},
    "cli": {"errors", "model", "service", "demo", "server"},
    "ui": {"errors", "model", "service", "analytics"},
}
# Libraries that stay below the service: the UI, the handlers and the CLI never touch them.
LOW_LEVEL = {"sqlalchemy", "psutil", "yaml", "croniter", "cron_descriptor"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def test_layers_point_one_way() -> None:
    bad = []
    for path in PACKAGE.rglob("*.py"):
        layer = layer_of(path)
        if layer == "__init__":
            continue
        assert layer in ALLOWED, f"{path} is in no layer; add it to ALLOWED"
        for name in imports_of(path):
            if name.startswith("taskops.") or name == "taskops":
                target = name.split(".")[1] if "." in name else "taskops"
                if target != layer and target not in ALLOWED[layer]:
                    bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert bad == []


def test_upper_layers_use_no_low_level_library() -> None:
    for path in [
        PACKAGE / "cli.py",
        *(PACKAGE / "service").glob("*.py"),
        *(PACKAGE / "server").glob("*.py"),
        *(PACKAGE / "ui").glob("*.py"),
    ]:
        used = {name.split(".")[0] for name in imports_of(path)} & LOW_LEVEL
        assert used == set(), f"{path.name} imports {used}"
