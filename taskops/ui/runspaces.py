"""``RunspaceList``: the seed's Runspaces screen (Section 3), the Runspace Detail View it
opens, and the Force Close dialog.

The list shows quick stats, filters and a table whose rows are highlighted by the site's
settings (``runspaceAgeWarning`` yellow, Broken red, ``runspaceMemoryWarning`` orange),
read again on every refresh so that a changed setting applies at once. A ticker in the
browser refreshes what is shown every ``autoRefreshInterval`` seconds by updating the
existing widgets.
"""

from __future__ import annotations

import html
import json
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ipywidgets as widgets
import traitlets
from ipyvuetify.VuetifyTemplate import VuetifyTemplate

from taskops.errors import Conflict, InvalidInput, NotFound, TaskopsError
from taskops.model import Runspace, RunspaceKind, RunspaceState, iso
from taskops.service import TaskOps
from taskops.ui.dialogs import Dialog
from taskops.ui.download import DownloadButton
from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.format import duration, error_html, owner_label, relative, when
from taskops.ui.screen import ListScreen
from taskops.ui.stats import StatCards

__all__ = [
    "ForceCloseDialog",
    "RunspaceDetail",
    "RunspaceFilters",
    "RunspaceList",
    "RunspaceTable",
    "age_text",
]

ALL = "All"
STATES = (
    ALL,
    RunspaceState.OPENING.value,  # a job's process forked ahead, waiting for the job to start
    RunspaceState.OPENED.value,
    RunspaceState.CLOSED.value,
    RunspaceState.BROKEN.value,
)
AGES = ((ALL, 0), ("> 1 hour", 3600), ("> 6 hours", 6 * 3600), ("> 24 hours", 24 * 3600))
"""The Age filter: label and the least age in seconds (0: any)."""

KIND_LABELS = {
    RunspaceKind.ENGINE: "Task Engine",
    RunspaceKind.WORKER: "Background Job",
    RunspaceKind.KERNEL: "Jupyter Kernel",
}
RUNSPACE_STATE_COLOURS = {
    "Opening": "info",
    "Opened": "success",
    "Closing": "warning",
    "Closed": "grey",
    "Broken": "error",
}
"""Vuetify colour names of runspace states."""

_CHIP_COLOURS = {"Opened": "#2e7d32", "Closed": "#757575", "Broken": "#c62828"}
# one background per row; the first that applies wins (a broken row is red, however old)
_HIGHLIGHTS = (("broken", "#ffcdd2"), ("hungry", "#ffe0b2"), ("old", "#fff59d"))

FORCE_CLOSE_RISKS = (
    "Cause data loss",
    "Leave orphaned resources",
    "Crash associated jobs",
    "Corrupt in-progress operations",
)
"""What the Force Close warning says a force-close may do (the seed's words)."""

HEADERS = [
    {"title": "ID", "key": "id"},
    {"title": "State", "key": "state"},
    {"title": "Owner", "key": "owner"},
    {"title": "Kind", "key": "kind"},
    {"title": "Created", "key": "created"},
    {"title": "Age", "key": "age"},
    {"title": "Threads", "key": "threads", "align": "end"},
    {"title": "Memory (MB)", "key": "memory", "align": "end"},
    {"title": "Availability", "key": "availability"},
    {"title": "Actions", "key": "actions", "sortable": False, "align": "end"},
]


def age_text(seconds: float) -> str:
    """``15 days 3 hours`` (or ``2 days``) from a day on; below, as ``format.duration``
    (``2 h 03 min``)."""
    if seconds < 86_400:
        return duration(seconds)
    days, rest = divmod(int(seconds), 86_400)
    hours = rest // 3600
    text = f"{days} day{'' if days == 1 else 's'}"
    return f"{text} {hours} hour{'' if hours == 1 else 's'}" if hours else text


def _number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _whole(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _fields(rows: Iterable[tuple[str, str]]) -> str:
    """Label/value rows as an HTML table (the values are HTML already)."""
    return (
        "<table>"
        + "".join(
            f'<tr><td style="color:#666; padding-right:16px; vertical-align:top">{label}</td>'
            f"<td>{value}</td></tr>"
            for label, value in rows
        )
        + "</table>"
    )


def _text(value: Any) -> str:
    return "—" if value is None or value == "" else html.escape(str(value))


@dataclass
class RunspaceFilters:
    """What the user chose on the list: state, owner (both ``All`` or a name) and the least
    age in seconds (0: any)."""

    state: str = ALL
    owner: str = ALL
    min_age: int = 0

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``ops.runspaces.list`` for these filters."""
        return {
            "state": None if self.state == ALL else self.state,
            "owner": None if self.owner == ALL else self.owner,
            "min_age": self.min_age or None,
        }


@dataclass(frozen=True, kw_only=True)
class _Limits:
    """The settings that highlight a row, as read at the refresh."""

    age_seconds: float
    memory_mb: float
    timezone: str


def _row(space: Runspace, limits: _Limits) -> dict[str, Any]:
    """A runspace as a table row: raw values under the column keys (so that the browser
    sorts numbers as numbers) and the texts shown beside them."""
    live = space.state.live
    flags = {
        "broken": space.state is RunspaceState.BROKEN,
        "hungry": live and space.memory_mb is not None and space.memory_mb > limits.memory_mb,
        "old": live and space.age_seconds > limits.age_seconds,
    }
    warnings = []
    if flags["broken"]:
        warnings.append("broken")
    if flags["hungry"]:
        warnings.append(f"uses more than {limits.memory_mb:g} MB")
    if flags["old"]:
        warnings.append(f"older than {age_text(limits.age_seconds)}")
    background = next((colour for name, colour in _HIGHLIGHTS if flags[name]), None)
    kind = KIND_LABELS[space.kind]
    return {
        "id": space.id,
        "state": space.state.value,
        "stateColour": RUNSPACE_STATE_COLOURS.get(space.state.value, "grey"),
        "live": live,
        "owner": owner_label(space.owner),
        "ownerTitle": f"{kind}: {space.purpose}" if space.purpose else kind,
        "kind": kind,
        "created": iso(space.created_at),
        "createdText": when(space.created_at, limits.timezone, seconds=True),
        "age": space.age_seconds,
        "ageText": age_text(space.age_seconds),
        "threads": space.thread_count,
        "threadsText": _whole(space.thread_count),
        "memory": space.memory_mb,
        "memoryText": _number(space.memory_mb),
        "availability": space.availability.value,
        "rowClass": " ".join(
            ["taskops-runspace-row", *(f"taskops-runspace-{name}" for name in flags if flags[name])]
        ),
        "rowStyle": f"background-color: {background}" if background else None,
        "warning": "; ".join(warnings) or None,
    }


class RunspaceTable(VuetifyTemplate):
    """The runspace rows, sorted and paged in the browser (a site has tens of them, not
    thousands). It reports what the user does through ``on_inspect`` (an id or Inspect was
    clicked) and ``on_force_close`` (Force Close was clicked)."""

    headers = traitlets.List(HEADERS).tag(sync=True)
    items = traitlets.List(traitlets.Any()).tag(sync=True)
    template = traitlets.Unicode(
        """
<template>
  <v-data-table class="taskops-runspace-table" density="compact" item-value="id"
      :headers="headers" :items="items" :items-per-page="25"
      :row-props="({ item }) => ({ class: item.rowClass, style: item.rowStyle,
                                   title: item.warning, 'data-runspace': item.id })"
      no-data-text="No runspaces match the filters">
    <template v-slot:item.id="{ item }">
      <a class="taskops-runspace-id" :data-runspace="item.id"
         style="cursor:pointer; font-weight:500" @click="inspect(item.id)">{{ item.id }}</a>
    </template>
    <template v-slot:item.state="{ item }">
      <v-chip size="small" :color="item.stateColour" class="taskops-runspace-state"
              :data-runspace="item.id">{{ item.state }}</v-chip>
    </template>
    <template v-slot:item.owner="{ item }">
      <span class="taskops-runspace-owner-name" :title="item.ownerTitle">{{ item.owner }}</span>
    </template>
    <template v-slot:item.created="{ item }">
      <span style="white-space:nowrap">{{ item.createdText }}</span>
    </template>
    <template v-slot:item.age="{ item }">
      <span style="white-space:nowrap">{{ item.ageText }}</span>
    </template>
    <template v-slot:item.threads="{ item }">{{ item.threadsText }}</template>
    <template v-slot:item.memory="{ item }">{{ item.memoryText }}</template>
    <template v-slot:item.actions="{ item }">
      <span style="white-space:nowrap">
        <v-btn size="small" variant="text" icon="mdi-magnify" class="taskops-runspace-inspect"
               :data-runspace="item.id" title="Inspect" @click="inspect(item.id)"></v-btn>
        <v-btn size="small" variant="text" color="error" icon="mdi-close-octagon"
               class="taskops-runspace-close" :data-runspace="item.id" title="Force Close"
               :disabled="!item.live" @click="force_close(item.id)"></v-btn>
      </span>
    </template>
  </v-data-table>
</template>
"""
    ).tag(sync=True)

    def __init__(self) -> None:
        super().__init__()
        self.on_inspect: Callable[[int], Any] = lambda _id: None
        self.on_force_close: Callable[[int], Any] = lambda _id: None

    def vue_inspect(self, runspace_id: int) -> None:
        self.on_inspect(int(runspace_id))

    def vue_force_close(self, runspace_id: int) -> None:
        self.on_force_close(int(runspace_id))


class ForceCloseDialog(Dialog):
    """The seed's Force Close warning. ``ask(runspace)`` shows it; the Force Close button
    stays disabled until the runspace id is typed, and then ends the runspace's process
    through ``ops.runspaces.close`` (blocking until it is gone). A refusal shows in the
    dialog and in the alerts; after a close the dialog hides and ``on_closed`` gets the
    runspace as it is now."""

    def __init__(
        self,
        ops: TaskOps,
        *,
        alerts: Alerts | None = None,
        on_closed: Callable[[Runspace], Any] | None = None,
    ) -> None:
        self.ops = ops
        self.alerts = alerts or Alerts()
        self.on_closed = on_closed
        self.runspace: Runspace | None = None
        self.warning_text = widgets.HTML()
        self.warning_text.add_class("taskops-force-close-warning")
        self.id_input = widgets.Text(
            continuous_update=True, placeholder="runspace ID", layout=widgets.Layout(width="120px")
        )
        self.id_input.add_class("taskops-force-close-id")
        self.problem = widgets.HTML()
        self.problem.add_class("taskops-force-close-error")
        self.confirm_button = widgets.Button(
            description="Force Close", icon="times-circle", button_style="danger", disabled=True
        )
        self.confirm_button.add_class("taskops-force-close-confirm")
        self.cancel_button = widgets.Button(description="Cancel")
        self.cancel_button.add_class("taskops-force-close-cancel")
        self.id_input.observe(lambda change: self._typed(change["new"]), "value")
        self.confirm_button.on_click(lambda _b: self.force_close())
        self.cancel_button.on_click(lambda _b: self.hide())
        body = widgets.VBox(
            [
                self.warning_text,
                widgets.HBox(
                    [widgets.HTML("Type the runspace ID to confirm:&nbsp;"), self.id_input],
                    layout=widgets.Layout(align_items="center"),
                ),
                self.problem,
                widgets.HBox(
                    [self.cancel_button, self.confirm_button],
                    layout=widgets.Layout(justify_content="flex-end", margin="12px 0 0 0"),
                ),
            ]
        )
        super().__init__(
            title="⚠️ Force Close Runspace", css_class="taskops-force-close", width=560, body=body
        )

    def ask(self, runspace: Runspace) -> None:
        """Show the warning for ``runspace``, with an empty confirmation."""
        self.runspace = runspace
        risks = "".join(
            f'<div style="padding-left:12px">• {risk}</div>' for risk in FORCE_CLOSE_RISKS
        )
        self.warning_text.value = (
            '<div style="color:#b71c1c; font-weight:700; margin-bottom:8px">'
            "WARNING: This action is DANGEROUS</div>"
            + _fields(
                [
                    ("Runspace:", f"<b>{runspace.id}</b>"),
                    ("Owner:", html.escape(owner_label(runspace.owner))),
                    ("Age:", age_text(runspace.age_seconds)),
                ]
            )
            + f'<p style="margin:8px 0 0 0">Force-closing a runspace may:</p>{risks}'
            '<p style="margin:8px 0">Only use this if the runspace is stuck and '
            "you've verified it's safe to close.</p>"
        )
        self.problem.value = ""
        self.id_input.value = ""
        self._typed("")
        self.show()

    def _typed(self, text: str) -> None:
        expected = None if self.runspace is None else str(self.runspace.id)
        self.confirm_button.disabled = text.strip() != expected

    @shows_errors
    def force_close(self) -> None:
        """Close the runspace asked about with the id typed (what Force Close does)."""
        space = self.runspace
        if space is None or self.confirm_button.disabled:
            return
        self.problem.value = ""
        self.confirm_button.disabled = True
        self.confirm_button.description = "Closing…"
        try:
            closed = self.ops.runspaces.close(space.id, self.id_input.value)
        except TaskopsError as exc:
            self.problem.value = error_html(exc.message)
            self._typed(self.id_input.value)
            raise
        finally:
            self.confirm_button.description = "Force Close"
        self.runspace = None
        self.hide()
        self.alerts.success(f"Force-closed runspace {closed.id}: it is {closed.state.value}")
        if self.on_closed is not None:
            self.on_closed(closed)


class RunspaceDetail(widgets.VBox):  # type: ignore[misc]
    """The seed's Runspace Detail View: information, resource usage with a memory chart,
    owner context and a read-only inspection of the process, with Refresh, Export
    diagnostics (JSON) and Force Close. ``load(runspace_id)`` shows a runspace;
    ``refresh()`` reloads it (with ``diagnostics=False`` the process is not read again,
    as on a tick). ``on_back`` returns to the list."""

    def __init__(
        self,
        ops: TaskOps,
        runspace_id: int | None = None,
        *,
        alerts: Alerts | None = None,
        on_back: Callable[[], Any] | None = None,
        force_closer: ForceCloseDialog | None = None,
    ) -> None:
        super().__init__()
        self.ops = ops
        self.alerts = alerts or Alerts()
        self.on_back = on_back
        self.runspace_id: int | None = None
        self.runspace: Runspace | None = None
        self.diagnostics: dict[str, Any] | None = None
        self._timezone = ops.timezone
        self._samples_key: tuple[Any, ...] | None = None
        self.figure: Any = None
        self.add_class("taskops-runspace-detail")
        own_dialogs: list[widgets.Widget] = []
        if force_closer is None:
            force_closer = ForceCloseDialog(
                ops, alerts=self.alerts, on_closed=lambda _space: self.refresh()
            )
            own_dialogs.append(force_closer)
        self.force_closer = force_closer

        self.back_button = widgets.Button(description="Runspaces", icon="arrow-left")
        self.heading = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.export_button = DownloadButton(
            "Export diagnostics", self._export, on_error=self._failed
        )
        self.force_close_button = widgets.Button(
            description="Force Close", icon="times-circle", button_style="danger"
        )
        self.information = widgets.HTML()
        self.resources = widgets.HTML()
        self.chart = widgets.VBox(layout=widgets.Layout(width="100%"))
        self.owner = widgets.HTML()
        self.inspection = widgets.HTML()
        for widget, css in (
            (self.back_button, "back"),
            (self.heading, "heading"),
            (self.refresh_button, "refresh"),
            (self.export_button, "export"),
            (self.force_close_button, "force-close"),
            (self.information, "information"),
            (self.resources, "resources"),
            (self.chart, "memory-chart"),
            (self.owner, "owner"),
            (self.inspection, "diagnostics"),
        ):
            widget.add_class(f"taskops-runspace-{css}")

        self.back_button.on_click(lambda _b: self.back())
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.force_close_button.on_click(lambda _b: self.ask_force_close())

        def section(title: str, *content: widgets.Widget, width: str = "auto") -> widgets.VBox:
            return widgets.VBox(
                [widgets.HTML(f'<h4 style="margin:8px 0 4px 0">{title}</h4>'), *content],
                layout=widgets.Layout(width=width, margin="0 24px 0 0"),
            )

        actions = widgets.HBox(
            [self.back_button, self.refresh_button, self.export_button, self.force_close_button],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        self.children = [
            self.heading,
            actions,
            widgets.HBox(
                [
                    section("Runspace Information", self.information),
                    section("Owner Context", self.owner),
                ],
                layout=widgets.Layout(flex_flow="row wrap"),
            ),
            section("Resource Usage", self.resources, self.chart, width="100%"),
            section("Inspection (read-only)", self.inspection, width="100%"),
            *own_dialogs,
        ]
        if runspace_id is not None:
            self.load(runspace_id)

    # -- showing -------------------------------------------------------------------------

    @shows_errors
    def load(self, runspace_id: int | str) -> bool:
        """Show ``runspace_id``, its samples and its process read now. False when it
        failed (the error is in the alerts)."""
        space = self.ops.runspaces.get(runspace_id)
        self.runspace_id = space.id
        self._samples_key = None
        self._show(space)
        self._show_samples()
        self._diagnose()
        return True

    @shows_errors
    def refresh(self, *, diagnostics: bool = True) -> None:
        """Reload the runspace and its samples; read its process again with
        ``diagnostics`` (or when its state changed). A runspace gone from the store (pruned)
        returns to the list."""
        if self.runspace_id is None:
            return
        before = self.runspace.state if self.runspace is not None else None
        try:
            space = self.ops.runspaces.get(self.runspace_id)
        except NotFound:
            self.alerts.warning(f"runspace {self.runspace_id} no longer exists")
            self.back()
            return
        self._show(space)
        self._show_samples()
        if diagnostics or space.state is not before:
            self._diagnose()

    def _show(self, space: Runspace) -> None:
        self.runspace = space
        zone = self._timezone
        now = self.ops.clock.now()
        state = space.state.value
        self.heading.value = (
            f'<h3 style="margin:4px 0">Runspace {space.id} '
            f'<span class="taskops-runspace-heading-state" style="font-size:0.7em; '
            f"padding:2px 8px; border-radius:10px; color:white; "
            f'background:{_CHIP_COLOURS.get(state, "#1565c0")}">{state}</span> '
            f'<span style="font-size:0.7em; color:#666">{KIND_LABELS[space.kind]}</span></h3>'
        )
        information = [
            ("Runspace ID", str(space.id)),
            ("State", state),
            ("Availability", space.availability.value),
            ("Kind", f"{space.kind.value} ({KIND_LABELS[space.kind]})"),
            ("Process ID", _text(space.pid)),
            ("Host", _text(space.host)),
            ("Created", when(space.created_at, zone, seconds=True)),
            ("Age", age_text(space.age_seconds)),
        ]
        if space.closed_at is not None:
            information.append(("Closed", when(space.closed_at, zone, seconds=True)))
            information.append(("Exit code", _text(space.exit_code)))
        self.information.value = _fields(information)
        sampled = when(space.sampled_at, zone, seconds=True)
        if space.sampled_at is not None:
            sampled += f" ({relative(space.sampled_at, now)})"
        self.resources.value = _fields(
            [
                ("Threads", _whole(space.thread_count)),
                ("Memory (MB)", _number(space.memory_mb)),
                ("Handles", _whole(space.handle_count)),
                ("Last sampled", sampled),
            ]
        )
        self.owner.value = _fields(
            [
                ("Created by", KIND_LABELS[space.kind]),
                ("Owner", _text(owner_label(space.owner))),
                ("Associated job", self._job_text(space.job_id)),
                ("Associated task", _text(space.task_id)),
                ("Associated app", _text(space.app)),
                ("Purpose", _text(space.purpose)),
            ]
        )
        self.force_close_button.disabled = not space.state.live

    def _job_text(self, job_id: int | None) -> str:
        if job_id is None:
            return "—"
        try:
            job = self.ops.jobs.get(job_id)
        except NotFound:
            return f"{job_id} (no longer recorded)"
        return f"{job.id} {html.escape(job.name)} ({job.state.value})"

    def _show_samples(self) -> None:
        """Draw the memory chart when the samples changed since it was last drawn (plotly
        is imported only then)."""
        if self.runspace_id is None:
            return
        samples = self.ops.runspace_samples(self.runspace_id)
        key = (self.runspace_id, len(samples), samples["time"].iloc[-1] if len(samples) else None)
        if key == self._samples_key:
            return
        self._samples_key = key
        import plotly.graph_objects as go

        from taskops.analytics import runspace_memory_figure

        figure = runspace_memory_figure(samples, title="Memory over time")
        if self.figure is None:
            self.figure = go.FigureWidget(figure)
            self.chart.children = [self.figure]
        else:
            with self.figure.batch_update():
                self.figure.data = ()
                self.figure.add_traces(list(figure.data))
                self.figure.layout = figure.layout

    def _diagnose(self) -> None:
        """Read the process now; a runspace that cannot be read (remote, no process yet,
        gone) says why in the section instead."""
        if self.runspace_id is None:
            return
        try:
            data = self.ops.runspaces.diagnostics(self.runspace_id)
        except Conflict as exc:
            self.diagnostics = None
            self.inspection.value = (
                '<i class="taskops-runspace-diagnostics-note" style="color:#8a6100">'
                f"The process cannot be inspected: {html.escape(exc.message)}</i>"
            )
            return
        self.diagnostics = data
        self.inspection.value = _inspection_html(data, self._timezone)

    # -- actions -------------------------------------------------------------------------

    def back(self) -> None:
        self.runspace_id = None
        if self.on_back is not None:
            self.on_back()

    def ask_force_close(self) -> None:
        if self.runspace is not None:
            self.force_closer.ask(self.runspace)

    def _export(self) -> tuple[str, str]:
        """The diagnostics read now (secrets masked by the service); a process that cannot
        be read exports the runspace's record and why."""
        if self.runspace_id is None:
            raise InvalidInput("no runspace is open")
        runspace_id = self.runspace_id
        try:
            data = self.ops.runspaces.diagnostics(runspace_id)
        except Conflict as exc:
            data = {
                **self.ops.runspaces.get(runspace_id).to_dict(),
                "diagnosticsError": exc.message,
                "diagnosedAt": iso(self.ops.clock.now()),
            }
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        return f"runspace-{runspace_id}-diagnostics.json", text

    def _failed(self, exc: Exception) -> None:
        self.alerts.error(exc.message if isinstance(exc, TaskopsError) else str(exc))


def _inspection_html(data: Mapping[str, Any], timezone: str) -> str:
    """The read-only inspection of a process: environment variable names only, never
    their values."""
    command = data.get("commandLine")
    environment = data.get("environment")
    modules: Sequence[str] | None = data.get("modules")
    memory = data.get("memory") or {}

    def listing(css: str, title: str, names: Sequence[str]) -> str:
        items = "".join(f"<div><code>{html.escape(name)}</code></div>" for name in names)
        return (
            f'<details class="{css}"><summary style="cursor:pointer">{title} ({len(names)})'
            f'</summary><div style="max-height:240px; overflow:auto; margin:4px 0 4px 12px">'
            f"{items}</div></details>"
        )

    read_at = data.get("diagnosedAt")
    rows = [
        ("Status", _text(data.get("status"))),
        ("Working directory", f"<code>{_text(data.get('cwd'))}</code>"),
        (
            "Command line",
            "—" if command is None else f"<code>{html.escape(shlex.join(command))}</code>",
        ),
        *(
            [("Started by", "forked by the engine's fork server (so the command line is its)")]
            if data.get("forked")
            else []
        ),
        ("Open files", _whole(data.get("openFiles"))),
        ("Child processes", _whole(data.get("children"))),
        (
            "Memory now (MB)",
            f"RSS {_number(memory.get('rssMB'))}, VMS {_number(memory.get('vmsMB'))}, "
            f"USS {_number(memory.get('ussMB'))}",
        ),
        (
            "Environment",
            "not readable"
            if environment is None
            else listing("taskops-runspace-env-keys", "variables", sorted(environment)),
        ),
        (
            "Modules",
            "not readable"
            if modules is None
            else listing("taskops-runspace-modules", "mapped files", list(modules)),
        ),
    ]
    if isinstance(read_at, str):
        rows.append(("Read at", when(datetime.fromisoformat(read_at), timezone, seconds=True)))
    return _fields(rows)


class RunspaceList(ListScreen):
    """The Runspaces screen: the list, and the detail of a runspace when its id or Inspect
    is clicked (Back returns to the list as it was). ``refresh()`` reloads from the
    service; the screen's ticker calls it (or the detail's) every
    ``autoRefreshInterval`` seconds while it is shown."""

    def __init__(self, ops: TaskOps, *, alerts: Alerts | None = None) -> None:
        super().__init__(ops, alerts=alerts)
        self.filters = RunspaceFilters()
        self.add_class("taskops-runspaces")
        self._loading = False

        self.stats = StatCards(
            [
                ("total", "Total", "total"),
                ("opened", "Opened", "opened"),
                ("busy", "Busy", "busy"),
                ("broken", "Broken", "broken"),
                ("totalMemoryMB", "Total memory (MB)", "memory"),
            ]
        )
        self.stat_values = self.stats.values
        self.state_filter = widgets.Dropdown(description="State", options=STATES)
        self.owner_filter = widgets.Dropdown(description="Owner", options=(ALL,))
        self.age_filter = widgets.Dropdown(description="Age", options=AGES, value=0)
        self.refresh_button = widgets.Button(
            icon="refresh", tooltip="Refresh", layout=widgets.Layout(width="40px")
        )
        for widget, css in (
            (self.state_filter, "filter-state"),
            (self.owner_filter, "filter-owner"),
            (self.age_filter, "filter-age"),
            (self.refresh_button, "list-refresh"),
        ):
            widget.add_class(f"taskops-runspace-{css}")
        self.table = RunspaceTable()
        # the dialog and the detail are built when first needed
        self._force_closer: ForceCloseDialog | None = None
        self._detail: RunspaceDetail | None = None

        self.state_filter.observe(lambda change: self.set_filter(state=change["new"]), "value")
        self.owner_filter.observe(lambda change: self.set_filter(owner=change["new"]), "value")
        self.age_filter.observe(lambda change: self.set_filter(min_age=change["new"]), "value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.table.on_inspect = self.open_runspace
        self.table.on_force_close = self.ask_force_close

        self.list_view = widgets.VBox(
            [
                self.stats,
                widgets.HBox(
                    [self.state_filter, self.owner_filter, self.age_filter, self.refresh_button],
                    layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
                ),
                self.table,
            ]
        )
        self.list_view.add_class("taskops-runspace-list")
        self.show_list()

    # -- parts built on first use -------------------------------------------------------

    @property
    def force_closer(self) -> ForceCloseDialog:
        if self._force_closer is None:
            self._force_closer = ForceCloseDialog(
                self.ops, alerts=self.alerts, on_closed=self._force_closed
            )
            self.add_dialog(self._force_closer)
        return self._force_closer

    @property
    def detail(self) -> RunspaceDetail:
        if self._detail is None:
            self._detail = RunspaceDetail(
                self.ops,
                alerts=self.alerts,
                on_back=self.show_list,
                force_closer=self.force_closer,
            )
        return self._detail

    # -- loading -------------------------------------------------------------------------

    @shows_errors
    def refresh(self) -> None:
        """Reload the quick stats, the owners and the rows (highlighted by the settings
        as they are now) from the service and show them."""
        settings = self.ops.settings.get()
        self.follow_interval()
        runspaces = self.ops.runspaces
        self.stats.show(runspaces.summary())
        self._show_owners(space.owner for space in runspaces.list(include_closed=True))
        limits = _Limits(
            age_seconds=float(settings["runspaceAgeWarning"]),
            memory_mb=float(settings["runspaceMemoryWarning"]),
            timezone=self.ops.timezone,
        )
        self.table.items = [
            _row(space, limits) for space in runspaces.list(**self.filters.arguments())
        ]

    def _show_owners(self, owners: Iterable[str]) -> None:
        """Offer every owner seen (and the one chosen, even when it is gone)."""
        chosen = self.filters.owner
        seen = set(owners) | ({chosen} if chosen != ALL else set())
        labelled = sorted(
            ((owner_label(owner), owner) for owner in seen), key=lambda o: o[0].lower()
        )
        options = ((ALL, ALL), *labelled)
        if tuple(self.owner_filter.options) != options:
            self._loading = True
            try:
                self.owner_filter.options = options
                self.owner_filter.value = chosen
            finally:
                self._loading = False

    def refresh_detail(self) -> None:
        """The detail's numbers and samples; its process is read again only when asked."""
        self.detail.refresh(diagnostics=False)

    # -- filters -------------------------------------------------------------------------

    def set_filter(
        self, *, state: str | None = None, owner: str | None = None, min_age: int | None = None
    ) -> None:
        """Change a filter and show what matches."""
        if self._loading:
            return
        if state is not None:
            self.filters.state = state
        if owner is not None:
            self.filters.owner = owner
        if min_age is not None:
            self.filters.min_age = min_age
        self.refresh()

    # -- actions -------------------------------------------------------------------------

    @shows_errors
    def ask_force_close(self, runspace_id: int) -> None:
        """Show the Force Close warning for a row."""
        self.force_closer.ask(self.ops.runspaces.get(runspace_id))

    def _force_closed(self, _space: Runspace) -> None:
        if self.showing_detail:
            self.detail.refresh()
        self.refresh()

    # -- list and detail -----------------------------------------------------------------

    def open_runspace(self, runspace_id: int) -> None:
        """Show the runspace's detail in place of the list."""
        if self.detail.load(runspace_id):
            self.show_detail(self.detail)
