"""``ops.jobs``: list, read, follow, stop, remove and start jobs.

A job is one execution of a task (scheduled, or run now) or of an ad-hoc command. Starting
and stopping go through the store, so they work from any process: the engine that holds the
site's lease acts on them within a fraction of a second.
"""

from __future__ import annotations

import builtins
import codecs
import shlex
import socket
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskops.cron import load_timezone
from taskops.engine.executor import JobFiles, job_name
from taskops.errors import Conflict, InvalidInput, NotFound, Problem
from taskops.inspect.processes import STOP_GRACE_SECONDS, is_same_process, stop_ladder
from taskops.model import GLOBAL_APP, Job, JobOwner, JobState, RunspaceState, parse_id
from taskops.service.arguments import whole_number

if TYPE_CHECKING:
    from taskops.service.ops import TaskOps

__all__ = ["JobService"]

STREAMS = ("stdout", "stderr")
FAILED_STATES = (JobState.FAILED, JobState.TERMINATED)
"""The states a quick stat counts as failed: an error, or killed by its timeout."""
MAX_CHUNK = 1 << 20


def parse_states(state: str | JobState | Iterable[str | JobState]) -> list[JobState]:
    values = [state] if isinstance(state, str) else list(state)
    out = []
    for value in values:
        for candidate in JobState:
            if str(value).lower() == candidate.value.lower():
                out.append(candidate)
                break
        else:
            raise InvalidInput(
                f"unknown job state {value!r} (known: {', '.join(s.value for s in JobState)})",
                problems=[Problem(field="state", message="unknown state")],
            )
    return out


def _job_id(job_id: Any) -> int:
    number = parse_id(job_id)
    if number is None:
        raise NotFound(f"no job {job_id!r} (job ids are whole numbers)")
    return number


class JobService:
    """``ops.jobs``."""

    def __init__(self, ops: TaskOps) -> None:
        self._ops = ops

    # -- reading -------------------------------------------------------------------------------

    def list(
        self,
        state: str | JobState | Iterable[str | JobState] | None = None,
        owner: str | None = None,
        search: str | None = None,
        *,
        task: str | None = None,
        limit: int | None = 500,
        offset: int = 0,
    ) -> builtins.list[Job]:
        """Jobs, newest first, without removed ones: filtered by state (any case, one or
        several), owner (any case), a text in the name or task id, and task id. Raises
        InvalidInput for an unknown state."""
        states = parse_states(state) if state is not None else None
        return self._ops.store.list_jobs(
            states=states,
            owner=owner or None,
            search=search.strip() if search else None,
            task_id=task,
            limit=limit,
            offset=whole_number(offset, "offset"),
        )

    def count(
        self,
        state: str | JobState | Iterable[str | JobState] | None = None,
        owner: str | None = None,
        search: str | None = None,
        *,
        task: str | None = None,
    ) -> int:
        """How many jobs ``list`` finds with the same filters, without its limit (for
        paging). Raises InvalidInput for an unknown state."""
        return self._ops.store.count_jobs(
            states=parse_states(state) if state is not None else None,
            owner=owner or None,
            search=search.strip() if search else None,
            task_id=task,
        )

    def summary(self) -> dict[str, int]:
        """The Jobs screen's quick stats: ``total`` (jobs listed, not removed), ``running``,
        ``queued``, ``completedLastHour`` and ``failedLastHour`` (Failed or Terminated)."""
        store = self._ops.store
        hour_ago = self._ops.clock.now() - timedelta(hours=1)
        return {
            "total": store.count_jobs(),
            "running": store.count_jobs(states=[JobState.RUNNING]),
            "queued": store.count_jobs(states=[JobState.QUEUED]),
            "completedLastHour": store.count_jobs(
                states=[JobState.COMPLETED], ended_since=hour_ago, include_removed=True
            ),
            "failedLastHour": store.count_jobs(
                states=FAILED_STATES, ended_since=hour_ago, include_removed=True
            ),
        }

    def get(self, job_id: int | str) -> Job:
        """The job with its context (owner, task, script, parameters; secrets masked in
        ``to_dict``). Raises NotFound."""
        return self._ops.store.get_job(_job_id(job_id))

    def output(
        self,
        job_id: int | str,
        stream: str = "stdout",
        offset: int = 0,
        *,
        limit: int = 65536,
    ) -> dict[str, Any]:
        """Output of ``stream`` (``stdout`` or ``stderr``) from byte ``offset``:
        ``{"text", "nextOffset", "done", "size"}``. ``nextOffset`` is where the next call
        goes on (never inside a UTF-8 character); ``done`` is True once the job has ended
        and all of it was read; ``size`` is the stream's size in bytes as it was read.
        Raises NotFound, InvalidInput (stream, offset)."""
        if stream not in STREAMS:
            raise InvalidInput(
                f"stream must be stdout or stderr, not {stream!r}",
                problems=[Problem(field="stream", message="must be stdout or stderr")],
            )
        offset = whole_number(offset, "offset")
        limit = max(1, min(int(limit), MAX_CHUNK))
        job = self.get(job_id)
        path = JobFiles(self._ops.site.jobs_dir / str(job.id)).stream(stream)
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(min(offset, size))
                data = handle.read(limit)
        except FileNotFoundError:
            size, data = 0, b""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(data)
        pending = len(decoder.getstate()[0])
        if pending and offset + len(data) >= size and job.state.finished:
            text += decoder.decode(b"", final=True)  # a cut-off character at the very end
            pending = 0
        next_offset = min(offset, size) + len(data) - pending
        return {
            "text": text,
            "nextOffset": next_offset,
            "done": job.state.finished and next_offset >= size,
            "size": size,
        }

    def tail(self, job_id: int | str, stream: str = "stdout", *, max_bytes: int = 8192) -> str:
        """The last ``max_bytes`` of a stream (whole lines where possible)."""
        job = self.get(job_id)
        path = JobFiles(self._ops.site.jobs_dir / str(job.id)).stream(stream)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return ""
        start = max(0, size - max_bytes)
        text = str(self.output(job.id, stream, start, limit=max_bytes)["text"])
        if start > 0 and "\n" in text:
            text = text.split("\n", 1)[1]
        return text

    def follow(
        self,
        job_id: int | str,
        stream: str = "stdout",
        offset: int = 0,
        *,
        poll: float = 0.2,
        timeout: float | None = None,
    ) -> Iterator[str]:
        """Yield the stream's text as it is written, until the job has ended and everything
        was read (or ``timeout`` seconds passed). Raises NotFound, InvalidInput."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            chunk = self.output(job_id, stream, offset, limit=MAX_CHUNK)
            offset = int(chunk["nextOffset"])
            if chunk["text"]:
                yield str(chunk["text"])
                continue
            if chunk["done"] or (deadline is not None and time.monotonic() >= deadline):
                return
            time.sleep(poll)

    # -- changing ------------------------------------------------------------------------------

    def stop(self, job_id: int | str, *, wait: float | None = STOP_GRACE_SECONDS + 5) -> Job:
        """Stop a job: a queued one at once; a running one by its engine (SIGTERM to its
        process group, a grace period, SIGKILL), state ``Stopped``. Waits up to ``wait``
        seconds for it to end and returns the job as it is then. Raises NotFound, or
        Conflict when it has ended already."""
        number = _job_id(job_id)
        with self._ops._audited("job.stop", f"job:{number}"):
            job = self._ops.store.request_stop(
                number, reason=f"stopped by {self._ops.user}", now=self._ops.clock.now()
            )
        if not job.state.finished and not self._ops.engine.status()["running"]:
            job = self._stop_without_engine(job)
        self._ops.engine.wake()
        deadline = time.monotonic() + (wait or 0)
        while not job.state.finished and time.monotonic() < deadline:
            time.sleep(0.05)
            job = self._ops.store.get_job(number)
        return job

    def _stop_without_engine(self, job: Job) -> Job:
        """No engine watches the job: signal its process group from here (same host only)
        and record the end ourselves."""
        store = self._ops.store
        pid, create_time, host = store.job_process(job.id)
        if host != socket.gethostname():
            return job  # its engine, on that host, will act when it runs again
        if pid is not None and is_same_process(pid, create_time):
            stop_ladder(pid, grace=STOP_GRACE_SECONDS, job_id=job.id, store_id=store.store_id())
        return self._record_stopped(job.id, f"stopped by {self._ops.user}")

    def _record_stopped(self, job_id: int, reason: str) -> Job:
        """Record the end of a job that was stopped from here while no engine watched it
        (nothing changes when it has ended already)."""
        store = self._ops.store
        job = store.get_job(job_id)
        if not job.state.finished:
            files = JobFiles(self._ops.site.jobs_dir / str(job.id))
            now = self._ops.clock.now()
            store.finish_job(
                job.id,
                state=JobState.STOPPED,
                ended_at=now,
                exit_code=None,
                error=None,
                output_bytes=files.output_bytes(),
                stop_reason=f"{reason} (no engine was running)",
            )
            if job.runspace_id is not None:
                store.close_runspace(job.runspace_id, state=RunspaceState.CLOSED, now=now)
        return store.get_job(job.id)

    def remove(self, job_id: int | str) -> None:
        """Remove a finished job from the jobs list; its task's history keeps the run and
        its output stays until the retention period ends. Raises NotFound, or Conflict for
        a job that is queued or running."""
        number = _job_id(job_id)
        with self._ops._audited("job.remove", f"job:{number}"):
            self._ops.store.remove_job(number, now=self._ops.clock.now())

    def restart(self, job_id: int | str) -> Job:
        """Run the task of a failed (or terminated) job again, now. Returns the new job.
        Raises NotFound, or Conflict when the job did not fail or belongs to no task."""
        job = self.get(job_id)
        if job.state not in (JobState.FAILED, JobState.TERMINATED):
            raise Conflict(f"job {job.id} is {job.state.value}; only a failed job is restarted")
        if job.task_id is None:
            raise Conflict(f"job {job.id} is an ad-hoc job of no task; start it again instead")
        return self._ops.tasks.run(job.task_id)

    def start(
        self,
        command_or_script: str | builtins.list[str] | tuple[str, ...],
        owner: str = JobOwner.MANUAL.value,
        name: str | None = None,
        *,
        app: str = GLOBAL_APP,
        params: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        max_runtime: int | None = None,
        kill_on_timeout: bool = True,
    ) -> Job:
        """Queue an ad-hoc job: a script of the site (a ``.py`` file runs through the
        runner with ``run(ctx)``, anything else is executed), or a command line (a string
        split like a shell would, or an argument list). ``owner`` is ``Manual``,
        ``AppInit`` or an app name. Returns the queued job. Raises InvalidInput."""
        ops = self._ops
        details = {"command": command_or_script, "owner": owner, "name": name, "app": app}
        with ops._audited("job.start", str(name or command_or_script), details) as extra:
            if app not in ops.site.apps():
                raise InvalidInput(
                    f"unknown app {app!r}", problems=[Problem(field="app", message="unknown")]
                )
            owners = {o.value for o in JobOwner if o is not JobOwner.TASK_ENGINE}
            if not isinstance(owner, str) or owner not in owners | set(ops.site.apps()):
                raise InvalidInput(
                    f"owner must be Manual, AppInit or an app name, not {owner!r}",
                    problems=[Problem(field="owner", message="unknown owner")],
                )
            command = self._command(command_or_script, app)
            command.update(
                params=dict(params or {}),
                env={str(k): str(v) for k, v in (env or {}).items()},
                maxRuntime=max_runtime,
                killOnTimeout=kill_on_timeout,
                task=None,
                app=app,
            )
            label = name or Path(command.get("script") or command["argv"][0]).stem
            if not isinstance(label, str) or not label.strip() or len(label) > 200:
                raise InvalidInput(
                    "name must be a non-empty text of at most 200 characters",
                    problems=[Problem(field="name", message="invalid")],
                )
            now = ops.clock.now()
            job_id = ops.store.insert_job(
                name=name or job_name("Job", label, now, load_timezone(ops.timezone)),
                owner=owner,
                state=JobState.QUEUED,
                queued_at=now,
                app=app,
                command=command,
            )
            extra["jobId"] = job_id
        ops.engine.wake()
        return ops.store.get_job(job_id)

    def _command(self, what: Any, app: str) -> dict[str, Any]:
        site = self._ops.site
        cwd = str(site.app_dir(app))
        if isinstance(what, list | tuple):
            argv = [str(part) for part in what]
        elif isinstance(what, str):
            candidate = what.strip()
            if candidate and " " not in candidate:
                try:
                    script = site.resolve_script(app, candidate)
                except InvalidInput:
                    script = None
                if script is not None and script.is_file():
                    python = script.suffix == ".py"
                    return {
                        "kind": "python" if python else "exec",
                        "script": str(script),
                        "argv": [] if python else [str(script)],
                        "cwd": cwd,
                    }
            try:
                argv = shlex.split(candidate)
            except ValueError as exc:
                raise InvalidInput(
                    f"cannot read the command line: {exc}",
                    problems=[Problem(field="command", message=str(exc))],
                ) from exc
        else:
            raise InvalidInput(
                "give a script path, a command line or a list of arguments",
                problems=[Problem(field="command", message="wrong type")],
            )
        if not argv or not argv[0]:
            raise InvalidInput(
                "the command is empty", problems=[Problem(field="command", message="empty")]
            )
        return {"kind": "exec", "script": None, "argv": argv, "cwd": cwd}
