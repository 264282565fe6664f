"""``start_time_of``: what the engine records of a process it just started must be what
psutil says of that process later (``create_time_of``, ``is_same_process``), for a live
process, a zombie and a process whose name holds parentheses and spaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from taskops.inspect.processes import (
    boot_clock_ns,
    create_time_of,
    is_same_process,
    start_time_between,
    start_time_of,
)


def test_a_live_process_has_psutils_start_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        recorded = start_time_of(child.pid)
        assert recorded == psutil.Process(child.pid).create_time()
        assert create_time_of(child.pid) == recorded
        assert is_same_process(child.pid, recorded)
        assert not is_same_process(child.pid, recorded - 1.0)
        assert start_time_of(os.getpid()) == psutil.Process().create_time()
    finally:
        child.kill()
        child.wait()


def test_a_name_with_parentheses_and_spaces_is_read_past(tmp_path: Path) -> None:
    program = tmp_path / "a) b (c) 9 9 9"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    child = subprocess.Popen([str(program), "30"])
    try:
        assert psutil.Process(child.pid).name().startswith("a) b")
        assert start_time_of(child.pid) == psutil.Process(child.pid).create_time()
    finally:
        child.kill()
        child.wait()


def test_a_zombie_has_one_and_a_reaped_process_has_none() -> None:
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the child did not end"
        time.sleep(0.01)
    assert start_time_of(child.pid) == psutil.Process(child.pid).create_time()
    assert create_time_of(child.pid) is None  # a zombie is not a live process
    child.wait()
    assert start_time_of(child.pid) is None


def test_a_start_timed_by_the_boot_clock_is_what_proc_says() -> None:
    """The engine times each spawn on the kernel's boot clock and takes the start from
    that when the spawn fell within one clock tick; it must be /proc's value exactly, and
    /proc's (read) when the spawn crossed a tick."""
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    timed = crossed = 0
    while timed < 50 or crossed < 2:
        assert timed + crossed < 5_000, "no spawn crossed a clock tick"
        before = boot_clock_ns()
        child = subprocess.Popen(["true"])
        after = boot_clock_ns()
        try:
            if after // tick == before // tick:
                timed += 1  # taken from the boot clock
            else:
                crossed += 1  # read from /proc
            assert start_time_between(child.pid, before, after) == start_time_of(child.pid)
            # a window of one tick, a tick off the process's start, says another start
            assert start_time_between(child.pid, before - tick, before - tick) != start_time_of(
                child.pid
            )
        finally:
            child.wait()
