"""The demo site that ships with taskops, and the function that copies it to a folder.

::

    site/config/tasks.yaml                    global tasks: HealthCheck, LogRotation (.sh),
                                              SearchReindex (long), DiskUsageReport (disabled)
    site/apps/WebHostMetrics/config/tasks.yaml
                                              MetricsCollection, MetricsRollup, MetricsCsvCleanup
    site/apps/vault/config/tasks.yaml         VaultBackup (fails now and then), VaultKeyRotation

Every script does small real work under ``<data>/demo/``. The package imports nothing from
the rest of taskops: the scripts must run in a bare worker process too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["DEMO_SOURCE", "create_demo_site"]

DEMO_SOURCE: Path = Path(__file__).resolve().parent / "site"
"""The demo site as shipped in the package (never run in place: copy it first)."""

_MARKER = Path("config") / "tasks.yaml"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def create_demo_site(target: Path) -> bool:
    """Copy the demo site to ``target`` unless a site is there already.

    Returns True when it created the site (``target`` missing or an empty folder), False
    when ``target`` already holds a site (it has ``config/tasks.yaml``); that site is left
    untouched, user edits included. Shell scripts are made executable after copying, since
    installed package data may have lost the bit.

    Raises FileExistsError when ``target`` is a file, or a non-empty folder that is not a
    site: the demo never mixes its files into someone else's folder.
    """
    target = Path(target).expanduser()
    if (target / _MARKER).is_file():
        return False
    if target.exists():
        if not target.is_dir():
            raise FileExistsError(f"cannot create the demo site at {target}: it is a file")
        if any(target.iterdir()):
            raise FileExistsError(
                f"cannot create the demo site in {target}: the folder is not empty and holds "
                f"no taskops site (no {_MARKER.as_posix()}); choose a new or empty folder"
            )
    shutil.copytree(DEMO_SOURCE, target, ignore=_IGNORE, dirs_exist_ok=True)
    for script in target.rglob("*.sh"):
        script.chmod(0o755)
    return True
