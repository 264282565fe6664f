"""``TaskList``: the seed's Task List View, and the Task Detail View it opens.

Quick stats on top, filters (app, status, text), bulk actions on the checked rows, and a
table paged and sorted in Python: the browser only ever holds one page of rows, so 10,000
tasks cost no more widgets than 10.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ipywidgets as widgets
import traitlets

from taskops.model import Task, TaskStatus
from taskops.service import TaskOps
from taskops.ui.duplicate import DuplicateDialog
from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.format import STATE_COLOURS, STATE_ICONS, relative, when
from taskops.ui.screen import ListScreen, PagedTable, search_box
from taskops.ui.stats import StatCards
from taskops.ui.task_detail import TaskDetail
from taskops.ui.task_editor import TaskEditor

__all__ = ["TaskList", "TaskListState", "TaskTable"]

ALL = "All"
STATUSES = (ALL, *(status.value for status in TaskStatus))
HEADERS = [
    {"title": "Name", "key": "name"},
    {"title": "App", "key": "app"},
    {"title": "Schedule", "key": "schedule"},
    {"title": "Status", "key": "status"},
    {"title": "Last Run", "key": "lastRun"},
    {"title": "Next Run", "key": "nextRun"},
    {"title": "Actions", "key": "actions", "sortable": False, "align": "end"},
]

ROW_ACTIONS = [
    ["edit", "Edit", "mdi-pencil"],
    ["run", "Run Now", "mdi-rocket-launch"],
    ["duplicate", "Duplicate", "mdi-content-copy"],
    ["delete", "Delete", "mdi-delete"],
]
"""The row buttons after Enable/Disable: action (and class ``taskops-row-<action>``),
title, MDI icon."""


def _sort_key(column: str) -> Callable[[Task], Any]:
    """How a column sorts: text without case, times with the empty ones last."""
    if column in ("lastRun", "nextRun"):
        attribute = "last_run" if column == "lastRun" else "next_run"

        def moment(task: Task) -> tuple[bool, float]:
            value: datetime | None = getattr(task, attribute)
            return (value is None, value.timestamp() if value else 0.0)

        return moment
    text: dict[str, Callable[[Task], str]] = {
        "name": lambda t: t.name.lower(),
        "app": lambda t: t.app.lower(),
        "schedule": lambda t: t.spec.schedule,
        "status": lambda t: t.status.value,
    }
    return text.get(column, text["name"])


@dataclass
class TaskListState:
    """What the user chose on the list: filters, sort, page and the checked rows."""

    app: str = ALL
    status: str = ALL
    search: str = ""
    sort_by: list[dict[str, str]] = field(default_factory=list)
    page: int = 1
    per_page: int = 25
    selected: list[str] = field(default_factory=list)

    def arrange(self, tasks: Sequence[Task]) -> tuple[list[Task], int]:
        """The current page of ``tasks`` in the chosen order, and how many there are."""
        rows = list(tasks)
        for order in reversed(self.sort_by):  # stable sorts: the first key wins
            rows.sort(key=_sort_key(order["key"]), reverse=order.get("order") == "desc")
        pages = max(1, -(-len(rows) // self.per_page))
        self.page = min(max(1, self.page), pages)
        start = (self.page - 1) * self.per_page
        return rows[start : start + self.per_page], len(rows)


class TaskTable(PagedTable):
    """The task rows (one page, paged and sorted in Python), with checkboxes and the row
    actions (``enable``, ``disable``, ``edit``, ``run``, ``duplicate``, ``delete``)."""

    headers = traitlets.List(HEADERS).tag(sync=True)
    selected = traitlets.List(traitlets.Any()).tag(sync=True)
    loading = traitlets.Bool(False).tag(sync=True)
    row_actions = traitlets.List(ROW_ACTIONS).tag(sync=True)
    template = traitlets.Unicode(
        """
<template>
  <v-data-table-server class="taskops-task-table" density="compact" show-select
      item-value="id" :headers="headers" :items="items" :items-length="total"
      :loading="loading" v-model="selected" v-model:page="page"
      v-model:items-per-page="per_page" v-model:sort-by="sort_by"
      :items-per-page-options="page_sizes" @update:options="options"
      no-data-text="No tasks match the filters">
    <template v-slot:item.name="{ item }">
      <a class="taskops-task-name" :data-task="item.id" :title="item.description"
         style="cursor:pointer; font-weight:500" @click="open(item.id)">{{ item.name }}</a>
      <v-chip v-if="!item.isDefault" size="x-small" class="ml-1"
              variant="outlined">custom</v-chip>
    </template>
    <template v-slot:item.schedule="{ item }">
      <v-tooltip location="top" :text="item.scheduleText">
        <template v-slot:activator="{ props }">
          <code v-bind="props" class="taskops-schedule"
                :data-task="item.id">{{ item.schedule }}</code>
        </template>
      </v-tooltip>
    </template>
    <template v-slot:item.status="{ item }">
      <v-chip size="small" :color="item.statusColour" class="taskops-status"
              :data-task="item.id">{{ item.status }}</v-chip>
    </template>
    <template v-slot:item.lastRun="{ item }">
      <span :title="item.lastState || ''">{{ item.lastRun }}</span>
      <v-icon v-if="item.lastState" size="small" :color="item.lastStateColour" class="ml-1"
              :icon="item.lastStateIcon"></v-icon>
    </template>
    <template v-slot:item.nextRun="{ item }">
      <span :title="item.nextRunIn">{{ item.nextRun }}</span>
    </template>
    <template v-slot:item.actions="{ item }">
      <span style="white-space:nowrap">
        <button v-if="item.enabled" class="taskops-icon-button taskops-row-disable"
                :data-task="item.id" title="Disable"
                @click="act({action: 'disable', id: item.id})">
          <i class="mdi mdi-pause-circle-outline"></i></button>
        <button v-else class="taskops-icon-button taskops-row-enable" :data-task="item.id"
                title="Enable" @click="act({action: 'enable', id: item.id})">
          <i class="mdi mdi-play-circle-outline"></i></button>
        <button v-for="a in row_actions" :key="a[0]"
                :class="'taskops-icon-button taskops-row-' + a[0]" :data-task="item.id"
                :title="a[1]" @click="act({action: a[0], id: item.id})">
          <i :class="'mdi ' + a[2]"></i></button>
      </span>
    </template>
  </v-data-table-server>
</template>
<style>
/* the rows' action buttons: plain buttons, not v-btn components (five a row made the
   table the slowest part of the dashboard's first render) */
.taskops-icon-button {
  width: 28px; height: 28px; padding: 0; border: none; border-radius: 50%;
  background: transparent; color: inherit; cursor: pointer; font-size: 18px;
  display: inline-flex; align-items: center; justify-content: center;
  vertical-align: middle;
}
.taskops-icon-button:hover { background: rgba(0, 0, 0, 0.08); }
.taskops-icon-button:focus-visible { outline: 2px solid currentColor; }
</style>
"""
    ).tag(sync=True)

    def item_id(self, value: Any) -> str:
        return str(value)


class TaskList(ListScreen):
    """The Tasks screen: the list, and the detail of a task when its name is clicked
    (Back returns to the list as it was). ``refresh()`` reloads from the service; the
    screen's ticker calls it every ``autoRefreshInterval`` seconds while it is shown."""

    def __init__(self, ops: TaskOps, *, alerts: Alerts | None = None) -> None:
        super().__init__(ops, alerts=alerts)
        self.state = TaskListState()
        self.add_class("taskops-tasks")
        self._tasks: list[Task] = []
        self._timezone = ops.timezone

        self.stats = StatCards(
            [
                ("total", "Total Tasks", "total"),
                ("enabled", "Enabled", "enabled"),
                ("running", "Running", "running"),
                ("failed24h", "Failed (last 24h)", "failed"),
            ]
        )
        self.stat_values = self.stats.values

        self.app_filter = widgets.Dropdown(description="App", options=(ALL, *ops.apps()))
        self.status_filter = widgets.Dropdown(description="Status", options=STATUSES)
        self.search = search_box(
            "Search name or description", lambda text: self.set_filter(search=text)
        )
        self.new_button = widgets.Button(
            description="New Task", icon="plus", button_style="primary"
        )
        self.refresh_button = widgets.Button(
            icon="refresh", tooltip="Refresh", layout=widgets.Layout(width="40px")
        )
        self.bulk_enable_button = widgets.Button(description="Enable", icon="play", disabled=True)
        self.bulk_disable_button = widgets.Button(
            description="Disable", icon="pause", disabled=True
        )
        self.bulk_delete_button = widgets.Button(description="Delete", icon="trash", disabled=True)
        self.selection_label = widgets.HTML("")
        self.deleted_choice = widgets.Dropdown(
            description="Deleted default tasks", style={"description_width": "150px"}
        )
        self.restore_button = widgets.Button(description="Restore", icon="undo")
        self.restore_box = widgets.HBox(
            [self.deleted_choice, self.restore_button], layout=widgets.Layout(display="none")
        )
        for widget, css in (
            (self.app_filter, "filter-app"),
            (self.status_filter, "filter-status"),
            (self.search, "search"),
            (self.new_button, "new-task"),
            (self.refresh_button, "refresh"),
            (self.bulk_enable_button, "bulk-enable"),
            (self.bulk_disable_button, "bulk-disable"),
            (self.bulk_delete_button, "bulk-delete"),
            (self.selection_label, "selection"),
            (self.deleted_choice, "deleted"),
            (self.restore_button, "restore"),
        ):
            widget.add_class(f"taskops-{css}")

        self.table = TaskTable()
        # dialogs and the detail are built when first needed: a page that never opens
        # them never sends their hundreds of widget models to the browser
        self._editor: TaskEditor | None = None
        self._duplicator: DuplicateDialog | None = None
        self._detail: TaskDetail | None = None

        self.app_filter.observe(lambda change: self.set_filter(app=change["new"]), "value")
        self.status_filter.observe(lambda change: self.set_filter(status=change["new"]), "value")
        self.table.observe(lambda change: self.select(change["new"]), "selected")
        self.table.on_options = self.show_page
        self.table.on_open = self.open_task
        self.table.on_action = self.act
        self.new_button.on_click(lambda _b: self.editor.new(self._chosen_app()))
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.bulk_enable_button.on_click(lambda _b: self.bulk("enable"))
        self.bulk_disable_button.on_click(lambda _b: self.bulk("disable"))
        self.bulk_delete_button.on_click(lambda _b: self.ask_bulk_delete())
        self.restore_button.on_click(lambda _b: self.restore())

        self.list_view = widgets.VBox(
            [
                self.stats,
                widgets.HBox(
                    [self.app_filter, self.status_filter, self.search, self.refresh_button],
                    layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
                ),
                widgets.HBox(
                    [
                        self.new_button,
                        widgets.HTML("&nbsp;&nbsp;Checked:"),
                        self.bulk_enable_button,
                        self.bulk_disable_button,
                        self.bulk_delete_button,
                        self.selection_label,
                    ],
                    layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
                ),
                self.table,
                self.restore_box,
            ]
        )
        self.list_view.add_class("taskops-task-list")
        self.show_list()

    # -- parts built on first use -------------------------------------------------------

    @property
    def editor(self) -> TaskEditor:
        if self._editor is None:
            self._editor = TaskEditor(self.ops, alerts=self.alerts, on_saved=self._saved)
            self.add_dialog(self._editor)
        return self._editor

    @property
    def duplicator(self) -> DuplicateDialog:
        if self._duplicator is None:
            self._duplicator = DuplicateDialog(
                self.ops, alerts=self.alerts, on_done=self._duplicated
            )
            self.add_dialog(self._duplicator)
        return self._duplicator

    @property
    def detail(self) -> TaskDetail:
        if self._detail is None:
            self._detail = TaskDetail(
                self.ops,
                alerts=self.alerts,
                on_back=self.show_list,
                duplicator=self.duplicator,
                confirm=self.confirm,
                on_edit=lambda task_id: self.editor.edit(task_id),
            )
        return self._detail

    # -- loading -------------------------------------------------------------------------

    @shows_errors
    def refresh(self) -> None:
        """Reload the tasks and the quick stats from the service and show them."""
        state = self.state
        self._tasks = self.ops.tasks.list(
            app=None if state.app == ALL else state.app,
            status=None if state.status == ALL else state.status,
            search=state.search or None,
        )
        self.follow_interval()
        self.stats.show(self.ops.tasks.summary())
        known = {task.id for task in self._tasks}
        if any(task_id not in known for task_id in state.selected):
            self.table.selected = [i for i in state.selected if i in known]
        deleted = self.ops.tasks.deleted()
        if list(self.deleted_choice.options) != deleted:
            self.deleted_choice.options = deleted
            self.deleted_choice.value = deleted[0] if deleted else None
        self.restore_box.layout.display = "flex" if deleted else "none"
        self.show_page()

    def refresh_detail(self) -> None:
        self.detail.refresh()

    def show_page(self) -> None:
        """Put the page the table asks for (its page, size and sort) in its rows."""
        state = self.state
        state.page, state.per_page = self.table.page, self.table.per_page
        state.sort_by = [dict(order) for order in self.table.sort_by]
        rows, total = state.arrange(self._tasks)
        self.table.page = state.page
        now = self.ops.clock.now()
        self.table.items = [self._row(task, now) for task in rows]
        self.table.total = total

    def _row(self, task: Task, now: datetime) -> dict[str, Any]:
        last_state = task.last_state.value if task.last_state else None
        return {
            "id": task.id,
            "name": task.name,
            "description": task.spec.description,
            "app": task.app,
            "isDefault": task.is_default,
            "enabled": task.enabled,
            "schedule": task.spec.schedule,
            "scheduleText": f"{task.schedule_text} ({task.timezone})",
            "status": task.status.value,
            "statusColour": STATE_COLOURS[task.status.value],
            "lastRun": when(task.last_run, self._timezone),
            "lastState": last_state,
            "lastStateColour": STATE_COLOURS.get(last_state or "", "grey"),
            "lastStateIcon": STATE_ICONS.get(last_state or "", "mdi-help-circle"),
            "nextRun": when(task.next_run, self._timezone),
            "nextRunIn": relative(task.next_run, now),
        }

    # -- filters and selection -----------------------------------------------------------

    def set_filter(
        self, *, app: str | None = None, status: str | None = None, search: str | None = None
    ) -> None:
        """Change a filter and show the first page of what matches."""
        if app is not None:
            self.state.app = app
        if status is not None:
            self.state.status = status
        if search is not None:
            self.state.search = search.strip()
        self.table.page = 1
        self.refresh()

    def select(self, task_ids: Sequence[str]) -> None:
        """Remember the checked rows and offer the bulk actions for them."""
        self.state.selected = list(task_ids)
        count = len(task_ids)
        for button in (self.bulk_enable_button, self.bulk_disable_button, self.bulk_delete_button):
            button.disabled = count == 0
        self.selection_label.value = f"{count} checked" if count else ""

    def _chosen_app(self) -> str | None:
        return None if self.state.app == ALL else self.state.app

    # -- actions -------------------------------------------------------------------------

    @shows_errors
    def act(self, action: str, task_id: str) -> None:
        """A row button: enable, disable, edit, run, duplicate or delete."""
        tasks = self.ops.tasks
        if action == "enable":
            tasks.enable(task_id)
            self.alerts.success(f"Enabled {task_id}")
        elif action == "disable":
            tasks.disable(task_id)
            self.alerts.success(f"Disabled {task_id}")
        elif action == "edit":
            self.editor.edit(task_id)
        elif action == "run":
            job = tasks.run(task_id)
            self.alerts.success(
                f"Started {task_id}: job {job.id} ({job.name}) is {job.state.value}"
            )
        elif action == "duplicate":
            self.duplicator.ask(task_id)
        elif action == "delete":
            self.ask_delete(task_id)
        else:
            raise ValueError(f"unknown row action {action!r}")
        self.refresh()

    def ask_delete(self, task_id: str) -> None:
        task = self.ops.tasks.get(task_id)
        what = (
            "It is a default task from the site's YAML: it is hidden, and can be restored."
            if task.is_default
            else "It is a custom task: it is removed for good."
        )
        self.confirm.ask(
            "Delete task",
            f"Delete <b>{html.escape(task_id)}</b>? {what}",
            lambda: self.delete(task_id),
            confirm="Delete",
        )

    @shows_errors
    def delete(self, task_id: str) -> None:
        self.ops.tasks.delete(task_id)
        self.alerts.success(f"Deleted {task_id}")
        if self.showing_detail and self.detail.task_id == task_id:
            self.show_list()
        self.refresh()

    def ask_bulk_delete(self) -> None:
        chosen = self.state.selected
        self.confirm.ask(
            "Delete tasks",
            f"Delete {len(chosen)} checked task(s)? Only custom tasks are deleted; "
            "default tasks are skipped.",
            lambda: self.bulk("delete"),
            confirm="Delete",
        )

    @shows_errors
    def bulk(self, action: str) -> None:
        """Enable, disable or delete every checked task; say what was done and skipped."""
        run = {
            "enable": self.ops.tasks.bulk_enable,
            "disable": self.ops.tasks.bulk_disable,
            "delete": self.ops.tasks.bulk_delete,
        }[action]
        result = run(self.state.selected)
        verb = {"enable": "Enabled", "disable": "Disabled", "delete": "Deleted"}[action]
        if result.done:
            self.alerts.success(f"{verb} {len(result.done)} task(s): {', '.join(result.done)}")
        if result.skipped:
            lines = "; ".join(f"{task_id}: {why}" for task_id, why in result.skipped.items())
            self.alerts.warning(f"Skipped {len(result.skipped)}: {lines}")
        self.table.selected = []
        self.refresh()

    @shows_errors
    def restore(self) -> None:
        """Bring back the chosen deleted default task."""
        task = self.ops.tasks.restore(self.deleted_choice.value)
        self.alerts.success(f"Restored {task.id}")
        self.refresh()

    def _saved(self, task: Task) -> None:
        self.alerts.success(f"Saved {task.id}")
        if self.showing_detail:
            self.detail.load(task.id)  # edited from the detail: show the saved fields
        else:
            self.refresh()

    def _duplicated(self, task: Task) -> None:
        self.alerts.success(f"Created {task.id}")
        self.refresh()

    # -- list and detail -----------------------------------------------------------------

    def open_task(self, task_id: str) -> None:
        """Show the task's detail in place of the list."""
        if self.detail.load(task_id):
            self.show_detail(self.detail)
