"""``DuplicateDialog``: duplicate a task under a new name, with a new schedule if wanted."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from taskops.errors import Conflict, InvalidInput
from taskops.model import Task
from taskops.service import TaskOps
from taskops.ui.dialogs import Dialog
from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.format import error_html

__all__ = ["DuplicateDialog"]

_STYLE = {"description_width": "90px"}


class DuplicateDialog(Dialog):
    """``ask(task_id)`` opens it with ``<name>_copy`` and the task's schedule; Duplicate
    makes the copy (same app, same script) and calls ``on_done(task)``. A refused name or
    schedule shows next to its field and the dialog stays open."""

    def __init__(
        self,
        ops: TaskOps,
        *,
        alerts: Alerts | None = None,
        on_done: Callable[[Task], Any] | None = None,
    ) -> None:
        self.ops = ops
        self.alerts = alerts or Alerts()
        self.on_done = on_done
        self.task_id: str | None = None
        self.name = widgets.Text(description="New name", style=_STYLE)
        self.schedule = widgets.Text(description="Schedule", style=_STYLE)
        self.schedule_text = widgets.HTML()
        self.name_error = widgets.HTML()
        self.schedule_error = widgets.HTML()
        self.duplicate_button = widgets.Button(description="Duplicate", button_style="primary")
        self.cancel_button = widgets.Button(description="Cancel")
        for widget, css in (
            (self.name, "name"),
            (self.schedule, "schedule"),
            (self.schedule_text, "schedule-text"),
            (self.name_error, "name-error"),
            (self.schedule_error, "schedule-error"),
            (self.duplicate_button, "save"),
            (self.cancel_button, "cancel"),
        ):
            widget.add_class(f"taskops-duplicate-{css}")
        self.schedule.observe(lambda _change: self.describe(), "value")
        self.duplicate_button.on_click(lambda _b: self.duplicate())
        self.cancel_button.on_click(lambda _b: self.hide())
        body = widgets.VBox(
            [
                self.name,
                self.name_error,
                self.schedule,
                self.schedule_text,
                self.schedule_error,
                widgets.HBox(
                    [self.cancel_button, self.duplicate_button],
                    layout=widgets.Layout(justify_content="flex-end"),
                ),
            ]
        )
        super().__init__(
            title="Duplicate task", css_class="taskops-duplicate", width=560, body=body
        )

    @shows_errors
    def ask(self, task_id: str) -> None:
        task = self.ops.tasks.get(task_id)
        self.task_id = task_id
        self.title = f"Duplicate {task_id}"
        self.name.value = f"{task.name}_copy"
        self.schedule.value = task.spec.schedule
        self.name_error.value = self.schedule_error.value = ""
        self.describe()
        self.show()

    def describe(self) -> None:
        """The schedule's human text as the user types."""
        if self.task_id is None:
            return
        zone = self.ops.tasks.get(self.task_id).spec.timezone
        preview = self.ops.tasks.preview_schedule(self.schedule.value, zone, count=1)
        self.schedule_text.value = html.escape(
            preview["text"] if preview["valid"] else preview["error"] or ""
        )

    @shows_errors
    def duplicate(self) -> Task | None:
        if self.task_id is None:
            return None
        self.name_error.value = self.schedule_error.value = ""
        try:
            task = self.ops.tasks.duplicate(
                self.task_id, name=self.name.value.strip(), schedule=self.schedule.value.strip()
            )
        except InvalidInput as exc:
            problems = exc.fields()
            self.name_error.value = error_html(problems.get("name", ""))
            self.schedule_error.value = error_html(problems.get("schedule", ""))
            raise
        except Conflict as exc:
            self.name_error.value = error_html(exc.message)
            raise
        self.hide()
        if self.on_done is not None:
            self.on_done(task)
        return task
