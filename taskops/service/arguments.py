"""Checks of the arguments of service calls that several services take: whole numbers in
a range (ids, offsets, limits, counts) and aware times. Each raises InvalidInput naming
the field, so a form or an HTTP answer can show the message next to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taskops.errors import InvalidInput, Problem
from taskops.model import MAX_ID

__all__ = ["aware_time", "whole_number"]


def whole_number(value: Any, field: str, *, low: int = 0, high: int = MAX_ID) -> int:
    """``value`` when it is an int (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        span = f">= {low}" if high == MAX_ID else f"from {low} to {high}"
        raise InvalidInput(
            f"{field} must be a whole number {span}, not {value!r}",
            problems=[Problem(field=field, message=f"must be a whole number {span}")],
        )
    return value


def aware_time(value: datetime | str, field: str) -> datetime:
    """An aware datetime from a datetime or an ISO 8601 text with its offset."""
    when: Any = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            when = None
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise InvalidInput(
            f"{field} must be a time with a timezone (ISO 8601 with offset), not {value!r}",
            problems=[Problem(field=field, message="must be a time with a timezone")],
        )
    return when
