"""Persistent state of a site: custom tasks, overrides, deleted markers, jobs, runspaces."""

from taskops.store.store import (
    JobEnd,
    JobEndResult,
    JobStart,
    Lease,
    RunspaceRow,
    RunspaceSample,
    Store,
    TaskRunSummary,
)

__all__ = [
    "JobEnd",
    "JobEndResult",
    "JobStart",
    "Lease",
    "RunspaceRow",
    "RunspaceSample",
    "Store",
    "TaskRunSummary",
]
