"""How soon the engine starts work: Run Now from another process, and scheduled slots.

    python bench/engine_latency.py [--runs 50]

Starts ``taskops engine`` as its own process on a temporary site, then measures, from the
store's own timestamps:

- Run Now: ``ops.tasks.run(id)`` in this process -> the job's start in the engine
  (``startedAt - queuedAt``); the engine must see a job queued by another process within
  half a second (issue 3);
- scheduled lateness: a task firing every second, ``startedAt - scheduledFor``;

and, as the floor, the same store round trip without an engine in between: a job row
inserted and claimed by this process.

Printed as a table of medians and p99s; nothing is asserted (the tests never time things).
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import taskops
from taskops.model import Job, JobState
from taskops.testing import make_site, wait_for


def _finished(ops: taskops.TaskOps, job_id: int) -> Job | None:
    """The job once it has ended, else None."""
    job = ops.jobs.get(job_id)
    return job if job.state.finished else None


def quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = make_site(
            Path(tmp) / "site",
            {
                "global": [
                    {"name": "Now", "schedule": "0 3 * * *", "scriptPath": "tasks/now.sh"},
                    {
                        "name": "Tick",
                        "schedule": "* * * * * *",
                        "scriptPath": "tasks/now.sh",
                        "enabled": False,
                    },
                ]
            },
            timezone="UTC",
            scripts=False,
        )
        script = site / "tasks" / "now.sh"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
        engine = subprocess.Popen(
            [sys.executable, "-m", "taskops.cli", "engine", "--site", str(site)],
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            with taskops.open_site(site, user="bench") as ops:
                wait_for(lambda: ops.engine.status()["running"], what="the engine")
                run_now = []
                for _ in range(args.runs):
                    job = ops.tasks.run("global.Now")
                    done = wait_for(functools.partial(_finished, ops, job.id), what="the run")
                    assert done.started_at is not None
                    run_now.append((done.started_at - done.queued_at).total_seconds())
                ops.tasks.enable("global.Tick")
                wait_for(
                    lambda: len(ops.jobs.list(task="global.Tick", state="Completed")) >= 20,
                    timeout=60,
                    what="20 scheduled runs",
                )
                ops.tasks.disable("global.Tick")
                lateness = [
                    (j.started_at - j.scheduled_for).total_seconds()
                    for j in ops.jobs.list(task="global.Tick", limit=None)
                    if j.started_at and j.scheduled_for
                ]
                floor = []
                for _ in range(args.runs):
                    now = ops.clock.now()
                    job_id = ops.store.insert_job(
                        name="floor", owner="Manual", state=JobState.QUEUED, queued_at=now
                    )
                    begin = time.perf_counter()
                    ops.store.claim_job(job_id, now=ops.clock.now())
                    floor.append(time.perf_counter() - begin)
                    ops.store.finish_job(
                        job_id,
                        state=JobState.COMPLETED,
                        ended_at=ops.clock.now(),
                        exit_code=0,
                        error=None,
                        output_bytes=0,
                    )
        finally:
            os.kill(engine.pid, signal.SIGTERM)
            engine.wait(30)
    rows = [
        ("Run Now, queued -> started", run_now),
        ("every-second slot -> started", lateness),
        ("floor: claim a queued row", floor),
    ]
    print(f"{'measure':34} {'n':>4} {'median ms':>10} {'p99 ms':>8}")
    for label, values in rows:
        median, p99 = quantiles(values)
        print(f"{label:34} {len(values):>4} {median * 1000:>10.1f} {p99 * 1000:>8.1f}")


if __name__ == "__main__":
    main()
