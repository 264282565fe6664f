"""Scheduler CPU while idle, holding 10,000 cron tasks that cannot fire during the run.

Three processes hold the same 10,000 enabled 5-field cron schedules in UTC (daily, weekly,
monthly, yearly and a few hours-of-day lists; every one at hours at least two hours away from
now, so nothing fires while we measure):

- taskops: ``taskops engine --site`` on a site whose ``config/tasks.yaml`` has the tasks
  (``bench.harness.engine_process``);
- APScheduler 3: a ``BackgroundScheduler`` with a ``SQLAlchemyJobStore`` on SQLite holding
  the 10,000 cron jobs (added with fsync off, which only shortens the set-up);
- huey: the consumer (2 worker threads, periodic tasks on) of a ``SqliteHuey`` whose module
  defines the 10,000 ``periodic_task``s at import, as huey wants them.

As the floor, a second ``taskops engine`` on a site with no tasks: what the engine's loop
costs by itself (it polls the store a few times a second for queued jobs and stop requests).

All four run side by side; once they are ready, their start-up CPU has settled and a
warm-up has passed, the CPU time (user + system, all threads, from psutil; the kernel counts
in 10 ms ticks) each uses over the same window is read and reported as a percentage of one
core. Target: taskops at most 1% of one core with 10,000 tasks.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.harness import Table, engine_process, ratio, site_with_tasks
from taskops.testing import wait_for

COUNT = 10_000
TARGET_PERCENT = 1.0
TASKOPS = "taskops engine"
FLOOR = "floor: taskops engine, no tasks"
APS = "APScheduler 3 BackgroundScheduler + SQLAlchemyJobStore (SQLite)"
HUEY = "huey consumer (SqliteHuey, 2 threads, periodic)"

APS_SCRIPT = """
import json, sys, time
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import create_engine, event

database, schedules, ready = sys.argv[1:4]
engine = create_engine(f"sqlite:///{database}")


@event.listens_for(engine, "connect")
def no_fsync(connection, record):
    # only speeds up adding the 10,000 jobs (a commit each); nothing is written while idle
    connection.execute("PRAGMA synchronous=OFF")


scheduler = BackgroundScheduler(
    jobstores={"default": SQLAlchemyJobStore(engine=engine)}, timezone="UTC"
)
for index, expression in enumerate(json.load(open(schedules))):
    scheduler.add_job(
        "time:time", CronTrigger.from_crontab(expression, timezone="UTC"),
        id=f"job{index}", name=f"job{index}",
    )
scheduler.start()
open(ready, "w").write(str(len(scheduler.get_jobs())))
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    pass
finally:
    scheduler.shutdown(wait=False)
"""

HUEY_SCRIPT = """
import json, os, sys
from huey import SqliteHuey, crontab

huey = SqliteHuey("bench", filename=os.environ["BENCH_HUEY_DB"])

def noop():
    return None

for index, expression in enumerate(json.load(open(os.environ["BENCH_SCHEDULES"]))):
    minute, hour, day, month, day_of_week = expression.split()
    huey.periodic_task(
        crontab(minute, hour, day, month, day_of_week, strict=True), name=f"periodic{index}"
    )(noop)

if __name__ == "__main__":
    consumer = huey.create_consumer(workers=2, worker_type="thread", periodic=True)
    open(os.environ["BENCH_READY"], "w").write(str(len(huey._registry._periodic_tasks)))
    consumer.run()
"""


def idle_schedules(count: int, now: datetime, seed: int = 8) -> list[str]:
    """``count`` 5-field UTC schedules that cannot fire within the next two hours of ``now``."""
    rng = random.Random(seed)
    hours = [(now.hour + offset) % 24 for offset in range(2, 23)]

    def hour() -> int:
        return rng.choice(hours)

    makers: list[Callable[[], str]] = [
        lambda: f"{rng.randrange(60)} {hour()} * * *",
        lambda: f"{rng.randrange(60)} {hour()} * * {rng.randrange(7)}",
        lambda: f"{rng.randrange(60)} {hour()} {rng.randrange(1, 29)} * *",
        lambda: f"{rng.randrange(60)} {hour()} 1 1 *",
        lambda: (
            f"{rng.choice((0, 15, 30, 45))} {','.join(map(str, sorted({hour(), hour()})))} * * 1-5"
        ),
        lambda: f"0 {hour()} 1 */3 *",
    ]
    weights = [40, 15, 15, 10, 15, 5]
    return [make() for make in rng.choices(makers, weights=weights, k=count)]


@contextmanager
def peer_process(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A peer in its own process group, until the block ends (SIGINT, then SIGKILL)."""
    with log.open("w") as handle:
        process = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def wait_ready(process: subprocess.Popen[bytes], ready: Path, log: Path) -> psutil.Process:
    """Wait until the peer has written ``ready`` (it holds its jobs and runs)."""

    def started() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited: {log.read_text()[-2000:]}")
        return ready.exists() and ready.stat().st_size > 0

    wait_for(started, timeout=300, what=f"{log.stem} to start")
    return psutil.Process(process.pid)


def settle(processes: dict[str, psutil.Process], timeout: float = 180.0) -> None:
    """Wait until none of ``processes`` used more than 5% of a core over the last second
    (start-up work, such as loading 10,000 tasks, is over)."""
    deadline = time.monotonic() + timeout
    last = {name: cpu_seconds(p) for name, p in processes.items()}
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = {name: cpu_seconds(p) for name, p in processes.items()}
        if all(now[name] - last[name] <= 0.05 for name in processes):
            return
        last = now


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main(quick: bool) -> list[Table]:
    warmup, window = (3.0, 10.0) if quick else (15.0, 30.0)
    now = datetime.now(UTC)
    schedules = idle_schedules(COUNT, now)
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        schedules_file = root / "schedules.json"
        schedules_file.write_text(json.dumps(schedules))
        site = site_with_tasks(
            root / "site",
            [
                {"name": f"Idle{index:05d}", "schedule": expression, "scriptPath": "tasks/noop.sh"}
                for index, expression in enumerate(schedules)
            ],
            scripts={"tasks/noop.sh": "#!/bin/sh\nexit 0\n"},
        )
        empty = site_with_tasks(root / "empty", [])
        (root / "aps.py").write_text(APS_SCRIPT)
        (root / "huey_app.py").write_text(HUEY_SCRIPT)
        # all start together; APScheduler takes longest (10,000 inserts, a commit each)
        started, wall = time.monotonic(), time.time()
        aps = stack.enter_context(
            peer_process(
                [
                    sys.executable,
                    str(root / "aps.py"),
                    str(root / "aps.sqlite"),
                    str(schedules_file),
                    str(root / "aps.ready"),
                ],
                root / "aps.log",
            )
        )
        huey_env = {
            **os.environ,
            "BENCH_HUEY_DB": str(root / "huey.sqlite"),
            "BENCH_SCHEDULES": str(schedules_file),
            "BENCH_READY": str(root / "huey.ready"),
        }
        huey = stack.enter_context(
            peer_process([sys.executable, str(root / "huey_app.py")], root / "huey.log", huey_env)
        )
        processes = {TASKOPS: stack.enter_context(engine_process(site, timeout=300))}
        startup = {TASKOPS: time.monotonic() - started}
        processes[FLOOR] = stack.enter_context(engine_process(empty))
        processes[APS] = wait_ready(aps, root / "aps.ready", root / "aps.log")
        processes[HUEY] = wait_ready(huey, root / "huey.ready", root / "huey.log")
        startup[APS] = (root / "aps.ready").stat().st_mtime - wall
        startup[HUEY] = (root / "huey.ready").stat().st_mtime - wall
        held = {
            APS: int((root / "aps.ready").read_text()),
            HUEY: int((root / "huey.ready").read_text()),
        }
        settle(processes)
        time.sleep(warmup)
        before = {name: cpu_seconds(p) for name, p in processes.items()}
        start_cpu = dict(before)
        begin = time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - begin
        after = {name: cpu_seconds(p) for name, p in processes.items()}
        rss = {name: p.memory_info().rss / 2**20 for name, p in processes.items()}
        threads = {name: p.num_threads() for name, p in processes.items()}

    percent = {name: (after[name] - before[name]) / elapsed * 100 for name in processes}
    table = Table(
        title=f"Idle CPU with {COUNT:,} cron tasks loaded (none fires during the window)",
        columns=[
            "% of one core",
            "CPU s in window",
            "CPU s before window",
            "RSS MiB",
            "threads",
            "vs target",
            "vs floor",
        ],
        notes=[
            f"Target: taskops at most {TARGET_PERCENT:g}% of one core with {COUNT:,} tasks. "
            f"Window {elapsed:.0f} s after a {warmup:.0f} s warm-up, all four side by side. "
            f"Ready after: taskops engine {startup[TASKOPS]:.1f} s (holds the lease; it loads "
            f"the tasks just after), APScheduler {startup[APS]:.1f} s (adding "
            f"{held[APS]:,} jobs, one SQLite commit each, fsync off), huey {startup[HUEY]:.1f} s "
            f"({held[HUEY]:,} periodic tasks defined at import). 'CPU s before window': "
            "imports, start-up, loading the tasks and the warm-up.",
        ],
    )
    for name in processes:
        table.add(
            name,
            **{
                "% of one core": f"{percent[name]:.2f}%",
                "CPU s in window": after[name] - before[name],
                "CPU s before window": start_cpu[name],
                "RSS MiB": rss[name],
                "threads": threads[name],
                "vs target": ratio(percent[name], TARGET_PERCENT),
                "vs floor": ratio(percent[name], percent[FLOOR]),
            },
        )
    return [table]
