"""DiskUsageReport: the size of each folder of the data folder, largest first.

Writes ``<data>/demo/reports/disk_usage.json`` and logs the ``TOP`` largest folders.
Disabled in the demo site: enable it to try.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULTS = {"TOP": 10}


def run(ctx: Any) -> None:
    params = {**DEFAULTS, **ctx.params}
    root = Path(ctx.data_dir)
    totals: dict[str, dict[str, int]] = {}
    for folder, _dirs, files in os.walk(root):
        size = count = 0
        for name in files:
            try:
                size += (Path(folder) / name).stat().st_size
                count += 1
            except FileNotFoundError:  # another task deleted it meanwhile
                continue
        rel = Path(folder).relative_to(root)
        for owner in [rel, *rel.parents]:  # a folder's total includes its subfolders
            total = totals.setdefault(owner.as_posix(), {"bytes": 0, "files": 0})
            total["bytes"] += size
            total["files"] += count
    ranked = sorted(totals.items(), key=lambda item: item[1]["bytes"], reverse=True)
    report = {
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "root": str(root),
        "folders": [{"path": path, **total} for path, total in ranked],
    }
    out = root / "demo" / "reports" / "disk_usage.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for path, total in ranked[: int(params["TOP"])]:
        ctx.logger.info("%10.1f KiB %6d files  %s", total["bytes"] / 1024, total["files"], path)
    ctx.logger.info("report written to %s", out.relative_to(root))


if __name__ == "__main__":  # without the runner: python tasks/disk_usage_report.py
    from taskops.demo import run_standalone

    run_standalone(run, "global.DiskUsageReport", DEFAULTS, __file__)
