"""Held jobs of the runner's fork server: forked ahead, set up and waiting for their "go"
(SIGUSR1 for a Python job; a line on a pipe for an executable, which waits in a shell); they
run only once it comes, as the job's files, folder and environment say, and end as a plain
job would. Real processes, no engine."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from taskops.engine._runner import CANNOT_START, GO_SIGNAL, NOT_RELEASED
from taskops.engine.executor import ForkServer, JobFiles
from taskops.testing import wait_for

HOLD = 10.0
"""How long a held child waits for its "go": longer than any test needs."""


@dataclass
class Jobs:
    """A fork server and the jobs a test starts with it, in folders under ``root``."""

    server: ForkServer
    root: Path
    pids: list[int] = field(default_factory=list)

    @property
    def app_dir(self) -> Path:
        return self.root / "app"

    def script(self, source: str, name: str = "task.py") -> Path:
        path = self.app_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        return path

    def python(self, script: Path) -> dict[str, Any]:
        return {"kind": "python", "script": str(script), "cwd": str(self.app_dir)}

    def files(self, name: str = "job") -> JobFiles:
        return JobFiles(self.root / "jobs" / name)

    def env(self, files: JobFiles, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "TASKOPS_JOB_ID": "41",
            "TASKOPS_TASK_ID": "global.Held",
            "TASKOPS_SITE": str(self.root),
            "TASKOPS_JOB_DIR": str(files.folder),
            **extra,
        }

    def hold(
        self, command: Mapping[str, Any], files: JobFiles, env: Mapping[str, str] | None = None
    ) -> int:
        """Fork the job held (waiting for its go); its pid."""
        (ticket,) = self.server.submit(
            [(command, self.env(files) if env is None else env, files)], hold=HOLD
        )
        return self.started(self.server.answer(ticket, timeout=10))

    def started(self, answer: int | OSError) -> int:
        assert isinstance(answer, int), answer
        self.pids.append(answer)
        return answer


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    jobs = Jobs(server=ForkServer(), root=tmp_path)
    jobs.app_dir.mkdir()
    try:
        yield jobs
    finally:
        for pid in jobs.pids:  # never leave a held child behind, whatever the test did
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                if psutil.Process(pid).ppid() == jobs.server.pid:  # not a reused pid
                    os.killpg(pid, signal.SIGKILL)
        jobs.server.close()


def waiting_for_go(pid: int) -> bool:
    """True once the held child ``pid`` sleeps in its wait for the go (its kernel wait
    channel, where the kernel shows it, is the signal wait, or the pipe's read for an
    executable). Raises AssertionError when the child has ended: it did not wait."""
    try:
        process = psutil.Process(pid)
        status = process.status()
        channel = Path(f"/proc/{pid}/wchan").read_text().strip()
    except (psutil.NoSuchProcess, FileNotFoundError):
        raise AssertionError(f"the held child {pid} ended before its go") from None
    if status == psutil.STATUS_ZOMBIE:
        raise AssertionError(f"the held child {pid} ended before its go")
    hidden = channel in ("", "0")  # a kernel that hides wait channels
    waits = hidden or "sigtimedwait" in channel or "pipe_read" in channel
    return status == psutil.STATUS_SLEEPING and waits


def wait_until_held(pid: int) -> None:
    wait_for(lambda: waiting_for_go(pid), what=f"the held child {pid} to wait for its go")


def read_result(files: JobFiles) -> Any:
    return json.loads(files.result.read_text())


def test_a_held_python_job_runs_only_after_its_go_with_its_environment(jobs: Jobs) -> None:
    stamp = jobs.root / "stamp.json"
    script = jobs.script(
        """import json, os

def run(ctx):
    with open(os.environ["STAMP"], "w") as out:
        json.dump({"job": ctx.job_id, "mark": os.environ["MARK"], "cwd": os.getcwd()}, out)
    print("ran", ctx.job_id)
"""
    )
    files = jobs.files()
    pid = jobs.hold(jobs.python(script), files, jobs.env(files, MARK="m-17", STAMP=str(stamp)))
    wait_until_held(pid)
    assert not stamp.exists() and not files.result.exists()
    assert files.stdout.read_text() == ""

    assert jobs.server.go(pid) is True
    assert jobs.server.exit_code(pid, timeout=10) == 0
    assert json.loads(stamp.read_text()) == {"job": 41, "mark": "m-17", "cwd": str(jobs.app_dir)}
    assert files.stdout.read_text() == "ran 41\n"
    assert read_result(files) == {"exitCode": 0, "error": None}


def test_a_go_sent_before_the_child_waits_is_not_lost(jobs: Jobs) -> None:
    script = jobs.script("def run(ctx):\n    print('ran', ctx.job_id)\n")
    files = jobs.files()
    pid = jobs.hold(jobs.python(script), files)

    assert jobs.server.go(pid) is True  # at once: the child is still setting itself up
    assert jobs.server.exit_code(pid, timeout=10) == 0  # neither killed by it nor waiting
    assert files.stdout.read_text() == "ran 41\n"


def test_the_first_line_of_run_comes_after_the_go(jobs: Jobs) -> None:
    stamp = jobs.root / "started"
    script = jobs.script(
        """import os, time

def run(ctx):
    started = time.time()
    with open(os.environ["STAMP"], "w") as out:
        out.write(repr(started))
"""
    )
    files = jobs.files()
    pid = jobs.hold(jobs.python(script), files, jobs.env(files, STAMP=str(stamp)))
    wait_until_held(pid)

    before_go = time.time()
    jobs.server.go(pid)
    assert jobs.server.exit_code(pid, timeout=10) == 0
    assert float(stamp.read_text()) >= before_go


def test_a_held_job_without_its_go_ends_having_run_nothing(jobs: Jobs) -> None:
    stamp = jobs.root / "stamp"
    script = jobs.script(
        """import os

with open(os.environ["STAMP"], "w") as out:
    out.write("module ran")

def run(ctx):
    print("ran")
"""
    )
    files = jobs.files()
    env = jobs.env(files, STAMP=str(stamp))
    submitted = time.monotonic()
    (ticket,) = jobs.server.submit([(jobs.python(script), env, files)], hold=0.3)
    pid = jobs.started(wait_for(jobs.server.poll, what="the server's answer")[ticket])

    wait_for(lambda: jobs.server.poll() is not None and jobs.server.exited(pid), what="its end")
    assert time.monotonic() - submitted >= 0.3
    assert jobs.server.exit_code(pid) == NOT_RELEASED
    assert not stamp.exists() and not files.result.exists()
    assert (files.stdout.read_text(), files.stderr.read_text()) == ("", "")
    assert not jobs.server.exited(pid)  # the report was taken
    assert jobs.server.go(pid) is False


def test_a_held_job_ends_having_run_nothing_when_its_fork_server_goes_away(
    jobs: Jobs,
) -> None:
    stamp = jobs.root / "stamp"
    script = jobs.script('import os\n\ndef run(ctx):\n    open(os.environ["STAMP"], "w").close()\n')
    files = jobs.files()
    pid = jobs.hold(jobs.python(script), files, jobs.env(files, STAMP=str(stamp)))
    wait_until_held(pid)
    child = psutil.Process(pid)
    jobs.server.close()  # as when its engine is gone: its stdin closes and it ends
    wait_for(lambda: not child.is_running(), what="the held child to give up")
    assert not stamp.exists() and not files.result.exists()


def test_forget_drops_the_end_report_of_a_child_that_gave_up(jobs: Jobs) -> None:
    script = jobs.script("def run(ctx):\n    pass\n")
    files = jobs.files()
    (ticket,) = jobs.server.submit([(jobs.python(script), jobs.env(files), files)], hold=0.1)
    pid = jobs.started(jobs.server.answer(ticket, timeout=10))
    wait_for(lambda: jobs.server.poll() is not None and jobs.server.exited(pid), what="its end")

    jobs.server.forget(pid)
    assert not jobs.server.exited(pid)
    assert jobs.server.exit_code(pid) is None


def test_a_script_changed_while_its_job_was_held_runs_in_its_new_version(jobs: Jobs) -> None:
    script = jobs.script("def run(ctx):\n    print('old')\n")
    files = jobs.files()
    pid = jobs.hold(jobs.python(script), files)
    wait_until_held(pid)

    script.write_text("def run(ctx):\n    print('the new version', ctx.job_id)\n")
    jobs.server.go(pid)
    assert jobs.server.exit_code(pid, timeout=10) == 0
    assert files.stdout.read_text() == "the new version 41\n"


def test_a_held_executable_runs_after_its_go_in_its_folder_with_its_environment(
    jobs: Jobs,
) -> None:
    work = jobs.root / "work"
    work.mkdir()
    files = jobs.files()
    command = {"argv": ["/bin/sh", "-c", "echo $MARK; pwd"], "cwd": str(work)}
    pid = jobs.hold(command, files, jobs.env(files, MARK="mark-9"))
    wait_until_held(pid)
    assert files.stdout.read_text() == ""

    jobs.server.go(pid)
    assert jobs.server.exit_code(pid, timeout=10) == 0
    assert files.stdout.read_text() == f"mark-9\n{work.resolve()}\n"
    assert files.stderr.read_text() == ""


def test_a_held_executable_that_does_not_exist_reports_that_it_could_not_start(
    jobs: Jobs,
) -> None:
    files = jobs.files()
    pid = jobs.hold({"argv": ["/no/such/program"]}, files)
    wait_until_held(pid)

    jobs.server.go(pid)
    assert jobs.server.exit_code(pid, timeout=10) == CANNOT_START
    assert "could not start" in files.stderr.read_text()
    result = read_result(files)
    assert result["exitCode"] == CANNOT_START
    assert result["error"].startswith("could not start")


def blocks_go(status: str) -> bool:
    """Whether ``/proc/<pid>/status`` text shows the go signal blocked."""
    (line,) = [line for line in status.splitlines() if line.startswith("SigBlk:")]
    return bool(int(line.split()[1], 16) & (1 << (GO_SIGNAL - 1)))


def test_an_executable_started_by_its_go_does_not_block_the_go_signal(jobs: Jobs) -> None:
    files = jobs.files()
    # grep itself, not through a shell: dash clears its signal mask when it starts
    pid = jobs.hold({"argv": ["grep", "SigBlk", "/proc/self/status"]}, files)
    wait_until_held(pid)
    # what every child inherits (while in its wait, the kernel unblocks it in the child)
    assert blocks_go(Path(f"/proc/{jobs.server.pid}/status").read_text())

    jobs.server.go(pid)
    assert jobs.server.exit_code(pid, timeout=10) == 0
    assert not blocks_go(files.stdout.read_text())


def ignores(status: str, signum: int) -> bool:
    """Whether ``/proc/<pid>/status`` text shows ``signum`` ignored."""
    (line,) = [line for line in status.splitlines() if line.startswith("SigIgn:")]
    return bool(int(line.split()[1], 16) & (1 << (signum - 1)))


@pytest.mark.parametrize("held", [True, False])
def test_an_executable_of_the_fork_server_gets_sigpipe_back(jobs: Jobs, held: bool) -> None:
    """Python ignores SIGPIPE (and SIGXFSZ), and an ignored signal stays ignored across an
    exec: an executable forked by the server gets them back at their default, as
    ``Popen`` does (else ``yes | head -1`` in a job's script would not end ``yes``)."""
    files = jobs.files()
    command = {"argv": ["grep", "SigIgn", "/proc/self/status"]}
    if held:
        pid = jobs.hold(command, files)
        wait_until_held(pid)
        jobs.server.go(pid)
    else:
        pid = jobs.started(jobs.server.run(command, env=jobs.env(files), files=files))
    assert jobs.server.exit_code(pid, timeout=10) == 0
    assert ignores(Path(f"/proc/{jobs.server.pid}/status").read_text(), signal.SIGPIPE)
    status = files.stdout.read_text()
    assert not ignores(status, signal.SIGPIPE)
    assert not ignores(status, signal.SIGXFSZ)


END_OF_A_JOB = """import atexit, os, threading, time

OUT = os.environ["OUT"]
log = open(os.path.join(OUT, "module.txt"), "w")
log.write("written at module level, never closed\\n")


def said_at_exit():
    thread_done = os.path.exists(os.path.join(OUT, "thread.txt"))
    with open(os.path.join(OUT, "atexit.txt"), "a") as out:
        out.write(f"atexit ran, the thread done: {thread_done}\\n")


def late():
    time.sleep(0.3)
    with open(os.path.join(OUT, "thread.txt"), "w") as out:
        out.write("the thread finished\\n")


atexit.register(said_at_exit)
threading.Thread(target=late).start()


def run(ctx):
    print("run returns")
"""


@pytest.mark.parametrize("held", [False, True], ids=["at-once", "held"])
def test_a_forked_job_ends_as_a_normal_exit_would(jobs: Jobs, held: bool) -> None:
    out = jobs.root / "out"
    out.mkdir()
    script = jobs.script(END_OF_A_JOB)
    files = jobs.files()
    env = jobs.env(files, OUT=str(out))
    if held:
        pid = jobs.hold(jobs.python(script), files, env)
        wait_until_held(pid)
        jobs.server.go(pid)
    else:
        pid = jobs.started(jobs.server.run(jobs.python(script), env=env, files=files))

    assert jobs.server.exit_code(pid, timeout=10) == 0
    assert (out / "module.txt").read_text() == "written at module level, never closed\n"
    assert (out / "thread.txt").read_text() == "the thread finished\n"
    assert (out / "atexit.txt").read_text() == "atexit ran, the thread done: True\n"
    assert files.stdout.read_text() == "run returns\n"
    assert read_result(files) == {"exitCode": 0, "error": None}


def test_jobs_not_held_run_at_once(jobs: Jobs) -> None:
    script = jobs.script("def run(ctx):\n    print('ran', ctx.job_id)\n")
    both = [jobs.files("a"), jobs.files("b")]
    requests = [
        (jobs.python(script), {**jobs.env(files), "TASKOPS_JOB_ID": str(n)}, files)
        for n, files in enumerate(both)
    ]
    pids = [jobs.started(answer) for answer in jobs.server.run_many(requests)]

    assert [jobs.server.exit_code(pid, timeout=10) for pid in pids] == [0, 0]
    assert [files.stdout.read_text() for files in both] == ["ran 0\n", "ran 1\n"]


def test_go_to_a_child_that_is_gone_says_so(jobs: Jobs) -> None:
    script = jobs.script("def run(ctx):\n    pass\n")
    files = jobs.files()
    pid = jobs.started(jobs.server.run(jobs.python(script), env=jobs.env(files), files=files))
    assert jobs.server.exit_code(pid, timeout=10) == 0  # reported: reaped by the server

    assert jobs.server.go(pid) is False


# -- held executables: they wait in a shell, on a pipe ------------------------------------


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]


def test_a_held_executable_waits_in_a_shell_and_its_go_is_not_lost_when_early(
    jobs: Jobs,
) -> None:
    """A held executable gives up the fork server's interpreter before its slot (an exec
    from it costs ~2 ms of CPU): it waits in ``/bin/sh``, reading its pipe."""
    files = jobs.files()
    pid = jobs.hold({"argv": ["echo", "went"]}, files)
    assert jobs.server.go(pid) is True  # at once: the child is still setting itself up
    assert jobs.server.exit_code(pid, timeout=10) == 0
    assert files.stdout.read_text() == "went\n"

    later = jobs.files("later")
    pid = jobs.hold({"argv": ["echo", "later"]}, later)
    wait_until_held(pid)
    shell, flag, _script, name, *argv = command_line(pid)
    assert (shell, flag, name, argv) == ("/bin/sh", "-c", "taskops-held", ["echo", "later"])
    jobs.server.go(pid)
    assert jobs.server.exit_code(pid, timeout=10) == 0
    assert later.stdout.read_text() == "later\n"


def test_a_held_executable_gets_no_descriptor_but_its_output(jobs: Jobs) -> None:
    """Neither its own pipe nor another held job's reaches the executable (the fork server
    may hold several pipes at once), nor a Python job forked meanwhile."""
    script = jobs.script("import os\n\ndef run(ctx):\n    print(*os.listdir('/proc/self/fd'))\n")
    listing = {"argv": ["/bin/sh", "-c", "ls /proc/$$/fd"]}
    both = [jobs.files("python"), jobs.files("a"), jobs.files("b")]
    commands = [jobs.python(script), listing, listing]
    tickets = jobs.server.submit(
        [(command, jobs.env(files), files) for command, files in zip(commands, both, strict=True)],
        hold=HOLD,
    )
    pids = [jobs.started(jobs.server.answer(ticket, timeout=10)) for ticket in tickets]
    for pid in pids:
        wait_until_held(pid)
        jobs.server.go(pid)

    assert [jobs.server.exit_code(pid, timeout=10) for pid in pids] == [0, 0, 0]
    assert [files.stdout.read_text().split() for files in both[1:]] == [["0", "1", "2"]] * 2
    assert set(both[0].stdout.read_text().split()) == {"0", "1", "2", "3"}  # 3: the listing


def test_a_held_executable_without_its_go_ends_having_run_nothing(jobs: Jobs) -> None:
    stamp = jobs.root / "stamp"
    files = jobs.files()
    env = jobs.env(files, STAMP=str(stamp))
    command = {"argv": ["/bin/sh", "-c", 'echo ran > "$STAMP"']}
    submitted = time.monotonic()
    (ticket,) = jobs.server.submit([(command, env, files)], hold=0.3)
    pid = jobs.started(jobs.server.answer(ticket, timeout=10))

    wait_for(lambda: jobs.server.poll() is not None and jobs.server.exited(pid), what="its end")
    assert time.monotonic() - submitted >= 0.3
    assert jobs.server.exit_code(pid) == NOT_RELEASED
    assert not stamp.exists()
    assert (files.stdout.read_text(), files.stderr.read_text()) == ("", "")
    assert jobs.server.go(pid) is False


def test_a_held_executable_let_go_ends_having_run_nothing(jobs: Jobs) -> None:
    stamp = jobs.root / "stamp"
    files = jobs.files()
    pid = jobs.hold(
        {"argv": ["/bin/sh", "-c", 'echo ran > "$STAMP"']},
        files,
        jobs.env(files, STAMP=str(stamp)),
    )
    wait_until_held(pid)

    jobs.server.forget(pid)
    assert jobs.server.exit_code(pid, timeout=10) == NOT_RELEASED
    assert not stamp.exists()
    assert jobs.server.go(pid) is False


ENGINE_THAT_HOLDS = """
import os, sys
from pathlib import Path
from taskops.engine.executor import ForkServer, JobFiles

root = Path(sys.argv[1])
server = ForkServer()
files = JobFiles(root / "held")
env = {"PATH": os.environ["PATH"], "STAMP": str(root / "stamp")}
(ticket,) = server.submit([({"argv": ["/bin/sh", "-c", 'echo ran > "$STAMP"']}, env, files)],
                          hold=300.0)
print(server.answer(ticket, timeout=10), flush=True)
sys.stdin.read()  # until killed
"""


def test_a_held_executable_ends_having_run_nothing_when_its_engine_dies(
    jobs: Jobs,
) -> None:
    """The engine's end of the pipe closes with its process, whatever killed it: the shell
    reads the end of the pipe and exits, long before the hold would have passed."""
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE_THAT_HOLDS, str(jobs.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert engine.stdout is not None
        pid = int(engine.stdout.readline())
        child = psutil.Process(pid)
        jobs.pids.append(pid)
        wait_until_held(pid)
        engine.kill()
        engine.wait(10)
        wait_for(lambda: not child.is_running(), what="the held executable to end")
    finally:
        engine.kill()
        engine.wait(10)
    assert not (jobs.root / "stamp").exists()


def test_a_held_executable_removed_before_its_go_says_so(jobs: Jobs) -> None:
    """Found when it was held, gone at its go: the shell says it cannot execute it, and
    the job fails with the shell's exit code for that (127)."""
    program = jobs.root / "tool"
    program.write_text("#!/bin/sh\necho ran\n")
    program.chmod(0o755)
    files = jobs.files()
    pid = jobs.hold({"argv": [str(program)]}, files)
    wait_until_held(pid)

    program.unlink()
    jobs.server.go(pid)
    assert jobs.server.exit_code(pid, timeout=10) == 127
    assert files.stdout.read_text() == ""
    assert str(program) in files.stderr.read_text()
    assert "not found" in files.stderr.read_text()
