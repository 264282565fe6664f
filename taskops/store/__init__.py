"""Persistent state of a site: custom tasks, overrides, deleted markers, jobs, runspaces."""

from taskops.store.store import (
    JobStart,
    Lease,
    RunspaceRow,
    RunspaceSample,
    Store,
    TaskRunSummary,
)

__all__ = ["JobStart", "Lease", "RunspaceRow", "RunspaceSample", "Store", "TaskRunSummary"]
