"""``TaskEditor``: the Create/Edit Task dialog of the seed.

Save sends the form to the service: ``create`` for a new task, ``update`` with only the
changed fields for an existing one. When the service refuses, each problem is shown next
to its field, nothing is saved and the form keeps what the user typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from taskops.errors import Conflict, InvalidInput
from taskops.model import Task
from taskops.service import TaskOps
from taskops.ui.cron_builder import CronBuilder
from taskops.ui.dialogs import Dialog
from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.format import error_html, typed_whole
from taskops.ui.key_values import task_variable_editors

__all__ = ["TaskEditor"]

_STYLE = {"description_width": "110px"}

FIELDS = (
    "name",
    "description",
    "app",
    "schedule",
    "timezone",
    "scriptPath",
    "enabled",
    "parameters",
    "environment",
    "termination.maxRuntime",
    "termination.maxFailures",
    "termination.killOnTimeout",
)
"""The fields of the form, as the service names them in its problems."""


def _wide() -> widgets.Layout:
    return widgets.Layout(width="96%")


def _error_line(field: str) -> widgets.HTML:
    line = widgets.HTML()
    line.add_class("taskops-field-error")
    line.add_class("taskops-error-" + field.replace(".", "-"))
    return line


class TaskEditor(Dialog):
    """The task form in a modal dialog. ``new(app)`` opens it empty, ``edit(task_id)``
    filled with the task; Save calls the service and, when it succeeds, closes and calls
    ``on_saved(task)``. Default tasks keep their name and script path (read-only)."""

    def __init__(
        self,
        ops: TaskOps,
        *,
        alerts: Alerts | None = None,
        on_saved: Callable[[Task], Any] | None = None,
    ) -> None:
        self.ops = ops
        self.alerts = alerts or Alerts()
        self.on_saved = on_saved
        self.task_id: str | None = None
        self._loaded: dict[str, Any] = {}

        self.name = widgets.Text(description="Task name *", style=_STYLE, layout=_wide())
        self.description = widgets.Textarea(
            description="Description",
            style=_STYLE,
            layout=widgets.Layout(width="96%", height="56px"),
        )
        self.app = widgets.Dropdown(description="App *", style=_STYLE, options=ops.apps())
        self.schedule = CronBuilder(ops, "0 2 * * *", alerts=self.alerts)
        self.script_path = widgets.Combobox(
            description="Script path *",
            style=_STYLE,
            layout=_wide(),
            placeholder="tasks/...",
            ensure_option=False,
        )
        self.parameters, self.environment = task_variable_editors()
        self.enabled = widgets.Checkbox(value=True, description="Enabled", indent=False)
        self.max_runtime = widgets.Text(
            description="Max runtime", style=_STYLE, placeholder="seconds (empty: the default)"
        )
        self.max_failures = widgets.Text(value="3", description="Max failures", style=_STYLE)
        self.kill_on_timeout = widgets.Checkbox(
            value=True, description="Kill on timeout", indent=False
        )
        self.save_button = widgets.Button(description="Save Task", button_style="primary")
        self.cancel_button = widgets.Button(description="Cancel")
        self.errors = {field: _error_line(field) for field in FIELDS}
        self.form_error = _error_line("form")

        for widget, css in (
            (self.name, "name"),
            (self.description, "description"),
            (self.app, "app"),
            (self.script_path, "script-path"),
            (self.enabled, "enabled"),
            (self.max_runtime, "max-runtime"),
            (self.max_failures, "max-failures"),
            (self.kill_on_timeout, "kill-on-timeout"),
            (self.save_button, "save"),
            (self.cancel_button, "cancel"),
        ):
            widget.add_class(f"taskops-editor-{css}")
        self.app.observe(lambda _change: self._offer_scripts(), "value")
        self.save_button.on_click(lambda _b: self.save())
        self.cancel_button.on_click(lambda _b: self.hide())

        e = self.errors
        body = widgets.VBox(
            [
                self.name,
                e["name"],
                self.description,
                e["description"],
                self.app,
                e["app"],
                widgets.HTML("<b>Schedule (cron) *</b>"),
                self.schedule,
                e["schedule"],
                e["timezone"],
                self.script_path,
                e["scriptPath"],
                self.parameters,
                e["parameters"],
                self.environment,
                e["environment"],
                self.enabled,
                e["enabled"],
                widgets.HTML("<b>Termination rules</b>"),
                self.max_runtime,
                e["termination.maxRuntime"],
                self.max_failures,
                e["termination.maxFailures"],
                self.kill_on_timeout,
                e["termination.killOnTimeout"],
                self.form_error,
                widgets.HBox(
                    [self.cancel_button, self.save_button],
                    layout=widgets.Layout(justify_content="flex-end"),
                ),
            ]
        )
        body.add_class("taskops-editor")
        super().__init__(title="Task Configuration", css_class="taskops-editor-dialog", body=body)

    # -- opening -------------------------------------------------------------------------

    def new(self, app: str | None = None) -> None:
        """Open the empty form (for ``app`` when given)."""
        self.task_id = None
        self._loaded = {}
        self.title = "New Task"
        self.name.value = ""
        self.description.value = ""
        self.app.options = self.ops.apps()
        self.app.value = app if app in self.app.options else self.app.options[0]
        self.app.disabled = False
        self.name.disabled = False
        self.script_path.disabled = False
        self.schedule.set("0 2 * * *", None)
        self.script_path.value = ""
        self.parameters.load({})
        self.environment.load({})
        self.enabled.value = True
        self.max_runtime.value = ""
        self.max_failures.value = "3"
        self.kill_on_timeout.value = True
        self._offer_scripts()
        self._clear_errors()
        self.show()

    @shows_errors
    def edit(self, task_id: str) -> None:
        """Open the form filled with the task (secrets masked). Raises NotFound (shown)."""
        found = self.ops.tasks.get(task_id)
        task = found.to_dict()
        own_zone = found.spec.timezone  # None: the site's
        self.task_id = task_id
        self._loaded = self._snapshot(task, own_zone)
        self.title = f"Edit {task['app']}.{task['name']}"
        self.name.value = task["name"]
        self.description.value = task["description"] or ""
        self.app.options = self.ops.apps()
        self.app.value = task["app"]
        self.app.disabled = True
        self.name.disabled = task["isDefault"]
        self.script_path.disabled = task["isDefault"]
        self.schedule.set(task["schedule"], own_zone)
        self.script_path.value = task["scriptPath"]
        self.parameters.load(task["parameters"])
        self.environment.load(task["environment"])
        self.enabled.value = task["enabled"]
        termination = task["termination"]
        runtime = termination["maxRuntime"]
        self.max_runtime.value = "" if runtime is None else str(runtime)
        self.max_failures.value = str(termination["maxFailures"])
        self.kill_on_timeout.value = termination["killOnTimeout"]
        self._offer_scripts()
        self._clear_errors()
        self.show()

    # -- saving --------------------------------------------------------------------------

    @shows_errors
    def save(self) -> Task | None:
        """Create or update the task from the form. On success the dialog closes and
        ``on_saved`` gets the task; on refusal the problems show next to their fields and
        the dialog stays open with the user's input."""
        self._clear_errors()
        try:
            spec = self.spec()
            if self.task_id is None:
                task = self.ops.tasks.create(spec)
            else:
                changes = {k: v for k, v in spec.items() if self._loaded.get(k) != v}
                changes.pop("app", None)
                task = (
                    self.ops.tasks.update(self.task_id, changes)
                    if changes
                    else self.ops.tasks.get(self.task_id)
                )
        except InvalidInput as exc:
            self._show_problems(exc)
            raise
        except Conflict as exc:
            self._show_error("name", exc.message)
            raise
        self.hide()
        if self.on_saved is not None:
            self.on_saved(task)
        return task

    def spec(self) -> dict[str, Any]:
        """The form as the service's task fields. Raises InvalidInput for a repeated or
        empty key in the parameters or environment."""
        schedule = self.schedule.value
        termination: dict[str, Any] = {
            "maxRuntime": typed_whole(self.max_runtime.value),
            "maxFailures": typed_whole(self.max_failures.value),
            "killOnTimeout": self.kill_on_timeout.value,
        }
        return {
            "name": self.name.value.strip(),
            "description": self.description.value,
            "app": self.app.value,
            "schedule": schedule["schedule"],
            "timezone": schedule["timezone"],
            "scriptPath": self.script_path.value.strip(),
            "enabled": self.enabled.value,
            "parameters": self.parameters.value,
            "environment": self.environment.value,
            "termination": termination,
        }

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _snapshot(task: dict[str, Any], own_zone: str | None) -> dict[str, Any]:
        """The loaded task in the shape of ``spec()``, to send only what changed."""
        return {
            "name": task["name"],
            "description": task["description"] or "",
            "app": task["app"],
            "schedule": task["schedule"],
            "timezone": own_zone,
            "scriptPath": task["scriptPath"],
            "enabled": task["enabled"],
            "parameters": dict(task["parameters"]),
            "environment": dict(task["environment"]),
            "termination": dict(task["termination"]),
        }

    def _offer_scripts(self) -> None:
        try:
            self.script_path.options = tuple(self.ops.tasks.scripts(self.app.value))
        except InvalidInput:
            self.script_path.options = ()

    def _clear_errors(self) -> None:
        for line in (*self.errors.values(), self.form_error):
            line.value = ""
        self.parameters.show_problem(None)
        self.environment.show_problem(None)

    def _show_problems(self, exc: InvalidInput) -> None:
        found: dict[str, list[str]] = {}
        for problem in exc.problems:
            head = problem.field.split(".", 1)[0]
            if problem.field in self.errors:
                found.setdefault(problem.field, []).append(problem.message)
            elif head in ("parameters", "environment"):
                found.setdefault(head, []).append(f"{problem.field}: {problem.message}")
        for field, messages in found.items():
            self._show_error(field, "; ".join(messages))
        if not found:
            self._show_error("form", exc.message)

    def _show_error(self, field: str, message: str) -> None:
        self.errors.get(field, self.form_error).value = error_html(message)
