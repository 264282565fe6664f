"""MetricsCollection: sample CPU, memory, disk and load into ``<data>/demo/metrics/``.

One CSV file per ``FILE_MINUTES`` bucket (``metrics_YYYYmmdd_HHMM.csv``), one row per run.
MetricsCsvCleanup compresses the finished files; MetricsRollup averages them.
"""

from __future__ import annotations

import csv
import os
from datetime import datetime
from typing import Any

import psutil

DEFAULTS = {"SAMPLE_SECONDS": 1, "FILE_MINUTES": 10}
COLUMNS = ["time", "cpu_percent", "memory_percent", "disk_percent", "load_1m"]


def run(ctx: Any) -> None:
    params = {**DEFAULTS, **ctx.params}
    minutes = max(1, int(params["FILE_MINUTES"]))
    folder = ctx.data_dir / "demo" / "metrics"
    folder.mkdir(parents=True, exist_ok=True)

    now = datetime.now().astimezone()
    row = {
        "time": now.isoformat(timespec="seconds"),
        # Measured over SAMPLE_SECONDS: a fresh process has no earlier reading to compare with.
        "cpu_percent": psutil.cpu_percent(interval=float(params["SAMPLE_SECONDS"])),
        "memory_percent": psutil.virtual_memory().percent,
        "disk_percent": psutil.disk_usage(str(ctx.data_dir)).percent,
        "load_1m": round(os.getloadavg()[0], 2),
    }
    bucket = now.replace(minute=now.minute - now.minute % minutes, second=0, microsecond=0)
    path = folder / f"metrics_{bucket:%Y%m%d_%H%M}.csv"
    new_file = not path.exists()
    with path.open("a", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        writer.writerow(row)
    ctx.logger.info(
        "cpu %.1f%%  memory %.1f%%  disk %.1f%%  load %.2f -> %s%s",
        row["cpu_percent"],
        row["memory_percent"],
        row["disk_percent"],
        row["load_1m"],
        path.name,
        " (new file)" if new_file else "",
    )


if __name__ == "__main__":  # without the runner: python collect_metrics.py
    from taskops.demo import run_standalone

    run_standalone(run, "WebHostMetrics.MetricsCollection", DEFAULTS, __file__)
