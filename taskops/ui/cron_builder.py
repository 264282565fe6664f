"""``CronBuilder``: a cron expression editor with a visual builder and a live preview.

::

    Preset [Daily at 2 AM v]
    Minute  Hour  Day  Month  Weekday
    [0]     [2]   [*]  [*]    [*]        Next run: tomorrow at 02:00 CET (in 11 h 54 min)
    Expression [0 2 * * *]   Timezone [Europe/Berlin]
    At 02:00 AM · Europe/Berlin
    Next 5 runs: Sat 2026-01-17 02:00 CET, ...

Everything shown comes from one service call, ``ops.tasks.preview_schedule``, made on
every change (while typing too); the builder itself knows no cron rules.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, available_timezones

import ipywidgets as widgets
import traitlets

from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.format import relative

if TYPE_CHECKING:
    from taskops.service import TaskOps

__all__ = ["PRESETS", "CronBuilder"]

PRESETS: tuple[tuple[str, str], ...] = (
    ("Every minute", "* * * * *"),
    ("Every 5 minutes", "*/5 * * * *"),
    ("Every 15 minutes", "*/15 * * * *"),
    ("Hourly", "0 * * * *"),
    ("Daily at 2 AM", "0 2 * * *"),
    ("Daily at midnight", "0 0 * * *"),
    ("Weekdays at 9 AM", "0 9 * * 1-5"),
    ("Weekly on Monday at 3 AM", "0 3 * * 1"),
    ("Monthly on the 1st at 4 AM", "0 4 1 * *"),
)
"""(label, expression) of the presets dropdown, in the order shown."""

CUSTOM = ("Custom", "")
"""The dropdown entry shown while the expression matches no preset."""

INVALID_CLASS = "taskops-invalid"
"""The CSS class of an input whose value the last preview found wrong."""

# (CSS suffix and label, the service's name of the field in its messages, hint)
_FIELDS = (
    ("minute", "Minute", "minute", "0-59, e.g. 0, */5, 0,30, 10-20"),
    ("hour", "Hour", "hour", "0-23, e.g. 2, */6, 9-17"),
    ("day", "Day", "day-of-month", "day of the month 1-31, e.g. 1, 1,15, L (last)"),
    ("month", "Month", "month", "1-12 or JAN-DEC, e.g. 1, */3, JAN-JUN"),
    ("weekday", "Weekday", "day-of-week", "0-7 or SUN-SAT (0 and 7 are Sunday), e.g. 1-5"),
)
# The schedule messages of the service start with the name of the cron field at fault.
_FIELD_MESSAGE = re.compile(r"^(minute|hour|day-of-month|month|day-of-week) field ")
_NEVER_FIRES = re.compile(r"^never fires: day-of-month ")


@cache
def _timezone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def _format_run(moment: datetime, *, seconds: bool) -> str:
    """``Sun 2026-11-29 02:00 CET`` (with seconds when asked)."""
    return moment.strftime("%a %Y-%m-%d %H:%M:%S %Z" if seconds else "%a %Y-%m-%d %H:%M %Z")


def _next_run_line(first: datetime, now: datetime, *, seconds: bool) -> str:
    """``Next run: tomorrow at 02:00 CET (in 11 h 54 min)``; ``first`` is in the schedule's
    timezone and the day words are of that timezone."""
    days = (first.date() - now.astimezone(first.tzinfo).date()).days
    if days == 0:
        day = "today"
    elif days == 1:
        day = "tomorrow"
    elif 1 < days < 7:
        day = first.strftime("%A")
    else:
        day = first.strftime("%a %Y-%m-%d")
    clock = first.strftime("%H:%M:%S %Z" if seconds else "%H:%M %Z")
    return f"Next run: {day} at {clock} ({relative(first, now)})"


class CronBuilder(widgets.VBox):  # type: ignore[misc]
    """Edit a schedule: five cron fields, a presets dropdown, the whole expression as text
    and a timezone; shows the schedule in words, the next five runs and when the next run
    is, recomputed by ``ops.tasks.preview_schedule`` on every change.

    State lives in the traits ``expression`` (the whole expression as typed), ``timezone``
    (an IANA name, or "" for the site's timezone), ``valid`` and ``error`` (the message of
    the last preview, "" when valid); ``value`` is what a task takes. Setting
    ``expression`` or ``timezone`` updates every input; ``set()`` loads both at once.

    The five field boxes edit a 5-field expression. A field left empty means ``*`` (the
    placeholder says so) and spaces inside a field are dropped (``1, 15`` is ``1,15``).
    For a 6-field expression (seconds last) the boxes show the first five fields but are
    disabled: the seconds have no box, so an edit there would lose them; edit the
    expression text instead. For an ``@`` alias (``@daily``) the boxes are cleared and
    disabled, as the alias has no fields of its own. While the expression text has some
    other number of fields (half typed), the boxes keep what they showed.

    The timezone box shows the site's timezone when the schedule has none. ``timezone``
    stays "" (follow the site) while the box shows the site's timezone, unless the
    schedule loaded with ``set()`` names that timezone itself; picking another timezone
    makes it explicit.

    An invalid expression or timezone shows the service's message in red, clears the
    text and the runs, and gives the inputs at fault the CSS class ``taskops-invalid``:
    the expression text (and the field box named by the message, if any) for a bad
    schedule, the timezone box for a bad timezone.

    CSS classes: ``taskops-cron`` (the builder), ``taskops-cron-minute``, ``-hour``,
    ``-day``, ``-month``, ``-weekday``, ``-expression``, ``-preset``, ``-timezone`` (the
    inputs), ``-text`` (the schedule in words), ``-next`` (the next runs), ``-next-run``
    (the "Next run:" line), ``-error`` (the message).
    """

    expression = traitlets.Unicode("", help="the whole cron expression, as typed")
    timezone = traitlets.Unicode("", help="IANA timezone name; empty for the site's")
    valid = traitlets.Bool(False, help="whether the last preview found the schedule valid")
    error = traitlets.Unicode("", help="what is wrong with the schedule; empty when valid")

    def __init__(
        self,
        ops: TaskOps,
        expression: str = "0 2 * * *",
        timezone: str | None = None,
        *,
        alerts: Alerts | None = None,
    ) -> None:
        super().__init__()
        self.ops = ops
        self.alerts = alerts if alerts is not None else Alerts()
        self.site_timezone: str = ops.timezone
        self.preview: dict[str, Any] = {}
        """The last answer of ``preview_schedule``."""
        self._pinned = ""  # the timezone the loaded schedule names itself, if any
        self._source = ""  # which input the change being applied comes from
        self._syncing = False  # inputs are being written from the traits: ignore them
        self._loading = False  # set() is assigning both traits: show and preview once
        self.add_class("taskops-cron")

        self.fields: dict[str, widgets.Text] = {}
        columns = []
        for key, label, _name, hint in _FIELDS:
            box = widgets.Text(
                placeholder="*",
                tooltip=f"{label}: {hint}",
                continuous_update=True,
                layout=widgets.Layout(width="76px"),
            )
            box.add_class(f"taskops-cron-{key}")
            box.observe(self._on_field, names="value")
            self.fields[key] = box
            columns.append(widgets.VBox([widgets.Label(label, tooltip=hint), box]))
        self.minute, self.hour, self.day, self.month, self.weekday = self.fields.values()

        self.preset = widgets.Dropdown(
            options=[*PRESETS, CUSTOM],
            value="",
            description="Preset",
            layout=widgets.Layout(width="320px"),
        )
        self.preset.add_class("taskops-cron-preset")
        self.preset.observe(self._on_preset, names="value")

        self.expression_box = widgets.Text(
            description="Expression",
            placeholder="0 2 * * *, */15 * * * *, 0 0 * * * 30 or @daily",
            tooltip=(
                "5 fields (minute hour day month weekday), 6 with seconds last, "
                "or @hourly, @daily, @weekly, @monthly, @yearly"
            ),
            continuous_update=True,
            layout=widgets.Layout(width="320px"),
        )
        self.expression_box.add_class("taskops-cron-expression")
        self.expression_box.observe(self._on_expression_box, names="value")

        self.timezone_box = widgets.Combobox(
            options=_timezone_names(),
            ensure_option=True,
            description="Timezone",
            placeholder=self.site_timezone,
            tooltip=f"IANA timezone; empty for the site's ({self.site_timezone})",
            layout=widgets.Layout(width="300px"),
        )
        self.timezone_box.add_class("taskops-cron-timezone")
        self.timezone_box.observe(self._on_timezone_box, names="value")

        self.text_view = widgets.HTML()
        self.text_view.add_class("taskops-cron-text")
        self.next_run_view = widgets.HTML(layout=widgets.Layout(margin="0 0 0 12px"))
        self.next_run_view.add_class("taskops-cron-next-run")
        self.next_view = widgets.HTML()
        self.next_view.add_class("taskops-cron-next")
        self.error_view = widgets.HTML()
        self.error_view.add_class("taskops-cron-error")

        self.observe(self._on_expression, names="expression")
        self.observe(self._on_timezone, names="timezone")
        self.children = [
            *([self.alerts] if alerts is None else []),
            self.preset,
            widgets.HBox(
                [*columns, self.next_run_view], layout=widgets.Layout(align_items="flex-end")
            ),
            self.error_view,
            widgets.HBox([self.expression_box, self.timezone_box]),
            self.text_view,
            self.next_view,
        ]
        self.set(expression, timezone)

    # -- what other code uses ---------------------------------------------------------------

    @property
    def value(self) -> dict[str, str | None]:
        """``{"schedule": <expression, stripped>, "timezone": <IANA name, or None for the
        site's>}``, the keys a task takes. Check ``valid`` first."""
        return {"schedule": self.expression.strip(), "timezone": self.timezone or None}

    @property
    def text(self) -> str:
        """The schedule in words ("At 02:00 AM"); empty while invalid."""
        return str(self.preview.get("text") or "")

    @property
    def next_runs(self) -> list[datetime]:
        """The next runs of the last preview, aware, in the schedule's timezone."""
        if not self.preview.get("valid"):
            return []
        zone = ZoneInfo(str(self.preview["timezone"]))
        return [datetime.fromisoformat(run).astimezone(zone) for run in self.preview["nextRuns"]]

    def set(self, expression: str, timezone: str | None = None) -> None:
        """Show ``expression`` in ``timezone`` (None or "" for the site's), as when loading
        a task: every input follows, one preview is made, and no input's callback fires
        back."""
        self._pinned = timezone or ""
        self._loading = True
        try:
            self.expression = expression
            self.timezone = timezone or ""
        finally:
            self._loading = False
        self._show_expression()
        self._show_timezone()
        self.refresh()

    @shows_errors
    def refresh(self) -> None:
        """Preview the schedule again (the "Next run" line moves on with the clock)."""
        now = self.ops.clock.now()
        self._show_preview(
            self.ops.tasks.preview_schedule(self.expression, self.timezone or None), now
        )

    # -- callbacks: each hands one edit to the traits ----------------------------------------

    def _on_field(self, _change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self._edit(self._fields_expression(), source="fields")

    def _on_expression_box(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self._edit(change["new"], source="expression")

    def _on_preset(self, change: Mapping[str, Any]) -> None:
        if not self._syncing and change["new"]:
            self._edit(change["new"], source="preset")

    def _on_timezone_box(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self._choose_timezone(change["new"])

    @shows_errors
    def _on_expression(self, _change: Mapping[str, Any]) -> None:
        if not self._loading:
            self._show_expression()
            self.refresh()

    @shows_errors
    def _on_timezone(self, _change: Mapping[str, Any]) -> None:
        if not self._loading:
            self._show_timezone()
            self.refresh()

    # -- how inputs and traits follow each other ---------------------------------------------

    def _edit(self, expression: str, *, source: str) -> None:
        """Set ``expression`` from the input ``source``, which is left as the user has it."""
        self._source = source
        try:
            self.expression = expression
        finally:
            self._source = ""

    def _fields_expression(self) -> str:
        return " ".join("".join(box.value.split()) or "*" for box in self.fields.values())

    def _choose_timezone(self, name: str) -> None:
        following = name == "" or (name == self.site_timezone and self._pinned != name)
        self._source = "timezone"
        try:
            self.timezone = "" if following else name
        finally:
            self._source = ""

    def _show_expression(self) -> None:
        """Write ``expression`` into every input but the one it came from."""
        text = self.expression
        tokens = text.split()
        self._syncing = True
        try:
            if self._source != "expression":
                self.expression_box.value = text
            if self._source != "fields":
                if text.strip().startswith("@"):
                    self._show_fields(("",) * 5, disabled=True)
                elif len(tokens) in (5, 6):
                    self._show_fields(tokens[:5], disabled=len(tokens) == 6)
            normalized = " ".join(tokens)
            known = any(expression == normalized for _label, expression in PRESETS)
            options = PRESETS if known else (*PRESETS, CUSTOM)
            if tuple(self.preset.options) != options:
                self.preset.options = options
            self.preset.value = normalized if known else ""
        finally:
            self._syncing = False

    def _show_fields(self, values: tuple[str, ...] | list[str], *, disabled: bool) -> None:
        for box, value in zip(self.fields.values(), values, strict=True):
            box.value = value
            box.disabled = disabled

    def _show_timezone(self) -> None:
        if self._source == "timezone":
            return
        self._syncing = True
        try:
            self.timezone_box.value = self.timezone or self.site_timezone
        finally:
            self._syncing = False

    def _show_preview(self, answer: dict[str, Any], now: datetime) -> None:
        self.preview = answer
        valid = bool(answer["valid"])
        problems: Mapping[str, str] = answer.get("problems") or {}
        self.valid = valid
        self.error = "" if valid else str(answer.get("error") or "invalid schedule")
        self._mark_invalid(problems)
        if not valid:
            self.text_view.value = ""
            self.next_view.value = ""
            self.next_run_view.value = ""
            self.error_view.value = f'<span style="color:#c62828">{html.escape(self.error)}</span>'
            return
        self.error_view.value = ""
        zone = str(answer["timezone"])
        whose = " (site timezone)" if zone == self.site_timezone and not self.timezone else ""
        self.text_view.value = (
            f"<b>{html.escape(str(answer['text']))}</b>"
            f' <span style="color:#666">· {html.escape(zone)}{whose}</span>'
        )
        runs = self.next_runs
        seconds = any(run.second for run in runs)
        if not runs:
            self.next_view.value = "<i>No upcoming runs</i>"
            self.next_run_view.value = "Next run: never"
            return
        items = "".join(f"<li>{html.escape(_format_run(r, seconds=seconds))}</li>" for r in runs)
        self.next_view.value = f'<b>Next {len(runs)} runs</b><ol style="margin:2px 0">{items}</ol>'
        self.next_run_view.value = html.escape(_next_run_line(runs[0], now, seconds=seconds))

    def _mark_invalid(self, problems: Mapping[str, str]) -> None:
        bad: set[str] = set()
        schedule = problems.get("schedule")
        if schedule is not None:
            bad.add("expression")
            named = _FIELD_MESSAGE.match(schedule)
            if named:
                bad.update(key for key, _l, name, _h in _FIELDS if name == named.group(1))
            elif _NEVER_FIRES.match(schedule):
                bad.update(("day", "month"))
        if "timezone" in problems:
            bad.add("timezone")
        inputs: dict[str, widgets.DOMWidget] = {
            **self.fields,
            "expression": self.expression_box,
            "timezone": self.timezone_box,
        }
        for key, widget in inputs.items():
            if key in bad:
                widget.add_class(INVALID_CLASS)
            else:
                widget.remove_class(INVALID_CLASS)
