"""MetricsRollup: average the samples of the last ``WINDOW_MINUTES`` into ``rollup.json``.

Reads every ``metrics_*.csv`` and ``metrics_*.csv.gz`` of ``<data>/demo/metrics/`` and
writes ``<data>/demo/metrics/rollup.json`` with, per metric, its average, minimum, maximum
and last value.
"""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULTS = {"WINDOW_MINUTES": 60}
METRICS = ["cpu_percent", "memory_percent", "disk_percent", "load_1m"]


def read_rows(folder: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    names = {p.name.removesuffix(".gz") for p in folder.glob("metrics_*.csv*")}
    for name in sorted(n for n in names if n.endswith(".csv")):
        path = folder / name
        try:
            with path.open(newline="") as source:
                rows.extend(csv.DictReader(source))
        except FileNotFoundError:  # compressed meanwhile (or only ever seen compressed)
            with gzip.open(path.with_name(name + ".gz"), "rt", newline="") as source:
                rows.extend(csv.DictReader(source))
    return rows


def run(ctx: Any) -> None:
    params = {**DEFAULTS, **ctx.params}
    window = int(params["WINDOW_MINUTES"])
    folder = ctx.data_dir / "demo" / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now().astimezone()
    since = now - timedelta(minutes=window)

    recent = [r for r in read_rows(folder) if datetime.fromisoformat(r["time"]) >= since]
    recent.sort(key=lambda r: datetime.fromisoformat(r["time"]))
    summary: dict[str, Any] = {}
    for name in METRICS:
        values = [float(r[name]) for r in recent if r.get(name)]
        if values:
            summary[name] = {
                "avg": round(sum(values) / len(values), 2),
                "min": min(values),
                "max": max(values),
                "last": values[-1],
            }
    rollup = {
        "generatedAt": now.isoformat(timespec="seconds"),
        "windowMinutes": window,
        "samples": len(recent),
        "first": recent[0]["time"] if recent else None,
        "last": recent[-1]["time"] if recent else None,
        "metrics": summary,
    }
    target = folder / "rollup.json"
    partial = target.with_suffix(".json.tmp")
    partial.write_text(json.dumps(rollup, indent=2))
    partial.replace(target)  # readers never see half a file
    if not recent:
        ctx.logger.info("no samples in the last %d minutes yet; wrote an empty rollup", window)
        return
    ctx.logger.info("rolled up %d samples of the last %d minutes", len(recent), window)
    for name, stats in summary.items():
        ctx.logger.info(
            "  %-15s avg %7.2f  min %7.2f  max %7.2f",
            name,
            stats["avg"],
            stats["min"],
            stats["max"],
        )


if __name__ == "__main__":  # without the runner: python rollup_metrics.py
    from taskops.demo import run_standalone

    run_standalone(run, "WebHostMetrics.MetricsRollup", DEFAULTS, __file__)
