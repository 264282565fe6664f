"""``Store``: the site's database, shared safely by several processes.

SQLite (the default, ``<data>/taskops.db``) runs in WAL mode with a busy timeout, and every
write transaction starts with ``BEGIN IMMEDIATE``: a writer waits for the lock up front
instead of failing with "database is locked" when a read transaction tries to upgrade.
Readers never block writers. Any other SQLAlchemy URL (PostgreSQL) works too: the rows a
write reads before it decides (the engine lease, a job's state, a failure counter) are
locked with ``SELECT ... FOR UPDATE``, which SQLite, serialized already, ignores.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.compiler import SQLCompiler

from taskops.errors import Conflict, NotFound
from taskops.model import (
    Availability,
    Job,
    JobState,
    Notification,
    RunspaceKind,
    RunspaceState,
)
from taskops.store import schema as t

__all__ = [
    "HISTORY_COLUMNS",
    "CustomTaskRow",
    "JobEnd",
    "JobEndResult",
    "JobStart",
    "Lease",
    "RunspaceRow",
    "RunspaceSample",
    "Store",
    "TaskRunSummary",
]

_LEASE = "engine"

HISTORY_COLUMNS = (
    "id",
    "task_id",
    "app",
    "owner",
    "name",
    "state",
    "scheduled_for",
    "queued_at",
    "started_at",
    "ended_at",
    "exit_code",
    "error",
    "output_bytes",
)
"""The columns of :meth:`Store.job_history_columns`, in order."""
_TIME_COLUMNS = frozenset({"scheduled_for", "queued_at", "started_at", "ended_at"})

BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True, kw_only=True)
class JobStart:
    """A queued job the engine is about to start (see :meth:`Store.start_jobs`)."""

    job_id: int
    name: str
    task_id: str | None
    app: str | None
    owner: str


@dataclass(frozen=True, kw_only=True)
class JobEnd:
    """How a job the engine ran ended (see :meth:`Store.finish_jobs`).

    ``stopped_if_requested``: when the job's row holds a stop request (someone asked it to
    stop, and it may have ended before its engine acted), it ends ``Stopped`` with the
    request's reason and no error instead of ``state``."""

    job_id: int
    task_id: str | None
    runspace_id: int | None
    state: JobState
    ended_at: datetime
    exit_code: int | None
    error: str | None
    output_bytes: int | None
    stop_reason: str | None = None
    stopped_if_requested: bool = False


@dataclass(frozen=True, kw_only=True)
class JobEndResult:
    """What :meth:`Store.finish_jobs` made of one :class:`JobEnd`."""

    job_id: int
    task_id: str | None
    recorded: bool
    """False when the job had ended already (nothing of it was changed)."""
    state: JobState
    """The state recorded (``Stopped`` when a stop request won)."""
    error: str | None
    stop_reason: str | None
    failures: int | None
    """The task's consecutive failures after this run (0 after a success); None when the
    run was not counted (no task, stopped, or not recorded)."""


@dataclass(frozen=True, kw_only=True)
class CustomTaskRow:
    id: str
    app: str
    name: str
    spec: dict[str, Any]
    created_at: datetime
    modified_at: datetime


@dataclass(frozen=True, kw_only=True)
class OverrideSet:
    """The per-field overrides of one default task and when they last changed."""

    values: dict[str, Any]
    modified_at: datetime


@dataclass(frozen=True, kw_only=True)
class Lease:
    """Who runs the engine of this store, until when, and up to when slots were handled."""

    holder: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    checkpoint: datetime | None


@dataclass(frozen=True, kw_only=True)
class RunspaceRow:
    """A runspace as stored: its identity, owner, lifecycle and last sample."""

    id: int
    kind: str
    pid: int | None
    create_time: float | None
    host: str
    owner: str
    app: str | None
    task_id: str | None
    job_id: int | None
    purpose: str | None
    state: str
    availability: str
    opened_at: datetime
    closed_at: datetime | None
    exit_code: int | None
    thread_count: int | None
    memory_mb: float | None
    handle_count: int | None
    sampled_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class RunspaceSample:
    """One reading of a runspace's process; None means unknown (not readable)."""

    runspace_id: int
    memory_mb: float | None
    thread_count: int | None
    handle_count: int | None
    availability: Availability | None = None


@dataclass(frozen=True, kw_only=True)
class TaskRunSummary:
    """What the task list needs from a task's history."""

    task_id: str
    last_run: datetime | None
    last_state: JobState | None
    running: int


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's own BEGIN is deferred and too late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # on the DBAPI connection itself: through SQLAlchemy's execution this statement
        # cost a third of an empty transaction (~35 of ~105 µs), paid by every one
        write = conn.get_execution_options().get("taskops_write", False)
        conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if write else "BEGIN"
        )


class Store:
    """The database of one site. Thread-safe; open one per process.

    Every method runs in its own transaction. Methods raise ``NotFound`` for unknown ids and
    ``Conflict`` for unique keys already taken; other database errors propagate as
    SQLAlchemy errors (they are bugs or a broken database, not bad input).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = sa.create_engine(url)
        self._is_sqlite = self._engine.dialect.name == "sqlite"
        self._store_id: str | None = None
        self._watch: Any = None  # the DBAPI connection that reads change_count()
        self._watch_lock = threading.Lock()
        if self._is_sqlite:
            _configure_sqlite(self._engine)
        self._migrate()

    @classmethod
    def for_sqlite(cls, path: Path) -> Store:
        """The store in the SQLite file ``path`` (created with its folder when missing)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path}")

    def close(self) -> None:
        with self._watch_lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None
        self._engine.dispose()

    def change_count(self) -> int | None:
        """A number that moves whenever a transaction commits a change to the database
        from any other connection, of this process or another: SQLite's ``PRAGMA
        data_version``, read on a connection kept for it. None when the database has no
        such number (assume a change). The engine's idle look at the queue uses it: no
        commit, nothing newly queued (a few µs instead of a query)."""
        if not self._is_sqlite:
            return None
        with self._watch_lock:
            if self._watch is None:
                self._watch = self._engine.raw_connection()
            cursor = self._watch.cursor()
            try:
                cursor.execute("PRAGMA data_version")
                return int(cursor.fetchone()[0])
            finally:
                cursor.close()

    def __repr__(self) -> str:
        return f"Store({self._engine.url.render_as_string(hide_password=True)!r})"

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(taskops_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _batch(self) -> Iterator[_Batch]:
        """A write transaction on the DBAPI connection itself, for the engine's per-batch
        statements (:class:`_Batch`): committed when the block ends, rolled back when it
        raises."""
        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                if self._is_sqlite:  # (the driver's own BEGIN is off: see _configure_sqlite)
                    cursor.execute("BEGIN IMMEDIATE")
                yield _Batch(cursor, self._engine.dialect)
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                cursor.close()
        finally:
            raw.close()

    def _migrate(self) -> None:
        with self._write() as conn:
            found = self._stored_version(conn)
            if found > t.SCHEMA_VERSION:
                raise RuntimeError(
                    f"the store {self!r} has schema version {found}, newer than this "
                    f"taskops ({t.SCHEMA_VERSION}); upgrade taskops"
                )
            if found == 1:
                # version 1 declared a runspaces table but never wrote to it; its pid column
                # was NOT NULL, which a runspace opened before its process cannot meet
                conn.execute(sa.text("DROP TABLE IF EXISTS runspaces"))
            t.metadata.create_all(conn)
            _add_missing_columns(conn)
            _add_missing_indexes(conn)
            if found == 0:
                conn.execute(
                    t.meta.insert().values(key="schema_version", value=str(t.SCHEMA_VERSION))
                )
            elif found < t.SCHEMA_VERSION:
                conn.execute(
                    t.meta.update()
                    .where(t.meta.c.key == "schema_version")
                    .values(value=str(t.SCHEMA_VERSION))
                )

    @staticmethod
    def _stored_version(conn: Connection) -> int:
        if not sa.inspect(conn).has_table("meta"):
            return 0
        row = conn.execute(
            sa.select(t.meta.c.value).where(t.meta.c.key == "schema_version")
        ).first()
        return int(row.value) if row else 0

    def store_id(self) -> str:
        """A random identity of this store, made when it was created: job processes carry
        it, so that job 12 of this site is never mistaken for job 12 of another."""
        if self._store_id is None:
            with self._write() as conn:
                value = conn.execute(
                    sa.select(t.meta.c.value).where(t.meta.c.key == "store_id")
                ).scalar()
                if value is None:
                    value = uuid.uuid4().hex
                    conn.execute(t.meta.insert().values(key="store_id", value=value))
            self._store_id = str(value)
        return self._store_id

    def schema_version(self) -> int:
        with self._read() as conn:
            value = conn.execute(
                sa.select(t.meta.c.value).where(t.meta.c.key == "schema_version")
            ).scalar_one()
        return int(value)

    # -- custom tasks ---------------------------------------------------------------------

    def custom_tasks(self) -> list[CustomTaskRow]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.custom_tasks).order_by(t.custom_tasks.c.id)).all()
        return [CustomTaskRow(**row._mapping) for row in rows]

    def insert_custom_task(
        self, *, task_id: str, app: str, name: str, spec: Mapping[str, Any], now: datetime
    ) -> None:
        """Raises Conflict when the id is taken."""
        try:
            with self._write() as conn:
                _bump_revision(conn)
                conn.execute(
                    t.custom_tasks.insert().values(
                        id=task_id,
                        app=app,
                        name=name,
                        spec=dict(spec),
                        created_at=now,
                        modified_at=now,
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a task {task_id} exists already") from exc

    def update_custom_task(
        self, task_id: str, *, spec: Mapping[str, Any], now: datetime, new_id: str | None = None
    ) -> None:
        """Replace the spec (and rename when ``new_id`` differs); the task's jobs follow a
        rename. Raises NotFound, or Conflict when ``new_id`` is taken."""
        values: dict[str, Any] = {"spec": dict(spec), "modified_at": now}
        if new_id and new_id != task_id:
            values["id"] = new_id
            values["name"] = spec["name"]
        try:
            with self._write() as conn:
                _bump_revision(conn)
                done = conn.execute(
                    t.custom_tasks.update().where(t.custom_tasks.c.id == task_id).values(values)
                )
                if done.rowcount == 0:
                    raise NotFound(f"no custom task {task_id}")
                if "id" in values:
                    conn.execute(
                        t.jobs.update().where(t.jobs.c.task_id == task_id).values(task_id=new_id)
                    )
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a task {new_id} exists already") from exc

    def delete_custom_task(self, task_id: str) -> None:
        """Raises NotFound."""
        with self._write() as conn:
            _bump_revision(conn)
            done = conn.execute(t.custom_tasks.delete().where(t.custom_tasks.c.id == task_id))
            if done.rowcount == 0:
                raise NotFound(f"no custom task {task_id}")

    # -- default tasks: overrides and deleted markers --------------------------------------

    def overrides(self) -> dict[str, OverrideSet]:
        """task id -> its overrides (field -> value)."""
        out: dict[str, dict[str, Any]] = {}
        when: dict[str, datetime] = {}
        with self._read() as conn:
            for row in conn.execute(sa.select(t.task_overrides)):
                out.setdefault(row.task_id, {})[row.field] = row.value
                if row.task_id not in when or row.modified_at > when[row.task_id]:
                    when[row.task_id] = row.modified_at
        return {k: OverrideSet(values=v, modified_at=when[k]) for k, v in out.items()}

    def set_overrides(
        self,
        task_id: str,
        *,
        values: Mapping[str, Any],
        clear: Iterable[str] = (),
        now: datetime,
    ) -> None:
        """Set the given fields' overrides and drop those named in ``clear``, atomically."""
        clear = list(clear)
        with self._write() as conn:
            _bump_revision(conn)
            if clear:
                conn.execute(
                    t.task_overrides.delete().where(
                        t.task_overrides.c.task_id == task_id, t.task_overrides.c.field.in_(clear)
                    )
                )
            for field_name, value in values.items():
                conn.execute(
                    t.task_overrides.delete().where(
                        t.task_overrides.c.task_id == task_id,
                        t.task_overrides.c.field == field_name,
                    )
                )
                conn.execute(
                    t.task_overrides.insert().values(
                        task_id=task_id, field=field_name, value=value, modified_at=now
                    )
                )

    def deleted_task_ids(self) -> set[str]:
        with self._read() as conn:
            return set(conn.execute(sa.select(t.deleted_tasks.c.task_id)).scalars())

    def mark_deleted(self, task_id: str, *, now: datetime, user: str | None) -> None:
        with self._write() as conn:
            _bump_revision(conn)
            conn.execute(t.deleted_tasks.delete().where(t.deleted_tasks.c.task_id == task_id))
            conn.execute(
                t.deleted_tasks.insert().values(task_id=task_id, deleted_at=now, deleted_by=user)
            )

    def unmark_deleted(self, task_id: str) -> bool:
        """Returns whether a marker was there."""
        with self._write() as conn:
            _bump_revision(conn)
            done = conn.execute(
                t.deleted_tasks.delete().where(t.deleted_tasks.c.task_id == task_id)
            )
            return done.rowcount > 0

    # -- jobs (execution history) ----------------------------------------------------------

    def insert_job(
        self,
        *,
        name: str,
        owner: str,
        state: JobState,
        queued_at: datetime,
        task_id: str | None = None,
        app: str | None = None,
        command: Any = None,
        scheduled_for: datetime | None = None,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> int:
        """Add a job row and return its id. Raises Conflict when the slot
        ``(task_id, scheduled_for)`` has a job already."""
        try:
            with self._write() as conn:
                result = conn.execute(
                    t.jobs.insert().values(
                        name=name,
                        owner=owner,
                        state=state.value,
                        queued_at=queued_at,
                        task_id=task_id,
                        app=app,
                        command=command,
                        scheduled_for=scheduled_for,
                        started_at=started_at,
                        ended_at=ended_at,
                        exit_code=exit_code,
                        error=error,
                        stop_requested=False,
                        host=socket.gethostname(),
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                return int(key[0])
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"the slot {task_id} at {scheduled_for} has run already") from exc

    def get_job(self, job_id: int) -> Job:
        """Raises NotFound."""
        with self._read() as conn:
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _job(row._mapping)

    def jobs_of_task(
        self,
        task_id: str,
        *,
        limit: int = 20,
        offset: int = 0,
        states: Iterable[JobState] | None = None,
    ) -> list[Job]:
        """The task's jobs, newest first (removed ones too: they are its history), in the
        given states when ``states`` is given, skipping ``offset`` and at most ``limit``."""
        query = sa.select(t.jobs).where(t.jobs.c.task_id == task_id)
        if states is not None:
            query = query.where(t.jobs.c.state.in_([s.value for s in states]))
        query = (
            query.order_by(t.jobs.c.queued_at.desc(), t.jobs.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_job(row._mapping) for row in rows]

    def task_run_summaries(self) -> dict[str, TaskRunSummary]:
        """task id -> last run (start time and state) and how many of its jobs run now."""
        last = (
            sa.select(t.jobs.c.task_id, sa.func.max(t.jobs.c.started_at).label("last"))
            .where(t.jobs.c.task_id.is_not(None), t.jobs.c.started_at.is_not(None))
            .group_by(t.jobs.c.task_id)
            .subquery()
        )
        last_rows = sa.select(t.jobs.c.task_id, t.jobs.c.started_at, t.jobs.c.state).join(
            last,
            sa.and_(t.jobs.c.task_id == last.c.task_id, t.jobs.c.started_at == last.c.last),
        )
        running = (
            sa.select(t.jobs.c.task_id, sa.func.count().label("n"))
            .where(t.jobs.c.task_id.is_not(None), t.jobs.c.state == JobState.RUNNING.value)
            .group_by(t.jobs.c.task_id)
        )
        out: dict[str, TaskRunSummary] = {}
        with self._read() as conn:
            for row in conn.execute(last_rows):
                out[row.task_id] = TaskRunSummary(
                    task_id=row.task_id,
                    last_run=row.started_at,
                    last_state=JobState(row.state),
                    running=0,
                )
            for row in conn.execute(running):
                prev = out.get(row.task_id)
                out[row.task_id] = TaskRunSummary(
                    task_id=row.task_id,
                    last_run=prev.last_run if prev else None,
                    last_state=prev.last_state if prev else None,
                    running=int(row.n),
                )
        return out

    def tasks_revision(self) -> int:
        """A number that changes whenever a custom task, an override or a deleted marker
        changes (the YAML files are watched by their own signature)."""
        with self._read() as conn:
            value = conn.execute(
                sa.select(t.meta.c.value).where(t.meta.c.key == "tasks_revision")
            ).scalar()
        return int(value) if value is not None else 0

    # -- job lifecycle (used by the engine) ------------------------------------------------

    def queued_jobs(self, *, limit: int = 1000, due_by: datetime | None = None) -> list[Job]:
        """Queued jobs, first in first out (:data:`_QUEUE_ORDER`). With ``due_by``, only
        those that may start then: a job the engine queued ahead of its slot waits for it."""
        query = _queued(sa.select(t.jobs), due_by)
        with self._read() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [_job(row._mapping) for row in rows]

    def queued_starts(self, *, limit: int, due_by: datetime) -> list[JobStart]:
        """The first ``limit`` queued jobs that may start by ``due_by``, as
        :meth:`queued_jobs` orders them: what the engine claims them by (its look at the
        queue, each turn while jobs start; whole job rows cost it ~1 ms more)."""
        with self._read() as conn:
            rows = conn.execute(_queued(sa.select(*_START_COLUMNS), due_by).limit(limit)).all()
        return [_job_start(row) for row in rows]

    def next_queued(self, *, limit: int) -> list[tuple[JobStart, dict[str, Any]]]:
        """The first ``limit`` queued jobs (those queued ahead of their slot included), in
        the order they start, each with its stored command, unmasked (only the engine runs
        it)."""
        query = _queued(sa.select(*_START_COLUMNS, t.jobs.c.command), None)
        with self._read() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [(_job_start(row), dict(row.command or {})) for row in rows]

    def still_queued(self, job_ids: Iterable[int]) -> set[int]:
        """Those of ``job_ids`` that are still queued (not started, stopped or removed)."""
        ids = sorted(set(job_ids))
        if not ids:
            return set()
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.jobs.c.id).where(
                    t.jobs.c.id.in_(ids), t.jobs.c.state == JobState.QUEUED.value
                )
            ).scalars()
            return {int(job_id) for job_id in rows}

    def job_command(self, job_id: int) -> dict[str, Any]:
        """The stored command of a job, unmasked (only the engine runs it). Raises NotFound."""
        with self._read() as conn:
            row = conn.execute(sa.select(t.jobs.c.command).where(t.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return dict(row.command or {})

    def claim_job(self, job_id: int, *, now: datetime) -> bool:
        """Queued -> Running; False when the job is no longer queued (stopped meanwhile)."""
        with self._write() as conn:
            done = conn.execute(
                t.jobs.update()
                .where(t.jobs.c.id == job_id, t.jobs.c.state == JobState.QUEUED.value)
                .values(state=JobState.RUNNING.value, started_at=now, host=socket.gethostname())
            )
            return done.rowcount == 1

    def insert_jobs(self, rows: Sequence[Mapping[str, Any]]) -> list[int | None]:
        """Add several queued job rows (the keyword arguments of :meth:`insert_job`) in one
        transaction; returns each id, or None where the slot ``(task_id, scheduled_for)``
        has a job already (that row is left out; the same slot twice in ``rows``: the first
        goes in). A handful of statements whatever the number of rows."""
        host = socket.gethostname()
        try:
            with self._write() as conn:
                slots = [_slot_key(conn, row) for row in rows]
                taken = _taken_slots(conn, [slot for slot in slots if slot is not None])
                kept: list[int] = []
                for index, slot in enumerate(slots):
                    if slot is not None:
                        if slot in taken:
                            continue
                        taken.add(slot)
                    kept.append(index)
                ids: list[int | None] = [None] * len(rows)
                # one INSERT per run of rows with the same keys (omitted columns stay NULL)
                for keys, run in itertools.groupby(kept, key=lambda i: frozenset(rows[i])):
                    if unknown := keys - _JOB_COLUMNS:  # executemany would drop them quietly
                        raise sa.exc.CompileError(f"Unconsumed column names: {sorted(unknown)}")
                    indexes = list(run)
                    values = [
                        {
                            **{k: (v.value if k == "state" else v) for k, v in rows[i].items()},
                            "stop_requested": False,
                            "host": host,
                        }
                        for i in indexes
                    ]
                    new_ids = conn.execute(_INSERT_JOB, values).scalars().all()
                    for i, job_id in zip(indexes, new_ids, strict=True):
                        ids[i] = int(job_id)
                return ids
        except sa.exc.IntegrityError:  # another engine raced us (PostgreSQL): one by one
            out: list[int | None] = []
            for row in rows:
                try:
                    out.append(self.insert_job(**row))
                except Conflict:
                    out.append(None)
            return out

    def open_workers(self, starts: Sequence[JobStart], *, now: datetime) -> list[int]:
        """Open a worker runspace (``Opening``, no process yet) for each of these queued
        jobs, whose process the engine forks ahead and holds until the job starts; their
        ids, in order. One transaction."""
        if not starts:
            return []
        with self._batch() as batch:
            return _open_workers(batch, starts, now=now, availability=Availability.AVAILABLE)

    def close_workers(self, runspace_ids: Sequence[int], *, now: datetime) -> None:
        """Close the live runspaces ``runspace_ids`` (held processes the engine let go of;
        their jobs never started). One transaction."""
        if not runspace_ids:
            return
        with self._write() as conn:
            conn.execute(
                t.runspaces.update()
                .where(
                    t.runspaces.c.id.in_(list(runspace_ids)),
                    t.runspaces.c.state.in_([s.value for s in RunspaceState if s.live]),
                )
                .values(
                    state=RunspaceState.CLOSED.value,
                    availability=Availability.NONE.value,
                    closed_at=now,
                )
            )

    def close_unstarted_workers(self, *, host: str, now: datetime) -> int:
        """Close the worker runspaces on ``host`` that never got their process recorded
        (``Opening``): left by an engine that stopped without closing the processes it
        held for queued jobs. How many. Only for an engine taking over, before it starts
        anything."""
        with self._write() as conn:
            done = conn.execute(
                t.runspaces.update()
                .where(
                    t.runspaces.c.host == host,
                    t.runspaces.c.kind == RunspaceKind.WORKER.value,
                    t.runspaces.c.state == RunspaceState.OPENING.value,
                )
                .values(
                    state=RunspaceState.CLOSED.value,
                    availability=Availability.NONE.value,
                    closed_at=now,
                )
            )
            return int(done.rowcount)

    def drop_queued(self, job_ids: Sequence[int]) -> list[int]:
        """Delete the jobs ``job_ids`` that are still queued (queued ahead of a slot that is
        not to run after all); the ids deleted."""
        if not job_ids:
            return []
        with self._write() as conn:
            gone = (
                conn.execute(
                    t.jobs.delete()
                    .where(
                        t.jobs.c.id.in_(list(job_ids)),
                        t.jobs.c.state == JobState.QUEUED.value,
                    )
                    .returning(t.jobs.c.id)
                )
                .scalars()
                .all()
            )
        return [int(job_id) for job_id in gone]

    def start_jobs(
        self,
        starts: Sequence[JobStart],
        *,
        now: datetime,
        held: Mapping[int, tuple[int, int, float]] | None = None,
        start_times: Mapping[int, datetime] | None = None,
    ) -> list[tuple[JobStart, dict[str, Any], int]]:
        """Claim queued jobs (Queued -> Running) and open a worker runspace for each, in one
        transaction: ``(start, command, runspace id)`` of those still queued (a job stopped
        meanwhile is left out; the same job twice is claimed once). A handful of statements
        whatever the number of jobs.

        ``held`` maps the jobs whose process is forked already (held by the engine) to
        ``(runspace id, pid, create time)``: those keep their runspace, and their process
        is recorded in the same transaction (on the job and on the runspace, which becomes
        ``Opened`` and ``Busy``). ``start_times`` gives the start of the jobs claimed a
        moment before it (``startedAt``; default ``now``)."""
        if not starts:
            return []
        held = held or {}
        start_times = start_times or {}
        host = socket.gethostname()
        with self._batch() as batch:
            found = {
                job_id: (state, command)
                for job_id, state, command in batch.rows(
                    _JOBS_STARTING, ids=sorted({start.job_id for start in starts})
                )
            }
            claimed: list[tuple[JobStart, dict[str, Any]]] = []
            for start in starts:
                row = found.pop(start.job_id, None)  # popped: the same job twice, once
                if row is not None and row[0] == JobState.QUEUED.value:
                    claimed.append((start, dict(_json_value(row[1]) or {})))
            if not claimed:
                return []
            batch.many(
                _CLAIM_JOB,
                [
                    {
                        "b_id": start.job_id,
                        "b_now": start_times.get(start.job_id, now),
                        "b_host": host,
                    }
                    for start, _ in claimed
                ],
            )
            ready = [
                (start.job_id, *held[start.job_id]) for start, _ in claimed if start.job_id in held
            ]
            if ready:
                _record_processes(batch, ready, runspace_update=_RUNSPACE_TAKES_JOB)
            fresh = [start for start, _ in claimed if start.job_id not in held]
            opened = iter(_open_workers(batch, fresh, now=now, availability=Availability.BUSY))
        return [
            (start, command, held[start.job_id][0] if start.job_id in held else next(opened))
            for start, command in claimed
        ]

    def set_processes(self, processes: Sequence[tuple[int, int, int, float]]) -> None:
        """Record ``(job id, runspace id, pid, create time)`` of started jobs in one
        transaction (the job's process and its runspace's, which becomes ``Opened``)."""
        if not processes:
            return
        with self._batch() as batch:
            _record_processes(batch, processes, runspace_update=_SET_RUNSPACE_PROCESS)

    def job_process(self, job_id: int) -> tuple[int | None, float | None, str | None]:
        """``(pid, create_time, host)`` of a job's process. Raises NotFound."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.jobs.c.pid, t.jobs.c.create_time, t.jobs.c.host).where(
                    t.jobs.c.id == job_id
                )
            ).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return row.pid, row.create_time, row.host

    def finish_job(
        self,
        job_id: int,
        *,
        state: JobState,
        ended_at: datetime,
        exit_code: int | None,
        error: str | None,
        output_bytes: int | None,
        stop_reason: str | None = None,
    ) -> bool:
        """Record the end of a running (or queued) job; False when it had ended already."""
        values: dict[str, Any] = {
            "state": state.value,
            "ended_at": ended_at,
            "exit_code": exit_code,
            "error": error,
            "output_bytes": output_bytes,
        }
        if stop_reason is not None:
            values["stop_reason"] = stop_reason
        with self._write() as conn:
            done = conn.execute(
                t.jobs.update()
                .where(
                    t.jobs.c.id == job_id,
                    t.jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
                )
                .values(values)
            )
            return done.rowcount == 1

    def finish_jobs(self, ends: Sequence[JobEnd]) -> list[JobEndResult]:
        """Record the ends of several jobs in one transaction, as if one after the other:
        for each, the job row (as :meth:`finish_job`: only a queued or running job is
        changed), its worker runspace closed (``Closed`` after a completed or stopped job,
        else ``Broken``) and, when its end was recorded, the run counted for its task (as
        :meth:`record_outcome`; a stopped run is not counted). Returns one result per end,
        in the same order. A handful of statements whatever the number of ends."""
        if not ends:
            return []
        with self._batch() as batch:
            found = {
                job_id: (state, stop_requested, stop_reason)
                for job_id, state, stop_requested, stop_reason in batch.rows(
                    _JOBS_ENDING, ids=sorted({end.job_id for end in ends})
                )
            }
            unfinished = {JobState.QUEUED.value, JobState.RUNNING.value}
            decided: list[tuple[JobEnd, bool, JobState, str | None, str | None]] = []
            for end in ends:
                row = found.get(end.job_id)
                recorded = row is not None and row[0] in unfinished
                state, error, stop_reason = end.state, end.error, end.stop_reason
                if end.stopped_if_requested and row is not None and row[1]:
                    state, error = JobState.STOPPED, None
                    stop_reason = str(row[2] or "stopped")
                if recorded:
                    found.pop(end.job_id)  # the same job twice: the first end counts
                decided.append((end, recorded, state, error, stop_reason))
            job_rows = [
                {
                    "b_id": end.job_id,
                    "b_state": state.value,
                    "b_ended_at": end.ended_at,
                    "b_exit_code": end.exit_code,
                    "b_error": error,
                    "b_output_bytes": end.output_bytes,
                    "b_stop_reason": stop_reason,
                }
                for end, recorded, state, error, stop_reason in decided
                if recorded
            ]
            if job_rows:
                batch.many(_FINISH_JOB, job_rows)
            runspace_rows = [
                {
                    "b_id": end.runspace_id,
                    "b_state": (
                        RunspaceState.CLOSED
                        if state in (JobState.COMPLETED, JobState.STOPPED)
                        else RunspaceState.BROKEN
                    ).value,
                    "b_closed_at": end.ended_at,
                    "b_exit_code": end.exit_code,
                }
                for end, _, state, _, _ in decided
                if end.runspace_id is not None
            ]
            if runspace_rows:
                batch.many(_CLOSE_RUNSPACE, runspace_rows)
            counted = [
                index
                for index, (end, recorded, state, _, _) in enumerate(decided)
                if recorded and end.task_id is not None and state is not JobState.STOPPED
            ]
            counts = _count_outcomes(
                batch,
                [
                    (
                        decided[index][0],
                        decided[index][2] in (JobState.FAILED, JobState.TERMINATED),
                    )
                    for index in counted
                ],
            )
            failures = dict(zip(counted, counts, strict=True))
        return [
            JobEndResult(
                job_id=end.job_id,
                task_id=end.task_id,
                recorded=recorded,
                state=state,
                error=error,
                stop_reason=stop_reason,
                failures=failures.get(index),
            )
            for index, (end, recorded, state, error, stop_reason) in enumerate(decided)
        ]

    def set_progress(self, job_id: int, *, fraction: float | None, message: str | None) -> None:
        with self._write() as conn:
            conn.execute(
                t.jobs.update()
                .where(t.jobs.c.id == job_id)
                .values(progress=fraction, progress_message=message)
            )

    def flag_over_time(self, job_id: int) -> None:
        with self._write() as conn:
            conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(over_time=True))

    def request_stop(self, job_id: int, *, reason: str, now: datetime) -> Job:
        """Ask for a job to stop. A queued job is stopped here and now; a running one is
        flagged for its engine. Returns the job as it is after. Raises NotFound, or
        Conflict when the job has ended already."""
        with self._write() as conn:
            row = conn.execute(
                sa.select(t.jobs.c.state).where(t.jobs.c.id == job_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"no job {job_id}")
            state = JobState(row.state)
            if state.finished:
                raise Conflict(f"job {job_id} has ended already ({state.value})")
            if state is JobState.QUEUED:
                conn.execute(
                    t.jobs.update()
                    .where(t.jobs.c.id == job_id)
                    .values(
                        state=JobState.STOPPED.value,
                        ended_at=now,
                        stop_reason=reason,
                        stop_requested=True,
                    )
                )
            else:
                conn.execute(
                    t.jobs.update()
                    .where(t.jobs.c.id == job_id)
                    .values(stop_requested=True, stop_reason=reason)
                )
        return self.get_job(job_id)

    def stop_requests(self) -> list[tuple[int, str | None]]:
        """``(job id, reason)`` of running jobs someone asked to stop."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.jobs.c.id, t.jobs.c.stop_reason).where(
                    t.jobs.c.state == JobState.RUNNING.value, t.jobs.c.stop_requested.is_(True)
                )
            ).all()
        return [(row.id, row.stop_reason) for row in rows]

    def running_jobs(self, *, host: str | None = None) -> list[Job]:
        query = sa.select(t.jobs).where(t.jobs.c.state == JobState.RUNNING.value)
        if host is not None:
            query = query.where(t.jobs.c.host == host)
        with self._read() as conn:
            rows = conn.execute(query.order_by(t.jobs.c.id)).all()
        return [_job(row._mapping) for row in rows]

    def active_jobs_by_task(self, *, now: datetime) -> dict[str, int]:
        """task id -> how many of its jobs are queued or running at ``now``. A job queued
        ahead of a slot still to come (the engine queues a slot's jobs shortly before it)
        is not counted: it is not running yet, and whether it runs is decided at its slot
        (it is skipped if the task is busy then)."""
        jobs = t.jobs.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(jobs.task_id, sa.func.count().label("n"))
                .where(
                    jobs.task_id.is_not(None),
                    jobs.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
                    sa.or_(
                        jobs.state == JobState.RUNNING.value,
                        jobs.scheduled_for.is_(None),
                        jobs.scheduled_for <= now,
                    ),
                )
                .group_by(jobs.task_id)
            ).all()
        return {row.task_id: int(row.n) for row in rows}

    def count_jobs(
        self,
        *,
        states: Iterable[JobState] | None = None,
        owner: str | None = None,
        search: str | None = None,
        task_id: str | None = None,
        ended_since: datetime | None = None,
        include_removed: bool = False,
    ) -> int:
        """How many jobs ``list_jobs`` would list with the same filters (without a limit),
        ended at or after ``ended_since`` when given."""
        query = sa.select(sa.func.count()).select_from(t.jobs)
        query = query.where(
            *_job_filters(
                states=states,
                owner=owner,
                search=search,
                task_id=task_id,
                include_removed=include_removed,
            )
        )
        if ended_since is not None:
            query = query.where(t.jobs.c.ended_at >= ended_since)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def count_tasks_with_jobs(self, *, states: Iterable[JobState], ended_since: datetime) -> int:
        """How many tasks have a job in ``states`` that ended at or after ``ended_since``."""
        query = sa.select(sa.func.count(sa.distinct(t.jobs.c.task_id))).where(
            t.jobs.c.task_id.is_not(None),
            t.jobs.c.state.in_([s.value for s in states]),
            t.jobs.c.ended_at >= ended_since,
        )
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def list_jobs(
        self,
        *,
        states: Iterable[JobState] | None = None,
        owner: str | None = None,
        search: str | None = None,
        task_id: str | None = None,
        include_removed: bool = False,
        since: datetime | None = None,
        limit: int | None = 500,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs newest first. ``search`` is a case-insensitive text in the name or task id."""
        query = sa.select(t.jobs).where(
            *_job_filters(
                states=states,
                owner=owner,
                search=search,
                task_id=task_id,
                include_removed=include_removed,
            )
        )
        if since is not None:
            query = query.where(t.jobs.c.queued_at >= since)
        query = query.order_by(t.jobs.c.id.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_job(row._mapping) for row in rows]

    def remove_job(self, job_id: int, *, now: datetime) -> None:
        """Hide a finished job from the jobs list (its task's history keeps it).
        Raises NotFound, or Conflict when it has not ended."""
        with self._write() as conn:
            row = conn.execute(
                sa.select(t.jobs.c.state, t.jobs.c.removed_at)
                .where(t.jobs.c.id == job_id)
                .with_for_update()
            ).first()
            if row is None or row.removed_at is not None:
                raise NotFound(f"no job {job_id}")
            if not JobState(row.state).finished:
                raise Conflict(f"job {job_id} is {row.state}: stop it before removing it")
            conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(removed_at=now))

    def delete_jobs_ended_before(self, cutoff: datetime) -> list[int]:
        """Delete finished jobs that ended before ``cutoff``; returns their ids."""
        with self._write() as conn:
            ids = list(
                conn.execute(
                    sa.select(t.jobs.c.id).where(
                        t.jobs.c.ended_at < cutoff,
                        t.jobs.c.state.not_in([JobState.QUEUED.value, JobState.RUNNING.value]),
                    )
                ).scalars()
            )
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(t.jobs.delete().where(t.jobs.c.id.in_(chunk)))
            conn.execute(t.skipped_runs.delete().where(t.skipped_runs.c.recorded_at < cutoff))
            conn.execute(t.notifications.delete().where(t.notifications.c.time < cutoff))
        return ids

    def job_ids(self) -> set[int]:
        with self._read() as conn:
            return set(conn.execute(sa.select(t.jobs.c.id)).scalars())

    # -- execution history in bulk (for frames) --------------------------------------------

    def job_history_columns(
        self,
        *,
        task_id: str | None = None,
        app: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        states: Iterable[JobState] | None = None,
    ) -> dict[str, tuple[Any, ...]]:
        """The jobs matching every filter given (removed ones too: they are history), as
        columns named by ``HISTORY_COLUMNS``, oldest first by their time (the start, or
        the queue time of a job that never started), then by id.

        ``since`` (inclusive) and ``until`` (exclusive) bound that time; the clauses are
        written so that ``ix_jobs_started`` serves the window and ``ix_jobs_task_started``
        a task's jobs. Times come back as UTC epoch seconds (float, None when unset), not
        datetimes: reading a million rows stays a matter of plain floats."""
        query = sa.select(
            *(
                _epoch_seconds(t.jobs.c[name]).label(name)
                if name in _TIME_COLUMNS
                else t.jobs.c[name]
                for name in HISTORY_COLUMNS
            )
        )
        if task_id is not None:
            query = query.where(t.jobs.c.task_id == task_id)
        if app is not None:
            query = query.where(t.jobs.c.app == app)
        bounded = task_id is not None or since is not None or until is not None
        if states is not None:
            state: sa.ColumnElement[str] = t.jobs.c.state
            if bounded:
                # Without statistics (no ANALYZE) SQLite prefers an equality on ix_jobs_state
                # to a range or a task; Completed is nearly every row, so keep that index
                # out and let the window or the task bound the rows.
                state = state + ""
            query = query.where(state.in_([s.value for s in states]))
        if since is not None or until is not None:
            query = query.where(_job_time_between(since, until))
        query = query.order_by(
            sa.func.coalesce(t.jobs.c.started_at, t.jobs.c.queued_at), t.jobs.c.id
        )
        with self._read() as conn:
            return _fetch_columns(conn, query, HISTORY_COLUMNS)

    def run_durations(
        self, *, start: datetime, end: datetime, task_id: str | None = None
    ) -> dict[str, tuple[Any, ...]]:
        """The runs (of ``task_id`` when given) that started at or after ``start`` and
        before ``end`` and have ended, as columns ``task_id``, ``app``, ``state``,
        ``started_at`` (UTC epoch seconds) and ``duration`` (seconds from start to end), in
        no particular order. The window is served by ``ix_jobs_started`` (with a task,
        ``ix_jobs_task_started``); only these five values are read of each run."""
        started = _epoch_seconds(t.jobs.c.started_at)
        query = sa.select(
            t.jobs.c.task_id,
            t.jobs.c.app,
            t.jobs.c.state,
            started.label("started_at"),
            (_epoch_seconds(t.jobs.c.ended_at) - started).label("duration"),
        ).where(
            t.jobs.c.started_at >= start,
            t.jobs.c.started_at < end,
            t.jobs.c.ended_at.is_not(None),
        )
        if task_id is not None:
            query = query.where(t.jobs.c.task_id == task_id)
        with self._read() as conn:
            return _fetch_columns(
                conn, query, ("task_id", "app", "state", "started_at", "duration")
            )

    # -- skipped slots and failure counters ------------------------------------------------

    def record_skip(self, task_id: str, slot: datetime, *, reason: str, now: datetime) -> bool:
        """Record that a slot was not run and why; False when it was recorded already, or
        when the slot has a job (a slot is run or skipped, never both: the job of a slot
        queued ahead by an engine that then died runs)."""
        try:
            with self._write() as conn:
                if _taken_slots(conn, [(task_id, slot.timestamp())]):
                    return False
                conn.execute(
                    t.skipped_runs.insert().values(
                        task_id=task_id, scheduled_for=slot, recorded_at=now, reason=reason
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def skipped_runs(self, task_id: str, *, limit: int = 20) -> list[tuple[datetime, str]]:
        """``(slot, reason)`` of the task's skipped slots, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.skipped_runs.c.scheduled_for, t.skipped_runs.c.reason)
                .where(t.skipped_runs.c.task_id == task_id)
                .order_by(t.skipped_runs.c.scheduled_for.desc())
                .limit(limit)
            ).all()
        return [(row.scheduled_for, row.reason) for row in rows]

    def record_outcome(self, task_id: str, *, failed: bool, now: datetime) -> int:
        """Count a finished run of a task; returns its consecutive failures so far (0 after
        a success)."""
        with self._write() as conn:
            current = conn.execute(
                sa.select(t.task_runtime.c.consecutive_failures)
                .where(t.task_runtime.c.task_id == task_id)
                .with_for_update()
            ).scalar()
            count = (int(current or 0) + 1) if failed else 0
            if current is None:
                conn.execute(
                    t.task_runtime.insert().values(
                        task_id=task_id, consecutive_failures=count, last_outcome_at=now
                    )
                )
            else:
                conn.execute(
                    t.task_runtime.update()
                    .where(t.task_runtime.c.task_id == task_id)
                    .values(consecutive_failures=count, last_outcome_at=now)
                )
        return count

    def reset_failures(self, task_id: str, *, to: int = 0) -> None:
        """Set the task's consecutive failures to ``to`` (after it was disabled for them;
        ``to`` counts the failed runs recorded after the one that disabled it)."""
        with self._write() as conn:
            conn.execute(
                t.task_runtime.update()
                .where(t.task_runtime.c.task_id == task_id)
                .values(consecutive_failures=to)
            )

    # -- the engine lease ------------------------------------------------------------------

    def lease(self) -> Lease | None:
        """The engine lease as it stands (possibly expired), or None when none was taken."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.engine_lease).where(t.engine_lease.c.name == _LEASE)
            ).first()
        return Lease(**{k: v for k, v in row._mapping.items() if k != "name"}) if row else None

    def acquire_lease(
        self,
        holder: str,
        *,
        pid: int,
        now: datetime,
        ttl: float,
        steal_from: str | None = None,
    ) -> Lease | None:
        """Take the engine lease when it is free, expired, ours already, or held by
        ``steal_from`` (a holder known to be dead). Returns the lease as it was before (its
        ``checkpoint`` says up to when slots were handled), or None when another live
        holder has it."""
        expires = now + timedelta(seconds=ttl)
        host = socket.gethostname()
        with self._write() as conn:
            row = conn.execute(
                sa.select(t.engine_lease).where(t.engine_lease.c.name == _LEASE).with_for_update()
            ).first()
            if row is None:
                conn.execute(
                    t.engine_lease.insert().values(
                        name=_LEASE,
                        holder=holder,
                        host=host,
                        pid=pid,
                        acquired_at=now,
                        heartbeat_at=now,
                        expires_at=expires,
                        checkpoint=None,
                    )
                )
                return Lease(
                    holder="",
                    host="",
                    pid=0,
                    acquired_at=now,
                    heartbeat_at=now,
                    expires_at=now,
                    checkpoint=None,
                )
            before = Lease(**{k: v for k, v in row._mapping.items() if k != "name"})
            if row.holder not in (holder, steal_from) and row.expires_at > now:
                return None
            conn.execute(
                t.engine_lease.update()
                .where(t.engine_lease.c.name == _LEASE)
                .values(
                    holder=holder,
                    host=host,
                    pid=pid,
                    acquired_at=now if row.holder != holder else row.acquired_at,
                    heartbeat_at=now,
                    expires_at=expires,
                )
            )
            return before

    def renew_lease(
        self, holder: str, *, now: datetime, ttl: float, checkpoint: datetime | None = None
    ) -> bool:
        """Extend our lease (and record the checkpoint); False when it is no longer ours."""
        values: dict[str, Any] = {
            "heartbeat_at": now,
            "expires_at": now + timedelta(seconds=ttl),
        }
        if checkpoint is not None:
            values["checkpoint"] = checkpoint
        with self._write() as conn:
            done = conn.execute(
                t.engine_lease.update()
                .where(t.engine_lease.c.name == _LEASE, t.engine_lease.c.holder == holder)
                .values(values)
            )
            return done.rowcount == 1

    def release_lease(self, holder: str, *, now: datetime, checkpoint: datetime | None) -> None:
        """Give the lease up at once (a graceful stop): a standby takes over without waiting
        for it to expire."""
        with self._write() as conn:
            conn.execute(
                t.engine_lease.update()
                .where(t.engine_lease.c.name == _LEASE, t.engine_lease.c.holder == holder)
                .values(expires_at=now, heartbeat_at=now, checkpoint=checkpoint)
            )

    # -- notifications ---------------------------------------------------------------------

    def add_notification(
        self,
        *,
        time: datetime,
        kind: str,
        message: str,
        task_id: str | None = None,
        job_id: int | None = None,
    ) -> int:
        with self._write() as conn:
            result = conn.execute(
                t.notifications.insert().values(
                    time=time, kind=kind, message=message, task_id=task_id, job_id=job_id
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def set_notification_delivery(self, notification_id: int, delivery: str) -> None:
        with self._write() as conn:
            conn.execute(
                t.notifications.update()
                .where(t.notifications.c.id == notification_id)
                .values(delivery=delivery)
            )

    def notifications(self, *, after_id: int = 0, limit: int = 100) -> list[Notification]:
        """Notifications newer than ``after_id``, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.notifications)
                .where(t.notifications.c.id > after_id)
                .order_by(t.notifications.c.id.desc())
                .limit(limit)
            ).all()
        return [Notification(**row._mapping) for row in rows]

    # -- runspaces -------------------------------------------------------------------------

    def open_runspace(
        self,
        *,
        kind: RunspaceKind,
        owner: str,
        now: datetime,
        pid: int | None = None,
        create_time: float | None = None,
        app: str | None = None,
        task_id: str | None = None,
        job_id: int | None = None,
        purpose: str | None = None,
        state: RunspaceState = RunspaceState.OPENED,
        availability: Availability = Availability.AVAILABLE,
        host: str | None = None,
    ) -> int:
        """Add a runspace and return its id; the same process twice returns the first id."""
        host = host or socket.gethostname()
        with self._write() as conn:
            if pid is not None and create_time is not None:
                found = conn.execute(
                    sa.select(t.runspaces.c.id).where(
                        t.runspaces.c.host == host,
                        t.runspaces.c.pid == pid,
                        t.runspaces.c.create_time == create_time,
                    )
                ).scalar()
                if found is not None:
                    return int(found)
            return _insert_runspace(
                conn,
                kind=kind,
                pid=pid,
                create_time=create_time,
                host=host,
                owner=owner,
                app=app,
                task_id=task_id,
                job_id=job_id,
                purpose=purpose,
                state=state,
                availability=availability,
                now=now,
            )

    def set_runspace_process(self, runspace_id: int, *, pid: int, create_time: float) -> None:
        with self._write() as conn:
            conn.execute(
                t.runspaces.update()
                .where(t.runspaces.c.id == runspace_id)
                .values(pid=pid, create_time=create_time, state=RunspaceState.OPENED.value)
            )

    def close_runspace(
        self,
        runspace_id: int,
        *,
        state: RunspaceState,
        now: datetime,
        exit_code: int | None = None,
    ) -> bool:
        """Record the end of a live runspace; False when it had ended already."""
        with self._write() as conn:
            done = conn.execute(
                t.runspaces.update()
                .where(
                    t.runspaces.c.id == runspace_id,
                    t.runspaces.c.state.in_([s.value for s in RunspaceState if s.live]),
                )
                .values(
                    state=state.value,
                    availability=Availability.NONE.value,
                    closed_at=now,
                    exit_code=exit_code,
                )
            )
            return done.rowcount == 1

    def record_samples(self, samples: Iterable[RunspaceSample], *, now: datetime) -> None:
        """Store one sample per runspace: its current numbers and a point of its history."""
        samples = list(samples)
        if not samples:
            return
        with self._write() as conn:
            for sample in samples:
                values: dict[str, Any] = {
                    "thread_count": sample.thread_count,
                    "memory_mb": sample.memory_mb,
                    "handle_count": sample.handle_count,
                    "sampled_at": now,
                }
                if sample.availability is not None:
                    values["availability"] = sample.availability.value
                conn.execute(
                    t.runspaces.update()
                    .where(t.runspaces.c.id == sample.runspace_id)
                    .values(values)
                )
            conn.execute(
                t.runspace_samples.insert(),
                [
                    {
                        "runspace_id": s.runspace_id,
                        "time": now,
                        "memory_mb": s.memory_mb,
                        "thread_count": s.thread_count,
                    }
                    for s in samples
                ],
            )

    def runspace_samples(
        self, runspace_id: int, *, since: datetime | None = None
    ) -> list[tuple[datetime, float | None, int | None]]:
        """``(time, memory MB, threads)`` of a runspace, oldest first."""
        query = sa.select(
            t.runspace_samples.c.time,
            t.runspace_samples.c.memory_mb,
            t.runspace_samples.c.thread_count,
        ).where(t.runspace_samples.c.runspace_id == runspace_id)
        if since is not None:
            query = query.where(t.runspace_samples.c.time >= since)
        with self._read() as conn:
            rows = conn.execute(query.order_by(t.runspace_samples.c.time)).all()
        return [(row.time, row.memory_mb, row.thread_count) for row in rows]

    def runspace_sample_columns(
        self, runspace_id: int, *, since: datetime | None = None
    ) -> dict[str, tuple[Any, ...]]:
        """The samples of :meth:`runspace_samples` as columns ``time`` (UTC epoch seconds),
        ``memory_mb`` and ``thread_count`` (None: could not be read), oldest first."""
        query = sa.select(
            _epoch_seconds(t.runspace_samples.c.time).label("time"),
            t.runspace_samples.c.memory_mb,
            t.runspace_samples.c.thread_count,
        ).where(t.runspace_samples.c.runspace_id == runspace_id)
        if since is not None:
            query = query.where(t.runspace_samples.c.time >= since)
        with self._read() as conn:
            return _fetch_columns(
                conn,
                query.order_by(t.runspace_samples.c.time),
                ("time", "memory_mb", "thread_count"),
            )

    def runspace_rows(
        self,
        *,
        live_only: bool = False,
        host: str | None = None,
        closed_since: datetime | None = None,
    ) -> list[RunspaceRow]:
        """Runspaces, by id. ``closed_since`` keeps closed ones that ended after it."""
        query = sa.select(t.runspaces)
        live = [s.value for s in RunspaceState if s.live]
        if live_only:
            query = query.where(t.runspaces.c.state.in_(live))
        elif closed_since is not None:
            query = query.where(
                sa.or_(t.runspaces.c.state.in_(live), t.runspaces.c.closed_at >= closed_since)
            )
        if host is not None:
            query = query.where(t.runspaces.c.host == host)
        with self._read() as conn:
            rows = conn.execute(query.order_by(t.runspaces.c.id)).all()
        return [RunspaceRow(**row._mapping) for row in rows]

    def runspace_row(self, runspace_id: int) -> RunspaceRow:
        """Raises NotFound."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.runspaces).where(t.runspaces.c.id == runspace_id)
            ).first()
        if row is None:
            raise NotFound(f"no runspace {runspace_id}")
        return RunspaceRow(**row._mapping)

    def prune_runspaces(self, *, samples_before: datetime, closed_before: datetime) -> None:
        """Drop samples older than ``samples_before`` and runspaces closed before
        ``closed_before`` (with their samples)."""
        with self._write() as conn:
            conn.execute(
                t.runspace_samples.delete().where(t.runspace_samples.c.time < samples_before)
            )
            old = sa.select(t.runspaces.c.id).where(t.runspaces.c.closed_at < closed_before)
            conn.execute(
                t.runspace_samples.delete().where(t.runspace_samples.c.runspace_id.in_(old))
            )
            conn.execute(t.runspaces.delete().where(t.runspaces.c.closed_at < closed_before))


_JOB_COLUMNS = frozenset(t.jobs.c.keys())

_INSERT_JOB = t.jobs.insert().returning(t.jobs.c.id, sort_by_parameter_order=True)
"""Job rows, executed for many at once; their ids in the order of the rows."""

_SLOT_CHUNK = 400
"""Rows whose slots :func:`_taken_slots` looks up per query (two parameters each at most,
under SQLite's oldest limit of 999)."""

_QUEUE_ORDER = (sa.func.coalesce(t.jobs.c.scheduled_for, t.jobs.c.queued_at), t.jobs.c.id)
"""The order queued jobs start in: by the time each became due, its slot or else when it
was queued (then by id). A job queued ahead of its slot thus starts after a job queued
by hand before that slot ("Run now" in the lead), which its slot's overlap check then
sees; by id alone, the job queued ahead would go first."""


def _queued(query: sa.Select[Any], due_by: datetime | None) -> sa.Select[Any]:
    """``query`` of the queued jobs (those that may start by ``due_by``, when given: a job
    queued ahead of its slot waits for it), in the order they start."""
    query = query.where(t.jobs.c.state == JobState.QUEUED.value)
    if due_by is not None:
        query = query.where(
            sa.or_(t.jobs.c.scheduled_for.is_(None), t.jobs.c.scheduled_for <= due_by)
        )
    return query.order_by(*_QUEUE_ORDER)


_START_COLUMNS = (t.jobs.c.id, t.jobs.c.name, t.jobs.c.task_id, t.jobs.c.app, t.jobs.c.owner)
"""What a queued job is claimed by (:class:`JobStart`)."""


def _job_start(row: Any) -> JobStart:
    """The :class:`JobStart` of a row that has :data:`_START_COLUMNS`."""
    return JobStart(job_id=row.id, name=row.name, task_id=row.task_id, app=row.app, owner=row.owner)


_JOBS_STARTING = (
    sa.select(t.jobs.c.id, t.jobs.c.state, t.jobs.c.command)
    .where(t.jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
    .with_for_update()
)
"""What :meth:`Store.start_jobs` reads of the jobs it claims."""

_CLAIM_JOB = (
    t.jobs.update()
    .where(t.jobs.c.id == sa.bindparam("b_id"), t.jobs.c.state == JobState.QUEUED.value)
    .values(
        state=JobState.RUNNING.value,
        started_at=sa.bindparam("b_now"),
        host=sa.bindparam("b_host"),
    )
)
"""Queued -> Running of one job (executed for many at once, for jobs read as queued in the
same transaction)."""

_OPEN_WORKER = t.runspaces.insert().values(
    {
        name: sa.bindparam(f"b_{name}")
        for name in (
            "kind",
            "host",
            "owner",
            "app",
            "task_id",
            "job_id",
            "purpose",
            "state",
            "availability",
            "opened_at",
        )
    }
)
"""A worker runspace, its process not known yet (executed for many at once)."""
_NEWEST_WORKERS = (
    sa.select(sa.func.max(t.runspaces.c.id), t.runspaces.c.job_id)
    .where(t.runspaces.c.job_id.in_(sa.bindparam("ids", expanding=True)))
    .group_by(t.runspaces.c.job_id)
)
"""``(runspace id, job id)``: the newest runspace of each job (read in the transaction
that opened them)."""

_SET_JOB_PROCESS = (
    t.jobs.update()
    .where(t.jobs.c.id == sa.bindparam("b_id"))
    .values(
        pid=sa.bindparam("b_pid"),
        create_time=sa.bindparam("b_create_time"),
        runspace_id=sa.bindparam("b_runspace"),
    )
)
_SET_RUNSPACE_PROCESS = (
    t.runspaces.update()
    .where(t.runspaces.c.id == sa.bindparam("b_id"))
    .values(
        pid=sa.bindparam("b_pid"),
        create_time=sa.bindparam("b_create_time"),
        state=RunspaceState.OPENED.value,
    )
)
"""A started job's process, on its row and its runspace's (executed for many at once)."""
_RUNSPACE_TAKES_JOB = _SET_RUNSPACE_PROCESS.values(availability=Availability.BUSY.value)
"""A held process starts its job: its runspace is ``Opened`` and ``Busy``."""


_COMPILED: dict[tuple[sa.ClauseElement, str], tuple[str, tuple[str, ...] | None, dict[str, Any]]]
_COMPILED = {}
"""Statements run by :meth:`_Batch.many`: their SQL, the order of their parameters (None:
named) and the parameters' defaults, by ``(statement, dialect name)``."""


class _Batch:
    """A write transaction on the DBAPI connection itself (:meth:`Store._batch`), which the
    engine's per-batch writes take: claims, processes, ends, run counts. Through
    SQLAlchemy's ``Connection`` each statement cost ~35 µs and the transaction ~60 µs
    before SQLite did anything, as much as SQLite's own work for a batch of a burst.

    The statements are SQLAlchemy constants of this module, compiled once per dialect; an
    expanding ``IN`` is expanded per call. Parameters get no type processing but this: a
    datetime becomes epoch seconds (``Timestamp``); give other values as stored (strings
    for enums). Rows come back as tuples, as the driver gives them."""

    def __init__(self, cursor: Any, dialect: sa.Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def many(self, statement: sa.ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute ``statement`` once per row of ``rows``, in one ``executemany``."""
        sql, order, defaults = self._compiled(statement)
        names = order if order is not None else tuple(defaults)
        dialect = self._dialect
        values = [
            [_stored(row[name], dialect) if name in row else defaults[name] for name in names]
            for row in rows
        ]
        if order is not None:
            self._cursor.executemany(sql, [tuple(row) for row in values])
        else:
            self._cursor.executemany(sql, [dict(zip(names, row, strict=True)) for row in values])

    def rows(self, statement: sa.ClauseElement, **params: Any) -> list[tuple[Any, ...]]:
        """The rows of a query whose parameters are expanding ``IN`` lists (a list each)."""
        dialect = self._dialect
        stored = {name: [_stored(v, dialect) for v in value] for name, value in params.items()}
        sql, places, positional = self._expanded(statement, stored)
        values = [(key, stored[name][at] if name else at) for key, name, at in places]
        if positional:
            self._cursor.execute(sql, tuple(value for _, value in values))
        else:
            self._cursor.execute(sql, dict(values))
        return [tuple(row) for row in self._cursor.fetchall()]

    def _expanded(
        self, statement: sa.ClauseElement, params: Mapping[str, Sequence[Any]]
    ) -> tuple[str, tuple[tuple[str, str, Any], ...], bool]:
        """``statement`` with its ``IN`` lists expanded to the lengths of ``params``: its
        SQL; where each of its parameters comes from, in order: ``(key, list, index)``,
        or ``(key, "", value)`` for a value of the statement's own; and whether they are
        positional. Made once per lengths: SQLAlchemy's expansion took ~30 µs a call, 6%
        of the engine's time in a burst."""
        key = (statement, self._dialect.name, tuple((n, len(v)) for n, v in params.items()))
        known = _EXPANDED.get(key)
        if known is None:
            marks = {name: [_Place(name, i) for i in range(len(v))] for name, v in params.items()}
            state = self._compiler(statement).construct_expanded_state(marks)
            positional = state.positiontup is not None
            keys = state.positiontup if state.positiontup is not None else list(state.parameters)
            places = tuple(
                (key_, value.name, value.index) if isinstance(value, _Place) else (key_, "", value)
                for key_ in keys
                for value in (state.parameters[key_],)
            )
            if len(_EXPANDED) >= _EXPANDED_MAX:
                _EXPANDED.clear()
            known = _EXPANDED[key] = (state.statement, places, positional)
        return known

    def _compiler(self, statement: sa.ClauseElement) -> SQLCompiler:
        key = (statement, self._dialect.name)
        compiled = _COMPILERS.get(key)
        if compiled is None:
            made = statement.compile(dialect=self._dialect)
            assert isinstance(made, SQLCompiler)
            compiled = _COMPILERS[key] = made
        return compiled

    def _compiled(
        self, statement: sa.ClauseElement
    ) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        key = (statement, self._dialect.name)
        known = _COMPILED.get(key)
        if known is None:
            compiled = self._compiler(statement)
            order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
            known = _COMPILED[key] = (compiled.string, order, dict(compiled.params))
        return known


_COMPILERS: dict[tuple[sa.ClauseElement, str], SQLCompiler] = {}
"""The statements of :class:`_Batch`, compiled: by ``(statement, dialect name)``."""


@dataclass(frozen=True)
class _Place:
    """Marks where the ``index``-th value of the list ``name`` goes in an expanded
    statement (:meth:`_Batch._expanded`)."""

    name: str
    index: int


_EXPANDED: dict[
    tuple[sa.ClauseElement, str, tuple[tuple[str, int], ...]],
    tuple[str, tuple[tuple[str, str, Any], ...], bool],
] = {}
""":meth:`_Batch._expanded`'s statements, by statement, dialect and list lengths."""

_EXPANDED_MAX = 512
"""How many expanded statements are kept at most (then forgotten all at once)."""


def _json_value(value: Any) -> Any:
    """A JSON column's value as a :class:`_Batch` row gives it: text on SQLite, decoded
    already by some drivers."""
    return json.loads(value) if isinstance(value, str | bytes) else value


_TIMESTAMP = t.Timestamp()


def _stored(value: Any, dialect: sa.Dialect) -> Any:
    """A parameter of :class:`_Batch` as stored: a datetime as ``Timestamp`` stores
    it, anything else as it is."""
    if isinstance(value, datetime):
        return _TIMESTAMP.process_bind_param(value, dialect)
    return value


def _record_processes(
    batch: _Batch,
    processes: Sequence[tuple[int, int, int, float]],
    *,
    runspace_update: Any,
) -> None:
    """Record ``(job id, runspace id, pid, create time)`` on each job's row and, by
    ``runspace_update``, on its runspace's."""
    batch.many(
        _SET_JOB_PROCESS,
        [
            {"b_id": job_id, "b_pid": pid, "b_create_time": created, "b_runspace": rs}
            for job_id, rs, pid, created in processes
        ],
    )
    batch.many(
        runspace_update,
        [{"b_id": rs, "b_pid": pid, "b_create_time": created} for _, rs, pid, created in processes],
    )


def _open_workers(
    batch: _Batch, starts: Sequence[JobStart], *, now: datetime, availability: Availability
) -> list[int]:
    """Open a worker runspace (``Opening``, its process not known yet) for each job of
    ``starts``; their ids, in order. One INSERT for all, then their ids read back: each
    job's newest runspace (a job let go of by its held process gets another)."""
    if not starts:
        return []
    host = socket.gethostname()
    rows = [
        {
            "b_kind": RunspaceKind.WORKER.value,
            "b_host": host,
            "b_owner": start.owner,
            "b_app": start.app,
            "b_task_id": start.task_id,
            "b_job_id": start.job_id,
            "b_purpose": start.name,
            "b_state": RunspaceState.OPENING.value,
            "b_availability": availability.value,
            "b_opened_at": now,
        }
        for start in starts
    ]
    batch.many(_OPEN_WORKER, rows)
    opened = {
        int(job_id): int(runspace_id)
        for runspace_id, job_id in batch.rows(
            _NEWEST_WORKERS, ids=sorted({start.job_id for start in starts})
        )
    }
    return [opened[start.job_id] for start in starts]


def _slot_key(conn: Connection, row: Mapping[str, Any]) -> tuple[str | None, float] | None:
    """The slot ``(task id, time as stored)`` of a job row; None when it has none."""
    slot = row.get("scheduled_for")
    if slot is None:
        return None
    stored = t.Timestamp().process_bind_param(slot, conn.dialect)
    assert stored is not None
    return row.get("task_id"), stored


def _taken_slots(
    conn: Connection, slots: Sequence[tuple[str | None, float]]
) -> set[tuple[str | None, float]]:
    """Those of ``slots`` (see :func:`_slot_key`) that have a job already, read in
    ``conn``'s transaction: a query per :data:`_SLOT_CHUNK` slots."""
    taken: set[tuple[str | None, float]] = set()
    for first in range(0, len(slots), _SLOT_CHUNK):
        chunk = slots[first : first + _SLOT_CHUNK]
        tasks = {task for task, _ in chunk}
        named = sorted(task for task in tasks if task is not None)
        of_task = [t.jobs.c.task_id.in_(named)] if named else []
        if None in tasks:  # as ``task_id == None`` did: IS NULL
            of_task.append(t.jobs.c.task_id.is_(None))
        query = sa.select(t.jobs.c.task_id, _epoch_seconds(t.jobs.c.scheduled_for)).where(
            sa.or_(*of_task), t.jobs.c.scheduled_for.in_(sorted({at for _, at in chunk}))
        )
        taken.update((task, float(at)) for task, at in conn.execute(query))
    return taken


_JOBS_ENDING = (
    sa.select(t.jobs.c.id, t.jobs.c.state, t.jobs.c.stop_requested, t.jobs.c.stop_reason)
    .where(t.jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
    .with_for_update()
)
"""What :meth:`Store.finish_jobs` reads of the jobs it ends."""

_FINISH_JOB = (
    t.jobs.update()
    .where(t.jobs.c.id == sa.bindparam("b_id"))
    .values(
        state=sa.bindparam("b_state"),
        ended_at=sa.bindparam("b_ended_at"),
        exit_code=sa.bindparam("b_exit_code"),
        error=sa.bindparam("b_error"),
        output_bytes=sa.bindparam("b_output_bytes"),
        stop_reason=sa.func.coalesce(
            sa.bindparam("b_stop_reason", type_=sa.Text), t.jobs.c.stop_reason
        ),
    )
)
"""The end of one job (executed for many at once, for jobs read as queued or running in
the same transaction); a stop reason of None keeps the one the row has."""

_CLOSE_RUNSPACE = (
    t.runspaces.update()
    .where(
        t.runspaces.c.id == sa.bindparam("b_id"),
        # not IN: executemany takes no expanding parameters
        sa.or_(*(t.runspaces.c.state == state.value for state in RunspaceState if state.live)),
    )
    .values(
        state=sa.bindparam("b_state"),
        availability=Availability.NONE.value,
        closed_at=sa.bindparam("b_closed_at"),
        exit_code=sa.bindparam("b_exit_code"),
    )
)
"""The end of one live runspace (executed for many at once)."""

_TASK_FAILURES = (
    sa.select(t.task_runtime.c.task_id, t.task_runtime.c.consecutive_failures)
    .where(t.task_runtime.c.task_id.in_(sa.bindparam("tasks", expanding=True)))
    .with_for_update()
)
_SET_FAILURES = (
    t.task_runtime.update()
    .where(t.task_runtime.c.task_id == sa.bindparam("b_task"))
    .values(consecutive_failures=sa.bindparam("b_count"), last_outcome_at=sa.bindparam("b_at"))
)


_ADD_RUNTIME = t.task_runtime.insert().values(
    task_id=sa.bindparam("task_id"),
    consecutive_failures=sa.bindparam("consecutive_failures"),
    last_outcome_at=sa.bindparam("last_outcome_at"),
)


def _count_outcomes(batch: _Batch, runs: Sequence[tuple[JobEnd, bool]]) -> list[int]:
    """Count finished runs ``(end, failed)`` of tasks, in order, in ``batch``'s transaction
    (as :meth:`Store.record_outcome` one after the other): each one's consecutive failures
    after it."""
    if not runs:
        return []
    tasks = sorted({end.task_id for end, _ in runs if end.task_id is not None})
    current: dict[str, int] = {
        task_id: int(failures or 0) for task_id, failures in batch.rows(_TASK_FAILURES, tasks=tasks)
    }
    known = set(current)
    last: dict[str, datetime] = {}
    out: list[int] = []
    for end, failed in runs:
        task_id = end.task_id
        assert task_id is not None
        count = current.get(task_id, 0) + 1 if failed else 0
        current[task_id] = count
        last[task_id] = end.ended_at
        out.append(count)
    updates = [
        {"b_task": task, "b_count": current[task], "b_at": at}
        for task, at in last.items()
        if task in known
    ]
    if updates:
        batch.many(_SET_FAILURES, updates)
    inserts = [
        {"task_id": task, "consecutive_failures": current[task], "last_outcome_at": at}
        for task, at in last.items()
        if task not in known
    ]
    if inserts:
        batch.many(_ADD_RUNTIME, inserts)
    return out


def _bump_revision(conn: Connection) -> None:
    """Count a change of the task definitions (the engine reloads tasks when it moves)."""
    done = conn.execute(
        t.meta.update()
        .where(t.meta.c.key == "tasks_revision")
        .values(value=sa.cast(sa.cast(t.meta.c.value, sa.Integer) + 1, sa.Text))
    )
    if done.rowcount == 0:
        conn.execute(t.meta.insert().values(key="tasks_revision", value="1"))


def _add_missing_indexes(conn: Connection) -> None:
    """Create every index a table of an older store lacks (``create_all`` makes those of
    new tables only). ``IF NOT EXISTS``: an index on an expression is not reflected."""
    for table in t.metadata.sorted_tables:
        for index in table.indexes:
            conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def _add_missing_columns(conn: Connection) -> None:
    """ALTER TABLE ... ADD COLUMN for every column a table of an older store lacks (new
    columns are nullable or have a server default, so this is always possible)."""
    inspector = sa.inspect(conn)
    for table in t.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))


def _job_filters(
    *,
    states: Iterable[JobState] | None,
    owner: str | None,
    search: str | None,
    task_id: str | None,
    include_removed: bool,
) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of ``list_jobs`` and ``count_jobs``."""
    clauses: list[sa.ColumnElement[bool]] = []
    if states is not None:
        clauses.append(t.jobs.c.state.in_([s.value for s in states]))
    if owner is not None:
        clauses.append(sa.func.lower(t.jobs.c.owner) == owner.lower())
    if task_id is not None:
        clauses.append(t.jobs.c.task_id == task_id)
    if not include_removed:
        clauses.append(t.jobs.c.removed_at.is_(None))
    if search:
        pattern = f"%{search.lower()}%"
        clauses.append(
            sa.or_(
                sa.func.lower(t.jobs.c.name).like(pattern),
                sa.func.lower(sa.func.coalesce(t.jobs.c.task_id, "")).like(pattern),
            )
        )
    return clauses


def _epoch_seconds(column: sa.ColumnElement[Any]) -> sa.ColumnElement[float]:
    """A ``Timestamp`` column read as the float it is stored as (UTC epoch seconds)."""
    return sa.type_coerce(column, sa.Float)


def _job_time_between(since: datetime | None, until: datetime | None) -> sa.ColumnElement[bool]:
    """``since <= coalesce(started_at, queued_at) < until`` (either bound optional), as
    two branches (started; never started) that each use an index on ``started_at``
    instead of a scan of ``coalesce(...)`` over every row."""
    started: list[sa.ColumnElement[bool]] = []
    never: list[sa.ColumnElement[bool]] = [t.jobs.c.started_at.is_(None)]
    if since is not None:
        started.append(t.jobs.c.started_at >= since)
        never.append(t.jobs.c.queued_at >= since)
    if until is not None:
        started.append(t.jobs.c.started_at < until)
        never.append(t.jobs.c.queued_at < until)
    return sa.or_(sa.and_(*started), sa.and_(*never))


def _fetch_columns(
    conn: Connection, query: sa.Select[Any], names: Sequence[str]
) -> dict[str, tuple[Any, ...]]:
    """The rows of ``query`` as one tuple per column, named by ``names`` (empty tuples when
    there are no rows).

    The rows are fetched from the DB-API cursor as plain tuples, without a ``Row`` object
    each (about a third of the read time): so callers select only columns whose values
    SQLAlchemy would pass through unchanged (numbers, text, ``_epoch_seconds``)."""
    result = conn.execute(query)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    if not rows:
        return {name: () for name in names}
    return dict(zip(names, zip(*rows, strict=True), strict=True))


def _job(row: Any) -> Job:
    command = row["command"] or {}
    return Job(
        id=row["id"],
        name=row["name"],
        state=JobState(row["state"]),
        owner=row["owner"],
        task_id=row["task_id"],
        app=row["app"],
        scheduled_for=row["scheduled_for"],
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        exit_code=row["exit_code"],
        error=row["error"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        output_bytes=row["output_bytes"],
        script=command.get("script"),
        command=tuple(command.get("argv") or ()),
        parameters=dict(command.get("params") or {}),
        environment=dict(command.get("env") or {}),
        max_runtime=command.get("maxRuntime"),
        over_time=bool(row["over_time"]),
        stop_reason=row["stop_reason"],
        pid=row["pid"],
        runspace_id=row["runspace_id"],
        removed=row["removed_at"] is not None,
    )


def _insert_runspace(
    conn: Connection,
    *,
    kind: RunspaceKind,
    pid: int | None,
    create_time: float | None,
    host: str,
    owner: str,
    app: str | None,
    task_id: str | None,
    job_id: int | None,
    purpose: str | None,
    state: RunspaceState,
    availability: Availability,
    now: datetime,
) -> int:
    """Add a runspace row in the transaction ``conn``; returns its id."""
    result = conn.execute(
        t.runspaces.insert().values(
            kind=kind.value,
            pid=pid,
            create_time=create_time,
            host=host,
            owner=owner,
            app=app,
            task_id=task_id,
            job_id=job_id,
            purpose=purpose,
            state=state.value,
            availability=availability.value,
            opened_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
