"""Which task fires when: next fire times on a heap, misfire policy after downtime.

Pure logic over times given by the caller, so a fake clock drives it in tests. The engine
asks ``due(now)`` whenever it wakes and sleeps until ``next_wakeup()`` (never longer than a
few seconds of wall-clock time, so clock jumps and suspends are noticed).

A slot more than ``misfire_grace`` seconds late (the engine was down, the machine slept, the
clock jumped) is a misfire: with policy ``skip`` the task's missed slots are dropped and it
waits for its next slot after now; with ``once`` it fires once for the missed slots (its
first missed slot is the one recorded) and then goes on after now.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from taskops.cron import Schedule
from taskops.model import MisfirePolicy

__all__ = ["Fire", "Missed", "ScheduledTask", "Scheduler"]


@dataclass(frozen=True, kw_only=True)
class ScheduledTask:
    """An enabled task as the scheduler needs it."""

    id: str
    schedule: Schedule
    misfire: MisfirePolicy = MisfirePolicy.SKIP

    @property
    def key(self) -> tuple[str, str, str]:
        """What decides its fire times: a task whose key changes is rescheduled."""
        return (self.schedule.expression, self.schedule.timezone, self.misfire.value)


@dataclass(frozen=True, kw_only=True)
class Fire:
    """Run ``task_id`` for ``slot``; ``misfired`` when it is the one run of missed slots."""

    task_id: str
    slot: datetime
    misfired: bool = False


@dataclass(frozen=True, kw_only=True)
class Missed:
    """Slots of ``task_id`` from ``first`` on that were not run (policy ``skip``, or all but
    the one run of policy ``once``) because they were found too late."""

    task_id: str
    first: datetime
    resumes: datetime | None


@dataclass
class _Entry:
    task: ScheduledTask
    version: int


class Scheduler:
    """A heap of ``(next slot, task)``; changed tasks are re-pushed and their old heap items
    ignored when they come up (lazy deletion), so nothing is ever rescanned in full."""

    def __init__(self, *, misfire_grace: float = 30.0) -> None:
        self.misfire_grace = timedelta(seconds=misfire_grace)
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[datetime, int, str, int]] = []
        self._seq = itertools.count()
        self._versions = itertools.count(1)
        self._pending: Counter[datetime] = Counter()  # heap items per slot, stale included

    def __len__(self) -> int:
        return len(self._entries)

    def set_tasks(
        self, tasks: Iterable[ScheduledTask], *, now: datetime, since: datetime | None = None
    ) -> None:
        """Make ``tasks`` the scheduled set. Tasks whose schedule is unchanged keep their
        next slot; new or changed ones get their first slot after ``since`` (default
        ``now``; the engine passes its predecessor's checkpoint at start-up, so slots missed
        while no engine ran are seen by ``due`` and handled by the misfire policy)."""
        start = since if since is not None and since < now else now
        wanted = {task.id: task for task in tasks}
        following = _NextRuns()
        for task_id in list(self._entries):
            if task_id not in wanted:
                del self._entries[task_id]
        for task_id, task in wanted.items():
            entry = self._entries.get(task_id)
            if entry is not None and entry.task.key == task.key:
                entry.task = task
                continue
            version = next(self._versions)
            self._entries[task_id] = _Entry(task=task, version=version)
            self._push(task, version, following(task, start))

    def _push(self, task: ScheduledTask, version: int, when: datetime | None) -> None:
        if when is not None:
            # in UTC: two datetimes of one zone compare by wall time, ignoring the DST fold
            when = when.astimezone(UTC)
            heapq.heappush(self._heap, (when, next(self._seq), task.id, version))
            self._pending[when] += 1

    def _pop(self) -> tuple[datetime, int, str, int]:
        item = heapq.heappop(self._heap)
        left = self._pending[item[0]] - 1
        if left:
            self._pending[item[0]] = left
        else:
            del self._pending[item[0]]
        return item

    def pending_at(self, when: datetime) -> int:
        """How many fires are due at ``when`` (at most: a task changed or removed since its
        slot was pushed is still counted)."""
        return self._pending.get(when.astimezone(UTC), 0)

    def next_wakeup(self) -> datetime | None:
        """The earliest pending slot (in UTC), or None when nothing is scheduled."""
        while self._heap:
            _, _, task_id, version = self._heap[0]
            entry = self._entries.get(task_id)
            if entry is not None and entry.version == version:
                return self._heap[0][0]
            self._pop()
        return None

    def next_slot(self, task_id: str) -> datetime | None:
        """The pending slot of one task (for tests and diagnostics; a linear search)."""
        entry = self._entries.get(task_id)
        if entry is None:
            return None
        slots = [w for w, _, tid, v in self._heap if tid == task_id and v == entry.version]
        return min(slots) if slots else None

    def due(
        self, now: datetime, *, until: datetime | None = None
    ) -> tuple[list[Fire], list[Missed]]:
        """Every slot at or before ``until`` (default ``now``; later: the slots coming up,
        taken ahead), in time order, as fires; those missed by ``now`` according to their
        task's policy. Each slot comes out once: the task's next slot is pushed."""
        now = now.astimezone(UTC)
        last = max(now, until.astimezone(UTC)) if until is not None else now
        fires: list[Fire] = []
        missed: list[Missed] = []
        following = _NextRuns()
        while self._heap and self._heap[0][0] <= last:
            when, _, task_id, version = self._pop()
            entry = self._entries.get(task_id)
            if entry is None or entry.version != version:
                continue
            task = entry.task
            if now - when <= self.misfire_grace:
                fires.append(Fire(task_id=task_id, slot=when))
                self._push(task, version, following(task, when))
                continue
            resumes = following(task, now)
            if task.misfire is MisfirePolicy.ONCE:
                fires.append(Fire(task_id=task_id, slot=when, misfired=True))
                later = following(task, when)
                if later is not None and later <= now:
                    missed.append(Missed(task_id=task_id, first=later, resumes=resumes))
            else:
                missed.append(Missed(task_id=task_id, first=when, resumes=resumes))
            self._push(task, version, resumes)
        return fires, missed


class _NextRuns:
    """``next_run`` of tasks' schedules, computed once per schedule and start: tasks that
    share an expression and timezone (2,000 due at one minute, say) share their next slot,
    and croniter costs ~0.2 ms a call."""

    def __init__(self) -> None:
        self._known: dict[tuple[Schedule, datetime], datetime | None] = {}

    def __call__(self, task: ScheduledTask, start: datetime) -> datetime | None:
        key = (task.schedule, start)  # equal schedules: the same expression and timezone
        if key not in self._known:
            self._known[key] = task.schedule.next_run(start=start)
        return self._known[key]
