"""Persistent state of a site: custom tasks, overrides, deleted markers, jobs, runspaces."""

from taskops.store.store import Store, TaskRunSummary

__all__ = ["Store", "TaskRunSummary"]
