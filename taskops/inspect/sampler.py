"""``RunspaceSampler``: one background thread that reads the live runspaces of this host.

Each tick it asks its sources (if any) for processes found outside the engine and opens or
closes their rows, then reads every live runspace of this host with psutil and stores one
sample per runspace (``Store.record_samples``): resident memory, threads, open handles.
Those samples are the memory graph's history; older ones are pruned about once a minute.

Process identity is ``(pid, create_time)``: a pid alone is reused by the system. The
``psutil.Process`` objects are cached under that key, so a reused pid is never read as if
it were the old process. A runspace whose process is gone (or whose pid now belongs to
another process) is closed as ``Broken`` when it is the engine or a kernel; a worker's end
is the engine's to record (with the job's exit code), so the sampler only stops reading it.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import psutil

from taskops.clock import Clock, SystemClock
from taskops.inspect.diagnostics import process_of, read_usage
from taskops.inspect.processes import create_time_of, is_same_process
from taskops.model import Availability, RunspaceKind, RunspaceState
from taskops.store.store import RunspaceRow, RunspaceSample, Store

__all__ = ["DiscoveredProcess", "RunspaceSampler", "RunspaceSource"]

_log = logging.getLogger("taskops.inspect")


@dataclass(frozen=True, kw_only=True)
class DiscoveredProcess:
    """A process a ``RunspaceSource`` found: what its runspace row says about it.

    ``create_time`` None means "read it from the pid now"; ``availability`` is written with
    every sample, so a source can report a kernel going from Available to Busy."""

    pid: int
    kind: RunspaceKind
    owner: str
    purpose: str | None = None
    app: str | None = None
    create_time: float | None = None
    availability: Availability = Availability.AVAILABLE


class RunspaceSource(Protocol):
    """Finds runspace processes the engine does not start (Jupyter kernels of the server).

    The sampler opens a row for each process ``discover()`` reports and closes (``Closed``)
    the rows it opened for this source once their process is no longer reported."""

    def discover(self) -> Iterable[DiscoveredProcess]:
        """The processes that are runspaces now. May raise; the sampler then leaves this
        source's rows as they are until the next tick."""
        ...


class RunspaceSampler:
    """Samples the live runspaces of this host every ``interval`` seconds in a daemon
    thread (``start()`` / ``stop()``), or once per ``sample_once()`` call.

    Samples older than ``history_seconds`` and runspaces closed more than a day ago are
    pruned about once a minute (by ``clock`` time). No exception ends the thread: it is
    logged (logger ``taskops.inspect``) and the next tick goes on.
    """

    PRUNE_EVERY = timedelta(seconds=60)
    """How often old samples and old closed runspaces are deleted."""

    KEEP_CLOSED = timedelta(days=1)
    """How long a closed runspace stays listed (``include_closed``)."""

    def __init__(
        self,
        store: Store,
        *,
        interval: float = 2.0,
        clock: Clock | None = None,
        history_seconds: float = 3600.0,
        sources: Sequence[RunspaceSource] = (),
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, not {interval!r}")
        if history_seconds <= 0:
            raise ValueError(f"history_seconds must be > 0, not {history_seconds!r}")
        self.store = store
        self.interval = float(interval)
        self.clock: Clock = clock or SystemClock()
        self.history = timedelta(seconds=history_seconds)
        self.sources = tuple(sources)
        self.host = socket.gethostname()
        self._me = os.getpid()
        self._myself = psutil.Process(self._me)
        self._processes: dict[tuple[int, float], psutil.Process] = {}
        # per source (by position): the ids of the rows opened for what it reported last
        self._source_rows: dict[int, set[int]] = {}
        self._availability: dict[int, Availability] = {}
        self._last_prune: datetime | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the sampling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the sampling thread (the first tick is at once). Raises RuntimeError when
        it runs already; a stopped sampler may be started again."""
        if self.running:
            raise RuntimeError("the runspace sampler is running already")
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name="taskops-runspace-sampler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """End the sampling thread and wait up to ``timeout`` seconds for it (a tick in
        progress finishes first). Does nothing when it is not running."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is not None and not thread.is_alive():
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self.sample_once()
            except Exception:  # a locked or closed store, a psutil surprise: try next tick
                _log.exception("runspace sampling failed; trying again in %g s", self.interval)
            if self._stopping.wait(self._until_next_tick()):
                return

    def _until_next_tick(self) -> float:
        """Seconds until the next tick: ``interval``, moved (when it is a second or more)
        to the next half-second past a whole second. Slots fall on whole seconds: a tick
        there would take its milliseconds of CPU from the jobs starting then."""
        if self.interval < 1.0:
            return self.interval
        now = time.time()
        moment = now + self.interval
        return math.floor(moment) + 0.5 + (1.0 if moment % 1.0 > 0.5 else 0.0) - now

    # -- one tick --------------------------------------------------------------------------

    def sample_once(self) -> list[RunspaceSample]:
        """Run one tick: discover through the sources, sample every live runspace of this
        host, record the samples, prune when due. Returns the samples recorded. Errors of
        one source or one runspace are logged and skipped; store errors propagate."""
        now = self.clock.now()
        for index, source in enumerate(self.sources):
            try:
                self._discover(index, source, now)
            except Exception:
                _log.exception(
                    "runspace source %r failed; its runspaces are left as they are", source
                )
        rows = self.store.runspace_rows(live_only=True, host=self.host)
        samples: list[RunspaceSample] = []
        wanted: set[tuple[int, float]] = set()
        for row in rows:
            try:
                sample = self._sample_row(row, now, wanted)
            except Exception:
                _log.exception("could not sample runspace %s (pid %s)", row.id, row.pid)
                continue
            if sample is not None:
                samples.append(sample)
        # drop the processes of runspaces that ended, so the cache does not grow forever
        for key in set(self._processes) - wanted:
            del self._processes[key]
        self.store.record_samples(samples, now=now)
        self._prune_when_due(now)
        return samples

    def _discover(self, index: int, source: RunspaceSource, now: datetime) -> None:
        seen: set[int] = set()
        for found in list(source.discover()):
            create_time = found.create_time or create_time_of(found.pid)
            if create_time is None:
                continue  # ended between the source's look and ours
            runspace_id = self.store.open_runspace(
                kind=found.kind,
                owner=found.owner,
                now=now,
                pid=found.pid,
                create_time=create_time,
                app=found.app,
                purpose=found.purpose,
                availability=found.availability,
            )
            seen.add(runspace_id)
            self._availability[runspace_id] = found.availability
        for runspace_id in self._source_rows.get(index, set()) - seen:
            if self.store.close_runspace(runspace_id, state=RunspaceState.CLOSED, now=now):
                _log.info("runspace %s closed: its source no longer reports it", runspace_id)
            self._availability.pop(runspace_id, None)
        self._source_rows[index] = seen

    def _is_me(self, row: RunspaceRow) -> bool:
        if row.pid != self._me:
            return False
        return row.create_time is None or is_same_process(self._me, row.create_time)

    def _process_of(self, row: RunspaceRow) -> psutil.Process | None:
        """The live process of a row, or None when it is gone or the pid is another one's."""
        assert row.pid is not None and row.create_time is not None
        key = (row.pid, row.create_time)
        process = self._processes.get(key)
        if process is None:
            process = process_of(row.pid, row.create_time)
            if process is not None:
                self._processes[key] = process
            return process
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                return process
        except psutil.NoSuchProcess:
            pass
        return None

    def _sample_row(
        self, row: RunspaceRow, now: datetime, wanted: set[tuple[int, float]]
    ) -> RunspaceSample | None:
        if row.pid is None:
            return None  # opening: its process is not started yet
        process: psutil.Process | None
        if self._is_me(row):
            process = self._myself
        elif row.create_time is None:
            return None  # no start time to tell it from a process that reused the pid
        else:
            wanted.add((row.pid, row.create_time))
            process = self._process_of(row)
        if process is None:
            self._ended(row, now)
            return None
        try:
            usage = read_usage(process, with_children=row.kind == RunspaceKind.KERNEL.value)
        except psutil.NoSuchProcess:  # ended while we read it
            self._ended(row, now)
            return None
        return RunspaceSample(
            runspace_id=row.id,
            memory_mb=usage.memory_mb,
            thread_count=usage.thread_count,
            handle_count=usage.handle_count,
            availability=self._availability.get(row.id),
        )

    def _ended(self, row: RunspaceRow, now: datetime) -> None:
        if row.kind == RunspaceKind.WORKER.value:
            return  # the engine records a worker's end, with the job's exit code
        if self.store.close_runspace(row.id, state=RunspaceState.BROKEN, now=now):
            _log.warning(
                "runspace %s (%s, pid %s) is gone or its pid was reused: Broken",
                row.id,
                row.kind,
                row.pid,
            )

    def _prune_when_due(self, now: datetime) -> None:
        last = self._last_prune
        # a clock that went back (a fake one, or a corrected system clock) prunes too
        if last is not None and last <= now < last + self.PRUNE_EVERY:
            return
        self.store.prune_runspaces(
            samples_before=now - self.history, closed_before=now - self.KEEP_CLOSED
        )
        self._last_prune = now
