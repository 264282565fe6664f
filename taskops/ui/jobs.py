"""``JobList``: the seed's Job List View, and the Job Detail View it opens.

Quick stats, filters (state, owner, name), and a table paged in the database: the browser
holds one page of rows. While a job on the screen is queued or running, the screen
refreshes every ``LIVE_SECONDS`` (the seed's live updates; sooner when the
``autoRefreshInterval`` setting is shorter), otherwise every ``autoRefreshInterval``; a
refresh changes the values of the widgets shown and never builds new ones. The timer runs
in the browser, so a hidden screen or a closed page does not refresh at all.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from typing import Any

import ipywidgets as widgets
import traitlets

from taskops.model import GLOBAL_APP, Job, JobState
from taskops.service import TaskOps
from taskops.ui.dialogs import ConfirmDialog
from taskops.ui.download import DownloadButton
from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.format import OWNER_LABELS, STATE_COLOURS, duration, owner_label, when
from taskops.ui.log_view import LogView
from taskops.ui.screen import ListScreen, PagedTable, search_box
from taskops.ui.stats import StatCards

__all__ = ["JobDetail", "JobList", "JobTable"]

LIVE_SECONDS = 2.0
"""How often a screen with a queued or running job refreshes (unless the setting is
shorter)."""
STOP_WAIT_SECONDS = 1.0
"""How long Stop waits for the job to end before it says the engine is ending it."""
MAX_SHOWN = 200_000
"""Characters of a stream kept in the browser; Download Log has all of it."""
ALL = "All"
STATES = (ALL, *(state.value for state in JobState))
HEADERS = [
    {"title": title, "key": key, "sortable": False}  # newest first, paged in the database
    for title, key in (
        ("ID", "id"),
        ("Name", "name"),
        ("State", "state"),
        ("Owner", "owner"),
        ("Started", "started"),
        ("Elapsed", "elapsed"),
        ("Progress", "progress"),
        ("Actions", "actions"),
    )
]
TEXT_COLOURS = {
    "success": "#2e7d32",
    "error": "#c62828",
    "info": "#1565c0",
    "warning": "#e65100",
    "deep-orange": "#d84315",
    "blue-grey": "#546e7a",
}
"""Text colours of the Vuetify colour names in ``STATE_COLOURS``."""


def live_interval(ops: TaskOps, live: bool) -> float:
    """Seconds between refreshes: the setting, or ``LIVE_SECONDS`` at most while ``live``."""
    setting = float(ops.settings.get()["autoRefreshInterval"])
    return min(setting, LIVE_SECONDS) if live else setting


def _progress(job: Job) -> int | None:
    return None if job.progress is None else round(max(0.0, min(1.0, job.progress)) * 100)


class JobTable(PagedTable):
    """One page of job rows (paged in the database, newest first) with the row actions
    ``view``, ``stop`` and ``remove``."""

    headers = traitlets.List(HEADERS).tag(sync=True)
    template = traitlets.Unicode(
        """
<template>
  <v-data-table-server class="taskops-job-table" density="compact" item-value="id"
      :headers="headers" :items="items" :items-length="total" v-model:page="page"
      v-model:items-per-page="per_page" :items-per-page-options="page_sizes"
      @update:options="options" no-data-text="No jobs match the filters">
    <template v-slot:item.name="{ item }">
      <a class="taskops-job-name" :data-job="item.id" :title="item.taskId || ''"
         style="cursor:pointer; font-weight:500" @click="open(item.id)">{{ item.name }}</a>
    </template>
    <template v-slot:item.state="{ item }">
      <v-chip size="small" :color="item.stateColour" class="taskops-job-state"
              :data-job="item.id">{{ item.state }}</v-chip>
    </template>
    <template v-slot:item.elapsed="{ item }">
      <span class="taskops-job-elapsed" :data-job="item.id">{{ item.elapsed }}</span>
    </template>
    <template v-slot:item.progress="{ item }">
      <v-progress-linear v-if="item.progress !== null" :model-value="item.progress"
          height="16" color="info" rounded class="taskops-job-progress" :data-job="item.id"
          :title="item.progressMessage" style="min-width:90px">
        <small>{{ item.progress }}%</small>
      </v-progress-linear>
    </template>
    <template v-slot:item.actions="{ item }">
      <span style="white-space:nowrap">
        <v-btn size="small" variant="text" icon="mdi-text-box-outline" class="taskops-job-view"
               :data-job="item.id" title="View Output"
               @click="act({action: 'view', id: item.id})"></v-btn>
        <v-btn v-if="item.live" size="small" variant="text" icon="mdi-stop-circle-outline"
               color="error" class="taskops-job-stop" :data-job="item.id" title="Stop"
               @click="act({action: 'stop', id: item.id})"></v-btn>
        <v-btn v-else size="small" variant="text" icon="mdi-delete" class="taskops-job-remove"
               :data-job="item.id" title="Remove"
               @click="act({action: 'remove', id: item.id})"></v-btn>
      </span>
    </template>
  </v-data-table-server>
</template>
"""
    ).tag(sync=True)

    def item_id(self, value: Any) -> int:
        return int(value)


def ask_stop(ops: TaskOps, confirm: ConfirmDialog, job_id: int, action: Callable[[], Any]) -> None:
    """The seed's "Confirm Stop Job" dialog for ``job_id``; Stop Job runs ``action``."""
    job = ops.jobs.get(job_id)
    elapsed = job.elapsed_seconds(ops.clock.now())
    confirm.ask(
        "Confirm Stop Job",
        "Are you sure you want to stop:<br><br>"
        f'<div class="taskops-stop-job">Job: <b>{html.escape(job.name)}</b><br>'
        f"State: {html.escape(job.state.value)}<br>"
        f"Elapsed: {html.escape(duration(elapsed) if elapsed is not None else 'not started')}"
        "</div><br>This will terminate the job immediately.",
        action,
        confirm="Stop Job",
    )


def stop_job(ops: TaskOps, alerts: Alerts, job_id: int) -> Job:
    """Stop a job and say how it went: stopped, or being stopped by its engine."""
    job = ops.jobs.stop(job_id, wait=STOP_WAIT_SECONDS)
    if job.state.finished:
        alerts.success(f"Job {job.id} ({job.name}) is {job.state.value}")
    else:
        alerts.info(
            f"Stopping job {job.id} ({job.name}): SIGTERM to its processes, "
            "SIGKILL if they are still there after the grace period"
        )
    return job


class JobList(ListScreen):
    """The Jobs screen: the list, and the detail of a job when its name (or View Output)
    is clicked; Back returns to the list as it was."""

    _live = False
    """A job on the screen is queued or running (it then refreshes every LIVE_SECONDS)."""

    def __init__(self, ops: TaskOps, *, alerts: Alerts | None = None) -> None:
        super().__init__(ops, alerts=alerts)
        self.add_class("taskops-jobs")
        self._timezone = ops.timezone

        self.stats = StatCards(
            [
                ("total", "Total Jobs", "total"),
                ("running", "Running", "running"),
                ("queued", "Queued", "queued"),
                ("completedLastHour", "Completed (last hour)", "completed"),
                ("failedLastHour", "Failed (last hour)", "failed"),
            ]
        )
        self.state_filter = widgets.Dropdown(description="State", options=STATES)
        owners = [(ALL, ALL), *OWNER_LABELS.items()]
        owners += [(app, app) for app in ops.apps() if app != GLOBAL_APP]
        self.owner_filter = widgets.Dropdown(
            description="Owner", options=[(label, value) for value, label in owners]
        )
        self.search = search_box("Search job name or task", lambda _text: self.set_filter())
        self.refresh_button = widgets.Button(
            icon="refresh", tooltip="Refresh", layout=widgets.Layout(width="40px")
        )
        for widget, css in (
            (self.state_filter, "job-filter-state"),
            (self.owner_filter, "job-filter-owner"),
            (self.search, "job-search"),
            (self.refresh_button, "job-refresh"),
        ):
            widget.add_class(f"taskops-{css}")
        self.table = JobTable()
        self._detail: JobDetail | None = None

        self.state_filter.observe(lambda _change: self.set_filter(), "value")
        self.owner_filter.observe(lambda _change: self.set_filter(), "value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.table.on_options = self.refresh
        self.table.on_open = self.open_job
        self.table.on_action = self.act

        self.list_view = widgets.VBox(
            [
                self.stats,
                widgets.HBox(
                    [self.state_filter, self.owner_filter, self.search, self.refresh_button],
                    layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
                ),
                self.table,
            ]
        )
        self.list_view.add_class("taskops-job-list")
        self.show_list()

    # -- parts built on first use -------------------------------------------------------

    @property
    def detail(self) -> JobDetail:
        if self._detail is None:
            self._detail = JobDetail(
                self.ops,
                alerts=self.alerts,
                confirm=self.confirm,
                on_back=self.show_list,
                on_open=self.open_job,
            )
        return self._detail

    # -- loading -------------------------------------------------------------------------

    def _filters(self) -> dict[str, Any]:
        state, owner = self.state_filter.value, self.owner_filter.value
        return {
            "state": None if state == ALL else state,
            "owner": None if owner == ALL else owner,
            "search": self.search.value.strip() or None,
        }

    @shows_errors
    def refresh(self) -> None:
        """Reload the quick stats and the page of jobs the table shows."""
        filters = self._filters()
        table = self.table
        total = self.ops.jobs.count(**filters)
        pages = max(1, -(-total // table.per_page))
        table.page = min(max(1, table.page), pages)
        jobs = self.ops.jobs.list(
            **filters, limit=table.per_page, offset=(table.page - 1) * table.per_page
        )
        summary = self.ops.jobs.summary()
        self.stats.show(summary)
        now = self.ops.clock.now()
        table.items = [self._row(job, now) for job in jobs]
        table.total = total
        self._live = bool(summary["running"] or summary["queued"])
        self.follow_interval()

    def refresh_interval(self) -> float:
        """``autoRefreshInterval``, or ``LIVE_SECONDS`` at most while a job on the screen
        (in the list, or the detail shown) is queued or running."""
        live = self.detail.live if self.showing_detail else self._live
        return live_interval(self.ops, live)

    def refresh_detail(self) -> None:
        self.detail.refresh()

    def _row(self, job: Job, now: datetime) -> dict[str, Any]:
        return {
            "id": job.id,
            "name": job.name,
            "taskId": job.task_id,
            "state": job.state.value,
            "stateColour": STATE_COLOURS.get(job.state.value, "grey"),
            "owner": owner_label(job.owner),
            "started": when(job.started_at, self._timezone, seconds=True),
            "elapsed": duration(job.elapsed_seconds(now)),
            "progress": _progress(job),
            "progressMessage": job.progress_message or "",
            "live": not job.state.finished,
        }

    def set_filter(self) -> None:
        """A filter changed: show the first page of what matches."""
        self.table.page = 1
        self.refresh()

    # -- actions -------------------------------------------------------------------------

    @shows_errors
    def act(self, action: str, job_id: int) -> None:
        """A row button: ``view``, ``stop`` (asks first) or ``remove``."""
        if action == "view":
            self.open_job(job_id)
        elif action == "stop":
            ask_stop(self.ops, self.confirm, job_id, lambda: self.stop(job_id))
        elif action == "remove":
            self.remove_job(job_id)
        else:
            raise ValueError(f"unknown row action {action!r}")

    @shows_errors
    def stop(self, job_id: int) -> None:
        stop_job(self.ops, self.alerts, job_id)
        self.refresh()

    @shows_errors
    def remove_job(self, job_id: int) -> None:
        self.ops.jobs.remove(job_id)
        self.alerts.success(f"Removed job {job_id} from the list (its task's history keeps it)")
        self.refresh()

    # -- list and detail -----------------------------------------------------------------

    def open_job(self, job_id: int) -> None:
        """Show the job's detail in place of the list."""
        if self.detail.load(job_id):
            self.show_detail(self.detail)


class JobDetail(widgets.VBox):  # type: ignore[misc]
    """One job: its information, its output as it is written (with auto-scroll and
    Download Log), its error stream, its context, and the actions Stop, Receive output,
    Remove and Restart task. ``refresh()`` reads only the output written since the last
    one."""

    def __init__(
        self,
        ops: TaskOps,
        *,
        alerts: Alerts | None = None,
        confirm: ConfirmDialog | None = None,
        on_back: Callable[[], Any] | None = None,
        on_open: Callable[[int], Any] | None = None,
    ) -> None:
        super().__init__()
        self.ops = ops
        self.alerts = alerts or Alerts()
        self.on_back = on_back
        self.on_open = on_open
        self.job_id: int | None = None
        self.job: Job | None = None
        self._timezone = ops.timezone
        self._offsets = {"stdout": 0, "stderr": 0}
        self.add_class("taskops-job-detail")
        self._own_confirm = confirm is None
        self.confirm = confirm or ConfirmDialog()

        self.back_button = widgets.Button(description="Back", icon="arrow-left")
        self.heading = widgets.HTML()
        self.stop_button = widgets.Button(
            description="Stop Job", icon="stop", button_style="danger"
        )
        self.receive_button = widgets.Button(
            description="Receive output", icon="download", tooltip="Read the whole output again"
        )
        self.remove_button = widgets.Button(description="Remove", icon="trash")
        self.restart_button = widgets.Button(
            description="Restart task", icon="redo", button_style="warning"
        )
        self.download = DownloadButton(
            "Download Log", self._log, mime="text/plain", on_error=self._failed
        )
        self.info = widgets.HTML()
        self.autoscroll = widgets.Checkbox(value=True, description="Auto-scroll", indent=False)
        self.output_note = widgets.HTML()
        self.output = LogView(css_class="taskops-job-stdout")
        self.error_line = widgets.HTML()
        self.errors = LogView(
            css_class="taskops-job-stderr", height=200, placeholder="(nothing on stderr)"
        )
        self.errors_box = widgets.VBox(
            [
                widgets.HTML("<h4 style='margin:8px 0 4px'>Error Stream</h4>"),
                self.error_line,
                self.errors,
            ],
            layout=widgets.Layout(display="none"),
        )
        self.context = widgets.HTML()
        widgets.link((self.autoscroll, "value"), (self.output, "autoscroll"))
        widgets.link((self.autoscroll, "value"), (self.errors, "autoscroll"))
        for widget, css in (
            (self.back_button, "job-back"),
            (self.heading, "job-heading"),
            (self.stop_button, "job-stop-button"),
            (self.receive_button, "job-receive"),
            (self.remove_button, "job-remove-button"),
            (self.restart_button, "job-restart"),
            (self.download, "job-download"),
            (self.info, "job-info"),
            (self.autoscroll, "job-autoscroll"),
            (self.output_note, "job-output-note"),
            (self.error_line, "job-error"),
            (self.errors_box, "job-errors"),
            (self.context, "job-context"),
        ):
            widget.add_class(f"taskops-{css}")
        self.back_button.on_click(lambda _b: self.back())
        self.stop_button.on_click(lambda _b: self.ask_stop())
        self.receive_button.on_click(lambda _b: self.receive())
        self.remove_button.on_click(lambda _b: self.remove_job())
        self.restart_button.on_click(lambda _b: self.restart())

        def section(title: str) -> widgets.HTML:
            return widgets.HTML(f"<h4 style='margin:8px 0 4px'>{title}</h4>")

        self.children = [
            widgets.HBox(
                [self.back_button, self.heading], layout=widgets.Layout(align_items="center")
            ),
            widgets.HBox(
                [
                    self.stop_button,
                    self.receive_button,
                    self.remove_button,
                    self.restart_button,
                    self.download,
                ],
                layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
            ),
            section("Job Information"),
            self.info,
            widgets.HBox(
                [section("Output"), self.autoscroll, self.output_note],
                layout=widgets.Layout(align_items="center"),
            ),
            self.output,
            self.errors_box,
            section("Job Context"),
            self.context,
            *([self.confirm] if self._own_confirm else []),
        ]

    @property
    def live(self) -> bool:
        """The job shown is queued or running."""
        return self.job is not None and not self.job.state.finished

    @shows_errors
    def load(self, job_id: int) -> bool:
        """Show a job from the start of its output (the last ``MAX_SHOWN`` characters of
        a long one). Returns False (and says why) when it cannot be read."""
        self.job = self.ops.jobs.get(job_id)
        self.job_id = self.job.id
        self._offsets = {"stdout": 0, "stderr": 0}
        self.output.text = self.errors.text = self.output_note.value = ""
        self.refresh()
        return True

    @shows_errors
    def refresh(self) -> None:
        """Read the job again and append the output written since the last refresh."""
        if self.job_id is None:
            return
        job = self.job = self.ops.jobs.get(self.job_id)
        self._follow("stdout", self.output)
        self._follow("stderr", self.errors)
        now = self.ops.clock.now()
        colour = TEXT_COLOURS.get(STATE_COLOURS.get(job.state.value, ""), "#666")
        self.heading.value = (
            f"<h3 style='margin:0 12px'>Job {job.id}: {html.escape(job.name)} "
            f"<span class='taskops-job-detail-state' style='color:{colour}'>"
            f"&#9679; {job.state.value}</span></h3>"
        )
        self.info.value = _table(
            [
                ("Job ID", str(job.id)),
                ("Name", job.name),
                ("State", job.state.value),
                ("Queued", when(job.queued_at, self._timezone, seconds=True)),
                ("Started", when(job.started_at, self._timezone, seconds=True)),
                ("Ended", when(job.ended_at, self._timezone, seconds=True)),
                (
                    "Duration" if job.state.finished else "Elapsed",
                    duration(job.elapsed_seconds(now)),
                ),
                ("Exit code", "—" if job.exit_code is None else str(job.exit_code)),
                (
                    "Progress",
                    "—"
                    if job.progress is None
                    else f"{_progress(job)}% {job.progress_message or ''}".strip(),
                ),
                ("Stop reason", job.stop_reason or "—"),
            ]
        )
        self.error_line.value = (
            f'<div style="color:#b71c1c; white-space:pre-wrap">{html.escape(job.error)}</div>'
            if job.error
            else ""
        )
        self.errors_box.layout.display = "flex" if job.error or self.errors.text else "none"
        self.context.value = _context(job)
        shown = {
            self.stop_button: not job.state.finished,
            self.remove_button: job.state.finished and not job.removed,
            self.restart_button: job.task_id is not None
            and job.state in (JobState.FAILED, JobState.TERMINATED),
        }
        for button, visible in shown.items():
            button.layout.display = "" if visible else "none"

    def _follow(self, stream: str, view: LogView) -> None:
        """Append what ``stream`` got since the last read; keep the last ``MAX_SHOWN``
        characters."""
        assert self.job_id is not None
        offset = self._offsets[stream]
        page = self.ops.jobs.output(self.job_id, stream, offset, limit=MAX_SHOWN)
        cut = False
        if page["size"] - offset > MAX_SHOWN:  # far behind: jump to the end
            offset = page["size"] - MAX_SHOWN
            page = self.ops.jobs.output(self.job_id, stream, offset, limit=MAX_SHOWN)
            view.text, cut = "", True
        if page["text"]:
            text = view.text + page["text"]
            if cut or len(text) > MAX_SHOWN:
                text = text[-MAX_SHOWN:]
                text = text.split("\n", 1)[1] if "\n" in text else text
                cut = True
            view.text = text
        self._offsets[stream] = int(page["nextOffset"])
        if cut and stream == "stdout":
            self.output_note.value = (
                f"<i>&nbsp;Showing the last {MAX_SHOWN // 1000} KB; Download Log has all of it.</i>"
            )

    # -- actions -------------------------------------------------------------------------

    def back(self) -> None:
        self.job_id = self.job = None
        if self.on_back is not None:
            self.on_back()

    @shows_errors
    def ask_stop(self) -> None:
        assert self.job_id is not None
        ask_stop(self.ops, self.confirm, self.job_id, self.stop)

    @shows_errors
    def stop(self) -> None:
        assert self.job_id is not None
        stop_job(self.ops, self.alerts, self.job_id)
        self.refresh()

    @shows_errors
    def receive(self) -> None:
        """Read the whole output again (the seed's Receive Job Output)."""
        assert self.job_id is not None
        self._offsets = {"stdout": 0, "stderr": 0}
        self.output.text = self.errors.text = self.output_note.value = ""
        self.refresh()
        self.alerts.info(
            f"Received the output of job {self.job_id} ({self._offsets['stdout']:,} bytes)"
        )

    @shows_errors
    def remove_job(self) -> None:
        assert self.job_id is not None
        job_id = self.job_id
        self.ops.jobs.remove(job_id)
        self.alerts.success(f"Removed job {job_id} from the list (its task's history keeps it)")
        self.back()

    @shows_errors
    def restart(self) -> None:
        assert self.job_id is not None
        job = self.ops.jobs.restart(self.job_id)
        self.alerts.success(f"Restarted {job.task_id}: job {job.id} is {job.state.value}")
        if self.on_open is not None:
            self.on_open(job.id)
        else:
            self.load(job.id)

    def _log(self) -> tuple[str, str]:
        """The whole output as a file: stdout, then stderr when there is any."""
        assert self.job_id is not None
        parts = {stream: self._read_all(stream) for stream in ("stdout", "stderr")}
        text = parts["stdout"]
        if parts["stderr"]:
            text += f"\n--- stderr ---\n{parts['stderr']}"
        return f"job-{self.job_id}.log", text

    def _read_all(self, stream: str) -> str:
        assert self.job_id is not None
        chunks, offset = [], 0
        while True:
            page = self.ops.jobs.output(self.job_id, stream, offset, limit=1 << 20)
            chunks.append(str(page["text"]))
            if int(page["nextOffset"]) <= offset or int(page["nextOffset"]) >= int(page["size"]):
                return "".join(chunks)
            offset = int(page["nextOffset"])

    def _failed(self, exc: Exception) -> None:
        self.alerts.error(f"Download Log: {exc}")


def _table(rows: list[tuple[str, str]]) -> str:
    return (
        '<table style="border-collapse:collapse">'
        + "".join(
            f'<tr><td style="color:#666; padding:1px 16px 1px 0">{html.escape(label)}</td>'
            f'<td data-field="{html.escape(label)}">{html.escape(value)}</td></tr>'
            for label, value in rows
        )
        + "</table>"
    )


def _context(job: Job) -> str:
    """Owner, task, script and parameters (secrets masked as ``to_dict`` masks them)."""
    data = job.to_dict()

    def pairs(values: dict[str, Any]) -> str:
        return ", ".join(f"{key}={value}" for key, value in values.items()) or "—"

    return _table(
        [
            ("Owner", owner_label(job.owner)),
            ("Task", job.task_id or "— (ad-hoc job)"),
            ("App", job.app or "—"),
            ("Script", job.script or "—"),
            ("Command", " ".join(job.command) or "—"),
            ("Parameters", pairs(data["parameters"])),
            ("Environment", pairs(data["environment"])),
            ("Max runtime", "—" if job.max_runtime is None else duration(job.max_runtime)),
            ("Process", "—" if job.pid is None else str(job.pid)),
            ("Runspace", "—" if job.runspace_id is None else str(job.runspace_id)),
        ]
    )
