"""``ops.settings``: the site's settings (defaults with overrides)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taskops.settings import SETTINGS

if TYPE_CHECKING:
    from taskops.service.ops import TaskOps

__all__ = ["SettingsService"]


class SettingsService:
    """``ops.settings``: the site's settings (defaults with overrides)."""

    def __init__(self, ops: TaskOps) -> None:
        self._ops = ops

    def get(self) -> dict[str, Any]:
        return self._ops._settings.get()

    def describe(self) -> list[dict[str, Any]]:
        """Each setting with its value, default, unit and meaning (for a settings form)."""
        values = self.get()
        defaults = self._ops._settings._defaults
        return [
            {
                "key": spec.key,
                "value": values[spec.key],
                "default": defaults[spec.key],
                "unit": spec.unit,
                "meaning": spec.meaning,
                "type": spec.kind.__name__,
                "min": spec.low,
                "max": spec.high,
            }
            for spec in SETTINGS.values()
        ]

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and save; returns the merged settings. Raises InvalidInput (unknown keys,
        wrong types, out of range); then nothing is written."""
        details = {"changes": dict(changes)} if isinstance(changes, Mapping) else {}
        with self._ops._audited("settings.update", "settings", details):
            return self._ops._settings.update(changes)
