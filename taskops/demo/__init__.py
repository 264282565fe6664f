"""The demo site that ships with taskops, and the function that copies it to a folder.

::

    site/config/tasks.yaml                    global tasks: HealthCheck, LogRotation (.sh),
                                              SearchReindex (long), DiskUsageReport (disabled)
    site/apps/WebHostMetrics/config/tasks.yaml
                                              MetricsCollection, MetricsRollup, MetricsCsvCleanup
    site/apps/vault/config/tasks.yaml         VaultBackup (fails now and then), VaultKeyRotation

Every script does small real work under ``<data>/demo/``. Its ``run(ctx)`` needs nothing
from taskops; ``python <script>`` runs it without the engine through ``run_standalone``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from taskops.engine._runner import context_from_environ

__all__ = ["DEMO_SOURCE", "create_demo_site", "run_standalone"]

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


def run_standalone(
    run: Callable[[Any], None], task_id: str, defaults: Mapping[str, Any], script: str
) -> None:
    """Call a demo script's ``run(ctx)`` without the engine (``python <script>``).

    Each parameter comes from the environment variable of its name, else ``defaults``; the
    site is ``$TASKOPS_SITE``, else the site the script sits in; the data folder is
    ``$TASKOPS_DATA_DIR``, else ``<site>/data``. Log and progress lines are timestamped, as
    in a job: the context is the runner's, built from the environment a job of ``task_id``
    would get, with job id 0 and no job folder. Whatever ``run`` raises propagates.
    """
    params = {name: os.environ.get(name, default) for name, default in defaults.items()}
    environ = {
        **os.environ,
        "TASKOPS_JOB_ID": "0",
        "TASKOPS_TASK_ID": task_id,
        "TASKOPS_APP": task_id.split(".", 1)[0],
        "TASKOPS_PARAMS": json.dumps(params),
    }
    # A run by hand is no job, even when started from inside one: it must not report into
    # that job's folder.
    environ.pop("TASKOPS_JOB_DIR", None)
    run(context_from_environ(environ, script=script))
