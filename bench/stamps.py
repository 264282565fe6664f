"""What ``bench/lateness.py`` and ``bench/throughput.py`` share: stamp tasks, the bare
``subprocess.Popen`` loop (the floor), and the peers (APScheduler, huey) set up the same way.

A *stamp* is a task whose first action records the wall-clock time and appends one line
``<seconds since the epoch> <tag>`` to the file ``$STAMP_FILE`` (one file per task): the tag
is ``$TASKOPS_JOB_ID`` under taskops (the store then says which slot the job was for), else
``$STAMP_SLOT`` (the slot, set by a peer's job function), else ``-``. The Python stamp
records ``time.time()`` on the first line of its ``run(ctx)`` (run through taskops' runner,
or directly as ``python stamp.py`` by the peers); the executable one (``bench/stamp.c``)
records ``clock_gettime(CLOCK_REALTIME)`` as the first thing ``main`` does.

Everything started here is stopped by the caller's ``with`` block or ``finally``, also on
errors: the Popen loop kills what it started, ``aps_scheduler`` shuts its scheduler down,
``huey_consumer`` ends the consumer's whole process group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pickle
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "PY_STAMP",
    "ApsRun",
    "build_stamp",
    "child_env",
    "cpu_seconds",
    "huey_consumer",
    "popen_loop",
    "read_stamps",
    "run_stamp",
    "sleep_until",
]

STAMP_SOURCE = Path(__file__).resolve().with_name("stamp.c")

PY_STAMP = '''\
"""A Python task of bench/lateness.py: the first line of run(ctx) records the time."""

import os
import time


def run(ctx=None):
    stamped = time.time()
    tag = os.environ.get("TASKOPS_JOB_ID") or os.environ.get("STAMP_SLOT") or "-"
    fd = os.open(os.environ["STAMP_FILE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{stamped!r} {tag}\\n".encode())
    finally:
        os.close(fd)


if __name__ == "__main__":
    run()
'''
"""The Python stamp: ``run(ctx)`` under taskops, ``python stamp.py`` under the peers."""

NOOP_PY = "def run(ctx):\n    return None\n"
"""A Python task that returns at once (throughput)."""


def build_stamp(folder: Path) -> Path:
    """Compile ``bench/stamp.c`` with gcc into ``folder``; returns the executable."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "stamp"
    subprocess.run(
        ["gcc", "-O2", "-o", str(target), str(STAMP_SOURCE)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    return target


def read_stamps(path: Path) -> list[tuple[float, str]]:
    """``(time, tag)`` of each line of a stamp file, in the order written; [] when missing."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        stamp, _, tag = line.partition(" ")
        with contextlib.suppress(ValueError):
            out.append((float(stamp), tag.strip()))
    return out


def child_env(stamp_file: str | Path | None = None, slot: float | None = None) -> dict[str, str]:
    """This process's environment without any ``TASKOPS_*`` variable, plus the stamp's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKOPS_")}
    if stamp_file is not None:
        env["STAMP_FILE"] = str(stamp_file)
    if slot is not None:
        env["STAMP_SLOT"] = repr(float(slot))
    return env


def run_stamp(argv: Sequence[str], stamp_file: str, slot: float | None = None) -> int:
    """What a peer's job does: run the stamp as a subprocess and wait for it."""
    done = subprocess.run(
        list(argv),
        env=child_env(stamp_file, slot),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=120,
    )
    return done.returncode


def aps_job(argv: list[str], stamp_file: str) -> None:
    """APScheduler's job function (its SQLite store keeps it as ``bench.stamps:aps_job``)."""
    run_stamp(argv, stamp_file)


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of the process itself (not of its children)."""
    times = process.cpu_times()
    return float(times.user + times.system)


def sleep_until(moment: float) -> None:
    """Sleep until the wall-clock time ``moment`` (seconds since the epoch)."""
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))


# -- the floor: a bare loop of subprocess.Popen ---------------------------------------------


def popen_loop(
    commands: Sequence[tuple[Sequence[str], Mapping[str, str]]], concurrency: int
) -> tuple[float, float]:
    """Start each ``(argv, env)``, at most ``concurrency`` at once (the next starts as soon
    as one ends, seen through a pidfd); returns the wall-clock ``(start, end)``. Whatever is
    still running when this fails is killed."""
    selector = selectors.DefaultSelector()
    running: dict[int, tuple[subprocess.Popen[bytes], int]] = {}

    def reap_one() -> None:
        for key, _ in selector.select():
            popen, pidfd = running.pop(key.data)
            selector.unregister(pidfd)
            os.close(pidfd)
            popen.wait()

    start = time.time()
    try:
        for argv, env in commands:
            while len(running) >= concurrency:
                reap_one()
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            pidfd = os.pidfd_open(popen.pid)
            running[popen.pid] = (popen, pidfd)
            selector.register(pidfd, selectors.EVENT_READ, popen.pid)
        while running:
            reap_one()
        return start, time.time()
    finally:
        for popen, pidfd in running.values():
            with contextlib.suppress(OSError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
            os.close(pidfd)
        selector.close()


# -- APScheduler 3: BackgroundScheduler, SQLAlchemyJobStore on SQLite, a thread pool --------


@dataclass
class ApsRun:
    """A BackgroundScheduler on an SQLite job store and what its listener saw: per job, the
    scheduled times of the runs that called the job function (``executed``) and of the runs
    it dropped as misfires (``missed``), and how many were skipped at max_instances."""

    scheduler: Any
    executed: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    missed: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    skipped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def listen(self, event: Any) -> None:
        from apscheduler import events

        with self._lock:
            if event.code in (events.EVENT_JOB_EXECUTED, events.EVENT_JOB_ERROR):
                self.executed[event.job_id].append(event.scheduled_run_time.timestamp())
            elif event.code == events.EVENT_JOB_MISSED:
                self.missed[event.job_id].append(event.scheduled_run_time.timestamp())
            elif event.code == events.EVENT_JOB_MAX_INSTANCES:
                self.skipped += len(event.scheduled_run_times)

    def missed_count(self) -> int:
        with self._lock:
            return sum(len(times) for times in self.missed.values())


@contextlib.contextmanager
def aps_scheduler(db: Path, workers: int, jobs: Sequence[Mapping[str, Any]]) -> Iterator[ApsRun]:
    """A started but paused BackgroundScheduler whose SQLite store holds ``jobs``
    (``add_job`` keyword arguments); ``resume()`` it to begin. Shut down (waiting for
    running jobs) when the block ends.

    The store is filled in one transaction with exactly the rows ``add_job`` would write
    (one commit per job would take about 1.3 ms each here, 13 s for 10,000 jobs): the jobs
    are added to a paused scheduler on a memory store first, which computes their next run
    times, then their pickled states are inserted."""
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    # its "run time of job ... was missed" warnings are counted by the listener instead
    quiet = logging.getLogger("apscheduler")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        staging = BackgroundScheduler(jobstores={"default": MemoryJobStore()}, timezone=UTC)
        staging.start(paused=True)
        try:
            for spec in jobs:
                staging.add_job(**spec)
            staged = staging.get_jobs()
        finally:
            staging.shutdown(wait=False)
        yield from _run_aps(db, workers, staged)
    finally:
        quiet.setLevel(level)


def _run_aps(db: Path, workers: int, staged: list[Any]) -> Iterator[ApsRun]:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.util import datetime_to_utc_timestamp

    store = SQLAlchemyJobStore(url=f"sqlite:///{db}")
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        timezone=UTC,
    )
    run = ApsRun(scheduler)
    scheduler.add_listener(run.listen)
    scheduler.start(paused=True)
    try:
        rows = [
            {
                "id": job.id,
                "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
                "job_state": pickle.dumps(job.__getstate__(), store.pickle_protocol),
            }
            for job in staged
        ]
        if rows:
            with store.engine.begin() as connection:
                connection.execute(store.jobs_t.insert(), rows)
        yield run
    finally:
        scheduler.shutdown(wait=True)


# -- huey: SqliteHuey, periodic tasks, the huey_consumer process ------------------------------

_HUEY_MODULE = '''\
"""Periodic huey tasks of bench/lateness.py: each starts the stamp for its minute."""

import json
import os
import time

from huey import SqliteHuey, crontab

from bench.stamps import run_stamp

huey = SqliteHuey("bench", filename=os.environ["BENCH_HUEY_DB"])
ARGV = json.loads(os.environ["BENCH_HUEY_ARGV"])
FOLDER = os.environ["BENCH_HUEY_STAMPS"]


def _periodic(name):
    def tick():
        run_stamp(ARGV, os.path.join(FOLDER, name), slot=time.time() // 60 * 60)

    tick.__name__ = name
    return huey.periodic_task(crontab(), name=name)(tick)


TASKS = [_periodic(f"tick{i}") for i in range(int(os.environ["BENCH_HUEY_TASKS"]))]
'''


@contextlib.contextmanager
def huey_consumer(
    folder: Path, *, argv: Sequence[str], stamps: Path, tasks: int, workers: int
) -> Iterator[psutil.Process]:
    """``huey_consumer`` (thread workers) in its own process group, serving ``tasks``
    every-minute periodic tasks on a SqliteHuey in ``folder`` that each run ``argv`` as a
    stamp; the whole group is ended when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_huey_tasks.py").write_text(_HUEY_MODULE)
    repo = Path(__file__).resolve().parent.parent
    env = child_env()
    env.update(
        PYTHONPATH=os.pathsep.join([str(folder), str(repo)]),
        BENCH_HUEY_DB=str(folder / "huey.db"),
        BENCH_HUEY_ARGV=json.dumps([str(part) for part in argv]),
        BENCH_HUEY_STAMPS=str(stamps),
        BENCH_HUEY_TASKS=str(tasks),
    )
    with (folder / "consumer.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "huey.bin.huey_consumer",
                "bench_huey_tasks.huey",
                "--workers",
                str(workers),
                "--worker-type",
                "thread",
            ],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield psutil.Process(process.pid)
    finally:
        end_group(process)


def end_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM to the process's group, wait, SIGKILL to the group; reaped."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group


def floor_to(moment: float, step: float) -> float:
    return math.floor(moment / step) * step


def utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)
