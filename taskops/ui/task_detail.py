"""``TaskDetail``: the seed's Task Detail View of one task.

Overview, Schedule (the cron builder), Script & Parameters, Termination Rules and
Execution History (the last 20 runs and a 7-day chart) as tabs, under a bar of actions
(Run Now, Edit, Duplicate, Copy to another app, Export, Delete). Each Save sends only its
own tab's fields.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import traitlets
from ipyvuetify.VuetifyTemplate import VuetifyTemplate

from taskops.errors import InvalidInput, NotFound
from taskops.model import Job, Task
from taskops.service import TaskOps
from taskops.ui.cron_builder import CronBuilder
from taskops.ui.dialogs import ConfirmDialog
from taskops.ui.download import DownloadButton
from taskops.ui.duplicate import DuplicateDialog
from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.format import STATE_COLOURS, duration, error_html, relative, typed_whole, when
from taskops.ui.key_values import task_variable_editors

__all__ = ["HistoryTable", "TaskDetail"]

HISTORY_RUNS = 20
CHART_DAYS = 7
_STYLE = {"description_width": "110px"}
TABS = ("Overview", "Schedule", "Script & Parameters", "Termination Rules", "Execution History")


class HistoryTable(VuetifyTemplate):
    """The last runs of a task; a row expands to its output and error."""

    items = traitlets.List(traitlets.Any()).tag(sync=True)
    expanded = traitlets.List(traitlets.Any()).tag(sync=True)
    headers = traitlets.List(
        [
            {"title": "Job", "key": "id"},
            {"title": "Start Time", "key": "started"},
            {"title": "Duration", "key": "duration"},
            {"title": "Status", "key": "state"},
            {"title": "Owner", "key": "owner"},
            {"title": "Error", "key": "error", "sortable": False},
            {"title": "", "key": "data-table-expand"},
        ]
    ).tag(sync=True)
    template = traitlets.Unicode(
        """
<template>
  <v-data-table class="taskops-history" density="compact" :headers="headers" :items="items"
      item-value="id" show-expand v-model:expanded="expanded" :items-per-page="-1"
      hide-default-footer no-data-text="No runs yet">
    <template v-slot:item.state="{ item }">
      <v-chip size="small" :color="item.stateColour" class="taskops-history-state">
        {{ item.state }}</v-chip>
    </template>
    <template v-slot:item.error="{ item }">
      <span class="taskops-history-error" style="color:#b71c1c">{{ item.errorShort }}</span>
    </template>
    <template v-slot:expanded-row="{ columns, item }">
      <tr class="taskops-history-output"><td :colspan="columns.length">
        <div v-if="item.error" style="color:#b71c1c; white-space:pre-wrap">{{ item.error }}</div>
        <pre style="max-height:240px; overflow:auto; background:#f6f6f6; padding:6px;
                    white-space:pre-wrap">{{ item.output || '(no output)' }}</pre>
      </td></tr>
    </template>
  </v-data-table>
</template>
"""
    ).tag(sync=True)


class TaskDetail(widgets.VBox):  # type: ignore[misc]
    """The detail of one task. ``load(task_id)`` shows a task; ``refresh()`` reloads its
    state and history (the dashboard's ticker calls it). ``on_back`` returns to the list;
    ``on_change`` is called after any change so that the list follows."""

    def __init__(
        self,
        ops: TaskOps,
        task_id: str | None = None,
        *,
        alerts: Alerts | None = None,
        on_back: Callable[[], Any] | None = None,
        on_change: Callable[[], Any] | None = None,
        on_edit: Callable[[str], Any] | None = None,
        duplicator: DuplicateDialog | None = None,
        confirm: ConfirmDialog | None = None,
    ) -> None:
        super().__init__()
        self.ops = ops
        self.alerts = alerts or Alerts()
        self.on_back = on_back
        self.on_change = on_change
        self.on_edit = on_edit
        self.task_id: str | None = None
        self.task: Task | None = None
        self._timezone = ops.timezone
        self.add_class("taskops-task-detail")
        own_dialogs: list[widgets.Widget] = []
        if duplicator is None:
            duplicator = DuplicateDialog(ops, alerts=self.alerts, on_done=self._duplicated)
            own_dialogs.append(duplicator)
        if confirm is None:
            confirm = ConfirmDialog()
            own_dialogs.append(confirm)
        self.duplicator, self.confirm = duplicator, confirm

        # header and actions
        self.back_button = widgets.Button(description="Tasks", icon="arrow-left")
        self.heading = widgets.HTML()
        self.run_button = widgets.Button(
            description="Run Now", icon="rocket", button_style="success"
        )
        self.edit_button = widgets.Button(description="Edit", icon="pencil")
        self.duplicate_button = widgets.Button(description="Duplicate", icon="copy")
        self.copy_target = widgets.Dropdown(
            description="to",
            style={"description_width": "24px"},
            layout=widgets.Layout(width="200px"),
        )
        self.copy_button = widgets.Button(description="Copy to app", icon="share")
        self.export_button = DownloadButton("Export JSON", self._export, on_error=self._failed)
        self.delete_button = widgets.Button(
            description="Delete", icon="trash", button_style="danger"
        )

        # overview
        self.overview = widgets.HTML()
        self.enabled_toggle = widgets.Checkbox(description="Enabled", indent=False)
        # schedule
        self.cron = CronBuilder(ops, "0 2 * * *", alerts=self.alerts)
        self.save_schedule_button = widgets.Button(
            description="Save schedule", button_style="primary"
        )
        self.schedule_error = widgets.HTML()
        # script and parameters
        self.script_path = widgets.Text(
            description="Script path", style=_STYLE, layout=widgets.Layout(width="70%")
        )
        self.test_button = widgets.Button(
            description="Test", icon="check", tooltip="Check that the script exists"
        )
        self.test_result = widgets.HTML()
        self.script_error = widgets.HTML()
        self.parameters, self.environment = task_variable_editors()
        self.save_script_button = widgets.Button(
            description="Save script & parameters", button_style="primary"
        )
        # termination
        self.max_runtime = widgets.Text(
            description="Max runtime", style=_STYLE, placeholder="seconds (empty: the default)"
        )
        self.max_failures = widgets.Text(description="Max failures", style=_STYLE)
        self.kill_on_timeout = widgets.Checkbox(description="Kill on timeout", indent=False)
        self.termination_error = widgets.HTML()
        self.save_termination_button = widgets.Button(
            description="Save termination rules", button_style="primary"
        )
        # history
        self.history = HistoryTable()
        self.chart = widgets.VBox()
        self._figure: Any = None
        self._loading = False
        self._history_key: tuple[Any, ...] | None = None
        self._chart_stale = True

        for widget, css in (
            (self.back_button, "back"),
            (self.heading, "heading"),
            (self.run_button, "run"),
            (self.edit_button, "edit"),
            (self.duplicate_button, "duplicate"),
            (self.copy_target, "copy-target"),
            (self.copy_button, "copy"),
            (self.export_button, "export"),
            (self.delete_button, "delete"),
            (self.overview, "overview"),
            (self.enabled_toggle, "enabled"),
            (self.save_schedule_button, "save-schedule"),
            (self.schedule_error, "schedule-error"),
            (self.script_path, "script-path"),
            (self.test_button, "test"),
            (self.test_result, "test-result"),
            (self.script_error, "script-error"),
            (self.save_script_button, "save-script"),
            (self.max_runtime, "max-runtime"),
            (self.max_failures, "max-failures"),
            (self.kill_on_timeout, "kill-on-timeout"),
            (self.termination_error, "termination-error"),
            (self.save_termination_button, "save-termination"),
            (self.chart, "chart"),
        ):
            widget.add_class(f"taskops-detail-{css}")

        self.back_button.on_click(lambda _b: self.back())
        self.run_button.on_click(lambda _b: self.run())
        self.edit_button.on_click(lambda _b: self.edit())
        self.duplicate_button.on_click(lambda _b: self.duplicator.ask(self.task_id or ""))
        self.copy_button.on_click(lambda _b: self.copy())
        self.delete_button.on_click(lambda _b: self.ask_delete())
        self.enabled_toggle.observe(lambda change: self.set_enabled(change["new"]), "value")
        self.save_schedule_button.on_click(lambda _b: self.save_schedule())
        self.test_button.on_click(lambda _b: self.test_script())
        self.save_script_button.on_click(lambda _b: self.save_script())
        self.save_termination_button.on_click(lambda _b: self.save_termination())

        actions = widgets.HBox(
            [
                self.back_button,
                self.run_button,
                self.edit_button,
                self.duplicate_button,
                self.copy_target,
                self.copy_button,
                self.export_button,
                self.delete_button,
            ],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        tab_children = [
            widgets.VBox([self.overview, self.enabled_toggle]),
            widgets.VBox([self.cron, self.schedule_error, self.save_schedule_button]),
            widgets.VBox(
                [
                    widgets.HBox([self.script_path, self.test_button]),
                    self.test_result,
                    self.script_error,
                    self.parameters,
                    self.environment,
                    self.save_script_button,
                ]
            ),
            widgets.VBox(
                [
                    self.max_runtime,
                    self.max_failures,
                    self.kill_on_timeout,
                    self.termination_error,
                    self.save_termination_button,
                ]
            ),
            widgets.VBox([self.chart, self.history]),
        ]
        self.tabs = widgets.Tab(children=tab_children, titles=TABS)
        self.tabs.add_class("taskops-detail-tabs")
        self.tabs.observe(lambda change: self._tab_shown(change["new"]), "selected_index")
        self.children = [self.heading, actions, self.tabs, *own_dialogs]
        if task_id is not None:
            self.load(task_id)

    # -- showing -------------------------------------------------------------------------

    @shows_errors
    def load(self, task_id: str) -> bool:
        """Show ``task_id`` (every tab filled from the service). False when it failed."""
        task = self.ops.tasks.get(task_id)
        self.task_id = task_id
        self._show(task)
        spec = task.to_dict()
        self.cron.set(spec["schedule"], task.spec.timezone)
        self.schedule_error.value = ""
        self.script_path.value = spec["scriptPath"]
        self.script_path.disabled = task.is_default
        self.script_path.tooltip = "read-only for default tasks" if task.is_default else None
        self.test_result.value = self.script_error.value = ""
        self.parameters.load(spec["parameters"])
        self.environment.load(spec["environment"])
        termination = spec["termination"]
        runtime = termination["maxRuntime"]
        self.max_runtime.value = "" if runtime is None else str(runtime)
        self.max_failures.value = str(termination["maxFailures"])
        self.kill_on_timeout.value = termination["killOnTimeout"]
        self.termination_error.value = ""
        targets = [app for app in self.ops.apps() if app != task.app]
        self.copy_target.options = targets
        self.copy_target.value = targets[0] if targets else None
        self._show_history()
        return True

    @shows_errors
    def refresh(self) -> None:
        """Reload the task's state and history, leaving the edit fields as they are."""
        if self.task_id is None:
            return
        try:
            task = self.ops.tasks.get(self.task_id)
        except NotFound:
            self.alerts.warning(f"{self.task_id} no longer exists")
            self.back()
            return
        self._show(task)
        self._show_history()

    def _show(self, task: Task) -> None:
        self.task = task
        status = task.status.value
        self.heading.value = (
            f'<h3 style="margin:4px 0">{html.escape(task.name)} '
            f'<span class="taskops-detail-status" style="font-size:0.7em; padding:2px 8px; '
            f'border-radius:10px; background:{_chip_colour(status)}; color:white">'
            f"{status}</span></h3>"
        )
        now = self.ops.clock.now()
        rows = [
            ("Description", html.escape(task.spec.description or "—")),
            ("App", html.escape(task.app)),
            ("Id", html.escape(task.id)),
            ("Kind", "default (from the site's YAML)" if task.is_default else "custom"),
            (
                "Schedule",
                f"<code>{html.escape(task.spec.schedule)}</code> — "
                f"{html.escape(task.schedule_text)} ({html.escape(task.timezone)})",
            ),
            (
                "Last run",
                f"{when(task.last_run, self._timezone, seconds=True)} "
                f"{task.last_state.value if task.last_state else ''}",
            ),
            (
                "Next run",
                f"{when(task.next_run, self._timezone, seconds=True)} "
                f"{relative(task.next_run, now)}",
            ),
            ("Created", when(task.created_at, self._timezone, seconds=True)),
            ("Modified", when(task.modified_at, self._timezone, seconds=True)),
        ]
        if task.overridden:
            rows.append(("Changed from YAML", html.escape(", ".join(sorted(task.overridden)))))
        self.overview.value = (
            "<table>"
            + "".join(
                f'<tr><td style="color:#666; padding-right:16px">{k}</td><td>{val}</td></tr>'
                for k, val in rows
            )
            + "</table>"
        )
        with self.enabled_toggle.hold_trait_notifications():
            self._loading = True
            self.enabled_toggle.value = task.enabled
        self._loading = False
        self.delete_button.tooltip = (
            "Hide this default task (it can be restored)" if task.is_default else "Delete"
        )

    def _show_history(self) -> None:
        if self.task_id is None:
            return
        runs = self.ops.tasks.history(self.task_id, limit=HISTORY_RUNS)
        # a refresh redraws only when a run started, ended or changed state
        key = (self.task_id, tuple((job.id, job.state) for job in runs))
        if key == self._history_key:
            return
        self._history_key = key
        self.history.items = [self._history_row(job) for job in runs]
        self._chart_stale = True
        if self.tabs.selected_index == TABS.index("Execution History"):
            self._draw_chart()

    def _history_row(self, job: Job) -> dict[str, Any]:
        output = self.ops.jobs.tail(job.id, max_bytes=2048)
        errors = self.ops.jobs.tail(job.id, "stderr", max_bytes=2048)
        error = job.error or ""
        return {
            "id": job.id,
            "started": when(job.started_at or job.queued_at, self._timezone, seconds=True),
            "duration": duration(job.duration_seconds),
            "state": job.state.value,
            "stateColour": STATE_COLOURS.get(job.state.value, "grey"),
            "owner": job.owner,
            "error": error,
            "errorShort": error if len(error) <= 60 else error[:57] + "...",
            "output": output + (f"\n--- stderr ---\n{errors}" if errors else ""),
        }

    def _tab_shown(self, index: int | None) -> None:
        if index == TABS.index("Execution History") and self._chart_stale:
            self._draw_chart()

    def _draw_chart(self) -> None:
        """The 7-day chart of every run of the task, counted by the database (plotly is
        imported only when it is shown)."""
        if self.task_id is None:
            return
        self._chart_stale = False
        import plotly.graph_objects as go

        from taskops.analytics import daily_runs_figure

        stats = self.ops.stats(days=CHART_DAYS, by=None, task=self.task_id)
        figure = daily_runs_figure(stats, title=f"Last {CHART_DAYS} days")
        if self._figure is None:
            self._figure = go.FigureWidget(figure)
            self.chart.children = [self._figure]
        else:
            with self._figure.batch_update():
                self._figure.data = ()
                self._figure.add_traces(list(figure.data))
                self._figure.layout = figure.layout

    # -- actions -------------------------------------------------------------------------

    def back(self) -> None:
        self.task_id = None
        if self.on_back is not None:
            self.on_back()

    def _changed(self, message: str) -> None:
        self.alerts.success(message)
        self.refresh()
        if self.on_change is not None:
            self.on_change()

    @shows_errors
    def run(self) -> None:
        job = self.ops.tasks.run(self._id())
        self._changed(f"Started {self._id()}: job {job.id} ({job.name}) is {job.state.value}")

    def edit(self) -> None:
        if self.on_edit is not None:
            self.on_edit(self._id())

    @shows_errors
    def set_enabled(self, enabled: bool) -> None:
        if self._loading or self.task is None:
            return
        if enabled == self.task.enabled:
            return
        if enabled:
            self.ops.tasks.enable(self._id())
        else:
            self.ops.tasks.disable(self._id())
        self._changed(f"{'Enabled' if enabled else 'Disabled'} {self._id()}")

    @shows_errors
    def copy(self) -> None:
        target = self.copy_target.value
        if not target:
            raise InvalidInput("choose the app to copy the task to")
        task = self.ops.tasks.copy(self._id(), target)
        self._changed(f"Copied {self._id()} to {task.id}")

    def ask_delete(self) -> None:
        task_id = self._id()
        what = (
            "It is a default task: it is hidden from the site and can be restored."
            if self.task is not None and self.task.is_default
            else "It is a custom task: it is removed for good."
        )
        self.confirm.ask(
            "Delete task",
            f"Delete <b>{html.escape(task_id)}</b>? {what}",
            self.delete,
            confirm="Delete",
        )

    @shows_errors
    def delete(self) -> None:
        task_id = self._id()
        self.ops.tasks.delete(task_id)
        self.alerts.success(f"Deleted {task_id}")
        self.back()
        if self.on_change is not None:
            self.on_change()

    @shows_errors
    def save_schedule(self) -> None:
        self.schedule_error.value = ""
        value = self.cron.value
        self._save(
            {"schedule": value["schedule"], "timezone": value["timezone"]},
            self.schedule_error,
            "schedule",
        )

    @shows_errors
    def test_script(self) -> None:
        check = self.ops.tasks.check_script(self._id())
        colour, css = ("#1b5e20", "ok") if check["runnable"] else ("#b71c1c", "bad")
        self.test_result.value = (
            f'<span style="color:{colour}" class="taskops-test-{css}">'
            f"{html.escape(check['message'])}: <code>{html.escape(check['resolved'])}</code></span>"
        )

    @shows_errors
    def save_script(self) -> None:
        self.script_error.value = ""
        self.parameters.show_problem(None)
        self.environment.show_problem(None)
        changes: dict[str, Any] = {}
        try:
            changes["parameters"] = self.parameters.value
            changes["environment"] = self.environment.value
        except InvalidInput as exc:
            self.script_error.value = error_html(exc.message)
            raise
        if not self.script_path.disabled:
            changes["scriptPath"] = self.script_path.value.strip()
        self._save(changes, self.script_error, "script and parameters")

    @shows_errors
    def save_termination(self) -> None:
        self.termination_error.value = ""
        self._save(
            {
                "termination": {
                    "maxRuntime": typed_whole(self.max_runtime.value),
                    "maxFailures": typed_whole(self.max_failures.value),
                    "killOnTimeout": self.kill_on_timeout.value,
                }
            },
            self.termination_error,
            "termination rules",
        )

    def _save(self, changes: dict[str, Any], error_line: widgets.HTML, what: str) -> None:
        """Update the task with ``changes``; a refusal shows in ``error_line`` (and is
        raised on to the alerts), and the fields keep what the user typed."""
        try:
            task = self.ops.tasks.update(self._id(), changes)
        except InvalidInput as exc:
            error_line.value = error_html(
                "; ".join(f"{k}: {m}" for k, m in exc.fields().items()) or exc.message
            )
            raise
        self._changed(f"Saved the {what} of {task.id}")

    def _export(self) -> tuple[str, str]:
        task_id = self._id()
        data = self.ops.tasks.export(task_id)
        return f"{task_id}.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    def _failed(self, exc: Exception) -> None:
        self.alerts.error(str(exc))

    def _duplicated(self, task: Task) -> None:
        self._changed(f"Created {task.id}")

    def _id(self) -> str:
        if self.task_id is None:
            raise InvalidInput("no task is open")
        return self.task_id


def _chip_colour(status: str) -> str:
    return {"Enabled": "#2e7d32", "Disabled": "#757575", "Running": "#1565c0"}.get(status, "#555")
