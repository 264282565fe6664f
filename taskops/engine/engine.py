"""``Engine``: schedules a site's tasks and runs its jobs as process groups.

One thread runs the loop; it never sleeps longer than ``poll_interval`` (a fraction of a
second) so that queued jobs and stop requests written by other processes are seen at once,
and wall-clock jumps are noticed. Child exits wake it through pidfds. The stop ladder of a
job (SIGTERM, grace, SIGKILL) runs in a short-lived thread of its own, so a stubborn job
never holds the loop up.

Only the holder of the store's lease schedules and starts jobs; another engine on the same
store waits as standby and takes over when the lease expires. A slot ``(task, time)`` is
unique in the store, so no slot runs twice whatever crashes. A crashed engine leaves its
jobs running; the next one adopts those whose process is still the same (pid, start time
and environment tag) and records the end of the others.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import psutil

from taskops.clock import Clock, SystemClock
from taskops.cron import Schedule
from taskops.engine.executor import (
    RUNNER,
    SERVE_FLAG,
    FolderMaker,
    ForkServer,
    JobFiles,
    environment_for,
    error_from_output,
    job_name,
    read_progress,
    read_result,
    spawn,
)
from taskops.engine.notify import Notifier
from taskops.engine.scheduler import ScheduledTask, Scheduler
from taskops.inspect.processes import (
    JOB_TAG,
    STOP_GRACE_SECONDS,
    STORE_TAG,
    boot_clock_ns,
    create_time_of,
    is_same_process,
    start_time_between,
    start_time_of,
    stop_ladder,
)
from taskops.model import (
    Availability,
    JobOwner,
    JobState,
    MisfirePolicy,
    RunspaceKind,
    RunspaceState,
)
from taskops.store import JobEnd, JobEndResult, JobStart, Store

__all__ = [
    "CLAIM_AHEAD",
    "PREPARE_AHEAD",
    "PREPARE_PER_JOB",
    "Engine",
    "TaskDefinition",
    "TaskSource",
]

_log = logging.getLogger("taskops.engine")

PREPARE_AHEAD = 0.5
"""Seconds before a slot that its job is queued and its process forked and held, so that at
the slot the engine only claims the job and says "go" (one signal, or a line on a held
executable's pipe). A slot of many jobs is prepared earlier, ``PREPARE_PER_JOB`` more per
job, up to ``PREPARE_AHEAD_MAX``."""

PREPARE_PER_JOB = 0.002
"""Seconds more of lead per job due at a slot: all of a job's preparation has to be done
before the slot, or it takes the cores from the jobs starting then. Here, making a job's
folder and its two output files costs ~1.2 ms of CPU (the filesystem's; a thread of the
engine makes them) and queuing it ~0.15 ms (the engine's thread). At 1 ms a job, the folders
of 2,000 jobs due at one minute were made until the slot itself; at 2 ms they are queued
4.5 s ahead, with room for a slower moment of the machine."""

PREPARE_AHEAD_MAX = 5.0
"""The most seconds ahead of its slot that a job is queued, however many are due with it."""

CLAIM_AHEAD = 0.01
"""Seconds before its slot that a job queued ahead is claimed (``Running``, startedAt its
slot), so that the store's transaction is done when the slot comes; the engine then waits
for the slot itself and starts it."""

QUIET_AFTER_START = 0.05
"""Seconds after jobs were started during which the engine puts off what can wait (the
heartbeat, reloading the tasks, recording job ends, the stop-request poll, holding the
next jobs, looking at the queue when nothing new can be there): the jobs just started get
the cores first (five due at once on two cores: the last one's first line ~2 ms after its
slot)."""

PROGRESS_EVERY = 0.15
"""Seconds between two reads of the running jobs' progress reports (a look at each job's
``progress.json``): each turn when idle (a turn every poll interval), but not each turn of
a burst of jobs, where at eight at a time a turn comes every few milliseconds and the
reads took 3% of the engine's time."""

LOOK_AT_LEAST = 1.0
"""Seconds between two reads of the queue at most, even when the store says nothing was
committed since the last (``Store.change_count``; else the queue is read each poll
interval): a job queued earlier for a slot still to come becomes due without a commit."""

HOLD_LIMIT = 300.0
"""Seconds a held process waits for its "go" before it gives up and ends, having run
nothing (its job then starts the plain way, when its turn comes). A held executable's wait
is ended by the fork server's owner (``ForkServer.poll``), or when the engine is gone."""


@dataclass(frozen=True, kw_only=True)
class TaskDefinition:
    """A task as the engine runs it. ``command`` is what a job of it stores and runs (see
    ``executor``): kind, script or argv, cwd, params, env, maxRuntime, killOnTimeout."""

    id: str
    app: str
    name: str
    enabled: bool
    schedule: Schedule
    misfire: MisfirePolicy
    max_instances: int
    max_failures: int
    command: Mapping[str, Any]


class TaskSource(Protocol):
    """Where the engine gets its tasks (the service implements it; the engine sits below
    the service and never imports it)."""

    def revision(self) -> Hashable:
        """Changes whenever any task definition may have changed; cheap to call."""
        ...

    def definitions(self) -> list[TaskDefinition]:
        """Every task of the site, enabled or not."""
        ...

    def disable(self, task_id: str, reason: str) -> None:
        """Disable a task on the engine's behalf (audited)."""
        ...


@dataclass
class _Running:
    """A job whose process this engine watches."""

    job_id: int
    name: str
    task_id: str | None
    owner: str
    pid: int
    create_time: float
    files: JobFiles
    started_at: datetime
    max_runtime: float | None
    kill_on_timeout: bool
    runspace_id: int | None
    popen: subprocess.Popen[bytes] | None = None
    forked: bool = False  # started by the fork server: its exit code comes from there
    writes_result: bool = True  # a Python job (the runner writes result.json)
    pidfd: int | None = None
    exited: bool = False
    exit_code: int | None = None
    stopping: str | None = None  # "stop", "timeout", "shutdown", "orphans"
    stop_reason: str | None = None
    ladder: threading.Thread | None = None
    ladder_done: threading.Event = field(default_factory=threading.Event)
    over_time: bool = False
    progress_mtime: int = 0


@dataclass
class _Held:
    """A queued job whose process is forked already and waits for its "go" (see
    ``ForkServer.submit``): a job queued ahead of its slot, or next in line for a free
    place under ``maxConcurrentTasks``."""

    job_id: int
    runspace_id: int
    ticket: int
    generation: int
    pid: int | None = None
    create_time: float | None = None


@dataclass(frozen=True)
class _Ahead:
    """A job this engine queued ahead of its slot."""

    start: JobStart
    slot: datetime


@dataclass
class _Start:
    """A claimed job about to start: what starting it needs."""

    job_id: int
    name: str
    task_id: str | None
    owner: str
    started_at: datetime
    files: JobFiles
    command: dict[str, Any]
    runspace_id: int
    env: dict[str, str]


class Engine:
    """The scheduler and executor of one site.

    ``start()`` runs it in a background thread; ``stop()`` ends it gracefully: running jobs
    are stopped by the ladder (state ``Stopped``, reason shutdown) and the lease is handed
    back. ``run()`` runs the loop in the calling thread until ``stop()``.
    """

    def __init__(
        self,
        *,
        store: Store,
        source: TaskSource,
        settings: Callable[[], Mapping[str, Any]],
        site_dir: Path,
        data_dir: Path,
        jobs_dir: Path,
        clock: Clock | None = None,
        poll_interval: float = 0.2,
        lease_ttl: float = 10.0,
        heartbeat: float | None = None,
        misfire_grace: float = 30.0,
        stop_grace: float = STOP_GRACE_SECONDS,
        reload_interval: float = 1.0,
        sampler: Any = None,
        fork_server: bool = True,
    ) -> None:
        self.store = store
        self.source = source
        self.settings = settings
        self.site_dir = site_dir
        self.data_dir = data_dir
        self.jobs_dir = jobs_dir
        self.clock: Clock = clock or SystemClock()
        self.poll_interval = poll_interval
        self.lease_ttl = lease_ttl
        self.heartbeat = heartbeat if heartbeat is not None else min(2.0, lease_ttl / 4)
        self.stop_grace = stop_grace
        self.reload_interval = reload_interval
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.notifier = Notifier(store, settings, clock=self.clock)
        self.scheduler = Scheduler(misfire_grace=misfire_grace)
        self._sampler = sampler
        self._host = socket.gethostname()
        self._store_id = store.store_id()
        self._running: dict[int, _Running] = {}
        self._ends: list[JobEnd] = []  # seen this turn, recorded together by _record_ends
        self._ends_retry_at = 0.0
        self._ends_seen = 0.0  # when the first of the ends not recorded yet was noted
        self._definitions: dict[str, TaskDefinition] = {}
        self._revision: Hashable = object()
        self._active = False
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._runspace_id: int | None = None
        self._checkpoint: datetime | None = None
        self._last_beat = 0.0
        self._last_release = 0.0
        self._look_now = True  # at the queue in the next turn (else once a poll interval)
        self._last_look = 0.0
        self._last_read = 0.0  # the queue last read (``_last_look``: last looked at)
        self._seen_changes: int | None = None  # the store's change count at the last look
        self._last_reload = 0.0
        self._last_retention = 0.0
        self._last_standby_try = 0.0
        self._last_stop_poll = 0.0
        self._last_progress = 0.0
        self._woken = False
        self._stop_jobs_on_exit = True
        self._forks: ForkServer | None = ForkServer() if fork_server else None
        self._held: dict[int, _Held] = {}  # by job id
        self._ahead: dict[int, _Ahead] = {}  # queued ahead of their slot, by job id, in order
        self._ahead_slots: collections.Counter[datetime] = collections.Counter()  # their slots
        self._prepare_now = True
        self._last_prepare = 0.0
        self._folders = FolderMaker()

    # -- public ------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True while this engine holds the lease (schedules and starts jobs)."""
        return self._active

    def start(self) -> None:
        """Run the loop in a background thread (returns at once)."""
        if self._thread is not None:
            raise RuntimeError("the engine is started already")
        self._thread = threading.Thread(target=self.run, name="taskops-engine", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Make the loop look at the store now (a job was queued or a stop asked for)."""
        self._woken = True
        self._prepare_now = self._look_now = True
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def stop(self, *, stop_jobs: bool = True, timeout: float | None = None) -> None:
        """End the engine. With ``stop_jobs`` (the default) its running jobs are stopped by
        the ladder first and recorded as ``Stopped`` (reason: shutdown); without, they are
        left running for the next engine to adopt. Returns when the loop has ended."""
        self._stop_jobs_on_exit = stop_jobs
        self._stopping.set()
        self.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait_active(self, timeout: float) -> bool:
        """Wait until this engine holds the lease; False at the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._active:
                return True
            if self._stopped.is_set():
                return False
            time.sleep(0.02)
        return self._active

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        """The engine loop, in the calling thread, until ``stop()``."""
        try:
            self._open_engine_runspace()
            if self._sampler is not None:
                self._sampler.start()
            while not self._stopping.is_set():
                try:
                    self._step()
                except Exception:  # one bad turn (a locked store, a full disk) is retried
                    _log.exception("engine step failed; retrying")
                    self._wait(1.0)
            self._shutdown()
        finally:
            self._stopped.set()

    def _step(self) -> None:
        mono = time.monotonic()
        now = self.clock.now()
        if not self._active:
            if mono - self._last_standby_try >= min(1.0, self.lease_ttl / 4):
                self._last_standby_try = mono
                self._try_acquire(now)
        elif self._due(mono - self._last_beat, self.heartbeat):
            self._beat(now)
        if self._active:
            if self._due(mono - self._last_reload, self.reload_interval):
                self._last_reload = mono
                self._reload(now)
            self._fire_due(now)
            if self._dispatch(self.clock.now()):
                self._last_release = time.monotonic()
            self._prepare(self.clock.now())  # (``_dispatch`` may have waited for a slot)
            self._handle_stop_requests()
            if mono - self._last_retention >= 3600:
                self._last_retention = mono
                self._retention(now)
            self._checkpoint = now
        self._watch_running(now)
        self._wait(self._timeout(now))

    def _timeout(self, now: datetime) -> float:
        timeout = self.poll_interval
        if self._active:
            wake = self.scheduler.next_wakeup()
            if wake is not None:
                lead = self._lead(wake)
                timeout = min(timeout, max(0.0, (wake - now).total_seconds() - lead))
            coming = [slot for slot in self._ahead_slots if slot > now]
            if coming:
                timeout = min(timeout, max(0.0, (min(coming) - now).total_seconds() - CLAIM_AHEAD))
        if self._ends:  # recorded at most QUIET_AFTER_START after the first was seen
            left = QUIET_AFTER_START - (time.monotonic() - self._ends_seen)
            timeout = min(timeout, max(0.0, min(self._quiet_left(), left)))
        return timeout

    def _lead(self, slot: datetime) -> float:
        """Seconds before ``slot`` that its jobs are queued (``PREPARE_AHEAD``, more for a
        slot of many jobs); 0 without the fork server (a job then is queued at its slot)."""
        if self._forks is None:
            return 0.0
        jobs = self.scheduler.pending_at(slot)
        return min(PREPARE_AHEAD + PREPARE_PER_JOB * jobs, PREPARE_AHEAD_MAX)

    def _quiet_left(self) -> float:
        """Seconds left of the quiet moment after jobs were started (0 when none)."""
        return max(0.0, QUIET_AFTER_START - (time.monotonic() - self._last_release))

    def _due(self, elapsed: float, interval: float) -> bool:
        """Whether housekeeping done every ``interval`` seconds, ``elapsed`` since it was
        last done, is to be done now: when due, but in the quiet moment after jobs were
        started only once it is ``QUIET_AFTER_START`` overdue (jobs started turn after
        turn must not put it off for ever)."""
        if elapsed < interval:
            return False
        return self._quiet_left() == 0 or elapsed >= interval + QUIET_AFTER_START

    def _wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for job exits or a wake-up; the ends seen in one
        wake-up are recorded together (one store transaction)."""
        self._record_ends()  # those the turn saw (a job that could not start, say)
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
            else:
                running = self._running.get(key.data)
                if running is not None:
                    self._on_exit(running)
        for running in list(self._running.values()):
            if running.exited and running.ladder_done.is_set():
                self._finish(running)  # ended, and the ladder has cleared its group
            elif running.pidfd is None and not running.exited:
                # no pidfd (adopted, or an old kernel): polled
                self._poll_exit(running)
        self._record_ends()

    # -- lease -------------------------------------------------------------------------------

    def _try_acquire(self, now: datetime) -> None:
        current = self.store.lease()
        dead: str | None = None
        if (
            current is not None
            and current.holder
            and current.holder != self.holder
            and current.expires_at > now
            and current.host == self._host
            and not psutil.pid_exists(current.pid)
        ):
            # its engine died on this host: no need to wait for the lease to expire
            dead = current.holder
        before = self.store.acquire_lease(
            self.holder, pid=os.getpid(), now=now, ttl=self.lease_ttl, steal_from=dead
        )
        if before is None:
            return
        self._active = True
        self._last_beat = time.monotonic()
        _log.info("engine %s is active (lease taken)", self.holder)
        if self._forks is not None:
            try:  # ready before the first Python job is due
                self._forks.start()
            except OSError as exc:
                _log.warning("no fork server (%s): Python jobs start a new interpreter", exc)
        self._recover(now)
        self._definitions = {}
        self._revision = object()
        self._last_reload = time.monotonic()
        self._reload(now, since=before.checkpoint)

    def _beat(self, now: datetime) -> None:
        self._last_beat = time.monotonic()
        if not self.store.renew_lease(
            self.holder, now=now, ttl=self.lease_ttl, checkpoint=self._checkpoint
        ):
            _log.warning("engine %s lost its lease; standing by", self.holder)
            self._active = False
            # the jobs it queued ahead are the new holder's to start now
            self._let_go(list(self._held))
            self._ahead.clear()
            self._ahead_slots.clear()

    # -- tasks and slots ---------------------------------------------------------------------

    def _reload(self, now: datetime, since: datetime | None = None) -> None:
        revision = self.source.revision()
        if revision == self._revision:
            return
        self._revision = revision
        self._definitions = {d.id: d for d in self.source.definitions()}
        self.scheduler.set_tasks(
            (
                ScheduledTask(id=d.id, schedule=d.schedule, misfire=d.misfire)
                for d in self._definitions.values()
                if d.enabled
            ),
            now=now,
            since=since,
        )

    def _fire_due(self, now: datetime) -> None:
        """Queue the jobs of the slots due now, and (with the fork server) of those due
        within their lead (``_lead``): those wait in the queue for their slot, their process
        forked and held meanwhile (``_prepare``); their overlap check is made at the slot
        (``_dispatch``)."""
        wake = self.scheduler.next_wakeup()
        if wake is None:
            return
        until = now + timedelta(seconds=self._lead(wake))
        fires, missed = self.scheduler.due(now, until=until)
        for miss in missed:
            _log.info(
                "task %s missed its slots from %s on (misfire); next run %s",
                miss.task_id,
                miss.first.isoformat(),
                miss.resumes.isoformat() if miss.resumes else "never",
            )
        if not fires:
            return
        due = any(f.slot <= now for f in fires)
        active = self.store.active_jobs_by_task(now=now) if due else {}
        rows: list[dict[str, Any]] = []
        for fire in fires:
            definition = self._definitions.get(fire.task_id)
            if definition is None or not definition.enabled:
                continue
            busy = active.get(fire.task_id, 0)
            if fire.slot <= now and busy >= definition.max_instances:
                self.store.record_skip(
                    fire.task_id,
                    fire.slot,
                    reason=f"the previous run was still running ({busy} active)",
                    now=now,
                )
                _log.info("task %s slot %s skipped: still running", fire.task_id, fire.slot)
                continue
            rows.append(
                {
                    "name": job_name("Task", definition.name, fire.slot, definition.schedule.zone),
                    "owner": JobOwner.TASK_ENGINE.value,
                    "state": JobState.QUEUED,
                    "queued_at": now,
                    "task_id": definition.id,
                    "app": definition.app,
                    "command": dict(definition.command),
                    "scheduled_for": fire.slot,
                }
            )
            if fire.slot <= now:
                active[fire.task_id] = busy + 1
        # the slots due together go in at once; a slot another engine ran already is skipped
        ahead: list[JobFiles] = []  # their folders are made before the slot
        for row, job_id in zip(rows, self.store.insert_jobs(rows), strict=True):
            if job_id is None:
                continue
            if row["scheduled_for"] > now:
                ahead.append(JobFiles(self.jobs_dir / str(job_id)))
                start = JobStart(
                    job_id=job_id,
                    name=row["name"],
                    task_id=row["task_id"],
                    app=row["app"],
                    owner=row["owner"],
                )
                self._ahead[job_id] = _Ahead(start=start, slot=row["scheduled_for"])
                self._ahead_slots[row["scheduled_for"]] += 1
                self._prepare_now = True
            else:
                self._look_now = True
        self._folders.make(ahead)

    # -- starting jobs -----------------------------------------------------------------------

    def _dispatch(self, now: datetime) -> bool:
        """Start queued jobs, first in first out, up to ``maxConcurrentTasks`` running;
        True when any was started.

        A job whose process is held (``_prepare``) is claimed, with its process, in one
        transaction with the others; jobs queued ahead of their slot are claimed up to
        ``CLAIM_AHEAD`` before it. At the slot each held process gets its "go". The
        others then start together: Python jobs by one request to the fork server, then
        one transaction records their processes."""
        settings = self.settings()
        cap = int(settings.get("maxConcurrentTasks", 10))
        free = cap - len(self._running)
        if free <= 0:
            return False
        due_by = now + timedelta(seconds=CLAIM_AHEAD)
        mono = time.monotonic()
        if self._look_now or (
            mono - self._last_look >= self.poll_interval and self._queue_may_have_moved(mono)
        ):
            self._look_now, self._last_look, self._last_read = False, mono, mono
            found = self.store.queued_starts(limit=free, due_by=due_by)
            # more may wait: look again when a place frees, unless all are jobs this engine
            # queued ahead (those that follow them are known, see below)
            self._look_now = len(found) == free and any(j.job_id not in self._ahead for j in found)
        elif any(slot <= due_by for slot in self._ahead_slots):
            # of the queue only the jobs this engine queued ahead can be new: the first due,
            # without reading it (one stopped meanwhile is not claimed); a job queued by
            # another process waits for the next look, at most a poll interval
            found = list(
                itertools.islice(
                    (ahead.start for ahead in self._ahead.values() if ahead.slot <= due_by), free
                )
            )
        else:
            return False  # nothing new can be queued (another process's job: next poll)
        slots = {
            job.job_id: ahead.slot
            for job in found
            if (ahead := self._ahead.get(job.job_id)) is not None and ahead.slot > now
        }
        queued = self._overlap_checked(found, now)
        if not queued:
            return False
        if len(queued) == free and any(job.job_id in self._held for job in queued):
            self._prepare_now = True  # the held ones go: hold those next in line now
        self._collect_held()
        held = {
            job.job_id: (h.runspace_id, h.pid, h.create_time)
            for job in queued
            if (h := self._usable_held(job.job_id)) is not None
            and h.pid is not None  # (for mypy: a usable one has both)
            and h.create_time is not None
        }
        now = self.clock.now()
        early = {job.job_id: slots[job.job_id] for job in queued if job.job_id in slots}
        claims = self.store.start_jobs(queued, now=now, held=held, start_times=early)
        ready = sorted(
            (c for c in claims if c[0].job_id in held), key=lambda c: early.get(c[0].job_id, now)
        )
        for _, group in itertools.groupby(ready, key=lambda c: early.get(c[0].job_id, now)):
            self._release(list(group), early)  # forked and set up: one go each
        for job_id in set(held) - {claim.job_id for claim, _, _ in claims}:
            self._let_go([job_id])  # stopped or removed while it waited
        self._wait_until(
            max((early[c.job_id] for c, _, _ in claims if c.job_id in early), default=None)
        )
        prepared = []
        base = dict(os.environ)  # once a batch (~25 µs a job otherwise)
        for claim, command, runspace_id in claims:
            if claim.job_id in held:
                continue
            started_at = early.get(claim.job_id, now)
            files = JobFiles(self.jobs_dir / str(claim.job_id))
            try:
                env = self._environment(command, claim.job_id, runspace_id, files, base=base)
            except Exception as exc:  # a broken command row: the job fails
                self._fail_to_start(claim.job_id, claim.task_id, runspace_id, files, exc)
                continue
            prepared.append(
                _Start(
                    job_id=claim.job_id,
                    name=claim.name,
                    task_id=claim.task_id,
                    owner=claim.owner,
                    started_at=started_at,
                    files=files,
                    command=command,
                    runspace_id=runspace_id,
                    env=env,
                )
            )
        forked = [start for start in prepared if self._forkable(start.command)]
        outcomes = dict(zip((s.job_id for s in forked), self._fork_all(forked), strict=True))
        spawned_at: dict[int, tuple[int, int]] = {}  # the boot clock before and after
        for start in prepared:
            if start.job_id not in outcomes:
                try:
                    before = boot_clock_ns()
                    popen = spawn(start.command, env=start.env, files=start.files)
                    spawned_at[start.job_id] = (before, boot_clock_ns())
                    outcomes[start.job_id] = (popen.pid, popen)
                except Exception as exc:  # a missing program, a bad cwd, an empty command
                    outcomes[start.job_id] = exc
        started = []
        for start in prepared:
            outcome = outcomes[start.job_id]
            if isinstance(outcome, Exception):  # the job fails, saying why
                self._fail_to_start(
                    start.job_id, start.task_id, start.runspace_id, start.files, outcome
                )
                continue
            pid, process = outcome
            window = spawned_at.get(start.job_id)
            created = start_time_of(pid) if window is None else start_time_between(pid, *window)
            started.append((start, pid, created or time.time(), process))
        self.store.set_processes(
            [(start.job_id, start.runspace_id, pid, created) for start, pid, created, _ in started]
        )
        for start, pid, created, process in started:
            self._watch_started(start, pid, created, process, settings)
        return True

    def _queue_may_have_moved(self, mono: float) -> bool:
        """Whether the poll's look at the queue is worth a query: something was committed
        since the last one, or it is ``LOOK_AT_LEAST`` old. (Idle, the engine looks five
        times a second; most of what it costs then was these queries.)"""
        count = self.store.change_count()
        moved = count is None or count != self._seen_changes
        self._seen_changes = count
        if not moved and mono - self._last_read < LOOK_AT_LEAST:
            self._last_look = mono  # looked, in effect: nothing committed since
            return False
        return True

    def _environment(
        self,
        command: Mapping[str, Any],
        job_id: int,
        runspace_id: int,
        files: JobFiles,
        base: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The environment of a job of this engine (``environment_for``; ``base``: this
        process's environment, read once for a batch of jobs)."""
        return environment_for(
            command,
            job_id=job_id,
            store_id=self._store_id,
            runspace_id=runspace_id,
            site_dir=self.site_dir,
            data_dir=self.data_dir,
            files=files,
            base=base,
        )

    def _wait_until(self, when: datetime | None) -> None:
        """Sleep until ``when`` (a slot at most ``CLAIM_AHEAD`` away)."""
        if when is not None:
            delay = (when - self.clock.now()).total_seconds()
            if delay > 0:
                time.sleep(min(delay, CLAIM_AHEAD))

    def _overlap_checked(self, queued: list[JobStart], now: datetime) -> list[JobStart]:
        """The jobs of ``queued`` to start, after the check a job queued ahead of its slot
        skipped: its task must still be enabled, and its running jobs (and those queued
        before it) fewer than ``maxInstances``; else the slot is skipped (and recorded so
        when the task was busy)."""
        if not any(job.job_id in self._ahead for job in queued):
            return queued
        busy = collections.Counter(r.task_id for r in self._running.values() if r.task_id)
        keep: list[JobStart] = []
        dropped: list[int] = []
        skips: list[tuple[str, datetime, str]] = []
        for job in queued:
            ahead = self._pop_ahead(job.job_id)
            if ahead is not None and ahead.start.task_id is not None:
                task_id, slot = ahead.start.task_id, ahead.slot
                definition = self._definitions.get(task_id)
                if definition is None or not definition.enabled:
                    dropped.append(job.job_id)
                    continue
                if busy[task_id] >= definition.max_instances:
                    dropped.append(job.job_id)
                    reason = f"the previous run was still running ({busy[task_id]} active)"
                    skips.append((task_id, slot, reason))
                    continue
            if job.task_id:
                busy[job.task_id] += 1
            keep.append(job)
        if dropped:
            self.store.drop_queued(dropped)
            self._let_go(dropped)
        for task_id, slot, reason in skips:  # once its job is gone: run or skipped, not both
            self.store.record_skip(task_id, slot, reason=reason, now=now)
            _log.info("task %s slot %s skipped: still running", task_id, slot)
        return keep

    def _pop_ahead(self, job_id: int) -> _Ahead | None:
        """Forget that ``job_id`` was queued ahead of its slot; what was known of it."""
        ahead = self._ahead.pop(job_id, None)
        if ahead is not None:
            self._ahead_slots[ahead.slot] -= 1
            if self._ahead_slots[ahead.slot] <= 0:
                del self._ahead_slots[ahead.slot]
        return ahead

    def _release(
        self,
        claims: list[tuple[JobStart, dict[str, Any], int]],
        early: Mapping[int, datetime],
    ) -> None:
        """Start the held processes of ``claims``, jobs claimed for the same moment: at that
        moment (their slot, when claimed ahead of it) each gets its "go". The engine watches
        them from just before (a pidfd and a check of each process): that work is then
        not taken from the jobs as they start, on a machine with few cores."""
        now = self.clock.now()
        going: list[tuple[int, int]] = []  # (job id, pid)
        for claim, command, runspace_id in claims:
            held = self._held.pop(claim.job_id)
            assert held.pid is not None and held.create_time is not None
            start = _Start(
                job_id=claim.job_id,
                name=claim.name,
                task_id=claim.task_id,
                owner=claim.owner,
                started_at=early.get(claim.job_id, now),
                files=JobFiles(self.jobs_dir / str(claim.job_id)),
                command=command,
                runspace_id=runspace_id,
                env={},
            )
            if is_same_process(held.pid, held.create_time):
                self._watch_started(start, held.pid, held.create_time, None)
                going.append((claim.job_id, held.pid))
            else:
                self._fail_to_start(
                    claim.job_id,
                    claim.task_id,
                    runspace_id,
                    start.files,
                    OSError("its process, forked ahead, was gone"),
                )
        forks = self._forks
        assert forks is not None  # the processes were held by it
        self._wait_until(early.get(claims[0][0].job_id))
        for job_id, pid in going:
            # one gone since is watched: its end (a held process that gave up) is recorded
            if not forks.go(pid):
                _log.warning("job %s: its process, forked ahead, was gone at its go", job_id)

    def _usable_held(self, job_id: int) -> _Held | None:
        """The held process of ``job_id`` when it can be started (it waits, and its fork
        server is the current one); a held process that cannot is let go."""
        held = self._held.get(job_id)
        forks = self._forks
        if held is None or forks is None:
            return None
        if held.pid is None and held.generation == forks.generation:
            outcome = forks.answer(held.ticket, timeout=1.0)  # forked a moment ago
            if isinstance(outcome, int):
                held.pid, held.create_time = outcome, create_time_of(outcome)
        if (
            held.generation != forks.generation
            or held.pid is None
            or held.create_time is None
            or forks.exited(held.pid)
        ):
            self._let_go([job_id])
            return None
        return held

    def _worth_holding(self, command: Mapping[str, Any], job_id: int, now: datetime) -> bool:
        """A Python job is held whenever it waits (a fork now costs what a fork later
        does); an executable only before its slot. Once due, an executable waiting for a
        place is started the plain way when its turn comes: ``Popen`` from here costs
        less than a fork of the fork server and an exec (a burst of 2,000: 3 s instead of
        8)."""
        if command.get("kind") == "python":
            return True
        ahead = self._ahead.get(job_id)
        return ahead is not None and ahead.slot > now

    def _preparable(self, command: Mapping[str, Any], env: Mapping[str, str]) -> bool:
        """Whether a job's process can be forked ahead: a Python script, or an executable
        that can be found (one that cannot fails at its start, as without holding)."""
        if command.get("kind") == "python":
            return bool(command.get("script"))
        argv = command.get("argv") or ()
        if not argv:
            return False
        program = str(argv[0])
        if os.sep in program:
            path = Path(command.get("cwd") or ".", program)
            return path.is_file() and os.access(path, os.X_OK)
        return shutil.which(program, path=env.get("PATH", os.defpath)) is not None

    def _prepare(self, now: datetime) -> None:
        """Fork and hold the processes of the queued jobs next in line (at most
        ``maxConcurrentTasks`` held at once): the jobs queued ahead of their slot, and
        those waiting for a free place. Run when the queue moved, else once a second
        (``_due``: put off while jobs are starting)."""
        forks = self._forks
        if forks is None:
            return
        mono = time.monotonic()
        if not self._prepare_now and not self._due(mono - self._last_prepare, 1.0):
            self._collect_held()
            return
        self._prepare_now = False
        self._last_prepare = mono
        self._collect_held()
        self._forget_gone()
        cap = int(self.settings().get("maxConcurrentTasks", 10))
        room = cap - len(self._held)
        if room <= 0:
            return
        candidates = [
            (start, command)
            for start, command in self.store.next_queued(limit=cap + len(self._held))
            if start.job_id not in self._held and self._worth_holding(command, start.job_id, now)
        ][:room]
        if not candidates:
            return
        starts = [start for start, _ in candidates]
        commands = {start.job_id: command for start, command in candidates}
        runspaces = self.store.open_workers(starts, now=now)
        requests = []
        unused: list[int] = []
        for start, runspace_id in zip(starts, runspaces, strict=True):
            files = JobFiles(self.jobs_dir / str(start.job_id))
            command = commands[start.job_id]
            try:
                env = self._environment(command, start.job_id, runspace_id, files)
            except Exception:  # a broken command row: it fails when it is started
                unused.append(runspace_id)
                continue
            if not self._preparable(command, env):
                unused.append(runspace_id)
                continue
            requests.append((start, runspace_id, (command, env, files)))
        self.store.close_workers(unused, now=now)
        try:
            tickets = forks.submit([r[2] for r in requests], hold=HOLD_LIMIT)
        except OSError as exc:
            _log.warning("fork server failed (%s); jobs start without being held", exc)
            self.store.close_workers([r[1] for r in requests], now=now)
            return
        for (start, runspace_id, _), ticket in zip(requests, tickets, strict=True):
            self._held[start.job_id] = _Held(
                job_id=start.job_id,
                runspace_id=runspace_id,
                ticket=ticket,
                generation=forks.generation,
            )

    def _forget_gone(self) -> None:
        """Let go of the held processes whose jobs are no longer queued (stopped or removed
        while they waited). (Another job queued ahead and stopped is forgotten at its slot:
        ``_dispatch`` claims only the jobs still queued. Asking about each of a burst's
        2,000 here, once a second, would cost the burst its time.)"""
        waiting = set(self._held)
        if not waiting:
            return
        gone = waiting - self.store.still_queued(waiting)
        for job_id in gone:
            self._pop_ahead(job_id)
        self._let_go([job_id for job_id in gone if job_id in self._held])

    def _collect_held(self) -> None:
        """Take the pids of the held processes the fork server has forked since; let go
        of those it could not fork and of those that gave up waiting."""
        forks = self._forks
        if forks is None or not self._held:
            return
        answers = forks.poll()
        failed: list[int] = []
        for held in self._held.values():
            if held.pid is None and held.ticket in answers:
                outcome = answers[held.ticket]
                if isinstance(outcome, OSError):
                    failed.append(held.job_id)
                else:
                    held.pid = outcome
                    held.create_time = create_time_of(outcome)
                    if held.create_time is None:
                        failed.append(held.job_id)
            elif held.pid is not None and forks.exited(held.pid):
                failed.append(held.job_id)
        self._let_go(failed)

    def _let_go(self, job_ids: Sequence[int]) -> None:
        """End the held processes of ``job_ids`` (they ran nothing) and close their
        runspaces."""
        let_go = [held for job_id in job_ids if (held := self._held.pop(job_id, None))]
        if not let_go:
            return
        forks = self._forks
        for held in let_go:
            if held.pid is None and forks is not None:  # forked, or about to be
                outcome = forks.answer(held.ticket, timeout=2.0)
                held.pid = outcome if isinstance(outcome, int) else None
            if held.pid is not None and forks is not None:
                if not forks.exited(held.pid):  # (once reaped, its pid may be another's)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(held.pid, signal.SIGKILL)
                forks.forget(held.pid)
        self.store.close_workers([held.runspace_id for held in let_go], now=self.clock.now())

    def _watch_started(
        self,
        start: _Start,
        pid: int,
        create_time: float,
        popen: subprocess.Popen[bytes] | None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Watch a started job (its process is recorded); ``settings``: as read for its
        batch (default: read now)."""
        max_runtime, kill_on_timeout = self._termination(start.command, settings)
        self._track(
            _Running(
                job_id=start.job_id,
                name=start.name,
                task_id=start.task_id,
                owner=start.owner,
                pid=pid,
                create_time=create_time,
                files=start.files,
                started_at=start.started_at,
                max_runtime=max_runtime,
                kill_on_timeout=kill_on_timeout,
                runspace_id=start.runspace_id,
                popen=popen,
                forked=popen is None,
                writes_result=start.command.get("kind") == "python",
            )
        )

    def _termination(
        self, command: Mapping[str, Any], settings: Mapping[str, Any] | None = None
    ) -> tuple[float | None, bool]:
        """A job's maximum runtime (its own, else ``defaultTaskTimeout`` of ``settings``,
        read now when not given) and whether it is killed when it runs longer."""
        max_runtime = command.get("maxRuntime")
        if max_runtime is None:
            max_runtime = (settings if settings is not None else self.settings()).get(
                "defaultTaskTimeout"
            )
        return (float(max_runtime) if max_runtime else None), bool(
            command.get("killOnTimeout", True)
        )

    def _forkable(self, command: Mapping[str, Any]) -> bool:
        return command.get("kind") == "python" and self._forks is not None

    def _fork_all(
        self, starts: list[_Start]
    ) -> list[tuple[int, subprocess.Popen[bytes] | None] | Exception]:
        """Fork the Python jobs ``starts`` by the fork server (``(pid, None)`` each, or
        why one could not start); when the server fails as a whole (it died and cannot
        be restarted), start them with a new interpreter each (``(pid, popen)``)."""
        if not starts or self._forks is None:
            return []
        try:
            forks = self._forks.run_many([(s.command, s.env, s.files) for s in starts])
            return [o if isinstance(o, OSError) else (o, None) for o in forks]
        except OSError as exc:
            _log.warning("fork server failed (%s); starting jobs with a new interpreter", exc)
            self._forks.close()
        outcomes: list[tuple[int, subprocess.Popen[bytes] | None] | Exception] = []
        for start in starts:
            try:
                popen = spawn(start.command, env=start.env, files=start.files)
                outcomes.append((popen.pid, popen))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _fail_to_start(
        self,
        job_id: int,
        task_id: str | None,
        runspace_id: int | None,
        files: JobFiles,
        exc: Exception,
    ) -> None:
        message = f"could not start: {exc}"
        _log.warning("job %s %s", job_id, message)
        with contextlib.suppress(OSError):
            files.folder.mkdir(parents=True, exist_ok=True)
            with files.stderr.open("a", encoding="utf-8") as err:
                err.write(message + "\n")
        self._end(
            job_id,
            task_id,
            runspace_id,
            files,
            state=JobState.FAILED,
            exit_code=None,
            error=message,
        )

    def _track(self, running: _Running) -> None:
        self._running[running.job_id] = running
        try:
            running.pidfd = os.pidfd_open(running.pid)
            self._selector.register(running.pidfd, selectors.EVENT_READ, running.job_id)
        except (AttributeError, OSError):
            running.pidfd = None  # polled instead
        # an adopted process may have ended between the check and pidfd_open
        adopted = running.popen is None
        if (
            adopted
            and running.pidfd is not None
            and not is_same_process(running.pid, running.create_time)
        ):
            self._on_exit(running)

    # -- watching running jobs ---------------------------------------------------------------

    def _watch_running(self, now: datetime) -> None:
        """Record the running jobs' new progress reports (every ``PROGRESS_EVERY``, put off
        while jobs are starting as ``_due`` says); end or flag those over their maximum
        runtime."""
        mono = time.monotonic()
        progress = self._due(mono - self._last_progress, PROGRESS_EVERY)
        if progress:
            self._last_progress = mono
        for running in list(self._running.values()):
            if running.exited:
                continue
            reading = read_progress(running.files, running.progress_mtime) if progress else None
            if reading is not None:
                running.progress_mtime = reading.mtime_ns
                self.store.set_progress(
                    running.job_id, fraction=reading.fraction, message=reading.message
                )
            limit = running.max_runtime
            if limit is None or running.stopping is not None:
                continue
            elapsed = (now - running.started_at).total_seconds()
            if elapsed <= limit:
                continue
            if running.kill_on_timeout:
                self._begin_ladder(
                    running, "timeout", f"exceeded its maximum runtime of {limit:g} s"
                )
            elif not running.over_time:
                running.over_time = True
                self.store.flag_over_time(running.job_id)
                message = (
                    f"{running.name} has run longer than its maximum runtime of {limit:g} s "
                    "and is left running (killOnTimeout is off)"
                )
                _log.warning(message)
                self.notifier.notify(
                    "timeout", message, task_id=running.task_id, job_id=running.job_id
                )

    def _handle_stop_requests(self) -> None:
        """Start the ladder of the running jobs someone asked to stop. The store is asked
        only while jobs run, and at most once a poll interval (``_due``) unless ``wake()``
        was called (a burst of job ends turns the loop far more often)."""
        mono = time.monotonic()
        if not self._running:
            # a queued job is stopped by the request itself; the first poll comes a poll
            # interval after jobs started, not at their start (when idle it would be due)
            self._last_stop_poll = mono
            return
        if not self._woken and not self._due(mono - self._last_stop_poll, self.poll_interval):
            return
        self._woken = False
        self._last_stop_poll = mono
        for job_id, reason in self.store.stop_requests():
            running = self._running.get(job_id)
            if running is not None and running.stopping is None:
                self._begin_ladder(running, "stop", reason or "stopped")

    def _begin_ladder(self, running: _Running, why: str, reason: str) -> None:
        running.stopping = why
        running.stop_reason = reason
        running.ladder_done.clear()

        def climb() -> None:
            try:
                stop_ladder(
                    running.pid,
                    grace=self.stop_grace,
                    job_id=running.job_id,
                    store_id=self._store_id,
                )
            except Exception:
                _log.exception("stopping job %s failed", running.job_id)
            finally:
                running.ladder_done.set()
                self.wake()

        running.ladder = threading.Thread(
            target=climb, name=f"taskops-stop-{running.job_id}", daemon=True
        )
        running.ladder.start()

    def _poll_exit(self, running: _Running) -> None:
        if running.popen is not None:
            if running.popen.poll() is not None:
                self._on_exit(running)
            return
        gone = not is_same_process(running.pid, running.create_time)
        if gone or (running.stopping is not None and running.ladder_done.is_set()):
            self._on_exit(running)

    def _on_exit(self, running: _Running) -> None:
        """The leader ended (or the ladder finished): reap it, make sure nothing of the job
        survives, then record the end."""
        if not running.exited:
            if running.popen is not None:
                try:
                    running.exit_code = running.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    return  # not ended after all; the pidfd fires again
            elif running.forked and self._forks is not None:
                # the server reaps it and says how it ended, a moment after the pidfd fires
                running.exit_code = self._forks.exit_code(running.pid, timeout=2.0)
            running.exited = True
            if running.pidfd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(running.pidfd)
                os.close(running.pidfd)
                running.pidfd = None
            if running.stopping is None and _group_exists(running.pid):
                # the leader left children behind: a job leaves no orphans
                self._begin_ladder(running, "orphans", "")
        if running.stopping is not None and not running.ladder_done.is_set():
            return  # finished when the ladder is done (it wakes the loop)
        self._finish(running)

    def _finish(self, running: _Running) -> None:
        self._running.pop(running.job_id, None)
        files = running.files
        code = running.exit_code
        result = read_result(files) if running.writes_result else None
        error: str | None = None
        if result is not None:
            code = result[0] if code is None or code == result[0] else code
            error = result[1]
        stop_reason: str | None = None
        if running.stopping == "timeout":
            state = JobState.TERMINATED
            error = running.stop_reason
            stop_reason = running.stop_reason
        elif running.stopping in ("stop", "shutdown"):
            state = JobState.STOPPED
            error = None
            stop_reason = running.stop_reason
        elif code == 0:
            state, error = JobState.COMPLETED, None
        elif code is None and running.popen is None and result is None:
            state = JobState.COMPLETED
            error = "ended while adopted after an engine restart; its exit code is unknown"
        else:
            state = JobState.FAILED
            error = error or error_from_output(files, code)
        self._end(
            running.job_id,
            running.task_id,
            running.runspace_id,
            files,
            state=state,
            exit_code=code,
            error=error,
            stop_reason=stop_reason,
            # stopped from elsewhere (a force-close signals the group itself) before this
            # engine saw the request: the store's stop request makes it Stopped
            stopped_if_requested=running.stopping in (None, "orphans"),
        )

    def _end(
        self,
        job_id: int,
        task_id: str | None,
        runspace_id: int | None,
        files: JobFiles,
        *,
        state: JobState,
        exit_code: int | None,
        error: str | None,
        stop_reason: str | None = None,
        stopped_if_requested: bool = False,
    ) -> None:
        """Note a job's end; ``_record_ends`` records it with the others of this turn."""
        if not self._ends:
            self._ends_seen = time.monotonic()
        self._ends.append(
            JobEnd(
                job_id=job_id,
                task_id=task_id,
                runspace_id=runspace_id,
                state=state,
                ended_at=self.clock.now(),
                exit_code=exit_code,
                error=error,
                output_bytes=files.output_bytes(),
                stop_reason=stop_reason,
                stopped_if_requested=stopped_if_requested,
            )
        )

    def _record_ends(self, *, at_once: bool = False) -> None:
        """Record the ends noted since the last call in one store transaction (each job's
        row, its worker runspace closed, its task's failure counter), then apply the
        failure rules to those this call recorded. When the store fails, the ends stay
        noted and are tried again a second later. Right after jobs were started (see
        ``QUIET_AFTER_START``) this waits, unless ``at_once``: the ends keep the time
        they were seen, and those of the jobs just started are then recorded together."""
        if not self._ends or time.monotonic() < self._ends_retry_at:
            return
        if not at_once and not self._due(time.monotonic() - self._ends_seen, 0.0):
            return  # in a moment (``_timeout`` wakes the loop for it): jobs are starting
        ends, self._ends = self._ends, []
        try:
            results = self.store.finish_jobs(ends)
        except Exception:
            self._ends = ends + self._ends
            _log.exception(
                "recording the end of jobs %s failed; retrying", [e.job_id for e in ends]
            )
            self._ends_retry_at = time.monotonic() + 1.0
            return
        self._after_ends(results)

    def _after_ends(self, results: list[JobEndResult]) -> None:
        """Notifications and auto-disable for the ends just recorded, in their order. A
        task is disabled at most once per batch; its failure counter then keeps the failed
        runs recorded after the one that disabled it, as if it had been reset at once."""
        disabled: set[str] = set()
        for index, result in enumerate(results):
            if not result.recorded:
                continue
            job_id, task_id, state, error = (
                result.job_id,
                result.task_id,
                result.state,
                result.error,
            )
            name = f"job {job_id}" + (f" of {task_id}" if task_id else "")
            if state is JobState.TERMINATED:
                self.notifier.notify(
                    "timeout", f"{name} was terminated: {error}", task_id=task_id, job_id=job_id
                )
            elif state is JobState.FAILED:
                self.notifier.notify(
                    "failure", f"{name} failed: {error}", task_id=task_id, job_id=job_id
                )
            count = result.failures
            if task_id is None or not count or task_id in disabled:
                continue  # not counted, a success, or disabled by this batch already
            definition = self._definitions.get(task_id)
            if definition is None:
                continue
            limit = definition.max_failures
            if limit > 0 and count >= limit and definition.enabled:
                reason = f"disabled after {count} consecutive failed runs (maxFailures {limit})"
                try:
                    self.source.disable(task_id, reason)
                except Exception:
                    _log.exception("could not disable %s", task_id)
                    continue
                disabled.add(task_id)
                later = [
                    r.failures
                    for r in results[index + 1 :]
                    if r.task_id == task_id and r.failures is not None
                ]
                if 0 not in later:  # after a later success the counter is right already
                    self.store.reset_failures(task_id, to=len(later))
                self.notifier.notify("auto_disable", f"{task_id} {reason}", task_id=task_id)
                self._revision = object()  # reschedule without it at once

    # -- crash recovery ----------------------------------------------------------------------

    def _recover(self, now: datetime) -> None:
        """Adopt the jobs a crashed engine left running on this host; record the end of
        those whose process is gone."""
        for job in self.store.running_jobs(host=self._host):
            if job.id in self._running:
                continue
            pid, create_time, _ = self.store.job_process(job.id)
            files = JobFiles(self.jobs_dir / str(job.id))
            if (
                pid is not None
                and create_time is not None
                and _is_job_process(pid, create_time, job.id, self._store_id)
            ):
                max_runtime, kill_on_timeout = self._termination(self.store.job_command(job.id))
                _log.info("adopting job %s (pid %s)", job.id, pid)
                self._track(
                    _Running(
                        job_id=job.id,
                        name=job.name,
                        task_id=job.task_id,
                        owner=job.owner,
                        pid=pid,
                        create_time=create_time,
                        files=files,
                        started_at=job.started_at or now,
                        max_runtime=max_runtime,
                        kill_on_timeout=kill_on_timeout,
                        runspace_id=job.runspace_id,
                        over_time=job.over_time,
                    )
                )
                continue
            result = read_result(files)
            if result is not None:
                code, error = result
                state = JobState.COMPLETED if code == 0 else JobState.FAILED
            else:
                code = None
                state = JobState.FAILED
                error = (
                    "the engine stopped while this job ran, and its process was gone when "
                    "the next engine started; its end was not seen"
                )
            self._end(
                job.id,
                job.task_id,
                job.runspace_id,
                files,
                state=state,
                exit_code=code,
                error=error,
            )
        self._record_ends(at_once=True)  # before the first slots are fired (overlap check)
        # processes a stopped engine held for queued jobs have ended or will by themselves
        # (a Python job within a second of its fork server's end, an executable at once)
        self.store.close_unstarted_workers(host=self._host, now=now)

    # -- retention ---------------------------------------------------------------------------

    def _retention(self, now: datetime) -> None:
        """Delete history rows and output folders older than ``taskHistoryRetention``."""
        days = int(self.settings().get("taskHistoryRetention", 30))
        cutoff = now - timedelta(days=days)
        removed = self.store.delete_jobs_ended_before(cutoff)
        for job_id in removed:
            shutil.rmtree(self.jobs_dir / str(job_id), ignore_errors=True)
        if self.jobs_dir.is_dir():
            known = self.store.job_ids()
            for folder in self.jobs_dir.iterdir():
                if not folder.name.isdigit() or int(folder.name) in known:
                    continue
                with contextlib.suppress(OSError):
                    if folder.stat().st_mtime < cutoff.timestamp():
                        shutil.rmtree(folder, ignore_errors=True)
        if removed:
            _log.info("retention: deleted %d runs older than %d days", len(removed), days)

    def run_retention(self) -> None:
        """Apply the retention rule now (it also runs hourly by itself)."""
        self._retention(self.clock.now())

    # -- runspace of the engine and shutdown -------------------------------------------------

    def _open_engine_runspace(self) -> None:
        me = os.getpid()
        self._runspace_id = self.store.open_runspace(
            kind=RunspaceKind.ENGINE,
            owner=JobOwner.TASK_ENGINE.value,
            now=self.clock.now(),
            pid=me,
            create_time=create_time_of(me),
            purpose="task engine",
            availability=Availability.AVAILABLE,
        )

    def _shutdown(self) -> None:
        if self._sampler is not None:
            with contextlib.suppress(Exception):
                self._sampler.stop()
        if self._stop_jobs_on_exit:
            for running in list(self._running.values()):
                if running.stopping is None and not running.exited:
                    self._begin_ladder(running, "shutdown", "engine shutdown")
            deadline = time.monotonic() + self.stop_grace + 10
            while self._running and time.monotonic() < deadline:
                self._wait(0.1)
                for running in list(self._running.values()):
                    if running.ladder_done.is_set():
                        self._poll_exit(running)
        self._ends_retry_at = 0.0
        self._record_ends(at_once=True)
        with contextlib.suppress(Exception):  # a broken store must not keep the lease
            self._let_go(list(self._held))
        if self._active:
            self.store.release_lease(self.holder, now=self.clock.now(), checkpoint=self._checkpoint)
            self._active = False
        if self._runspace_id is not None:
            self.store.close_runspace(
                self._runspace_id, state=RunspaceState.CLOSED, now=self.clock.now(), exit_code=0
            )
        if self._forks is not None:
            self._forks.close()
        self._folders.close()
        self.notifier.close(timeout=5)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _is_job_process(pid: int, create_time: float, job_id: int, store_id: str) -> bool:
    if not is_same_process(pid, create_time):
        return False
    try:
        process = psutil.Process(pid)
        environ = process.environ()
        if environ.get(JOB_TAG) == str(job_id) and environ.get(STORE_TAG) == store_id:
            return True
        # a job forked by the fork server keeps the server's command line and start-up
        # environment; its (pid, start time), as this store recorded them, say it is the job
        return process.cmdline()[1:] == [str(RUNNER), SERVE_FLAG]
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return False


def _group_exists(pgid: int) -> bool:
    """True while any process of the group lives (one signal-0 call, no process scan)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
