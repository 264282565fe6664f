"""Throughput of trivial jobs: how many jobs per second go through taskops' engine.

``python -m bench --only throughput [--quick]``. For each kind of job (the executable
``/bin/true``, and a Python task whose ``run(ctx)`` returns at once) and each concurrency
(``maxConcurrentTasks`` 2 and 8), N ad-hoc jobs are queued with ``ops.jobs.start`` while no
engine runs, then ``taskops engine`` starts (its own process) and runs them all; the rate is
N over the time from the first job's start to the last one's end, both from the store.
The floor is the bare ``subprocess.Popen`` loop running ``/bin/true`` and
``python -c pass`` N times with the same concurrency (wall clock, from the first start to the
last exit). Nothing is asserted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import taskops
from bench.harness import Table, engine_process, ratio, site_with_tasks
from bench.stamps import NOOP_PY, child_env, cpu_seconds, popen_loop

__all__ = ["main"]

CONCURRENCY = (2, 8)


def main(quick: bool) -> list[Table]:
    jobs = 60 if quick else 1000
    timeout = 30.0 if quick else 120.0
    table = Table(
        f"Throughput: {jobs} trivial jobs, queued at once (jobs per second)",
        [
            "concurrency",
            "taskops jobs/s",
            "bare loop jobs/s",
            "taskops / bare",
            "engine CPU ms/job",
            "not completed",
        ],
    )
    kinds = (
        ("/bin/true (executable)", ["/bin/true"], "/bin/true", ["/bin/true"]),
        (
            "Python task, run(ctx) returns",
            "tasks/noop.py",
            "python -c pass",
            [sys.executable, "-c", "pass"],
        ),
    )
    with TemporaryDirectory(prefix="bench-throughput-") as tmp:
        root = Path(tmp)
        for concurrency in CONCURRENCY:
            for label, what, floor_label, floor_argv in kinds:
                site = root / f"site-{concurrency}-{len(table.rows)}"
                rate, cpu, failed = taskops_rate(site, what, jobs, concurrency, timeout)
                floor = bare_rate(floor_argv, jobs, concurrency)
                table.add(
                    f"{label} vs bare {floor_label}",
                    **{
                        "concurrency": concurrency,
                        "taskops jobs/s": rate,
                        "bare loop jobs/s": floor,
                        "taskops / bare": ratio(rate, floor),
                        "engine CPU ms/job": cpu,
                        "not completed": failed,
                    },
                )
    table.notes.append(
        "Target: Python-task throughput at least equal to the bare `python -c pass` loop "
        "(taskops / bare >= 1.00x on the Python rows). taskops' rate: jobs over the time from "
        "the first job's startedAt to the last one's endedAt (the store's clock); "
        "maxConcurrentTasks is the concurrency. A Python task goes through taskops' runner "
        "(forked by the engine's fork server, `_runner.py --serve`), which calls run(ctx). "
        "Engine CPU: the engine process's "
        "own CPU from the moment it holds the lease to the last job's end, per job. 'not "
        "completed': jobs that failed or had not ended when the run was given up "
        f"({timeout:g} s)."
    )
    return [table]


def taskops_rate(
    site_dir: Path, what: str | list[str], jobs: int, concurrency: int, timeout: float
) -> tuple[float, float, int]:
    """(jobs per second, engine CPU ms per job, jobs that did not complete within
    ``timeout`` seconds, or failed)."""
    site = site_with_tasks(
        site_dir,
        [],
        scripts={"tasks/noop.py": NOOP_PY},
        settings={"maxConcurrentTasks": concurrency},
    )
    with taskops.open_site(site) as ops:
        ids = {ops.jobs.start(what, name=f"noop-{i}").id for i in range(jobs)}
    with engine_process(site) as engine, taskops.open_site(site) as ops:
        cpu = cpu_seconds(engine)  # its start-up left out
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and ops.jobs.list(state=["Queued", "Running"], limit=1):
            time.sleep(0.1)
        cpu = cpu_seconds(engine) - cpu
    with taskops.open_site(site) as ops:
        done = [job for job in ops.jobs.list(limit=None) if job.id in ids]
    starts = [job.started_at for job in done if job.started_at is not None]
    ends = [job.ended_at for job in done if job.ended_at is not None]
    failed = sum(1 for job in done if job.state.value != "Completed") + jobs - len(done)
    if not starts or not ends:
        return float("nan"), float("nan"), failed
    seconds = (max(ends) - min(starts)).total_seconds()
    return len(ends) / seconds, 1000 * cpu / jobs, failed


def bare_rate(argv: list[str], jobs: int, concurrency: int) -> float:
    env = child_env()
    start, end = popen_loop([(argv, env)] * jobs, concurrency)
    return jobs / (end - start)
