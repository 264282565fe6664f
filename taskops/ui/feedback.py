"""Where the dashboard tells the user what happened: an alert area, and the one decorator
that turns any error of a widget callback into an alert (and a log line) instead of
losing it in the kernel's log."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import ipywidgets as widgets

from taskops.errors import TaskopsError

__all__ = ["Alerts", "shows_errors"]

log = logging.getLogger("taskops.ui")

R = TypeVar("R")

_COLOURS = {
    "error": ("#fdecea", "#b71c1c"),
    "warning": ("#fff8e1", "#8a6100"),
    "success": ("#e8f5e9", "#1b5e20"),
    "info": ("#e3f2fd", "#0d47a1"),
}


class Alerts(widgets.VBox):  # type: ignore[misc]
    """A stack of messages, newest first, each with a close button. Errors stay until
    closed; at most ``keep`` messages are shown."""

    def __init__(self, *, keep: int = 5) -> None:
        super().__init__()
        self.keep = keep
        self._shown: list[tuple[widgets.Widget, str, str]] = []
        self.add_class("taskops-alerts")

    def show(self, kind: str, message: str) -> None:
        """Add a message of ``kind`` (``error``, ``warning``, ``success`` or ``info``)."""
        back, fore = _COLOURS[kind]
        text = widgets.HTML(
            f'<div style="color:{fore}; white-space:pre-wrap">{html.escape(message)}</div>',
            style={"background": back},
            layout=widgets.Layout(flex="1 1 auto", padding="2px 6px"),
        )
        close = widgets.Button(
            icon="times", tooltip="Dismiss", layout=widgets.Layout(width="36px", padding="0")
        )
        close.add_class("taskops-alert-close")
        box = widgets.HBox(
            [text, close],
            layout=widgets.Layout(
                padding="2px 8px", margin="2px 0", border=f"1px solid {fore}", align_items="center"
            ),
        )
        box.add_class("taskops-alert")
        box.add_class(f"taskops-alert-{kind}")
        close.on_click(lambda _button: self.dismiss(box))
        self._shown = [(box, kind, message), *self._shown][: self.keep]
        self.children = [entry[0] for entry in self._shown]

    def error(self, message: str) -> None:
        self.show("error", message)

    def warning(self, message: str) -> None:
        self.show("warning", message)

    def success(self, message: str) -> None:
        self.show("success", message)

    def info(self, message: str) -> None:
        self.show("info", message)

    def dismiss(self, box: widgets.Widget) -> None:
        self._shown = [entry for entry in self._shown if entry[0] is not box]
        self.children = [entry[0] for entry in self._shown]

    def clear(self) -> None:
        self._shown = []
        self.children = []

    @property
    def messages(self) -> list[tuple[str, str]]:
        """``(kind, text)`` of each message shown, newest first (for tests and notebooks)."""
        return [(kind, text) for _box, kind, text in self._shown]


def shows_errors(method: Callable[..., R]) -> Callable[..., R | None]:
    """Decorate a screen's callback: an error it raises is shown in the screen's
    ``alerts`` and logged, and the callback returns None. A TaskopsError shows its own
    message; anything else is unexpected and shows its type too (the traceback goes to the
    log)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> R | None:
        try:
            return method(self, *args, **kwargs)
        except TaskopsError as exc:
            log.info("%s: %s", method.__qualname__, exc.message)
            self.alerts.error(exc.message)
        except Exception as exc:
            log.exception("%s failed", method.__qualname__)
            self.alerts.error(f"unexpected error: {type(exc).__name__}: {exc}")
        return None

    return wrapper
