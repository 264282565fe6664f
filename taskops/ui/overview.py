"""Read-only first screens of Jobs, Runspaces and Settings: what runs, what lives, how the
console is set. (Their actions and live detail views are the next part of the dashboard.)"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import traitlets
from ipyvuetify.VuetifyTemplate import VuetifyTemplate

from taskops.service import TaskOps
from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.format import STATE_COLOURS, duration, when
from taskops.ui.ticker import Ticker

__all__ = ["JobsOverview", "RunspacesOverview", "SettingsOverview", "SimpleTable"]

ROWS_SHOWN = 200


class SimpleTable(VuetifyTemplate):
    """A sortable, paged table of plain rows; a ``state`` column shows as a coloured chip."""

    headers = traitlets.List(traitlets.Any()).tag(sync=True)
    items = traitlets.List(traitlets.Any()).tag(sync=True)
    css_class = traitlets.Unicode("taskops-table").tag(sync=True)
    template = traitlets.Unicode(
        """
<template>
  <v-data-table :class="css_class" density="compact" :headers="headers" :items="items"
      :items-per-page="25" no-data-text="Nothing to show">
    <template v-slot:item.state="{ item }">
      <v-chip size="small" :color="item.stateColour">{{ item.state }}</v-chip>
    </template>
  </v-data-table>
</template>
"""
    ).tag(sync=True)


def _stats(values: dict[str, Any], labels: dict[str, str], css: str) -> widgets.HTML:
    box = widgets.HTML(
        " ".join(
            f'<span style="display:inline-block; border:1px solid #ddd; padding:4px 16px; '
            f'margin-right:8px"><span style="color:#666">{label}</span><br>'
            f'<span style="font-size:1.6em">{html.escape(str(values[key]))}</span></span>'
            for key, label in labels.items()
        )
    )
    box.add_class(css)
    return box


class _Overview(widgets.VBox):  # type: ignore[misc]
    """Quick stats over a table, refreshed by a browser-driven ticker while shown; each
    screen below fills them in its ``refresh``."""

    css = "taskops-overview"
    refresh: Callable[[], None]  # each screen's own

    def __init__(self, ops: TaskOps, *, alerts: Alerts | None = None) -> None:
        super().__init__()
        self.ops = ops
        self.alerts = alerts or Alerts()
        self.stats = widgets.HTML()
        self.table = SimpleTable(css_class=f"{self.css}-table")
        self.ticker = Ticker(float(ops.settings.get()["autoRefreshInterval"]))
        self.add_class(self.css)
        self.children = [self.stats, self.table, self.ticker]
        self.ticker.on_tick(self.refresh)
        self.refresh()


class JobsOverview(_Overview):
    """The latest jobs: id, name, state, owner, started, elapsed."""

    css = "taskops-jobs"

    @shows_errors
    def refresh(self) -> None:
        summary = self.ops.jobs.summary()
        labels = {
            "total": "Total",
            "running": "Running",
            "queued": "Queued",
            "completedLastHour": "Completed (last hour)",
            "failedLastHour": "Failed (last hour)",
        }
        self.stats.value = _stats(summary, labels, "taskops-job-stats").value
        self.table.headers = [
            {"title": title, "key": key}
            for title, key in (
                ("ID", "id"),
                ("Name", "name"),
                ("State", "state"),
                ("Owner", "owner"),
                ("Started", "started"),
                ("Elapsed", "elapsed"),
            )
        ]
        now = self.ops.clock.now()
        zone = self.ops.timezone
        self.table.items = [
            {
                "id": job.id,
                "name": job.name,
                "state": job.state.value,
                "stateColour": STATE_COLOURS.get(job.state.value, "grey"),
                "owner": job.owner,
                "started": when(job.started_at, zone, seconds=True),
                "elapsed": duration(job.elapsed_seconds(now)),
            }
            for job in self.ops.jobs.list(limit=ROWS_SHOWN)
        ]


class RunspacesOverview(_Overview):
    """The live runspaces: id, kind, state, owner, age, threads, memory."""

    css = "taskops-runspaces"

    @shows_errors
    def refresh(self) -> None:
        summary = self.ops.runspaces.summary()
        labels = {
            "total": "Total",
            "opened": "Opened",
            "busy": "Busy",
            "broken": "Broken",
            "totalMemoryMB": "Memory (MB)",
        }
        self.stats.value = _stats(summary, labels, "taskops-runspace-stats").value
        self.table.headers = [
            {"title": title, "key": key}
            for title, key in (
                ("ID", "id"),
                ("Kind", "kind"),
                ("State", "state"),
                ("Owner", "owner"),
                ("Age", "age"),
                ("Threads", "threads"),
                ("Memory (MB)", "memory"),
                ("Availability", "availability"),
            )
        ]
        self.table.items = [
            {
                "id": space.id,
                "kind": space.kind.value,
                "state": space.state.value,
                "stateColour": "error" if space.state.value == "Broken" else "success",
                "owner": space.owner,
                "age": duration(space.age_seconds),
                "threads": space.thread_count if space.thread_count is not None else "—",
                "memory": round(space.memory_mb, 1) if space.memory_mb is not None else "—",
                "availability": space.availability.value,
            }
            for space in self.ops.runspaces.list()
        ]


class SettingsOverview(_Overview):
    """The seven settings: value, default and meaning."""

    css = "taskops-settings"

    @shows_errors
    def refresh(self) -> None:
        self.stats.value = "<h3 style='margin:4px 0'>Settings</h3>"
        self.table.headers = [
            {"title": title, "key": key}
            for title, key in (
                ("Setting", "key"),
                ("Value", "value"),
                ("Default", "default"),
                ("Unit", "unit"),
                ("Meaning", "meaning"),
            )
        ]
        self.table.items = [
            {
                k: ("" if item[k] is None else str(item[k]))
                for k in ("key", "value", "default", "unit", "meaning")
            }
            for item in self.ops.settings.describe()
        ]
