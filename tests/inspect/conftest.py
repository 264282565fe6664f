"""Real child processes for the runspace tests: they hold memory, and can ignore SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import psutil
import pytest

from taskops.inspect.processes import JOB_TAG, tagged_processes
from taskops.testing import wait_for

# holds ``mb`` MB; with ``stubborn`` it ignores SIGTERM and leaves two children that ignore
# it too (SIG_IGN survives exec): one in its process group, one that left it for a session
# of its own (found by its environment tag only); writes its ready file last
CHILD = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    from pathlib import Path

    ready, mb, stubborn = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    data = b"x" * (mb * 1024 * 1024)
    if stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        nap = [sys.executable, "-c", "import time; time.sleep(120)"]
        subprocess.Popen(nap)
        subprocess.Popen(nap, start_new_session=True)
    Path(ready).write_text("ready")
    while True:
        time.sleep(0.2)
    """
)

Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start python children (in their own session unless told), wait until they are
    ready; at teardown every one of them and every process tagged by them is killed."""
    started: list[subprocess.Popen[bytes]] = []
    tags: list[int] = []
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    def start(
        mb: int = 0,
        *,
        env: Mapping[str, str] | None = None,
        stubborn: bool = False,
        session: bool = True,
    ) -> subprocess.Popen[bytes]:
        ready = tmp_path / f"ready-{len(started)}"
        full_env = {**os.environ, **(env or {})}
        if JOB_TAG in full_env:
            tags.append(int(full_env[JOB_TAG]))
        child = subprocess.Popen(
            [sys.executable, str(script), str(ready), str(mb), "1" if stubborn else "0"],
            start_new_session=session,
            env=full_env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(child)
        wait_for(ready.exists, timeout=15, what=f"child {child.pid} to be ready")
        return child

    try:
        yield start
    finally:
        for job_id in tags:
            for process in tagged_processes(job_id, None):
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
        for child in started:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if os.getpgid(child.pid) == child.pid:
                        os.killpg(child.pid, signal.SIGKILL)
                child.kill()
            child.wait(timeout=10)
