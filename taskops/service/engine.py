"""``ops.engine``: whether an engine runs this site, and running one in this process.

Commands that need the engine (run now, stop) are written to the store and work from any
process; they only happen once some engine holds the site's lease. ``status()`` says
plainly when none does.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from taskops.engine.engine import Engine, TaskDefinition
from taskops.inspect.sampler import RunspaceSampler
from taskops.model import iso

if TYPE_CHECKING:
    from taskops.service.ops import TaskOps

__all__ = ["EngineService"]

ENGINE_USER = "taskops-engine"
"""The user the engine's own changes (auto-disable) are audited as."""


class _ServiceTasks:
    """The engine's view of the tasks, through the service (the engine sits below it)."""

    def __init__(self, ops: TaskOps) -> None:
        self._ops = ops.as_user(ENGINE_USER)

    def revision(self) -> Hashable:
        return (self._ops.store.tasks_revision(), self._ops.catalog.signature())

    def definitions(self) -> list[TaskDefinition]:
        return self._ops.tasks.definitions()

    def disable(self, task_id: str, reason: str) -> None:
        self._ops.tasks._update(
            task_id, {"enabled": False}, action="task.disable", note={"reason": reason}
        )


class EngineService:
    """``ops.engine``: ``status()``, and ``start()`` / ``stop()`` of an engine in this
    process (``taskops engine`` and ``taskops serve`` run one in theirs)."""

    def __init__(self, ops: TaskOps) -> None:
        self._ops = ops
        self._engine: Engine | None = None

    @property
    def local(self) -> Engine | None:
        """The engine running in this process, if any."""
        return self._engine

    def status(self) -> dict[str, Any]:
        """``{running, holder, host, pid, heartbeatAt, expiresAt, local, message}``:
        ``running`` is True while some engine holds a live lease on this site's store."""
        lease = self._ops.store.lease()
        now = self._ops.clock.now()
        running = lease is not None and lease.holder != "" and lease.expires_at > now
        local = self._engine is not None and self._engine.active
        if running and lease is not None:
            message = f"the engine runs on {lease.host} (pid {lease.pid})"
        else:
            message = (
                "no engine is running for this site: queued jobs wait until one starts "
                f"(taskops engine --site {self._ops.site.root}, or ops.engine.start())"
            )
        return {
            "running": running,
            "holder": lease.holder if lease else None,
            "host": lease.host if lease else None,
            "pid": lease.pid if lease else None,
            "heartbeatAt": iso(lease.heartbeat_at) if lease else None,
            "expiresAt": iso(lease.expires_at) if lease else None,
            "local": local,
            "message": message,
        }

    def start(self, *, wait: float = 10.0, **options: Any) -> Engine:
        """Run an engine in this process (a background thread) with its runspace sampler
        (``options["sampler"]``, default one with no sources: the server passes one that
        also reports its kernels, see ``ops.runspaces.sampler``); it becomes active at
        once, or stands by while another engine holds the lease. ``options`` go to
        ``Engine`` (``poll_interval``, ``lease_ttl``, ``stop_grace``...). Returns the
        engine; a second call returns the same one."""
        if self._engine is not None:
            return self._engine
        ops = self._ops
        if "sampler" not in options:
            options["sampler"] = RunspaceSampler(ops.store)
        engine = Engine(
            store=ops.store,
            source=_ServiceTasks(ops),
            settings=ops.settings.get,
            site_dir=ops.site.root,
            data_dir=ops.site.data_dir,
            jobs_dir=ops.site.jobs_dir,
            **options,
        )
        self._engine = engine
        engine.start()
        engine.wait_active(wait)
        return engine

    def stop(self, *, stop_jobs: bool = True, timeout: float | None = 30.0) -> None:
        """Stop the engine of this process: its running jobs are stopped first (state
        ``Stopped``) unless ``stop_jobs`` is False (then the next engine adopts them)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.stop(stop_jobs=stop_jobs, timeout=timeout)

    def wake(self) -> None:
        """Nudge the local engine, if any, to look at the store now."""
        if self._engine is not None:
            self._engine.wake()
