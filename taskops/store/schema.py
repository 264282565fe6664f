"""The store's tables (SQLAlchemy Core), one ``MetaData`` for every backend.

Times are stored as UTC epoch seconds (``Timestamp``): they sort, index and aggregate the
same way on SQLite and PostgreSQL, and come back as timezone-aware datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "SCHEMA_VERSION",
    "Timestamp",
    "custom_tasks",
    "deleted_tasks",
    "engine_lease",
    "jobs",
    "meta",
    "metadata",
    "notifications",
    "runspace_samples",
    "runspaces",
    "skipped_runs",
    "task_overrides",
    "task_runtime",
]

SCHEMA_VERSION = 2
"""Bumped with every change of the tables; ``Store`` migrates older stores forward.

1: tasks, overrides, jobs. 2: job process identity and flags, runspaces with samples, the
engine lease, skipped slots, failure counters, notifications."""


class Timestamp(sa.types.TypeDecorator[datetime]):
    """An aware datetime stored as UTC epoch seconds (a float)."""

    impl = sa.Float
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> float | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("naive datetimes are not stored; give a timezone")
            return value.timestamp()
        return float(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return datetime.fromtimestamp(float(value), tz=UTC)


metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

custom_tasks = sa.Table(
    "custom_tasks",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("app", sa.String(128), nullable=False, index=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("modified_at", Timestamp, nullable=False),
)

task_overrides = sa.Table(
    "task_overrides",
    metadata,
    sa.Column("task_id", sa.String(300), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("modified_at", Timestamp, nullable=False),
)

deleted_tasks = sa.Table(
    "deleted_tasks",
    metadata,
    sa.Column("task_id", sa.String(300), primary_key=True),
    sa.Column("deleted_at", Timestamp, nullable=False),
    sa.Column("deleted_by", sa.String(128), nullable=True),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(400), nullable=False),
    sa.Column("task_id", sa.String(300), nullable=True),
    sa.Column("app", sa.String(128), nullable=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("command", sa.JSON, nullable=True),
    sa.Column("scheduled_for", Timestamp, nullable=True),
    sa.Column("queued_at", Timestamp, nullable=False),
    sa.Column("started_at", Timestamp, nullable=True),
    sa.Column("ended_at", Timestamp, nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("progress", sa.Float, nullable=True),
    sa.Column("progress_message", sa.Text, nullable=True),
    sa.Column("output_bytes", sa.BigInteger, nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("runspace_id", sa.Integer, nullable=True),
    sa.Column("stop_requested", sa.Boolean, nullable=False, default=False),
    # added in version 2 (nullable or with a server default, so ALTER TABLE can add them)
    sa.Column("create_time", sa.Float, nullable=True),
    sa.Column("over_time", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("stop_reason", sa.Text, nullable=True),
    sa.Column("removed_at", Timestamp, nullable=True),
    # A scheduled slot runs at most once, whatever crashes: (task, slot time) is unique.
    sa.UniqueConstraint("task_id", "scheduled_for", name="uq_jobs_slot"),
    sa.Index("ix_jobs_task_started", "task_id", "started_at"),
    sa.Index("ix_jobs_state", "state"),
    sa.Index("ix_jobs_started", "started_at"),
)
# The queue in the order its jobs start (the store's _QUEUE_ORDER): by the time each became
# due, its slot or else when it was queued. The engine's look at the queue reads the first
# few in this order without sorting every queued job.
sa.Index(
    "ix_jobs_queue",
    jobs.c.state,
    sa.func.coalesce(jobs.c.scheduled_for, jobs.c.queued_at),
    jobs.c.id,
)

runspaces = sa.Table(
    "runspaces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("create_time", sa.Float, nullable=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("app", sa.String(128), nullable=True),
    sa.Column("task_id", sa.String(300), nullable=True),
    sa.Column("job_id", sa.Integer, nullable=True),
    sa.Column("purpose", sa.Text, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("availability", sa.String(16), nullable=False),
    sa.Column("opened_at", Timestamp, nullable=False),
    sa.Column("closed_at", Timestamp, nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("thread_count", sa.Integer, nullable=True),
    sa.Column("memory_mb", sa.Float, nullable=True),
    sa.Column("handle_count", sa.Integer, nullable=True),
    sa.Column("sampled_at", Timestamp, nullable=True),
    sa.UniqueConstraint("host", "pid", "create_time", name="uq_runspaces_process"),
    sa.Index("ix_runspaces_state", "state"),
    sa.Index("ix_runspaces_job", "job_id"),
)

runspace_samples = sa.Table(
    "runspace_samples",
    metadata,
    sa.Column("runspace_id", sa.Integer, nullable=False),
    sa.Column("time", Timestamp, nullable=False),
    sa.Column("memory_mb", sa.Float, nullable=True),
    sa.Column("thread_count", sa.Integer, nullable=True),
    sa.Index("ix_runspace_samples", "runspace_id", "time"),
)

engine_lease = sa.Table(
    "engine_lease",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", Timestamp, nullable=False),
    sa.Column("heartbeat_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    # the time up to which the holder has handled every slot (misfires are counted from it)
    sa.Column("checkpoint", Timestamp, nullable=True),
)

skipped_runs = sa.Table(
    "skipped_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(300), nullable=False),
    sa.Column("scheduled_for", Timestamp, nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.UniqueConstraint("task_id", "scheduled_for", name="uq_skipped_slot"),
)

task_runtime = sa.Table(
    "task_runtime",
    metadata,
    sa.Column("task_id", sa.String(300), primary_key=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
    sa.Column("last_outcome_at", Timestamp, nullable=True),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", Timestamp, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("task_id", sa.String(300), nullable=True),
    sa.Column("job_id", sa.Integer, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("delivery", sa.Text, nullable=True),
    sa.Index("ix_notifications_time", "time"),
)
