"""HealthCheck: is the data folder writable, is there disk room, are metrics fresh?

Writes ``<data>/demo/health/status.json`` and appends one line per run to
``history.jsonl``, trimmed to the last ``KEEP_HISTORY`` lines. Fails when the data folder
is not writable or has less than ``MIN_FREE_PERCENT`` free; stale metrics are a warning
only (MetricsCollection may simply be disabled).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime
from typing import Any

DEFAULTS = {"MIN_FREE_PERCENT": 5, "MAX_METRICS_AGE_SECONDS": 120, "KEEP_HISTORY": 500}


def run(ctx: Any) -> None:
    params = {**DEFAULTS, **ctx.params}
    folder = ctx.data_dir / "demo" / "health"
    folder.mkdir(parents=True, exist_ok=True)
    checks: list[dict[str, Any]] = []

    probe = folder / f".probe-{os.getpid()}"
    try:
        probe.write_text("ok")
        probe.unlink()
        checks.append({"name": "writable", "ok": True, "critical": True, "detail": str(folder)})
    except OSError as exc:
        checks.append({"name": "writable", "ok": False, "critical": True, "detail": str(exc)})

    usage = shutil.disk_usage(ctx.data_dir)
    free = 100.0 * usage.free / usage.total
    minimum = float(params["MIN_FREE_PERCENT"])
    checks.append(
        {
            "name": "disk",
            "ok": free >= minimum,
            "critical": True,
            "detail": f"{free:.1f}% free ({usage.free / 2**30:.1f} GiB), minimum {minimum:g}%",
        }
    )

    samples = list((ctx.data_dir / "demo" / "metrics").glob("metrics_*.csv"))
    newest = max((p.stat().st_mtime for p in samples), default=None)
    age = None if newest is None else time.time() - newest
    checks.append(
        {
            "name": "metrics",
            "ok": age is not None and age <= float(params["MAX_METRICS_AGE_SECONDS"]),
            "critical": False,
            "detail": "no samples yet" if age is None else f"newest sample {age:.0f} s old",
        }
    )

    failed = [c for c in checks if not c["ok"] and c["critical"]]
    status = {
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "healthy": not failed,
        "checks": checks,
    }
    (folder / "status.json").write_text(json.dumps(status, indent=2))
    history = folder / "history.jsonl"
    lines = history.read_text().splitlines() if history.exists() else []
    lines.append(json.dumps({"time": status["time"], "healthy": status["healthy"]}))
    history.write_text("\n".join(lines[-int(params["KEEP_HISTORY"]) :]) + "\n")

    for check in checks:
        mark = "ok  " if check["ok"] else ("FAIL" if check["critical"] else "warn")
        ctx.logger.info("%s %-8s %s", mark, check["name"], check["detail"])
    if failed:
        raise RuntimeError("unhealthy: " + "; ".join(f"{c['name']}: {c['detail']}" for c in failed))
    ctx.logger.info("healthy")


if __name__ == "__main__":  # without the runner: python tasks/health_check.py
    from taskops.demo import run_standalone

    run_standalone(run, "global.HealthCheck", DEFAULTS, __file__)
