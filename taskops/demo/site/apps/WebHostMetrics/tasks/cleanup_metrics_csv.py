"""MetricsCsvCleanup: compress finished metric CSV files, delete old compressed ones.

In ``<data>/<METRICS_DIR>`` (default ``demo/metrics``): every ``metrics_*.csv`` but the
newest (MetricsCollection still writes to it) becomes ``.csv.gz``; a ``.csv.gz`` whose
time, read from its name, is more than ``RETENTION_HOURS`` old is deleted.
"""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULTS = {"RETENTION_HOURS": 24}


def file_time(path: Path) -> datetime | None:
    """The bucket time in ``metrics_YYYYmmdd_HHMM.csv[.gz]``, or None for other names."""
    stem = path.name.split(".", 1)[0]
    try:
        return datetime.strptime(stem, "metrics_%Y%m%d_%H%M")
    except ValueError:
        return None


def run(ctx: Any) -> None:
    params = {**DEFAULTS, **ctx.params}
    retention = timedelta(hours=float(params["RETENTION_HOURS"]))
    folder = ctx.data_dir / ctx.env.get("METRICS_DIR", "demo/metrics")
    folder.mkdir(parents=True, exist_ok=True)
    ctx.logger.info("cleaning %s (retention %s)", folder, retention)

    finished = sorted(p for p in folder.glob("metrics_*.csv") if file_time(p))[:-1]
    for path in finished:
        packed = path.with_name(path.name + ".gz")
        partial = folder / f".{packed.name}.partial"  # a hidden name no reader globs
        with path.open("rb") as source, gzip.open(partial, "wb") as out:
            shutil.copyfileobj(source, out)
        partial.replace(packed)
        size = path.stat().st_size
        path.unlink()
        ctx.logger.info("compressed %s (%d -> %d bytes)", path.name, size, packed.stat().st_size)

    cutoff = datetime.now() - retention
    deleted = 0
    for packed in sorted(folder.glob("metrics_*.csv.gz")):
        when = file_time(packed)
        if when is not None and when < cutoff:
            packed.unlink()
            deleted += 1
            ctx.logger.info("deleted %s (older than %s)", packed.name, retention)
    ctx.logger.info("done: %d compressed, %d deleted", len(finished), deleted)


if __name__ == "__main__":  # without the runner: python cleanup_metrics_csv.py
    from taskops.demo import run_standalone

    run_standalone(run, "WebHostMetrics.MetricsCsvCleanup", DEFAULTS, __file__)
