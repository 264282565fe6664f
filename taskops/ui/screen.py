"""What the Tasks, Jobs and Runspaces screens share: a list whose detail view takes its
place, dialogs built on first use, one refresh timer, and a table paged in Python or in
the database that reports what the user does through callbacks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import traitlets
from ipyvuetify.VuetifyTemplate import VuetifyTemplate

from taskops.service import TaskOps
from taskops.ui.dialogs import ConfirmDialog
from taskops.ui.feedback import Alerts
from taskops.ui.ticker import Ticker

__all__ = ["SEARCH_PAUSE", "Debounced", "ListScreen", "PagedTable", "search_box"]

PAGE_SIZES = (10, 25, 50, 100)

SEARCH_PAUSE = 0.3
"""Seconds a search box waits after the last keystroke before the list is filtered: each
filtering asks the service for the list and redraws the page, which was done once per
keystroke before."""


class Debounced:
    """Calls ``action()`` once ``delay`` seconds have passed since the last call, on the
    running asyncio loop (a kernel's, where the widgets' messages are handled). Without a
    running loop (a script, a test) it calls ``action`` at once."""

    def __init__(self, action: Callable[[], Any], delay: float = SEARCH_PAUSE) -> None:
        self._action = action
        self._delay = delay
        self._pending: asyncio.TimerHandle | None = None

    def __call__(self, *_args: Any) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._action()
            return
        self._pending = loop.call_later(self._delay, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._action()


def search_box(placeholder: str, action: Callable[[str], Any]) -> widgets.Text:
    """A search box that calls ``action(text)`` when typing pauses (``SEARCH_PAUSE``)."""
    box = widgets.Text(placeholder=placeholder, continuous_update=True)
    box.observe(Debounced(lambda: action(box.value)), "value")
    return box


class PagedTable(VuetifyTemplate):
    """A ``v-data-table-server``: it holds one page of rows and tells Python, through
    ``on_options``, when the page, its size or (where the template allows) the sort
    changed; ``on_open`` gets the id of a clicked name, ``on_action`` the action and id of
    a row button. Subclasses give the ``template`` (calling ``options``, ``open`` and
    ``act``) and, by ``item_id``, the type of their ids."""

    items = traitlets.List(traitlets.Any()).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    page = traitlets.Int(1).tag(sync=True)
    per_page = traitlets.Int(25).tag(sync=True)
    page_sizes = traitlets.List(list(PAGE_SIZES)).tag(sync=True)
    sort_by = traitlets.List(traitlets.Dict()).tag(sync=True)

    def __init__(self) -> None:
        super().__init__()
        self.on_options: Callable[[], Any] = lambda: None
        self.on_open: Callable[[Any], Any] = lambda _id: None
        self.on_action: Callable[[str, Any], Any] = lambda _action, _id: None

    def item_id(self, value: Any) -> Any:
        """A row's id as the screen uses it (as sent by default)."""
        return value

    def vue_options(self, data: dict[str, Any]) -> None:
        self.page = int(data.get("page", self.page))
        self.per_page = int(data.get("itemsPerPage", self.per_page))
        self.sort_by = list(data.get("sortBy", self.sort_by))
        self.on_options()

    def vue_open(self, item_id: Any) -> None:
        self.on_open(self.item_id(item_id))

    def vue_act(self, data: dict[str, Any]) -> None:
        self.on_action(str(data["action"]), self.item_id(data["id"]))


class ListScreen(widgets.VBox):  # type: ignore[misc]
    """A list, and the detail of one of its rows shown in its place (``show_detail``;
    ``show_list`` returns to the list as it was). Subclasses build ``list_view`` and call
    ``show_list()`` at the end of their ``__init__``, and give ``refresh()`` (the list)
    and ``refresh_detail()``.

    One ticker, driven by the browser, calls ``tick()`` every ``refresh_interval()``
    seconds while the screen is shown: it refreshes what is shown and follows a changed
    interval. Dialogs built on first use go into the screen with ``add_dialog``."""

    def __init__(self, ops: TaskOps, *, alerts: Alerts | None = None) -> None:
        super().__init__()
        self.ops = ops
        self.alerts = alerts or Alerts()
        self.list_view: widgets.Widget = widgets.VBox()
        self._shown_detail: widgets.Widget | None = None
        self._dialogs = widgets.Box()
        self._confirm: ConfirmDialog | None = None
        self._last_tick = 0.0
        self._interval = self.refresh_interval()
        self.ticker = Ticker(self._interval)
        self.ticker.on_tick(self.tick)

    refresh: Callable[[], Any]
    """Reload the list and show it: each screen's own."""
    refresh_detail: Callable[[], Any]
    """Reload the detail shown: each screen's own."""

    def refresh_interval(self) -> float:
        """Seconds between ticks: the ``autoRefreshInterval`` setting."""
        return float(self.ops.settings.get()["autoRefreshInterval"])

    def follow_interval(self) -> None:
        """When ``refresh_interval()`` changed since the last call, tick at the new one."""
        seconds = self.refresh_interval()
        if seconds != self._interval:
            self._interval = self.ticker.interval = seconds

    def tick(self) -> None:
        """A tick of the ticker: refresh what is shown, the list or the detail, unless the
        last tick was moments ago (ticks that queued up during a slow refresh are
        dropped)."""
        if time.monotonic() - self._last_tick < self.ticker.interval / 2:
            return
        if self.showing_detail:
            self.refresh_detail()
        else:
            self.refresh()
        self.follow_interval()
        self._last_tick = time.monotonic()

    def add_dialog(self, dialog: widgets.Widget) -> None:
        self._dialogs.children = (*self._dialogs.children, dialog)

    @property
    def confirm(self) -> ConfirmDialog:
        """The screen's "are you sure" dialog, built when first asked for."""
        if self._confirm is None:
            self._confirm = ConfirmDialog()
            self.add_dialog(self._confirm)
        return self._confirm

    @property
    def showing_detail(self) -> bool:
        return self._shown_detail is not None

    def show_detail(self, detail: widgets.Widget) -> None:
        """Show ``detail`` in place of the list."""
        self._shown_detail = detail
        self.children = [detail, self._dialogs, self.ticker]
        self.follow_interval()

    def show_list(self) -> None:
        """Show the list (again, as it was) and refresh it."""
        self._shown_detail = None
        self.children = [self.list_view, self._dialogs, self.ticker]
        self.refresh()
