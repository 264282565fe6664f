"""``SettingsForm``: the Settings screen of the seed (the dashboard's gear).

One row per setting: its key and unit, an input, what it means and its default. Save
sends only the changed values to the service; when the service refuses, each problem is
shown next to its field, nothing is saved and the form keeps what the user typed. The
number boxes are text boxes on purpose: what the user types reaches the service's
validation as typed, so a bad value gets the service's own message.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from taskops.errors import InvalidInput
from taskops.service import TaskOps
from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.format import error_html

__all__ = ["SettingsForm"]

APPLY_NOTE = (
    "Changes apply without a restart: the refresh interval and the runspace thresholds at "
    "once on this page (other open pages at their next refresh), concurrency when the engine "
    "next starts a job, retention at the engine's next cleanup, notifications at the next event."
)


def _shown(value: Any) -> str:
    """A setting's value as an input holds it: ``5`` rather than ``5.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _said(value: Any) -> str:
    """A setting's value in a sentence: ``true``, ``(empty)``, ``5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return "(empty)"
    return _shown(value)


def _typed(kind: str, text: str) -> Any:
    """What a text box holds as the setting's type: a number for a number setting when
    the text is one, else the text as typed (the service then refuses it with a message
    naming the field)."""
    text = text.strip()
    if kind == "str":
        return text
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            pass  # "1.5" or "1e3": a float, which the service judges
    try:
        return float(text)
    except ValueError:
        return text


class SettingsForm(widgets.VBox):  # type: ignore[misc]
    """Every setting of the site in one form. Save sends the changed values through
    ``ops.settings.update`` and then calls ``on_saved(merged_settings)``; Reset to defaults
    fills the inputs with the defaults (nothing is saved until Save); Reload reads the
    saved values again, dropping unsaved edits. ``refresh()`` reads them again only when
    the form holds no unsaved edits (``dirty``)."""

    def __init__(
        self,
        ops: TaskOps,
        *,
        alerts: Alerts | None = None,
        on_saved: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__()
        self.ops = ops
        self.alerts = alerts or Alerts()
        self.on_saved = on_saved
        self.add_class("taskops-settings")

        described = ops.settings.describe()
        self.kinds: dict[str, str] = {item["key"]: item["type"] for item in described}
        self.defaults: dict[str, Any] = {item["key"]: item["default"] for item in described}
        self._loaded: dict[str, Any] = {}

        self.file_warning = widgets.HTML()
        self.file_warning.add_class("taskops-settings-warning")
        self.inputs: dict[str, widgets.ValueWidget] = {}
        self.errors: dict[str, widgets.HTML] = {}
        rows = [self._row(item) for item in described]
        self.form_error = widgets.HTML()
        self.form_error.add_class("taskops-settings-error-form")

        self.save_button = widgets.Button(description="Save", button_style="primary")
        self.reset_button = widgets.Button(
            description="Reset to defaults",
            tooltip="Fill in the defaults; Save applies them",
        )
        self.reload_button = widgets.Button(
            description="Reload", tooltip="Read the saved settings again, dropping edits"
        )
        for button, css in (
            (self.save_button, "save"),
            (self.reset_button, "reset"),
            (self.reload_button, "reload"),
        ):
            button.add_class(f"taskops-settings-{css}")
        self.save_button.on_click(lambda _b: self.save())
        self.reset_button.on_click(lambda _b: self.reset_to_defaults())
        self.reload_button.on_click(lambda _b: self.reload())

        self.note = widgets.HTML(f'<div style="color:#666">{html.escape(APPLY_NOTE)}</div>')
        self.note.add_class("taskops-settings-note")
        self.children = [
            widgets.HTML("<h3 style='margin:4px 0'>Settings</h3>"),
            self.file_warning,
            *rows,
            self.form_error,
            widgets.HBox(
                [self.reload_button, self.reset_button, self.save_button],
                layout=widgets.Layout(justify_content="flex-end", margin="8px 0"),
            ),
            self.note,
        ]
        self.reload()

    def _row(self, item: Mapping[str, Any]) -> widgets.Widget:
        key = item["key"]
        unit = f' <span style="color:#666">({html.escape(item["unit"])})</span>'
        label = widgets.HTML(
            f"<b>{html.escape(key)}</b>{unit if item['unit'] else ''}",
            layout=widgets.Layout(width="260px"),
        )
        field: widgets.ValueWidget = (
            widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="220px"))
            if item["type"] == "bool"
            else widgets.Text(layout=widgets.Layout(width="220px"))
        )
        field.add_class(f"taskops-setting-{key}")
        default = widgets.HTML(
            f'<span style="color:#666">default: {html.escape(_said(item["default"]))}</span>'
        )
        default.add_class(f"taskops-settings-default-{key}")
        meaning = widgets.HTML(
            f'<div style="color:#666; font-size:0.9em">{html.escape(item["meaning"])}</div>'
        )
        error = widgets.HTML()
        error.add_class("taskops-settings-error")
        error.add_class(f"taskops-settings-error-{key}")
        self.inputs[key] = field
        self.errors[key] = error
        row = widgets.VBox(
            [
                widgets.HBox([label, field, default], layout=widgets.Layout(align_items="center")),
                meaning,
                error,
            ],
            layout=widgets.Layout(margin="4px 0"),
        )
        row.add_class("taskops-settings-row")
        return row

    # -- reading -------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Whether an input differs from the saved value it was filled with."""
        return bool(self.changes())

    def values(self) -> dict[str, Any]:
        """Every input as the service would get it (see ``changes``)."""
        return {
            key: field.value if self.kinds[key] == "bool" else _typed(self.kinds[key], field.value)
            for key, field in self.inputs.items()
        }

    def changes(self) -> dict[str, Any]:
        """The inputs that differ from the saved values, as Save sends them: numbers where
        the text is a number, else the text as typed."""
        return {
            key: value for key, value in self.values().items() if value != self._loaded.get(key)
        }

    @shows_errors
    def reload(self) -> None:
        """Fill the form with the saved settings, dropping unsaved edits and errors."""
        self._fill(self.ops.settings.get())
        self._show_file_problem()

    @shows_errors
    def refresh(self) -> None:
        """Read the saved settings again, unless the user has unsaved edits (they are kept;
        Save then sends only them, so values changed elsewhere meanwhile survive)."""
        if not self.dirty:
            self._fill(self.ops.settings.get())
        self._show_file_problem()

    def reset_to_defaults(self) -> None:
        """Fill the inputs with the defaults; nothing is saved until Save (Reload undoes)."""
        self._clear_errors()
        for key, field in self.inputs.items():
            field.value = self._input_value(key, self.defaults[key])
        self.alerts.info("Filled in the defaults: Save applies them, Reload keeps the settings")

    # -- saving --------------------------------------------------------------------------

    @shows_errors
    def save(self) -> dict[str, Any] | None:
        """Save the changed values; returns the merged settings (None when nothing changed
        or the service refused). On refusal each problem shows next to its field, nothing
        is written and the inputs keep what the user typed."""
        self._clear_errors()
        changes = self.changes()
        if not changes:
            self.alerts.info("No changes to save")
            return None
        try:
            merged = self.ops.settings.update(changes)
        except InvalidInput as exc:
            self._show_problems(exc)
            raise
        self._fill(merged)
        self._show_file_problem()
        self.alerts.success(
            "Saved settings: "
            + ", ".join(f"{key} {_said(merged[key])}" for key in self.inputs if key in changes)
        )
        if self.on_saved is not None:
            self.on_saved(merged)
        return merged

    # -- helpers -------------------------------------------------------------------------

    def _input_value(self, key: str, value: Any) -> Any:
        return bool(value) if self.kinds[key] == "bool" else _shown(value)

    def _fill(self, settings: Mapping[str, Any]) -> None:
        self._loaded = {key: settings[key] for key in self.inputs}
        for key, field in self.inputs.items():
            field.value = self._input_value(key, settings[key])
        self._clear_errors()

    def _show_file_problem(self) -> None:
        """A broken overrides file, as a warning (the service then applies the defaults)."""
        settings_file = str(self.ops.site.settings_file)
        problems = [e.message for e in self.ops.site_errors() if e.file == settings_file]
        self.file_warning.value = (
            ""
            if not problems
            else '<div style="color:#8a6100; border:1px solid #8a6100; padding:4px 8px">'
            "<b>The settings file is ignored</b>, the defaults apply; Save replaces the "
            "file with your changes:<br>"
            + "<br>".join(html.escape(message) for message in problems)
            + "</div>"
        )

    def _clear_errors(self) -> None:
        for line in (*self.errors.values(), self.form_error):
            line.value = ""

    def _show_problems(self, exc: InvalidInput) -> None:
        found: dict[str, list[str]] = {}
        for problem in exc.problems:
            field = problem.field if problem.field in self.errors else "form"
            message = problem.message if field != "form" else f"{problem.field}: {problem.message}"
            found.setdefault(field, []).append(message)
        if not found:
            found["form"] = [exc.message]
        for field, messages in found.items():
            self.errors.get(field, self.form_error).value = error_html("; ".join(messages))
