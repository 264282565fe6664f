"""A job writing 100 MB of output: the engine's memory while it runs, and the job's speed.

``taskops engine --site`` runs as its own process (``bench.harness.engine_process``); this
process queues ad-hoc jobs with ``ops.jobs.start(script)`` and waits for each to end. Three
writers put 100 MB of text lines on stdout:

- a Python script without ``run(ctx)`` calling ``print()`` per line (run as ``__main__``
  by the engine's runner), as a task would;
- a Python script writing 64 KiB chunks to ``sys.stdout.buffer`` (the raw output path);
- a shell script (``yes ... | head -c``), executed directly;

and an empty Python script shows the fixed cost of a job (start, reap, record), which
weighs on the shorter writers.

Each run of a writer is three runs:

- the job with a thread sampling the engine process's RSS every 10 ms; the growth is the
  peak minus the RSS just before the job was queued;
- the job again, unwatched, for its duration (the store's ``startedAt`` -> ``endedAt``):
  this process waits on the job's process (a pidfd) and reads the store only before the
  job has a process and after it exited. A sampler and a 20 ms poll cost ~30 ms of CPU
  over a 0.1 s job that keeps both cores busy, which the writer alone does not pay;
- the same writer alone, by ``subprocess.run`` with stdout going to a file, timed from
  start to exit.

Medians are reported. ``PYTHONUNBUFFERED`` is removed from the environment of the engine
and of the writers alone: with it, a Python writer alone makes a write(2) per ``print()``.
Targets: engine memory growth at most 20 MB for 100 MB of output; slowdown at most 10%
(the job's duration at most 1.1x the writer's alone).
"""

from __future__ import annotations

import functools
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

import taskops
from bench.harness import Table, engine_process, p50, ratio, site_with_tasks
from taskops.model import Job
from taskops.service import TaskOps
from taskops.testing import wait_for

SIZE = 100 * 10**6
TARGET_GROWTH_MB = 20.0
TARGET_SLOWDOWN = 1.10

LINE = "00000000 taskops output benchmark: a line of text as a task might print it"

PRINT_WRITER = f"""line = "{LINE}"
for _ in range({SIZE} // (len(line) + 1)):
    print(line)
"""

CHUNK_WRITER = f"""import sys

chunk = (b"{LINE}\\n" * 1000)[:65536]
out = sys.stdout.buffer
written = 0
while written < {SIZE}:
    piece = chunk[: {SIZE} - written]
    out.write(piece)
    written += len(piece)
out.flush()
"""

SHELL_WRITER = f"""#!/bin/sh
yes "{LINE}" | head -c {SIZE}
"""

WRITERS = {
    "Python, print() per line": ("tasks/print_lines.py", PRINT_WRITER),
    "Python, 64 KiB writes": ("tasks/write_chunks.py", CHUNK_WRITER),
    "shell, yes piped to head -c": ("tasks/yes_head.sh", SHELL_WRITER),
    "fixed cost: Python, no output": ("tasks/nothing.py", "pass\n"),
    "fixed cost: shell, no output": ("tasks/nothing.sh", "#!/bin/sh\nexit 0\n"),
}
"""Label -> (script path in the site, its text)."""


@contextmanager
def rss_peak(process: psutil.Process, interval: float = 0.01) -> Iterator[list[float]]:
    """Sample ``process``'s RSS every ``interval`` s while the block runs; the list holds
    [RSS before, peak] in bytes when the block ends."""
    result = [float(process.memory_info().rss)] * 2
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            result[1] = max(result[1], float(process.memory_info().rss))
            done.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        result[1] = max(result[1], float(process.memory_info().rss))


def finished(ops: TaskOps, job_id: int) -> Job | None:
    job = ops.jobs.get(job_id)
    return job if job.state.finished else None


def wait_unwatched(ops: TaskOps, job_id: int, timeout: float = 300.0) -> Job:
    """The job once its end is recorded, read without competing with it for the CPU:
    the store is polled until the job has a process, then the wait blocks on that
    process's pidfd until it exits, then the store is polled for the recorded end."""
    deadline = time.monotonic() + timeout

    def started() -> Job | None:
        job = ops.jobs.get(job_id)
        return job if job.pid is not None or job.state.finished else None

    job = wait_for(started, timeout=timeout, what="the writer job's process")
    if job.pid is not None and not job.state.finished:
        try:
            handle = os.pidfd_open(job.pid)
        except ProcessLookupError:  # it has ended already
            pass
        else:
            try:
                select.select([handle], [], [], max(0.0, deadline - time.monotonic()))
            finally:
                os.close(handle)
    return wait_for(
        lambda: finished(ops, job_id),
        timeout=max(1.0, deadline - time.monotonic()),
        what="the writer job's end",
    )


def main(quick: bool) -> list[Table]:
    runs = 3 if quick else 7
    # Python's default buffering, in the engine's jobs and alone (the engine's environment
    # is this process's)
    os.environ.pop("PYTHONUNBUFFERED", None)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-output-") as tmp:
        root = Path(tmp)
        site = site_with_tasks(root / "site", [], scripts=dict(WRITERS.values()))
        alone_out = root / "alone.out"
        with engine_process(site) as engine, taskops.open_site(site, user="bench") as ops:
            for label, (script, _) in WRITERS.items():
                figures = results.setdefault(
                    label, {"job": [], "alone": [], "growth": [], "bytes": [], "seen": []}
                )
                argv = (
                    [sys.executable, str(site / script)]
                    if script.endswith(".py")
                    else [str(site / script)]
                )
                for _ in range(runs):
                    # the job, through the engine, its memory sampled
                    with rss_peak(engine) as rss:
                        job = ops.jobs.start(script, name=f"writer {label}")
                        wait_for(
                            functools.partial(finished, ops, job.id),
                            timeout=300,
                            what="the writer job",
                        )
                    figures["growth"].append(rss[1] - rss[0])
                    shutil.rmtree(ops.site.jobs_dir / str(job.id), ignore_errors=True)
                    # the job again, unwatched, for its duration
                    begin = time.perf_counter()
                    job = ops.jobs.start(script, name=f"writer {label}")
                    done = wait_unwatched(ops, job.id)
                    figures["seen"].append(time.perf_counter() - begin)
                    if done.state.value != "Completed" or not done.started_at or not done.ended_at:
                        raise RuntimeError(f"the writer job ended {done.state.value}: {done.error}")
                    figures["job"].append((done.ended_at - done.started_at).total_seconds())
                    job_dir = ops.site.jobs_dir / str(done.id)
                    stdout = job_dir / "stdout.log"
                    figures["bytes"].append(float(stdout.stat().st_size if stdout.exists() else 0))
                    shutil.rmtree(job_dir, ignore_errors=True)
                    # the same writer alone, stdout to a file
                    with alone_out.open("wb") as handle:
                        begin = time.perf_counter()
                        subprocess.run(argv, stdout=handle, check=True, cwd=site)
                        figures["alone"].append(time.perf_counter() - begin)
                    alone_out.unlink()

    table = Table(
        title="A job writing 100 MB to stdout: engine memory and the job's duration",
        columns=[
            "runs",
            "MB written",
            "engine RSS growth MB (median / max)",
            "job s",
            "alone s",
            "job vs alone",
            "less fixed cost",
            "queued -> end seen s",
        ],
        notes=[
            f"Targets: engine RSS growth at most {TARGET_GROWTH_MB:g} MB for 100 MB of "
            f"output; the job at most {TARGET_SLOWDOWN:.2f}x the writer alone. Medians of "
            f"{runs} runs; each run: the job with the engine's RSS sampled every 10 ms, the "
            "job unwatched, the writer alone. 'job s': startedAt -> endedAt in the store, of "
            "the unwatched job (a Python job is forked from the engine's runner, so it pays "
            "no interpreter start-up; alone it does). 'queued -> end seen': from "
            "ops.jobs.start to this process reading the job's end (it waits on the job's "
            "process, then polls the store every 20 ms). 'less "
            "fixed cost': (job - empty job) / (alone - empty script alone), the output path "
            "alone (a shell writer against the empty shell script, a Python one against the "
            "empty Python script). A Python task's stdout is block-buffered, as alone, and "
            "flushed every 0.2 s by a thread of the runner (so a follower sees lines as "
            "they come). PYTHONUNBUFFERED is unset for the engine and the writers alone.",
        ],
    )
    fixed_costs = {
        suffix: results[f"fixed cost: {kind}, no output"]
        for suffix, kind in ((".py", "Python"), (".sh", "shell"))
    }
    for label, figures in results.items():
        fixed = fixed_costs[Path(WRITERS[label][0]).suffix]
        fixed_job, fixed_alone = p50(fixed["job"]), p50(fixed["alone"])
        job_s, alone_s = p50(figures["job"]), p50(figures["alone"])
        table.add(
            label,
            runs=len(figures["job"]),
            **{
                "MB written": p50(figures["bytes"]) / 1e6,
                "engine RSS growth MB (median / max)": (
                    f"{p50(figures['growth']) / 1e6:.2f} / {max(figures['growth']) / 1e6:.2f}"
                ),
                "job s": job_s,
                "alone s": alone_s,
                "job vs alone": ratio(job_s, alone_s),
                "less fixed cost": (
                    ratio(job_s - fixed_job, alone_s - fixed_alone) if figures is not fixed else "-"
                ),
                "queued -> end seen s": p50(figures["seen"]),
            },
        )
    return [table]
