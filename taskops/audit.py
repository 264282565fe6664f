"""The audit log: one JSON line per change, ``<data>/logs/audit.log``.

Each line has ``time, user, action, target, details, result`` (and ``error`` when the action
failed). Secret-looking values in ``details`` are masked before anything is written. Lines
are appended with a single ``write`` on a file opened ``O_APPEND``, so several processes can
log to one file without interleaving.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from taskops.model import MASK, is_secret_key

__all__ = ["ACTIONS", "AuditLog", "mask_deep"]

ACTIONS = frozenset(
    {
        "task.create",
        "task.update",
        "task.enable",
        "task.disable",
        "task.duplicate",
        "task.copy",
        "task.delete",
        "task.restore",
        "task.run",
        "job.start",
        "job.stop",
        "job.remove",
        "runspace.close",
        "settings.update",
    }
)


def mask_deep(value: Any) -> Any:
    """``value`` with every secret-looking mapping key's value masked, at any depth."""
    if isinstance(value, Mapping):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) else mask_deep(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_deep(v) for v in value]
    return value


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(
        self,
        *,
        time: datetime,
        user: str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
        result: str = "success",
        error: str | None = None,
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        record: dict[str, Any] = {
            "time": time.isoformat(),
            "user": user,
            "action": action,
            "target": target,
            "details": mask_deep(dict(details or {})),
            "result": result,
        }
        if error is not None:
            record["error"] = error
        # a lone surrogate (from a client's "\ud800") becomes the JSON escape "\ud800" again
        line = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode(
            "utf-8", "backslashreplace"
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, oldest first; a line that is not JSON is skipped."""
        try:
            handle = self.path.open(encoding="utf-8")
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue
