"""How the dashboard writes times, durations and states."""

from __future__ import annotations

import html
from datetime import datetime
from zoneinfo import ZoneInfo

from taskops.model import JobOwner

__all__ = [
    "OWNER_LABELS",
    "STATE_COLOURS",
    "STATE_ICONS",
    "duration",
    "error_html",
    "owner_label",
    "relative",
    "typed_whole",
    "when",
]

STATE_COLOURS = {
    "Enabled": "success",
    "Disabled": "grey",
    "Running": "info",
    "Queued": "blue-grey",
    "Completed": "success",
    "Failed": "error",
    "Stopped": "warning",
    "Terminated": "deep-orange",
}
"""Vuetify colour names of task statuses and job states."""

STATE_ICONS = {
    "Queued": "mdi-clock-outline",
    "Running": "mdi-progress-clock",
    "Completed": "mdi-check-circle",
    "Failed": "mdi-alert-circle",
    "Stopped": "mdi-stop-circle",
    "Terminated": "mdi-timer-off",
}
"""Material Design icons of job states."""


OWNER_LABELS = {
    JobOwner.TASK_ENGINE.value: "Task Engine",
    JobOwner.MANUAL.value: "Manual",
    JobOwner.APP_INIT.value: "App Init",
}
"""How the screens name the owners that are not apps (as the seed does)."""


def owner_label(owner: str) -> str:
    """``Task Engine`` for ``TaskEngine``, ``App Init`` for ``AppInit``; an app's name as is."""
    return OWNER_LABELS.get(owner, owner)


def when(moment: datetime | None, timezone: str, *, seconds: bool = False) -> str:
    """``2026-11-29 03:00`` in ``timezone`` (with seconds when asked); ``—`` for None."""
    if moment is None:
        return "—"
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``; ``—`` for None."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def relative(moment: datetime | None, now: datetime) -> str:
    """``in 3 h 12 min`` or ``5 min ago``; empty for None."""
    if moment is None:
        return ""
    delta = (moment - now).total_seconds()
    span = duration(abs(delta)) if abs(delta) >= 60 else f"{abs(delta):.0f} s"
    return f"in {span}" if delta >= 0 else f"{span} ago"


def error_html(message: str | None) -> str:
    """A field's error message as red HTML; empty when there is none."""
    if not message:
        return ""
    return f'<span style="color:#b71c1c">{html.escape(message)}</span>'


def typed_whole(text: str) -> int | str | None:
    """What a number box holds: None when empty, a whole number, or the text as typed
    (the service then refuses it with a message naming the field)."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return text
