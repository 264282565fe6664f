"""OS processes as taskops sees them.

A process is identified by ``(pid, create_time)``: a pid alone is reused by the system, and
psutil's read methods do not notice. Every job's processes carry the environment tag
``TASKOPS_JOB_ID``, so the ones that left the job's process group are still found.

The stop ladder: SIGTERM to the process group (and to tagged processes outside it), wait up
to a grace period, SIGKILL to whatever is left, wait until it is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

__all__ = [
    "JOB_TAG",
    "RUNSPACE_TAG",
    "STOP_GRACE_SECONDS",
    "STORE_TAG",
    "TASK_TAG",
    "boot_clock_ns",
    "create_time_of",
    "group_members",
    "is_same_process",
    "start_time_between",
    "start_time_of",
    "stop_ladder",
    "tagged_processes",
]

STOP_GRACE_SECONDS = 5.0
"""How long a stopped or timed-out job has between SIGTERM and SIGKILL."""

STORE_TAG = "TASKOPS_STORE_ID"
"""Which store a job belongs to: job ids start at 1 in every store, so a job id alone could
name another site's job on the same machine."""
JOB_TAG = "TASKOPS_JOB_ID"
TASK_TAG = "TASKOPS_TASK_ID"
RUNSPACE_TAG = "TASKOPS_RUNSPACE_ID"

# create_time comes from boot time + start ticks; two readings of one process agree far
# better than this, two processes sharing a pid are seconds apart at least
_SAME_START = 0.05


def create_time_of(pid: int) -> float | None:
    """The start time of process ``pid``, or None when there is none (or a zombie)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def start_time_of(pid: int) -> float | None:
    """The start time of process ``pid``, a zombie's too, or None when there is none: what
    is recorded of a process just started, as psutil's ``create_time()`` gives it (ticks
    since boot plus the boot time), read from ``/proc/<pid>/stat`` alone. The engine
    calls this for each job it starts; psutil would also read the whole of ``/proc/stat``
    for the boot time each time (~40 µs against ~15 here)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:  # gone (or no /proc): psutil's way says so
        return _psutil_start_time(pid)
    # the fields after the name, which is in parentheses and may hold anything: the
    # start time is field 22 of the whole line, so the 20th of those
    ticks = int(data[data.rindex(b")") + 2 :].split(None, 20)[19])
    return ticks / _CLOCK_TICKS + _BOOT.time()


def boot_clock_ns() -> int:
    """Now on the clock the kernel dates processes by (CLOCK_BOOTTIME), in nanoseconds."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def start_time_between(pid: int, before_ns: int, after_ns: int) -> float | None:
    """The start time of ``pid``, a process created between two readings of
    :func:`boot_clock_ns`, as :func:`start_time_of` gives it. The kernel keeps the start
    in clock ticks since boot, that clock's time at the fork cut to a tick: when both
    readings fall in the same tick that is the start, and nothing is read (the engine
    starts a burst's processes ~0.06 ms sooner each). Else it is read from ``/proc``."""
    tick = before_ns // _TICK_NS
    if after_ns // _TICK_NS != tick:
        return start_time_of(pid)
    return tick / _CLOCK_TICKS + _BOOT.time()


def _psutil_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_TICK_NS = 1_000_000_000 // _CLOCK_TICKS


class _BootTime:
    """``psutil.boot_time()``, read again once a second at most: the kernel's value is
    whole seconds and moves only when the wall clock is set."""

    def __init__(self) -> None:
        self._value = 0.0
        self._read_at = -1.0

    def time(self) -> float:
        now = time.monotonic()
        if self._read_at < 0 or now - self._read_at >= 1.0:
            self._value, self._read_at = psutil.boot_time(), now
        return self._value


_BOOT = _BootTime()


def is_same_process(pid: int | None, create_time: float | None) -> bool:
    """True when ``pid`` is alive and is the process that started at ``create_time``."""
    if pid is None or create_time is None:
        return False
    found = create_time_of(pid)
    return found is not None and abs(found - create_time) < _SAME_START


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and _alive(process):
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def tagged_processes(job_id: int, store_id: str | None) -> list[psutil.Process]:
    """Live processes whose environment says they belong to job ``job_id`` of the store
    ``store_id`` (any store when None). Those of other users cannot be read and are not
    listed."""
    wanted = str(job_id)
    found = []
    me = os.getpid()
    for process in psutil.process_iter():
        if process.pid == me:
            continue
        try:
            environ = process.environ()
            if (
                environ.get(JOB_TAG) == wanted
                and (store_id is None or environ.get(STORE_TAG) == store_id)
                and _alive(process)
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def _targets(pgid: int, job_id: int | None, store_id: str | None) -> list[psutil.Process]:
    targets = {p.pid: p for p in group_members(pgid)}
    if job_id is not None and store_id is not None:
        targets.update((p.pid, p) for p in tagged_processes(job_id, store_id))
    return list(targets.values())


def _signal_all(pgid: int, processes: list[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for process in processes:
        try:
            if os.getpgid(process.pid) == pgid:
                continue  # signalled with its group: a second SIGTERM could cut its cleanup
            process.send_signal(sig)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue


def _wait_gone(processes: list[psutil.Process], deadline: float) -> list[psutil.Process]:
    left = processes
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for p in left if _alive(p)]
    return [p for p in left if _alive(p)]


def stop_ladder(
    pgid: int, *, grace: float, job_id: int | None = None, store_id: str | None = None
) -> str:
    """Stop process group ``pgid`` (and the processes tagged with ``job_id`` of the store
    ``store_id``, when both are given): SIGTERM,
    up to ``grace`` seconds, SIGKILL, then wait until they are gone (zombies of our own
    children are left for their parent to reap). Returns ``"gone"`` when nothing was
    running, ``"term"`` when SIGTERM sufficed, ``"kill"`` when SIGKILL was needed.
    Blocks up to ``grace`` plus a few seconds: call it off any event loop."""
    targets = _targets(pgid, job_id, store_id)
    if not targets:
        return "gone"
    _signal_all(pgid, targets, signal.SIGTERM)
    left = _wait_gone(targets, time.monotonic() + grace)
    # late children forked while we waited belong to the group or carry the tag
    left = list({p.pid: p for p in [*left, *_targets(pgid, job_id, store_id)]}.values())
    if not left:
        return "term"
    _signal_all(pgid, left, signal.SIGKILL)
    _wait_gone(left, time.monotonic() + 5.0)
    return "kill"
