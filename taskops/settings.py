"""Settings: packaged defaults (``taskops/config/default/app.json``) plus the site's
overrides (``<data>/config/app.json``), validated.

The seven keys of the seed exist, plus ``notificationWebhook`` (where notifications are
POSTed as JSON; empty: nowhere). ``Settings.update`` refuses unknown keys and wrong
types with a message and then writes nothing; the overrides file is replaced atomically, so
another process never reads half of it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from taskops.errors import InvalidInput, Problem

__all__ = ["SETTINGS", "SettingSpec", "Settings", "packaged_defaults"]


@dataclass(frozen=True, kw_only=True)
class SettingSpec:
    """One setting: its type, its bounds and what it means (shown in the Settings screen)."""

    key: str
    kind: type
    meaning: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    url: bool = False

    def check(self, value: Any) -> Any:
        """The value, normalized; raises InvalidInput naming the key."""

        def bad(message: str) -> InvalidInput:
            return InvalidInput(
                f"{self.key}: {message}", problems=[Problem(field=self.key, message=message)]
            )

        if self.kind is str:
            if not isinstance(value, str):
                raise bad(f"must be a string, not {type(value).__name__} {value!r}")
            value = value.strip()
            if self.url and value:
                try:
                    parts = urlsplit(value)
                except ValueError as exc:  # "http://[::1": an unclosed IPv6 address
                    raise bad(f"is not a valid URL ({exc}): {value!r}") from exc
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise bad(f"must be an http:// or https:// URL (or empty), not {value!r}")
            return value
        if self.kind is bool:
            if not isinstance(value, bool):
                raise bad(f"must be true or false, not {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(f"must be a number, not {type(value).__name__} {value!r}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise bad(f"must be a whole number, not {value}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise bad(f"must be a finite number, not {value}")
        if self.low is not None and value < self.low:
            raise bad(f"must be at least {self.low:g}, not {value}")
        if self.high is not None and value > self.high:
            raise bad(f"must be at most {self.high:g}, not {value}")
        return value


SETTINGS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec(
            key="taskHistoryRetention",
            kind=int,
            unit="days",
            low=1,
            high=3650,
            meaning="Days to keep job history and output; older runs are deleted.",
        ),
        SettingSpec(
            key="maxConcurrentTasks",
            kind=int,
            unit="jobs",
            low=1,
            high=1000,
            meaning="Jobs that may run at once; the rest wait as Queued, first in first out.",
        ),
        SettingSpec(
            key="enableNotifications",
            kind=bool,
            meaning="Show failures, timeouts and auto-disabled tasks as they happen.",
        ),
        SettingSpec(
            key="notificationWebhook",
            kind=str,
            url=True,
            meaning="An http(s) URL that receives each notification as a JSON POST; empty: none.",
        ),
        SettingSpec(
            key="defaultTaskTimeout",
            kind=int,
            unit="seconds",
            low=1,
            high=31 * 86400,
            meaning="Max runtime of a task that sets none of its own.",
        ),
        SettingSpec(
            key="autoRefreshInterval",
            kind=float,
            unit="seconds",
            low=0.5,
            high=3600,
            meaning="How often the dashboard refreshes running jobs and runspaces.",
        ),
        SettingSpec(
            key="runspaceMemoryWarning",
            kind=float,
            unit="MB",
            low=1,
            high=1_000_000,
            meaning="Runspaces using more memory than this are highlighted in orange.",
        ),
        SettingSpec(
            key="runspaceAgeWarning",
            kind=int,
            unit="seconds",
            low=1,
            high=10 * 365 * 86400,
            meaning="Runspaces older than this are highlighted in yellow.",
        ),
    )
}


def packaged_defaults() -> dict[str, Any]:
    """The defaults shipped in ``taskops/config/default/app.json``."""
    text = resources.files("taskops").joinpath("config/default/app.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def check_settings(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a set of settings; raises InvalidInput listing every unknown key and bad value."""
    if not isinstance(changes, Mapping):
        raise InvalidInput(
            f"settings must be a mapping of keys to values, not {type(changes).__name__}",
            problems=[Problem(field="settings", message="must be a mapping")],
        )
    problems: list[Problem] = []
    out: dict[str, Any] = {}
    for key, value in changes.items():
        spec = SETTINGS.get(key)
        if spec is None:
            problems.append(
                Problem(field=str(key), message=f"unknown setting (known: {', '.join(SETTINGS)})")
            )
            continue
        try:
            out[key] = spec.check(value)
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput.from_problems(problems)
    return out


class Settings:
    """The merged settings of one site. Reads the overrides file again when it changes."""

    def __init__(self, overrides_file: Path) -> None:
        self.overrides_file = overrides_file
        self._defaults = check_settings(packaged_defaults())
        self._lock = threading.Lock()
        self._cache_key: tuple[int, int] | None = None
        self._overrides: dict[str, Any] = {}
        self._error: str | None = None

    def _load(self) -> None:
        try:
            st = self.overrides_file.stat()
        except FileNotFoundError:
            self._cache_key, self._overrides, self._error = None, {}, None
            return
        key = (st.st_mtime_ns, st.st_size)
        if key == self._cache_key:
            return
        self._cache_key = key
        try:
            data = json.loads(self.overrides_file.read_text("utf-8"))
            self._overrides = check_settings(data)
            self._error = None
        except (OSError, ValueError) as exc:
            # A broken file must not take the site down: defaults apply, the error shows.
            self._overrides = {}
            self._error = f"{self.overrides_file}: {exc}; the defaults apply"

    def get(self) -> dict[str, Any]:
        """Every setting: the defaults with the overrides on top."""
        with self._lock:
            self._load()
            return {**self._defaults, **self._overrides}

    def overrides(self) -> dict[str, Any]:
        with self._lock:
            self._load()
            return dict(self._overrides)

    def error(self) -> str | None:
        """Why the overrides file was ignored, if it was."""
        with self._lock:
            self._load()
            return self._error

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and save ``changes`` as overrides; returns the merged settings.
        A value equal to the default drops its override. Raises InvalidInput."""
        checked = check_settings(changes)
        with self._lock:
            self._load()
            merged = {**self._overrides, **checked}
            merged = {k: v for k, v in merged.items() if self._defaults.get(k) != v}
            self._write(merged)
            self._overrides, self._error = merged, None
            return {**self._defaults, **merged}

    def _write(self, overrides: dict[str, Any]) -> None:
        self.overrides_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.overrides_file.parent, prefix=".app.json.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(overrides, out, indent=2, sort_keys=True)
                out.write("\n")
            os.replace(tmp, self.overrides_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        st = self.overrides_file.stat()
        self._cache_key = (st.st_mtime_ns, st.st_size)
