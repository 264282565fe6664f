"""``KeyValueEditor``: rows of key and value for a task's parameters or environment.

Secret values never reach the browser: the service hands out ``********`` for them, the
editor shows that in a password box, and sending ``********`` back keeps the stored value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from taskops.errors import InvalidInput, Problem
from taskops.model import MASK, is_secret_key
from taskops.ui.format import error_html

__all__ = ["KeyValueEditor", "task_variable_editors"]


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _typed(text: str, original: Any) -> Any:
    """The value of ``text``: the original value when the text still shows it, a JSON
    number or boolean when it reads as one, else the text."""
    if original is not None and text == _shown(original):
        return original
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, bool | int | float) else text


class KeyValueEditor(widgets.VBox):  # type: ignore[misc]
    """Editable rows of ``key = value`` with Add and remove buttons. ``value`` is the
    mapping typed so far; it raises InvalidInput for an empty or repeated key.
    ``typed_values`` keeps numbers and booleans typed (task parameters); without it every
    value is text (environment variables)."""

    def __init__(
        self, label: str, *, field: str, typed_values: bool = True, add_label: str = "Add"
    ) -> None:
        super().__init__()
        self.field = field
        self.typed_values = typed_values
        self._original: dict[str, Any] = {}
        self.add_class("taskops-kv")
        self.add_class(f"taskops-kv-{field}")
        self.rows = widgets.VBox()
        self.add_button = widgets.Button(description=add_label, icon="plus")
        self.add_button.add_class("taskops-kv-add")
        self.add_button.on_click(lambda _b: self.add_row())
        self.problem = widgets.HTML()
        self.problem.add_class("taskops-field-error")
        self.children = [widgets.HTML(f"<b>{label}</b>"), self.rows, self.add_button, self.problem]

    def load(self, values: Mapping[str, Any]) -> None:
        """Show ``values`` (secrets already masked by the service), one row each."""
        self._original = dict(values)
        self.rows.children = ()
        for key, value in values.items():
            self.add_row(key, _shown(value))
        self.show_problem(None)

    def add_row(self, key: str = "", value: str = "") -> None:
        key_box = widgets.Text(value=key, placeholder="KEY", layout=widgets.Layout(width="40%"))
        key_box.add_class("taskops-kv-key")
        secret = is_secret_key(key) or value == MASK
        value_box = (widgets.Password if secret else widgets.Text)(
            value=value, placeholder="value", layout=widgets.Layout(width="50%")
        )
        value_box.add_class("taskops-kv-value")
        remove = widgets.Button(icon="trash", tooltip="Remove", layout=widgets.Layout(width="36px"))
        remove.add_class("taskops-kv-remove")
        row = widgets.HBox([key_box, value_box, remove])
        row.add_class("taskops-kv-row")
        remove.on_click(lambda _b: self.remove_row(row))
        self.rows.children = (*self.rows.children, row)

    def remove_row(self, row: widgets.Widget) -> None:
        self.rows.children = tuple(r for r in self.rows.children if r is not row)

    @property
    def value(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for row in self.rows.children:
            key_box, value_box, _remove = row.children
            key, text = key_box.value.strip(), value_box.value
            if not key and not text:
                continue
            if not key:
                raise self._invalid(f"a value without a key in {self.field}")
            if key in out:
                raise self._invalid(f"{key} appears twice in {self.field}")
            if not self.typed_values or text == MASK:
                out[key] = text
            else:
                out[key] = _typed(text, self._original.get(key))
        return out

    def _invalid(self, message: str) -> InvalidInput:
        return InvalidInput(message, problems=[Problem(field=self.field, message=message)])

    def show_problem(self, message: str | None) -> None:
        self.problem.value = error_html(message)
        if message:
            self.add_class("taskops-invalid")
        else:
            self.remove_class("taskops-invalid")


def task_variable_editors() -> tuple[KeyValueEditor, KeyValueEditor]:
    """The editors of a task's parameters (typed values) and environment (text values)."""
    parameters = KeyValueEditor("Parameters", field="parameters", add_label="Add parameter")
    environment = KeyValueEditor(
        "Environment variables", field="environment", typed_values=False, add_label="Add variable"
    )
    return parameters, environment
