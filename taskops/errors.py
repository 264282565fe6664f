"""The one exception tree of taskops.

::

    TaskopsError
     ├── NotFound        (also LookupError)  -> HTTP 404
     ├── Conflict                            -> HTTP 409
     ├── InvalidInput    (also ValueError)   -> HTTP 400
     └── Forbidden                           -> HTTP 403

Errors of the libraries underneath (YAML, croniter, SQLAlchemy, zoneinfo) are translated
where they enter, with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Conflict", "Forbidden", "InvalidInput", "NotFound", "Problem", "TaskopsError"]


class TaskopsError(Exception):
    """Base of every error taskops raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(TaskopsError, LookupError):
    """An id (task, job, runspace, app) that does not exist."""


class Conflict(TaskopsError):
    """The request is well formed but clashes with the current state (a taken name, ...)."""


class Forbidden(TaskopsError):
    """The user may not do this."""


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with an input: the field it is in and what is wrong."""

    field: str
    message: str


class InvalidInput(TaskopsError, ValueError):
    """Bad input: a message naming what is wrong and, per field, the problems found.

    ``problems`` lets a form show each message next to its field; ``message`` alone is
    enough for a log line or an HTTP answer.
    """

    def __init__(self, message: str, *, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems: list[Problem] = list(problems or [])

    @classmethod
    def from_problems(cls, problems: list[Problem], *, prefix: str = "") -> InvalidInput:
        """One error for several problems; the message lists them all."""
        text = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return cls(f"{prefix}{text}", problems=problems)

    def fields(self) -> dict[str, str]:
        """Field name -> message (the first problem of each field)."""
        out: dict[str, str] = {}
        for p in self.problems:
            out.setdefault(p.field, p.message)
        return out
