"""Starting a job's process and reading what it left behind.

Each job runs in its own session and process group (``start_new_session``), with stdout and
stderr written straight to ``<jobs>/<id>/stdout.log`` and ``stderr.log`` (never a pipe that
nobody reads), and the environment tags that let a restarted engine find it again. Python
scripts go through ``_runner.py``: forked by its fork server (:class:`ForkServer`, about a
millisecond), or started as ``python _runner.py <script>`` when there is none; anything
else is executed directly.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import json
import logging
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from taskops.inspect.processes import JOB_TAG, RUNSPACE_TAG, STORE_TAG, TASK_TAG

GO_SIGNAL = signal.SIGUSR1
"""The "go" of a held child (the runner's ``GO_SIGNAL``)."""

_log = logging.getLogger("taskops.engine")

__all__ = [
    "RUNNER",
    "SERVE_FLAG",
    "FolderMaker",
    "ForkServer",
    "JobFiles",
    "environment_for",
    "error_from_output",
    "job_name",
    "read_progress",
    "read_result",
    "spawn",
]

RUNNER = Path(__file__).resolve().with_name("_runner.py")
"""The bootstrap that calls a Python script's ``run(ctx)``; executed by path."""
SERVE_FLAG = "--serve"
"""``python _runner.py --serve`` is the fork server (the runner's own constant)."""

# Tags and context of the engine's own environment must not leak into its jobs (an engine
# started from inside a job would otherwise hand its jobs the wrong identity).
_OWN_KEYS = (
    STORE_TAG,
    JOB_TAG,
    TASK_TAG,
    RUNSPACE_TAG,
    "TASKOPS_APP",
    "TASKOPS_JOB_DIR",
    "TASKOPS_PARAMS",
)


def job_name(prefix: str, name: str, when: datetime, zone: tzinfo | None = None) -> str:
    """``<prefix>_<name>_<yyyyMMdd_HHmmss>``, the time in ``zone`` (default: as given)."""
    local = when.astimezone(zone) if zone is not None else when
    return f"{prefix}_{name}_{local.strftime('%Y%m%d_%H%M%S')}"


_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
"""How a job's output files are opened (as descriptors: no file objects on the engine's
busiest path, a job's start)."""


@dataclass(frozen=True)
class JobFiles:
    """Where a job's output and reports live: ``<jobs>/<id>/``. (The paths are made once:
    the engine reads some of them each turn.)"""

    folder: Path

    @functools.cached_property
    def stdout(self) -> Path:
        return self.folder / "stdout.log"

    @functools.cached_property
    def stderr(self) -> Path:
        return self.folder / "stderr.log"

    @functools.cached_property
    def progress(self) -> Path:
        return self.folder / "progress.json"

    @functools.cached_property
    def result(self) -> Path:
        return self.folder / "result.json"

    def stream(self, name: str) -> Path:
        return self.stdout if name == "stdout" else self.stderr

    def make(self) -> None:
        """Create the folder and the (empty) output files, unless they exist."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in (self.stdout, self.stderr):
            os.close(os.open(path, _APPEND, 0o644))

    def output_bytes(self) -> int:
        total = 0
        for path in (self.stdout, self.stderr):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total


class FolderMaker:
    """Makes the folders and output files of jobs queued ahead of their slot, in a thread
    of its own, so that starting a job does not wait for the disk: a folder and two files
    cost 0.2-0.4 ms here, as much as starting the process. A job started before its turn
    here makes them itself (both ways are idempotent)."""

    def __init__(self) -> None:
        self._waiting: queue.SimpleQueue[JobFiles | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def make(self, jobs: Sequence[JobFiles]) -> None:
        """Make the folders of ``jobs``, in order, in the background."""
        if not jobs:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="taskops-job-folders", daemon=True
            )
            self._thread.start()
        for files in jobs:
            self._waiting.put(files)

    def close(self) -> None:
        """Stop the thread; the folders it has not made yet are left to the jobs' starts."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._waiting.get_nowait()
        if self._thread is not None and self._thread.is_alive():
            self._waiting.put(None)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while (files := self._waiting.get()) is not None:
            try:
                files.make()
            except OSError as exc:  # the job's own start says so again, where it counts
                _log.debug("could not make %s ahead: %s", files.folder, exc)


def _as_env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def environment_for(
    command: Mapping[str, Any],
    *,
    job_id: int,
    store_id: str,
    runspace_id: int | None,
    site_dir: Path,
    data_dir: Path,
    files: JobFiles,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a job: the engine's, then each parameter as a variable, then the
    task's environment, then the taskops context and tags."""
    env = {k: v for k, v in (base if base is not None else os.environ).items()}
    for key in _OWN_KEYS:
        env.pop(key, None)
    params = dict(command.get("params") or {})
    env.update({str(k): _as_env_value(v) for k, v in params.items()})
    env.update({str(k): str(v) for k, v in (command.get("env") or {}).items()})
    env.update(
        {
            "TASKOPS_SITE": str(site_dir),
            "TASKOPS_DATA_DIR": str(data_dir),
            STORE_TAG: store_id,
            JOB_TAG: str(job_id),
            TASK_TAG: str(command.get("task") or ""),
            "TASKOPS_APP": str(command.get("app") or ""),
            RUNSPACE_TAG: str(runspace_id or ""),
            "TASKOPS_JOB_DIR": str(files.folder),
            "TASKOPS_PARAMS": json.dumps(params),
        }
    )
    return env


def argv_for(command: Mapping[str, Any]) -> list[str]:
    """What to execute: the runner for a Python script, else the command itself."""
    if command.get("kind") == "python":
        return [sys.executable, str(RUNNER), str(command["script"])]
    argv = [str(part) for part in command.get("argv") or ()]
    if not argv:
        raise ValueError("the job has nothing to run (empty command)")
    return argv


def spawn(
    command: Mapping[str, Any], *, env: Mapping[str, str], files: JobFiles
) -> subprocess.Popen[bytes]:
    """Start the job's process in its own session, output appended to its files.
    Raises OSError when it cannot be started (missing file, not executable, bad cwd). Its
    folder is made when missing (usually it is made ahead, by :class:`FolderMaker`)."""
    try:
        out = os.open(files.stdout, _APPEND, 0o644)
    except FileNotFoundError:
        files.folder.mkdir(parents=True, exist_ok=True)
        out = os.open(files.stdout, _APPEND, 0o644)
    try:
        err = os.open(files.stderr, _APPEND, 0o644)
        try:
            return subprocess.Popen(
                argv_for(command),
                cwd=command.get("cwd") or None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(err)
    finally:
        os.close(out)


class ForkServer:
    """The runner's fork server, ``python _runner.py --serve``, kept by the engine: a job is
    forked from an interpreter that has started already, so a Python job begins about a
    millisecond after it is due instead of after an interpreter's start-up (~25 ms here,
    more on a busy machine), and costs no more CPU than a fork.

    A job can also be *held* (:meth:`submit` with ``hold``): forked ahead, set up (session,
    output files, folder, environment) and waiting for :meth:`go`, which is one signal.
    That is how the engine starts a job at its slot without paying for the fork then. A
    held executable waits in a shell, on a pipe this side keeps the other end of: its go
    is a line written there (see ``_runner.serve``).

    The protocol is ``_runner.serve``'s: one JSON request per line, one reply per request,
    and a line for each job's end. Used from the engine's thread only. When the server
    cannot be started or dies, requests fail with OSError and the engine starts the job
    the plain way."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._pending = b""
        self._waiting: collections.deque[int] = collections.deque()  # tickets, in order
        self._answers: dict[int, int | OSError] = {}
        self._tickets = itertools.count(1)
        self._exits: dict[int, int] = {}
        self._requests: socket.socket | None = None
        self._pipes: dict[int, _GoPipe] = {}  # a held executable's, by ticket until forked
        self._piped: dict[int, _GoPipe] = {}  # then by pid
        self.generation = 0
        """Counts the servers started: a held child of an earlier one cannot be trusted
        (its end would never be reported)."""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (again, when it died). Raises OSError."""
        if self.alive:
            return
        self._fail_waiting("the fork server was restarted")
        self._close_requests()
        ours, theirs = socket.socketpair()  # a socket: it carries pipes with the requests
        try:
            self._process = subprocess.Popen(
                [sys.executable, str(RUNNER), SERVE_FLAG],
                stdin=theirs.fileno(),
                stdout=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._requests = ours
        assert self._process.stdout is not None
        os.set_blocking(self._process.stdout.fileno(), False)
        self._pending = b""
        self.generation += 1

    def run(self, command: Mapping[str, Any], *, env: Mapping[str, str], files: JobFiles) -> int:
        """Fork the job ``command`` with ``env``, output appended to its files; returns its
        pid. Raises OSError when the server is gone or refuses (a missing working
        folder)."""
        outcome = self.run_many([(command, env, files)])[0]
        if isinstance(outcome, OSError):
            raise outcome
        return outcome

    def run_many(
        self, jobs: Sequence[tuple[Mapping[str, Any], Mapping[str, str], JobFiles]]
    ) -> list[int | OSError]:
        """Fork several jobs ``(command, env, files)`` at once: all requests are sent
        before the first answer is read, so each starts as soon as the server gets to it.
        Returns the pid of each, or the OSError that kept it from starting. Raises OSError
        when the server is gone."""
        tickets = self.submit(jobs)
        return [self.answer(ticket, timeout=10.0) for ticket in tickets]

    def submit(
        self,
        jobs: Sequence[tuple[Mapping[str, Any], Mapping[str, str], JobFiles]],
        *,
        hold: float | None = None,
    ) -> list[int]:
        """Send the requests for ``jobs`` without waiting for the answers; returns a ticket
        for each (see :meth:`answer`). With ``hold`` each child waits for :meth:`go`, at
        most ``hold`` seconds, before it runs anything. Raises OSError when the server is
        gone."""
        if not jobs:
            return []
        self.start()
        requests = self._requests
        assert requests is not None
        lines: list[tuple[str, _GoPipe | None]] = []
        for command, env, files in jobs:
            files.folder.mkdir(parents=True, exist_ok=True)
            request: dict[str, Any] = {
                "cwd": command.get("cwd") or None,
                "env": dict(env),
                "stdout": str(files.stdout),
                "stderr": str(files.stderr),
            }
            if command.get("kind") == "python" or (
                command.get("script") and not command.get("argv")
            ):
                request["script"] = str(command["script"])
            else:
                request["argv"] = argv_for(command)  # ValueError when there is nothing to run
            pipe = None
            if hold is not None:
                request["hold"] = hold
                if "argv" in request:
                    request["go"] = "pipe"
                    pipe = _GoPipe(deadline=time.monotonic() + hold)
            lines.append((json.dumps(request) + "\n", pipe))
        try:
            _send(requests, lines)
        except OSError as exc:
            for _, pipe in lines:
                if pipe is not None:
                    pipe.close()
            raise OSError(f"the fork server is gone: {exc}") from exc
        tickets = [next(self._tickets) for _ in jobs]
        self._waiting.extend(tickets)
        for ticket, (_, pipe) in zip(tickets, lines, strict=True):
            if pipe is not None:
                self._pipes[ticket] = pipe
        return tickets

    def answer(self, ticket: int, *, timeout: float) -> int | OSError:
        """The pid the request ``ticket`` forked, or the OSError that kept it from
        starting, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while ticket not in self._answers:
            if ticket not in self._waiting:
                return OSError("the fork server did not answer (it was restarted)")
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                if not self.alive:
                    self._fail_waiting("the fork server is gone")
                    continue
                return OSError("the fork server did not answer")
        return self._answers.pop(ticket)

    def poll(self) -> dict[int, int | OSError]:
        """The answers that have come, by ticket, without waiting (each given once). Ends
        the wait of the held executables whose ``hold`` has passed."""
        while self._read(0):
            pass
        now = time.monotonic()
        for pid in [pid for pid, pipe in self._piped.items() if pipe.deadline <= now]:
            self._piped.pop(pid).close()
        answers, self._answers = self._answers, {}
        return answers

    def go(self, pid: int) -> bool:
        """Start the held child ``pid``; False when it is gone (or gave up waiting)."""
        pipe = self._piped.pop(pid, None)
        if pipe is None:
            try:
                os.kill(pid, GO_SIGNAL)
            except ProcessLookupError:
                return False
            return True
        try:
            return pipe.deadline > time.monotonic() and os.write(pipe.write_end, b"g\n") == 2
        except BrokenPipeError:  # its shell is gone
            return False
        finally:
            pipe.close()

    def exited(self, pid: int) -> bool:
        """True once the server has reported the end of its child ``pid`` (a held child
        that gave up waiting, say); the report stays for :meth:`exit_code`."""
        return pid in self._exits

    def exit_code(self, pid: int, *, timeout: float = 0.0) -> int | None:
        """The exit code of the job ``pid`` (negative: the signal that ended it) once the
        server has reported it, waiting up to ``timeout`` seconds; None when not (yet)
        known."""
        deadline = time.monotonic() + timeout
        while pid not in self._exits:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                break
        return self._exits.pop(pid, None)

    def forget(self, pid: int) -> None:
        """Drop the end report of ``pid`` (a held child that was never started), and end
        its wait when it still waits."""
        self._exits.pop(pid, None)
        pipe = self._piped.pop(pid, None)
        if pipe is not None:
            pipe.close()

    def close(self) -> None:
        """Stop the server (jobs it started run on)."""
        process, self._process = self._process, None
        self._fail_waiting("the fork server was closed")
        for pipe in self._piped.values():  # the held executables end too
            pipe.close()
        self._piped.clear()
        self._close_requests()
        if process is None:
            return
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()

    def _close_requests(self) -> None:
        if self._requests is not None:
            self._requests.close()  # the server's stdin: it ends
            self._requests = None

    def _fail_waiting(self, why: str) -> None:
        while self._waiting:
            ticket = self._waiting.popleft()
            self._answer(ticket, OSError(why))

    def _answer(self, ticket: int, outcome: int | OSError) -> None:
        self._answers[ticket] = outcome
        pipe = self._pipes.pop(ticket, None)
        if pipe is None:
            return
        if isinstance(outcome, OSError):
            pipe.close()
        else:
            self._piped[outcome] = pipe

    def _read(self, timeout: float) -> bool:
        """Take in what the server wrote, waiting up to ``timeout`` for something. False
        when nothing came (or the server is gone)."""
        process = self._process
        if process is None or process.stdout is None:
            return False
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(process.stdout.fileno(), 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        *lines, self._pending = (self._pending + data).split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "exited" in message:
                self._exits[int(message["exited"])] = int(message["code"])
            elif self._waiting:
                ticket = self._waiting.popleft()
                error = message.get("error")
                self._answer(
                    ticket, OSError(str(error)) if error is not None else int(message["pid"])
                )
        return True


@dataclass
class _GoPipe:
    """The pipe a held executable waits on, this side's end (its go: ``g`` written there;
    closed without it, the executable ends having run nothing), and until when it may be
    given."""

    deadline: float
    read_end: int = -1
    write_end: int = -1

    def __post_init__(self) -> None:
        self.read_end, self.write_end = os.pipe()

    def close(self) -> None:
        for fd in (self.read_end, self.write_end):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.read_end = self.write_end = -1

    def sent(self) -> None:
        """The read end went to the fork server: this side keeps the write end only."""
        os.close(self.read_end)
        self.read_end = -1


def _send(requests: socket.socket, lines: Sequence[tuple[str, _GoPipe | None]]) -> None:
    """Send the request ``lines`` to the fork server in order, each pipe's read end with
    its line (one descriptor per message, the server pairs them in order)."""
    plain: list[str] = []
    for line, pipe in lines:
        if pipe is None:
            plain.append(line)
            continue
        if plain:
            requests.sendall("".join(plain).encode())
            plain.clear()
        data = line.encode()
        sent = socket.send_fds(requests, [data], [pipe.read_end])
        pipe.sent()
        if sent < len(data):
            requests.sendall(data[sent:])
    if plain:
        requests.sendall("".join(plain).encode())


@dataclass
class ProgressReading:
    fraction: float | None
    message: str | None
    mtime_ns: int = field(default=0)


def read_progress(files: JobFiles, last_mtime_ns: int) -> ProgressReading | None:
    """The job's progress report when it changed since ``last_mtime_ns``; None otherwise or
    when it is missing or unreadable (a half-written file is never seen: it is replaced
    atomically)."""
    try:
        mtime = files.progress.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    if mtime == last_mtime_ns:
        return None
    try:
        data = json.loads(files.progress.read_text("utf-8"))
        fraction = data.get("fraction")
        fraction = None if fraction is None else min(1.0, max(0.0, float(fraction)))
        message = data.get("message")
        return ProgressReading(
            fraction=fraction,
            message=str(message)[:500] if message is not None else None,
            mtime_ns=mtime,
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def read_result(files: JobFiles) -> tuple[int | None, str | None] | None:
    """``(exit code, error)`` written by the Python runner, or None when there is none."""
    try:
        data = json.loads(files.result.read_text("utf-8"))
        code = data.get("exitCode")
        error = data.get("error")
        return (int(code) if code is not None else None, str(error) if error else None)
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def error_from_output(files: JobFiles, exit_code: int | None) -> str:
    """Why an executable failed: the last line it wrote to stderr, else its exit status."""
    try:
        with files.stderr.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            tail = handle.read().decode("utf-8", "replace")
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        if lines:
            return lines[-1][:500]
    except FileNotFoundError:
        pass
    if exit_code is None:
        return "ended with an unknown exit status"
    if exit_code < 0:
        try:
            return f"killed by signal {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    return f"exit code {exit_code}"
