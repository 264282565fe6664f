"""Reading a runspace's process (its usage for the sampler, its details for diagnostics),
and ending a single process that is not a job.

The service layer may not touch psutil; it calls these. A process is always named by
``(pid, create_time)`` so that a reused pid is never read or signalled by mistake. Anything
the system does not let us read (``AccessDenied``) comes back as None, never as 0 or an
empty value that would look like a real reading.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psutil

from taskops.inspect.processes import is_same_process
from taskops.model import MASK, is_secret_key, iso, mask_secrets

__all__ = [
    "PARAMS_VARIABLE",
    "ProcessUsage",
    "leads_own_group",
    "mask_environment",
    "process_of",
    "read_diagnostics",
    "read_usage",
    "stop_process",
]

PARAMS_VARIABLE = "TASKOPS_PARAMS"
"""The variable holding a job's parameters as a JSON object (see ``engine.executor``)."""

_MB = 1024 * 1024

T = TypeVar("T")


def _mask_deep(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) else _mask_deep(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_deep(v) for v in value]
    return value


def mask_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` with every secret-looking variable's value masked. The value
    of ``TASKOPS_PARAMS`` stays a JSON text with its secret keys masked at any depth; when
    it is not JSON it is masked whole (it may hold anything)."""
    masked = mask_secrets(environ)
    raw = masked.get(PARAMS_VARIABLE)
    if isinstance(raw, str) and raw != MASK:
        try:
            masked[PARAMS_VARIABLE] = json.dumps(_mask_deep(json.loads(raw)))
        except ValueError:
            masked[PARAMS_VARIABLE] = MASK
    return {str(k): str(v) for k, v in masked.items()}


def _readable(read: Callable[[], T]) -> T | None:
    """``read()``, or None when the system does not let us (another user's process)."""
    try:
        return read()
    except psutil.AccessDenied:
        return None


def _open_handles(process: psutil.Process) -> int:
    if sys.platform == "win32":
        return process.num_handles()
    return process.num_fds()


def _mapped_files(process: psutil.Process) -> list[str] | None:
    """The sorted paths of the files the process has mapped into memory (its executable,
    shared libraries, extension modules); None where the system has no memory maps."""
    if not hasattr(process, "memory_maps"):  # macOS
        return None
    # pseudo mappings ("[heap]", "[anon]") and deleted files are not files on disk
    return sorted({m.path for m in process.memory_maps(grouped=True) if os.path.isfile(m.path)})


def process_of(pid: int, create_time: float) -> psutil.Process | None:
    """The ``psutil.Process`` of ``(pid, create_time)``, or None when that process is gone
    (or a zombie) and the pid is free or another process's. The object keeps its start
    time: its ``is_running()`` turns False once the pid is reused."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
    # is_same_process checks the pid's current process against create_time; is_running()
    # then says the object we hold is that one (psutil compares its own start time)
    if is_same_process(pid, create_time) and process.is_running():
        return process
    return None


@dataclass(frozen=True, kw_only=True)
class ProcessUsage:
    """What a process uses now; None means it could not be read (unknown, not zero)."""

    memory_mb: float | None
    thread_count: int | None
    handle_count: int | None


def read_usage(process: psutil.Process, *, with_children: bool = False) -> ProcessUsage:
    """Resident memory (MB), threads and open handles (file descriptors on POSIX) in one
    ``oneshot()`` read; ``with_children`` adds the resident memory of its descendants (a
    kernel's subprocesses). Raises ``psutil.NoSuchProcess`` when the process has ended."""
    with process.oneshot():
        rss = _readable(lambda: process.memory_info().rss)
        threads = _readable(process.num_threads)
        handles = _readable(lambda: _open_handles(process))
        children = _readable(lambda: process.children(recursive=True)) if with_children else []
    if rss is not None:
        for child in children or []:
            try:
                rss += child.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # ended meanwhile, or not ours to read: counted as nothing
    return ProcessUsage(
        memory_mb=round(rss / _MB, 2) if rss is not None else None,
        thread_count=threads,
        handle_count=handles,
    )


def read_diagnostics(pid: int, create_time: float) -> dict[str, Any] | None:
    """What the process ``(pid, create_time)`` is doing now: ``commandLine`` (list),
    ``cwd``, ``environment`` (secrets masked, see ``mask_environment``), ``threadCount``,
    ``openFiles``, ``handleCount``, ``memory`` (``rssMB``, ``vmsMB``, ``ussMB``),
    ``status``, ``children`` (descendants, recursively), ``modules`` (the sorted, unique
    paths of the files mapped into its memory: executable, shared libraries, extension
    modules) and ``processCreatedAt`` (ISO). A value the system does not let us read is
    None. Returns None when the process is gone or the pid now belongs to another
    process."""
    process = process_of(pid, create_time)
    if process is None:
        return None
    try:
        with process.oneshot():
            memory = _readable(process.memory_info)
            # USS walks the process's memory maps: often denied, and slower; optional
            full = _readable(process.memory_full_info)
            environ = _readable(process.environ)
            files = _readable(process.open_files)
            children = _readable(lambda: process.children(recursive=True))
            return {
                "commandLine": _readable(process.cmdline),
                "cwd": _readable(process.cwd),
                "environment": mask_environment(environ) if environ is not None else None,
                "threadCount": _readable(process.num_threads),
                "openFiles": len(files) if files is not None else None,
                "handleCount": _readable(lambda: _open_handles(process)),
                "memory": {
                    "rssMB": round(memory.rss / _MB, 2) if memory is not None else None,
                    "vmsMB": round(memory.vms / _MB, 2) if memory is not None else None,
                    "ussMB": round(full.uss / _MB, 2) if full is not None else None,
                },
                "status": _readable(process.status),
                "children": len(children) if children is not None else None,
                "modules": _readable(lambda: _mapped_files(process)),
                "processCreatedAt": iso(datetime.fromtimestamp(process.create_time(), tz=UTC)),
            }
    except psutil.NoSuchProcess:  # also a zombie: it ended while we read it
        return None


def leads_own_group(pid: int) -> bool:
    """True when ``pid`` is the leader of its process group (started in its own session,
    as jobs and Jupyter kernels are), so that the whole group can be signalled; False when
    it is not, or is gone."""
    try:
        return os.getpgid(pid) == pid
    except (ProcessLookupError, PermissionError):
        return False


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(process: psutil.Process, deadline: float) -> bool:
    while _alive(process):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def stop_process(pid: int, create_time: float, *, grace: float) -> str:
    """Stop the single process ``(pid, create_time)``: SIGTERM, up to ``grace`` seconds,
    SIGKILL, then wait until it is gone (a zombie of our own child counts as gone; its
    parent reaps it). Returns ``"gone"`` when it was not running (or the pid is another
    process now), ``"term"`` when SIGTERM sufficed, ``"kill"`` when SIGKILL was needed.
    Raises PermissionError when the process may not be signalled by us. Blocks up to
    ``grace`` plus a few seconds."""
    process = process_of(pid, create_time)
    if process is None:
        return "gone"
    try:
        # psutil's send_signal checks the start time first, so a reused pid is never hit
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return "gone"
    except psutil.AccessDenied as exc:
        raise PermissionError(f"not allowed to signal process {pid}") from exc
    if _wait_gone(process, time.monotonic() + grace):
        return "term"
    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(signal.SIGKILL)
    _wait_gone(process, time.monotonic() + 5.0)
    return "kill"
