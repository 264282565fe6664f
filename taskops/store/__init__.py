"""Persistent state of a site: custom tasks, overrides, deleted markers, jobs, runspaces."""

from taskops.store.store import Lease, RunspaceRow, RunspaceSample, Store, TaskRunSummary

__all__ = ["Lease", "RunspaceRow", "RunspaceSample", "Store", "TaskRunSummary"]
