"""``Dashboard``: the app shell of the seed's "Task Management" card.

A header (title, engine state, Settings gear), a left menu (Tasks, Jobs, Runspaces), the
content area, and one alert area where every screen's errors and results show. Screens
are built the first time they are opened.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import traitlets
from ipyvuetify.VuetifyTemplate import VuetifyTemplate

from taskops.service import TaskOps, open_site
from taskops.ui.feedback import Alerts, shows_errors
from taskops.ui.ticker import Ticker

__all__ = ["Dashboard", "Navigation", "dashboard"]

SITE_CHECK_SECONDS = 10.0
"""How often the header checks the engine and the site's files."""

NOTIFICATION_ALERTS = {"failure": "error", "timeout": "warning", "auto_disable": "warning"}
"""The alert each notification kind shows as."""
NOTIFICATION_TITLES = {"failure": "Failed", "timeout": "Timeout", "auto_disable": "Auto-disabled"}

SECTIONS = (
    ("tasks", "Tasks", "mdi-clipboard-list-outline"),
    ("jobs", "Jobs", "mdi-flash"),
    ("runspaces", "Runspaces", "mdi-sync"),
)


class Navigation(VuetifyTemplate):
    """The left menu; ``current`` is the key of the section shown."""

    sections = traitlets.List([list(s) for s in SECTIONS]).tag(sync=True)
    current = traitlets.Unicode("tasks").tag(sync=True)
    template = traitlets.Unicode(
        """
<template>
  <v-list density="compact" nav class="taskops-nav">
    <v-list-item v-for="s in sections" :key="s[0]" :prepend-icon="s[2]" :title="s[1]"
        :class="'taskops-nav-' + s[0]" :active="current === s[0]" color="primary"
        @click="current = s[0]"></v-list-item>
  </v-list>
</template>
"""
    ).tag(sync=True)


class Dashboard(widgets.VBox):  # type: ignore[misc]
    """The whole console for one site, as one widget (inline in a notebook, or the Voila
    page). ``show(section)`` switches the content to ``tasks``, ``jobs``, ``runspaces`` or
    ``settings``; ``alerts`` is shared by every screen."""

    def __init__(self, ops: TaskOps) -> None:
        super().__init__(layout=widgets.Layout(width="100%"))
        self.ops = ops
        self.alerts = Alerts()
        self.add_class("taskops-dashboard")
        self.screens: dict[str, widgets.Widget] = {}
        self._builders: dict[str, Callable[[], widgets.Widget]] = {
            "tasks": self._tasks,
            "jobs": self._jobs,
            "runspaces": self._runspaces,
            "settings": self._settings,
        }

        self.engine_state = widgets.HTML()
        self.engine_state.add_class("taskops-engine-state")
        self.settings_button = widgets.Button(
            icon="gear", description="Settings", tooltip="Settings"
        )
        self.settings_button.add_class("taskops-settings-button")
        self.settings_button.on_click(lambda _b: self.show("settings"))
        title = widgets.HTML('<h2 style="margin:0">Task Management</h2>')
        title.add_class("taskops-title")
        header = widgets.HBox(
            [
                title,
                widgets.HBox(
                    [self.engine_state, self.settings_button],
                    layout=widgets.Layout(align_items="center"),
                ),
            ],
            layout=widgets.Layout(
                justify_content="space-between",
                align_items="center",
                border_bottom="1px solid #ddd",
                padding="4px 8px",
            ),
        )
        header.add_class("taskops-header")
        self.site_problems = widgets.HTML()
        self.site_problems.add_class("taskops-site-errors")
        self.nav = Navigation(layout=widgets.Layout(flex="0 0 170px", min_width="170px"))
        self.content = widgets.VBox(
            layout=widgets.Layout(flex="1 1 auto", min_width="0", padding="0 8px")
        )
        self.content.add_class("taskops-content")
        self.nav.observe(lambda change: self.show(change["new"]), "current")
        self.children = [
            header,
            self.alerts,
            self.site_problems,
            widgets.HBox([self.nav, self.content], layout=widgets.Layout(width="100%")),
        ]
        self._engine_running: bool | None = None
        self.ticker = Ticker(SITE_CHECK_SECONDS)
        self.ticker.on_tick(self.check_site)
        # notifications from the time the page opened on; the older ones are history
        newest = ops.notifications.list(limit=1)
        self._notified = newest[0].id if newest else 0
        self.notification_ticker = Ticker(float(ops.settings.get()["autoRefreshInterval"]))
        self.notification_ticker.on_tick(self.check_notifications)
        self.children = [*self.children, self.ticker, self.notification_ticker]
        self.check_site()
        self.show("tasks")

    @shows_errors
    def show(self, section: str) -> None:
        """Show a section, building its screen the first time."""
        if section not in self._builders:
            raise ValueError(f"unknown section {section!r} (known: {', '.join(self._builders)})")
        if section not in self.screens:
            self.screens[section] = self._builders[section]()
        screen = self.screens[section]
        refresh = getattr(screen, "refresh", None)
        if callable(refresh) and self.content.children and self.content.children[0] is not screen:
            refresh()
        self.content.children = [screen]
        # the menu marks the section shown; for Settings none, so any section opens again
        self.nav.current = section

    @shows_errors
    def check_site(self) -> None:
        """Show whether an engine runs for the site, and any problem in the site's files."""
        status = self.ops.engine.status()
        if status["running"]:
            self.engine_state.value = (
                f'<span style="color:#2e7d32" title="{html.escape(status["message"])}">'
                "&#9679; Engine running</span>&nbsp;"
            )
        else:
            self.engine_state.value = (
                f'<span style="color:#b71c1c" title="{html.escape(status["message"])}">'
                "&#9679; No engine</span>&nbsp;"
            )
            if self._engine_running is not False:  # say it once, when it stops
                self.alerts.warning(f"No engine: {status['message']}")
        self._engine_running = bool(status["running"])
        errors = self.ops.site_errors()
        self.site_problems.value = (
            ""
            if not errors
            else '<div style="color:#8a6100; border:1px solid #8a6100; padding:4px 8px">'
            f"<b>{len(errors)} problem(s) in the site's files</b> (their tasks are left out):"
            "<ul>"
            + "".join(
                f"<li><code>{html.escape(error.file)}</code>: "
                f"{html.escape(error.task + ': ' if error.task else '')}"
                f"{html.escape(error.message)}</li>"
                for error in errors
            )
            + "</ul></div>"
        )

    @shows_errors
    def check_notifications(self) -> None:
        """Show the failures, timeouts and auto-disables the engine recorded since the last
        check, oldest first (while the ``enableNotifications`` setting is on)."""
        settings = self.ops.settings.get()
        self.notification_ticker.interval = float(settings["autoRefreshInterval"])
        news = self.ops.notifications.list(after_id=self._notified, limit=100)
        if not news:
            return
        self._notified = news[0].id
        if not settings["enableNotifications"]:
            return
        for note in reversed(news):
            kind = NOTIFICATION_ALERTS.get(note.kind, "info")
            title = NOTIFICATION_TITLES.get(note.kind, note.kind)
            self.alerts.show(kind, f"{title}: {note.message}")

    # -- screens -------------------------------------------------------------------------

    def _tasks(self) -> widgets.Widget:
        from taskops.ui.task_list import TaskList

        return TaskList(self.ops, alerts=self.alerts)

    def _jobs(self) -> widgets.Widget:
        from taskops.ui.jobs import JobList

        return JobList(self.ops, alerts=self.alerts)

    def _runspaces(self) -> widgets.Widget:
        from taskops.ui.runspaces import RunspaceList

        return RunspaceList(self.ops, alerts=self.alerts)

    def _settings(self) -> widgets.Widget:
        from taskops.ui.settings_form import SettingsForm

        return SettingsForm(self.ops, alerts=self.alerts, on_saved=self.settings_saved)

    def settings_saved(self, _settings: dict[str, Any]) -> None:
        """Apply saved settings at once: every screen built so far refreshes (and so
        takes the new refresh interval and thresholds), and so do the notifications."""
        for section, screen in self.screens.items():
            refresh = getattr(screen, "refresh", None)
            if section != "settings" and callable(refresh):
                refresh()
        self.check_notifications()


def dashboard(site: Any = None, **options: Any) -> Dashboard:
    """The dashboard of ``site`` (a path; default ``$TASKOPS_SITE``, which ``taskops
    serve`` sets for its kernels). ``options`` go to ``taskops.open_site``."""
    return Dashboard(open_site(site, **options))
