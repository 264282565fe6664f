"""``Store``: the site's database, shared safely by several processes.

SQLite (the default, ``<data>/taskops.db``) runs in WAL mode with a busy timeout, and every
write transaction starts with ``BEGIN IMMEDIATE``: a writer waits for the lock up front
instead of failing with "database is locked" when a read transaction tries to upgrade.
Readers never block writers. Any other SQLAlchemy URL (PostgreSQL) works with its own
transaction semantics.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from taskops.errors import Conflict, NotFound
from taskops.model import Job, JobState
from taskops.store import schema as t

__all__ = ["CustomTaskRow", "Store", "TaskRunSummary"]

BUSY_TIMEOUT_MS = 30_000


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
        write = conn.get_execution_options().get("taskops_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


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
        if self._is_sqlite:
            _configure_sqlite(self._engine)
        self._migrate()

    @classmethod
    def for_sqlite(cls, path: Path) -> Store:
        """The store in the SQLite file ``path`` (created with its folder when missing)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path}")

    def close(self) -> None:
        self._engine.dispose()

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

    def _migrate(self) -> None:
        with self._write() as conn:
            t.metadata.create_all(conn)
            row = conn.execute(
                sa.select(t.meta.c.value).where(t.meta.c.key == "schema_version")
            ).first()
            found = int(row.value) if row else 0
            if found > t.SCHEMA_VERSION:
                raise RuntimeError(
                    f"the store {self!r} has schema version {found}, newer than this "
                    f"taskops ({t.SCHEMA_VERSION}); upgrade taskops"
                )
            if row is None:
                conn.execute(
                    t.meta.insert().values(key="schema_version", value=str(t.SCHEMA_VERSION))
                )
            elif found < t.SCHEMA_VERSION:
                conn.execute(
                    t.meta.update()
                    .where(t.meta.c.key == "schema_version")
                    .values(value=str(t.SCHEMA_VERSION))
                )

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
            conn.execute(t.deleted_tasks.delete().where(t.deleted_tasks.c.task_id == task_id))
            conn.execute(
                t.deleted_tasks.insert().values(task_id=task_id, deleted_at=now, deleted_by=user)
            )

    def unmark_deleted(self, task_id: str) -> bool:
        """Returns whether a marker was there."""
        with self._write() as conn:
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

    def jobs_of_task(self, task_id: str, *, limit: int = 20) -> list[Job]:
        """The task's most recent jobs, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.jobs)
                .where(t.jobs.c.task_id == task_id)
                .order_by(t.jobs.c.queued_at.desc(), t.jobs.c.id.desc())
                .limit(limit)
            ).all()
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


def _job(row: Any) -> Job:
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
    )
