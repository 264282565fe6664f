"""``ops.runspaces``: list and read runspaces, their memory history and diagnostics, and
force-close one.

A runspace is a live execution environment backed by an OS process: the engine, a job's
worker, a Jupyter kernel. Rows are written by the engine and the runspace sampler; this
service reads them, reads the process itself (``taskops.inspect.diagnostics``) for
diagnostics, and ends a process on an operator's typed confirmation.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from taskops.engine.executor import RUNNER, SERVE_FLAG, JobFiles, environment_for
from taskops.errors import Conflict, InvalidInput, NotFound, Problem
from taskops.inspect.diagnostics import (
    leads_own_group,
    mask_environment,
    read_diagnostics,
    stop_process,
)
from taskops.inspect.processes import STOP_GRACE_SECONDS, is_same_process, stop_ladder
from taskops.inspect.sampler import DiscoveredProcess, RunspaceSampler, RunspaceSource
from taskops.model import Availability, Runspace, RunspaceKind, RunspaceState, iso, parse_id
from taskops.service.arguments import aware_time
from taskops.store.store import RunspaceRow

if TYPE_CHECKING:
    from taskops.service.ops import TaskOps

__all__ = ["DiscoveredProcess", "RunspaceCloser", "RunspaceService", "RunspaceSource"]

KEEP_CLOSED = timedelta(days=1)

RunspaceCloser = Callable[[Runspace], str]
"""Ends a runspace's process another way than by signals; see ``set_closer``."""
"""How long a closed runspace stays listed with ``include_closed``."""

E = TypeVar("E", bound=StrEnum)


def _parse_enum(value: Any, kind: type[E], field: str) -> E:
    """``value`` as a member of ``kind``, matched in any case. Raises InvalidInput naming
    the valid values."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        for member in kind:
            if value.strip().lower() == member.value.lower():
                return member
    known = ", ".join(member.value for member in kind)
    raise InvalidInput(
        f"unknown runspace {field} {value!r} (known: {known})",
        problems=[Problem(field=field, message=f"must be one of {known}")],
    )


def _runspace_id(value: Any) -> int:
    """A runspace id from an int or a text of digits. Raises NotFound otherwise."""
    number = parse_id(value)
    if number is None:
        raise NotFound(f"no runspace {value!r} (runspace ids are whole numbers)")
    return number


def _min_age(value: Any) -> float:
    """Seconds from a number (or a text of one) >= 0. Raises InvalidInput."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < 0:
        raise InvalidInput(
            f"min_age must be a number of seconds >= 0, not {value!r}",
            problems=[Problem(field="minAge", message="must be a number of seconds >= 0")],
        )
    return number


class RunspaceService:
    """``ops.runspaces``."""

    def __init__(self, ops: TaskOps) -> None:
        self._ops = ops
        self._host = socket.gethostname()

    # -- reading ---------------------------------------------------------------------------

    def list(
        self,
        state: str | RunspaceState | None = None,
        owner: str | None = None,
        min_age: float | str | None = None,
        kind: str | RunspaceKind | None = None,
        include_closed: bool = False,
    ) -> builtins.list[Runspace]:
        """Runspaces by id: the live ones, plus with ``include_closed`` those that ended in
        the last day (asking for the state ``Closed`` or ``Broken`` includes them too).
        Filters: ``state`` and ``kind`` in any case, ``owner`` case-insensitive,
        ``min_age`` in seconds (the age of a live runspace runs until now, a closed one's
        until it closed). Rows of another host show availability ``Remote``. Raises
        InvalidInput for an unknown state or kind, or a ``min_age`` that is not a number
        of seconds >= 0."""
        wanted_state = _parse_enum(state, RunspaceState, "state") if state is not None else None
        wanted_kind = _parse_enum(kind, RunspaceKind, "kind") if kind is not None else None
        least = _min_age(min_age) if min_age is not None else None
        now = self._ops.clock.now()
        closed_too = include_closed or (wanted_state is not None and not wanted_state.live)
        if closed_too:
            rows = self._ops.store.runspace_rows(closed_since=now - KEEP_CLOSED)
        else:
            rows = self._ops.store.runspace_rows(live_only=True)
        spaces = [self._runspace(row, now) for row in rows]
        owner_key = owner.strip().lower() if owner else None
        return [
            space
            for space in spaces
            if (wanted_state is None or space.state is wanted_state)
            and (wanted_kind is None or space.kind is wanted_kind)
            and (owner_key is None or space.owner.lower() == owner_key)
            and (least is None or space.age_seconds >= least)
        ]

    def summary(self) -> dict[str, Any]:
        """The Runspaces screen's quick stats: ``total`` (live), ``opened``, ``busy``,
        ``broken`` (in the last day) and ``totalMemoryMB`` (of the live ones sampled)."""
        spaces = self.list(include_closed=True)
        live = [space for space in spaces if space.state.live]
        return {
            "total": len(live),
            "opened": sum(1 for space in live if space.state is RunspaceState.OPENED),
            "busy": sum(1 for space in live if space.availability is Availability.BUSY),
            "broken": sum(1 for space in spaces if space.state is RunspaceState.BROKEN),
            "totalMemoryMB": round(sum(space.memory_mb or 0.0 for space in live), 1),
        }

    def sampler(
        self, *, sources: Sequence[RunspaceSource] = (), interval: float = 2.0
    ) -> RunspaceSampler:
        """A runspace sampler for this site that also opens runspaces for what ``sources``
        report (the server's kernels): give it to ``ops.engine.start(sampler=...)``, or
        call its ``start()`` and ``stop()`` where no engine runs."""
        return RunspaceSampler(self._ops.store, sources=sources, interval=interval)

    def get(self, runspace_id: int | str) -> Runspace:
        """The runspace with its last sample. Raises NotFound (also for an id that is not
        a whole number)."""
        return self._runspace(self._row(runspace_id), self._ops.clock.now())

    def memory_history(
        self, runspace_id: int | str, since: datetime | str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The runspace's samples, oldest first, for the memory graph: ``{"time": ISO,
        "memoryMB": float | None, "threads": int | None}`` (None: could not be read).
        ``since`` (an aware datetime or ISO text) keeps the newer ones. Raises NotFound,
        InvalidInput for a ``since`` without a timezone."""
        row = self._row(runspace_id)
        after = aware_time(since, "since") if since is not None else None
        return [
            {"time": iso(time), "memoryMB": memory, "threads": threads}
            for time, memory, threads in self._ops.store.runspace_samples(row.id, since=after)
        ]

    def diagnostics(self, runspace_id: int | str) -> dict[str, Any]:
        """The runspace's fields (``Runspace.to_dict()``) plus its process read now:
        ``commandLine``, ``cwd``, ``environment`` (secret values masked, including inside
        ``TASKOPS_PARAMS``), ``threadCount``, ``openFiles``, ``handleCount``, ``memory``
        (``rssMB``, ``vmsMB``, ``ussMB``), ``status``, ``children``, ``modules`` (the
        sorted paths of the files mapped into its memory: executable, shared libraries),
        ``forked`` (True for a job's worker forked by the engine's fork server: its
        command line is the server's, and ``environment`` is the one its job runs with,
        as the system shows only what the server started with), ``processCreatedAt``
        and ``diagnosedAt``; ``threadCount``, ``handleCount`` and
        ``memoryMB`` (the RSS) are these live readings, not the last sample. A part the
        system does not let us read is None. Raises NotFound, or Conflict when the
        runspace is on another host, has no process yet, or its process is gone or is no
        longer the same one."""
        now = self._ops.clock.now()
        row = self._row(runspace_id)
        self._refuse_remote(row, "its diagnostics are read on that host")
        if row.pid is None or row.create_time is None:
            raise Conflict(f"runspace {row.id} has no process yet")
        live = read_diagnostics(row.pid, row.create_time)
        if live is None:
            raise Conflict(f"runspace {row.id}: process {row.pid} changed or gone")
        live["forked"] = _forked(live.get("commandLine"))
        if live["forked"] and row.job_id is not None and live["environment"] is not None:
            live["environment"] = self._forked_environment(row, row.job_id, live["environment"])
        return {
            **self._runspace(row, now).to_dict(),
            **live,
            "memoryMB": live["memory"]["rssMB"],
            "diagnosedAt": iso(now),
        }

    # -- force-close -----------------------------------------------------------------------

    def set_closer(self, kind: RunspaceKind, closer: RunspaceCloser | None) -> None:
        """Close runspaces of ``kind`` with ``closer`` instead of signalling their process
        (the server closes its kernels through the kernel manager). ``closer`` gets the
        runspace after every check of ``close`` passed, blocks until its process is gone
        and returns how it ended (as ``stop_ladder`` does: ``"term"``, ``"kill"``,
        ``"gone"``); it may raise Conflict. None removes it. Shared by
        every ``as_user`` view of the same ``TaskOps``."""
        if closer is None:
            self._ops._runspace_closers.pop(kind, None)
        else:
            self._ops._runspace_closers[kind] = closer

    def close(
        self,
        runspace_id: int | str,
        confirmation: int | str,
        *,
        grace: float = STOP_GRACE_SECONDS,
    ) -> Runspace:
        """Force-close a runspace: end its process and record it ``Closed`` (a ``Broken``
        row stays Broken). ``confirmation`` must be the runspace id typed again.

        A job's worker: the job is asked to stop first (its engine records it ``Stopped``),
        then its process group and every process tagged with the job get SIGTERM, up to
        ``grace`` seconds, then SIGKILL. Another kind: the same ladder on its process
        group when it leads one, else on the process alone. Blocks until the process is
        gone. Audited as ``runspace.close``. Returns the runspace as it is after.

        Raises NotFound; Conflict (and nothing is touched) for a wrong confirmation, the
        engine's runspace (stop the engine with ``taskops engine`` / the server instead),
        a runspace of another host, the calling process itself, or a process that changed
        or is gone (a live row of a gone process is then recorded ``Broken``)."""
        number = _runspace_id(runspace_id)
        grace = _grace(grace)
        ops = self._ops
        with ops._audited("runspace.close", f"runspace:{number}") as details:
            row = self._row(number)
            details.update(kind=row.kind, pid=row.pid, jobId=row.job_id)
            typed = confirmation if isinstance(confirmation, str) else None
            if isinstance(confirmation, int) and not isinstance(confirmation, bool):
                typed = str(confirmation)
            if typed is None or typed.strip() != str(row.id):
                raise Conflict(
                    f"type the runspace id to confirm: the confirmation must be {row.id}"
                )
            if row.kind == RunspaceKind.ENGINE.value:
                raise Conflict(
                    f"runspace {row.id} is the task engine: stop it with `taskops engine` "
                    "or the server that runs it (Ctrl+C or SIGTERM), not by force-closing"
                )
            self._refuse_remote(row, "it can only be closed on that host")
            if row.pid is None or row.create_time is None:
                raise Conflict(f"runspace {row.id} has no process yet; try again shortly")
            if row.pid == os.getpid():
                raise Conflict(
                    f"runspace {row.id} is the process this call runs in; it cannot close itself"
                )
            if not is_same_process(row.pid, row.create_time):
                if RunspaceState(row.state).live:
                    ops.store.close_runspace(
                        row.id, state=RunspaceState.BROKEN, now=ops.clock.now()
                    )
                raise Conflict(
                    f"runspace {row.id}: process changed or gone (pid {row.pid}); "
                    "nothing was signalled"
                )
            closer = ops._runspace_closers.get(RunspaceKind(row.kind))
            if closer is not None:
                ended = closer(self._runspace(row, ops.clock.now()))
            elif row.kind == RunspaceKind.WORKER.value and row.job_id is not None:
                reason = f"runspace {row.id} force-closed by {ops.user}"
                # the job may have ended (or been deleted) meanwhile; its process goes anyway
                with contextlib.suppress(Conflict, NotFound):
                    ops.store.request_stop(row.job_id, reason=reason, now=ops.clock.now())
                ops.engine.wake()
                ended = stop_ladder(
                    row.pid, grace=grace, job_id=row.job_id, store_id=ops.store.store_id()
                )
                if not ops.engine.status()["running"]:
                    with contextlib.suppress(NotFound):
                        ops.jobs._record_stopped(row.job_id, reason)
            elif leads_own_group(row.pid):
                ended = stop_ladder(row.pid, grace=grace)
            else:
                try:
                    ended = stop_process(row.pid, row.create_time, grace=grace)
                except PermissionError as exc:
                    raise Conflict(
                        f"runspace {row.id}: not allowed to signal process {row.pid}"
                    ) from exc
            details["ended"] = ended
            # the engine records a worker's end itself (Stopped job -> Closed); this closes
            # the row only when nobody did, and leaves a Broken row Broken
            ops.store.close_runspace(row.id, state=RunspaceState.CLOSED, now=ops.clock.now())
        return self.get(number)

    # -- helpers ---------------------------------------------------------------------------

    def _forked_environment(
        self, row: RunspaceRow, job_id: int, inherited: Mapping[str, str]
    ) -> dict[str, str]:
        """The environment a forked worker's job runs with. The system shows the one its
        fork server started with (a fork keeps it); the job's parameters, environment and
        tags were set on top of that, the same way the engine sets them."""
        ops = self._ops
        try:
            command = ops.store.job_command(job_id)
        except NotFound:  # the job's row went (retention): what the system shows is all
            return dict(inherited)
        site = ops.site
        environment = environment_for(
            command,
            job_id=job_id,
            store_id=ops.store.store_id(),
            runspace_id=row.id,
            site_dir=site.root,
            data_dir=site.data_dir,
            files=JobFiles(site.jobs_dir / str(job_id)),
            base=inherited,
        )
        return mask_environment(environment)

    def _row(self, runspace_id: int | str) -> RunspaceRow:
        return self._ops.store.runspace_row(_runspace_id(runspace_id))

    def _refuse_remote(self, row: RunspaceRow, why: str) -> None:
        if row.host != self._host:
            raise Conflict(f"runspace {row.id} is remote (on host {row.host}); {why}")

    def _runspace(self, row: RunspaceRow, now: datetime) -> Runspace:
        state = RunspaceState(row.state)
        end = row.closed_at if row.closed_at is not None and not state.live else now
        availability = Availability(row.availability)
        if state.live and row.host != self._host:
            availability = Availability.REMOTE
        return Runspace(
            id=row.id,
            kind=RunspaceKind(row.kind),
            pid=row.pid,
            host=row.host,
            state=state,
            availability=availability,
            owner=row.owner,
            app=row.app,
            task_id=row.task_id,
            job_id=row.job_id,
            purpose=row.purpose,
            created_at=row.opened_at,
            closed_at=row.closed_at,
            exit_code=row.exit_code,
            age_seconds=max(0.0, (end - row.opened_at).total_seconds()),
            thread_count=row.thread_count,
            memory_mb=row.memory_mb,
            handle_count=row.handle_count,
            sampled_at=row.sampled_at,
        )


def _forked(command_line: Sequence[str] | None) -> bool:
    """Whether a process was forked by the runner's fork server (its command line is the
    server's, ``python .../_runner.py --serve``)."""
    return bool(command_line) and list(command_line or [])[-2:] == [str(RUNNER), SERVE_FLAG]


def _grace(value: Any) -> float:
    """Seconds between SIGTERM and SIGKILL. Raises InvalidInput."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidInput(
            f"grace must be a number of seconds >= 0, not {value!r}",
            problems=[Problem(field="grace", message="must be a number of seconds >= 0")],
        )
    return float(value)
