"""Cron schedules: validation, human text and fire times, with the DST rules of DESIGN.md §2.

croniter does the calendar arithmetic and cron-descriptor the wording; this module adds what
neither does for us: messages that name the field that is wrong, and a mapping from wall-clock
fire times to instants that follows the DST rules:

- Fire times are computed in the schedule's wall-clock time, then mapped to instants.
- Fixed-time schedules (the hour field does not cover all 24 hours): a wall time skipped by
  spring-forward runs once, at the first instant after the jump (Berlin 02:30 -> 03:00 CEST);
  several skipped wall times collapse into that one instant. A wall time repeated by fall-back
  runs once, at its first occurrence.
- Interval-like schedules (the hour field covers every hour: ``*/15 * * * *``, ``0 * * * *``)
  follow absolute time: skipped wall times do not occur, repeated ones run in both folds.

Fire times come back as aware datetimes in the schedule's timezone. Compare, subtract and
key them through UTC (``.astimezone(UTC)`` or ``.timestamp()``): Python compares two datetimes
that share a ``tzinfo`` by their wall-clock fields and ignores ``fold``, so 02:15 CET (second
fold) would sort before 02:30 CEST; and a datetime inside a repeated hour, either fold, never
compares equal to a datetime of another zone (PEP 495), even at the same instant.
"""

from __future__ import annotations

import copy
import heapq
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cron_descriptor import ExpressionDescriptor, Options, get_description
from cron_descriptor.ExpressionParser import ExpressionParser
from cron_descriptor.GetText import GetText
from croniter import CroniterBadDateError, CroniterError, croniter

from taskops.errors import InvalidInput, Problem

__all__ = ["ALIASES", "Schedule", "load_timezone"]

ALIASES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The ``@`` aliases taskops accepts and the 5-field expression each stands for."""

_FORMS = "5 fields (minute hour day-of-month month day-of-week) or 6 with seconds last"
_SPLIT = re.compile(r"[^ \t\n\r\f\v]+")  # croniter splits on ASCII whitespace only
_HASHED = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
_SIMPLE_ITEM = re.compile(r"^(\*|\d+)(-(\d+))?(/\d+)?$")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    syntax: str


# In croniter's order: seconds, when present, come last.
_FIELDS = (
    _FieldSpec("minute", 0, 59, "0-59"),
    _FieldSpec("hour", 0, 23, "0-23"),
    _FieldSpec("day-of-month", 1, 31, "1-31, L or nW"),
    _FieldSpec("month", 1, 12, "1-12 or JAN-DEC"),
    _FieldSpec("day-of-week", 0, 7, "0-7 or SUN-SAT (0 and 7 are Sunday), Ln or n#k"),
    _FieldSpec("second", 0, 59, "0-59"),
)
_HOUR, _DOM, _MONTH, _DOW = 1, 2, 3, 4


def load_timezone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` of an IANA timezone name such as ``Europe/Berlin``.

    Raises ``InvalidInput`` with one ``Problem(field="timezone")`` when ``name`` is not a
    string, is empty, is a file path, or names no timezone of the tz database.
    """
    if not isinstance(name, str):
        raise _timezone_error(f"must be an IANA timezone name, not {type(name).__name__}")
    if not name.strip():
        raise _timezone_error("is empty; expected an IANA timezone name such as Europe/Berlin")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", name):
        raise _timezone_error(
            f"must be an IANA timezone name such as Europe/Berlin, not a file path: {name!r}"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise _timezone_error(
            f"unknown timezone {name!r}; expected an IANA name such as Europe/Berlin or UTC"
        ) from exc


def _timezone_error(message: str) -> InvalidInput:
    return InvalidInput.from_problems([Problem(field="timezone", message=message)])


@dataclass(frozen=True)
class _Parsed:
    """What an expression means, computed once per distinct expression."""

    fields: str
    has_seconds: bool
    interval_like: bool
    description_input: str
    template: croniter  # copied per iteration: cheaper than parsing the expression again


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A validated cron expression in an IANA timezone.

    Build one with ``Schedule.parse``; constructing it directly validates the same way.
    Instances are immutable, hashable and safe to share between threads.
    """

    expression: str
    timezone: str = "UTC"
    _parsed: _Parsed = field(init=False, repr=False, compare=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        parsed: _Parsed | None = None
        zone: ZoneInfo | None = None
        expression: Any = self.expression
        if not isinstance(expression, str):
            problems.append(
                Problem(
                    field="schedule",
                    message=f"must be a cron expression string, not {type(expression).__name__}",
                )
            )
        else:
            outcome = _parse_expression(expression.strip())
            if isinstance(outcome, str):
                problems.append(Problem(field="schedule", message=outcome))
            else:
                parsed = outcome
        try:
            zone = load_timezone(self.timezone)
        except InvalidInput as exc:
            problems.extend(exc.problems)
        if problems or parsed is None or zone is None:
            raise InvalidInput.from_problems(problems)
        object.__setattr__(self, "expression", expression.strip())
        object.__setattr__(self, "_parsed", parsed)
        object.__setattr__(self, "_zone", zone)

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Schedule:
        """Validate ``expression`` (5 fields, 6 with seconds last, or an ``@`` alias) in the
        IANA ``timezone``; returns the schedule with the expression stripped.

        Raises ``InvalidInput`` whose problems name the field: ``schedule`` (not a string,
        empty, wrong number of fields, a field out of range or unparsable, an unknown alias,
        a day that never occurs) and/or ``timezone`` (unknown or malformed name); both in one
        error when both are bad.
        """
        return cls(expression=expression, timezone=timezone)

    @property
    def zone(self) -> ZoneInfo:
        """The ``ZoneInfo`` of ``timezone``."""
        return self._zone

    @property
    def fields(self) -> str:
        """The normalized 5- or 6-field expression: aliases expanded, single spaces."""
        return self._parsed.fields

    @property
    def has_seconds(self) -> bool:
        """True for a 6-field expression (seconds last)."""
        return self._parsed.has_seconds

    @property
    def is_interval_like(self) -> bool:
        """True when the hour field covers all 24 hours (``*``, ``*/1``, ``0-23``): such a
        schedule follows absolute time across DST changes."""
        return self._parsed.interval_like

    def describe(self) -> str:
        """Human text in English, e.g. "Every 15 minutes" or "At 03:00 AM"; the expression
        itself if cron-descriptor cannot word it. Never raises."""
        return _describe(self._parsed.description_input) or self.expression

    def next_runs(self, n: int, *, start: datetime) -> list[datetime]:
        """The next ``n`` fire times strictly after ``start`` (an aware datetime in any
        timezone), sorted, as aware datetimes in the schedule's timezone; fewer when the
        schedule ends (it never fires again within croniter's search horizon).

        Raises ``ValueError`` when ``start`` is naive or ``n`` is negative.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        return [local for _, local in islice(self._instants(_utc(start, "start")), n)]

    def next_run(self, *, start: datetime) -> datetime | None:
        """The first fire time strictly after ``start`` (aware, any timezone), in the
        schedule's timezone; None when there is none. Raises ``ValueError`` for a naive
        ``start``."""
        for _, local in self._instants(_utc(start, "start")):
            return local
        return None

    def runs_between(self, start: datetime, end: datetime, *, limit: int = 10000) -> list[datetime]:
        """Fire times ``t`` with ``start < t <= end`` (both aware, any timezone), sorted, in
        the schedule's timezone, at most ``limit`` of them (the earliest).

        Raises ``ValueError`` when ``start`` or ``end`` is naive.
        """
        end_utc = _utc(end, "end")
        out: list[datetime] = []
        if limit <= 0:
            return out
        for instant, local in self._instants(_utc(start, "start")):
            if instant > end_utc:
                break
            out.append(local)
            if len(out) >= limit:
                break
        return out

    def _instants(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(UTC instant, local datetime) of every fire time strictly after the UTC ``start``,
        in order, without duplicates.

        croniter walks naive wall times; each maps to zero, one or two instants. Mapping
        wall times in order gives non-decreasing instants, except for the second-fold
        instants of interval-like schedules, which are held in a heap until a later
        instant is about to be produced.
        """
        zone = self._zone
        interval_like = self._parsed.interval_like
        local_start = start.astimezone(zone)
        wall = local_start.replace(tzinfo=None, microsecond=0)
        if local_start.fold == 0:
            # Inside the first pass of a repeated hour, earlier wall times still have their
            # second-fold instants ahead of us.
            wall -= _fold_length(zone, wall)
        walker = copy.copy(self._parsed.template)
        walker.set_current(wall, force=True)
        held: list[tuple[datetime, datetime]] = []
        last: datetime | None = None

        def fresh(instant: datetime) -> bool:
            return instant > start and (last is None or instant > last)

        while True:
            try:
                naive: datetime = walker.get_next(datetime)
            except (CroniterBadDateError, OverflowError, ValueError):
                break
            first = naive.replace(tzinfo=zone)
            first_utc = first.astimezone(UTC)
            if first_utc.astimezone(zone).replace(tzinfo=None) != naive:
                # Skipped by spring-forward: the rest of the gap is skipped too.
                jump = _jump_instant(zone, naive)
                walker.set_current(jump.astimezone(zone).replace(tzinfo=None) - _SECOND)
                if interval_like:
                    continue
                primary = (jump, jump.astimezone(zone))
            else:
                primary = (first_utc, first)
                if interval_like:
                    second = naive.replace(tzinfo=zone, fold=1)
                    if second.utcoffset() != first.utcoffset():
                        heapq.heappush(held, (second.astimezone(UTC), second))
            while held and held[0][0] < primary[0]:
                item = heapq.heappop(held)
                if fresh(item[0]):
                    last = item[0]
                    yield item
            if fresh(primary[0]):
                last = primary[0]
                yield primary
        while held:
            item = heapq.heappop(held)
            if fresh(item[0]):
                last = item[0]
                yield item


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not naive {value!r}")
    return value.astimezone(UTC)


def _fold_length(zone: ZoneInfo, wall: datetime) -> timedelta:
    """How much earlier the first occurrence of ``wall`` is than its second; zero when
    ``wall`` occurs once."""
    first = wall.replace(tzinfo=zone, fold=0).utcoffset()
    second = wall.replace(tzinfo=zone, fold=1).utcoffset()
    if first is None or second is None or first <= second:
        return timedelta(0)
    return first - second


def _jump_instant(zone: ZoneInfo, wall: datetime) -> datetime:
    """The UTC instant at which the clock jumps over the nonexistent wall time ``wall``.

    The jump lies between the two readings of ``wall`` (with the offset after the jump,
    which is earlier, and with the offset before it); found by bisection on whole seconds,
    as tz database transitions are.
    """
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = math.ceil(wall.replace(tzinfo=zone, fold=0).timestamp())
    after = datetime.fromtimestamp(high, UTC).astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


@lru_cache(maxsize=16384)
def _parse_expression(expression: str) -> _Parsed | str:
    """The meaning of a stripped expression, or a message saying what is wrong with it."""
    if not expression:
        return "is empty; expected a cron expression such as '0 3 * * *' or an alias such as @daily"
    if expression.startswith("@"):
        alias = expression.lower()
        if alias == "@reboot":
            return "@reboot is not supported: tasks run on a time schedule, not at start-up"
        if alias not in ALIASES:
            return f"unknown alias {expression!r}; expected one of {', '.join(ALIASES)}"
        expression = ALIASES[alias]
    tokens = _SPLIT.findall(expression)
    if len(tokens) == 7:
        return f"has 7 fields; a year field is not supported, use {_FORMS}"
    if len(tokens) not in (5, 6):
        plural = "field" if len(tokens) == 1 else "fields"
        return f"has {len(tokens)} {plural}; expected {_FORMS}"
    for index, token in enumerate(tokens):
        problem = _field_syntax_problem(index, token)
        if problem:
            return problem
    fields = " ".join(tokens)
    try:
        expanded, _ = croniter.expand(fields)
    except CroniterError as exc:
        # which field is at fault: each alone (costly, so only for a refused expression)
        for index, token in enumerate(tokens):
            problem = _field_problem(index, token, len(tokens))
            if problem:
                return problem
        return f"is not a valid cron expression: {exc}"
    if tokens[_DOW] in ("*", "?"):
        try:
            croniter.expand(fields, strict=True)
        except CroniterError:
            return _never_fires(expanded)
    try:
        template = croniter(fields, datetime(2000, 1, 1), ret_type=datetime)
    except CroniterError as exc:
        return f"is not a valid cron expression: {exc}"
    hours = expanded[_HOUR]
    # cron-descriptor reads 6 fields as seconds first (and guesses at a year field), so it
    # always gets 7 fields: seconds, the five, and "*" for the year.
    seconds = tokens[5] if len(tokens) == 6 else "0"
    description_input = " ".join([seconds, *tokens[:5], "*"]).upper()
    return _Parsed(
        fields=fields,
        has_seconds=len(tokens) == 6,
        interval_like=hours == ["*"] or len(hours) == 24,
        description_input=description_input,
        template=template,
    )


def _field_syntax_problem(index: int, token: str) -> str | None:
    """What croniter would take but taskops refuses in one field (cheap checks), or None."""
    spec = _FIELDS[index]
    if _HASHED.match(token):
        return f"{spec.name} field {token!r}: hashed (H) and random (R) values are not supported"
    if re.search(r"/0+(?:\D|$)", token):
        return f"{spec.name} field {token!r} has a step of 0; a step must be at least 1"
    return None


def _field_problem(index: int, token: str, count: int) -> str | None:
    """What is wrong with one field on its own, or None."""
    spec = _FIELDS[index]
    probe = ["*"] * count
    probe[index] = token
    try:
        croniter.expand(" ".join(probe))
    except CroniterError:
        pass
    else:
        return None
    if _out_of_range(token, spec):
        return f"{spec.name} field {token!r} is out of range (allowed: {spec.low}-{spec.high})"
    return f"{spec.name} field {token!r} is not valid (expected {spec.syntax}, with * , - /)"


def _out_of_range(token: str, spec: _FieldSpec) -> bool:
    """True when ``token`` is plain numeric syntax with a value outside the field's range."""
    for item in token.split(","):
        match = _SIMPLE_ITEM.match(item)
        if not match:
            return False
        for bound in (match.group(1), match.group(3)):
            if bound and bound != "*" and not spec.low <= int(bound) <= spec.high:
                return True
    return False


def _never_fires(expanded: list[list[Any]]) -> str:
    days = ",".join(str(d) for d in expanded[_DOM])
    months = ", ".join(
        _MONTH_NAMES[m - 1] for m in expanded[_MONTH] if isinstance(m, int) and 1 <= m <= 12
    )
    return f"never fires: day-of-month {days} does not occur in {months}"


class _Describer(ExpressionDescriptor):  # type: ignore[misc]
    """cron-descriptor's describer with its translations read once per process: its own
    constructor parses the ``.mo`` catalogue again for every expression, which made
    describing 10,000 schedules take most of a second."""

    def __init__(self, expression: str, options: Options) -> None:
        self._expression = expression
        self._options = options
        self.get_text = _translations()
        self._expression_parts = ExpressionParser(expression, options).parse()


@lru_cache(maxsize=1)
def _translations() -> GetText:
    return GetText("en_US", None)


@lru_cache(maxsize=1)
def _describe_options() -> Options:
    # Pinned to en_US and its 12-hour clock: left alone, cron-descriptor picks language and
    # clock from the process locale, and the text would differ from machine to machine.
    return Options(locale_code="en_US", use_24hour_time_format=False)


@lru_cache(maxsize=65536)
def _describe(description_input: str) -> str:
    options = _describe_options()
    try:
        return str(_Describer(description_input, options).get_description())
    except Exception:  # the shortcut relies on the library's insides: else its own way
        try:
            return str(get_description(description_input, options))
        except Exception:  # any failure of the wording library falls back to the expression
            return ""
