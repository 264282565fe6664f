"""Next-fire computation for 10,000 cron expressions in three timezones.

A seeded, realistic mix of 10,000 expressions (every N minutes, hourly, daily, weekly,
monthly, business hours, every N hours, 6-field with seconds last, ``@`` aliases), each
given one of UTC, Europe/Berlin and America/New_York in turn. For each subject, the
time to compute every expression's first fire time after one fixed instant:

- taskops: ``Schedule.parse(expr, tz).next_run(start=now)``, with taskops' per-expression
  parse cache cleared before each round (cold), and separately the parse alone (cold
  and warm cache) and ``next_run`` alone on schedules built beforehand;
- croniter called directly: ``croniter(expr, start_in_tz).get_next(datetime)`` (the
  reference), and ``set_current`` + ``get_next`` on objects built beforehand (the floor
  for ``next_run`` alone);
- APScheduler 3: ``CronTrigger.from_crontab(expr, tz).get_next_fire_time(None, now)`` on
  the 5-field expressions (aliases expanded; day-of-week numbers given as names, since
  APScheduler 3 counts 0 as Monday), beside croniter and taskops on the same subset.

Each figure is the median of several rounds in which the subjects take turns. The issue
sets no target for this one; the ratio is to croniter called directly, the library taskops
wraps (taskops adds validation with field-naming messages and the DST mapping of
DESIGN.md §2).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from croniter import croniter

from bench.harness import Table, p50, ratio
from taskops import cron
from taskops.cron import ALIASES, Schedule

TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York")
COUNT = 10_000
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def expressions(count: int = COUNT, seed: int = 8) -> list[tuple[str, str]]:
    """``count`` (expression, timezone) pairs: a fixed, realistic mix."""
    rng = random.Random(seed)

    def minute() -> int:
        return rng.randrange(60)

    def hour() -> int:
        return rng.randrange(24)

    makers: list[tuple[int, Callable[[], str]]] = [
        (12, lambda: f"*/{rng.choice((1, 2, 5, 10, 15, 20, 30))} * * * *"),
        (10, lambda: f"{minute()} * * * *"),
        (20, lambda: f"{minute()} {hour()} * * *"),
        (8, lambda: f"{minute()} {hour()} * * {rng.randrange(7)}"),
        (8, lambda: f"{minute()} {hour()} {rng.randrange(1, 29)} * *"),
        (4, lambda: "0 0 1 * *"),
        (4, lambda: "15,45 9-17 * * 1-5"),
        (6, lambda: f"{minute()} {rng.randrange(6, 10)}-{rng.randrange(16, 20)} * * 1-5"),
        (6, lambda: f"{minute()} */{rng.choice((2, 3, 4, 6, 8, 12))} * * *"),
        (3, lambda: "0 3 * * *"),
        (4, lambda: "* * * * * */30"),
        (4, lambda: f"*/{rng.choice((5, 10, 15))} * * * * {rng.randrange(60)}"),
        (2, lambda: f"{minute()} {hour()} 1 1 *"),
        (
            9,
            lambda: rng.choice(
                ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@midnight")
            ),
        ),
    ]
    weights = [w for w, _ in makers]
    chosen = rng.choices([m for _, m in makers], weights=weights, k=count)
    return [(make(), TIMEZONES[i % len(TIMEZONES)]) for i, make in enumerate(chosen)]


def aps_crontab(expression: str) -> str | None:
    """The 5-field crontab APScheduler 3 reads the same way as cron, or None (6 fields)."""
    fields = ALIASES.get(expression.lower(), expression).split()
    if len(fields) != 5:
        return None
    fields[4] = ",".join(_dow_names(item) for item in fields[4].split(","))
    return " ".join(fields)


def _dow_names(item: str) -> str:
    days, _, step = item.partition("/")
    days = re.sub(r"\d+", lambda m: _DAY_NAMES[int(m.group())], days)
    return f"{days}/{step}" if step else days


def _medians(
    subjects: dict[str, tuple[Callable[[], object], Callable[[], object] | None]], repeats: int
) -> dict[str, float]:
    """Median seconds of each subject's action; ``before`` (untimed) runs ahead of each.
    The subjects take turns in every round, so a busy moment of the machine is shared."""
    times: dict[str, list[float]] = {key: [] for key in subjects}
    for _ in range(repeats):
        for key, (action, before) in subjects.items():
            if before is not None:
                before()
            start = time.perf_counter()
            action()
            times[key].append(time.perf_counter() - start)
    return {key: p50(values) for key, values in times.items()}


def main(quick: bool) -> list[Table]:
    repeats = 2 if quick else 7
    pairs = expressions()
    zones = {name: ZoneInfo(name) for name in TIMEZONES}
    now = datetime.now(UTC).replace(microsecond=0)
    local_start = {name: now.astimezone(zone) for name, zone in zones.items()}
    clear = cron._parse_expression.cache_clear  # taskops' per-expression parse cache

    def taskops_full(items: list[tuple[str, str]]) -> Callable[[], object]:
        return lambda: [Schedule.parse(e, tz).next_run(start=now) for e, tz in items]

    def croniter_full(items: list[tuple[str, str]]) -> Callable[[], object]:
        return lambda: [croniter(e, local_start[tz]).get_next(datetime) for e, tz in items]

    schedules = [Schedule.parse(e, tz) for e, tz in pairs]
    walkers = [(croniter(e, local_start[tz]), local_start[tz]) for e, tz in pairs]

    def croniter_next_only() -> object:
        out = []
        for walker, start in walkers:
            walker.set_current(start, force=True)
            out.append(walker.get_next(datetime))
        return out

    five = [(e, tz, c) for e, tz in pairs if (c := aps_crontab(e)) is not None]
    subset = [(e, tz) for e, tz, _ in five]

    def parse_all() -> object:
        return [Schedule.parse(e, tz) for e, tz in pairs]

    measured = _medians(
        {
            "taskops_full": (taskops_full(pairs), clear),
            "taskops_parse_cold": (parse_all, clear),
            "taskops_parse_warm": (parse_all, parse_all),
            "taskops_next": (lambda: [s.next_run(start=now) for s in schedules], None),
            "croniter_full": (croniter_full(pairs), None),
            "croniter_next": (croniter_next_only, None),
            "aps_full": (
                lambda: [
                    CronTrigger.from_crontab(c, timezone=zones[tz]).get_next_fire_time(None, now)
                    for _, tz, c in five
                ],
                None,
            ),
            "croniter_subset": (croniter_full(subset), None),
            "taskops_subset": (taskops_full(subset), clear),
        },
        repeats,
    )

    distinct = len({e for e, _ in pairs})
    table = Table(
        title=f"Next fire time of {len(pairs):,} cron expressions in 3 timezones",
        columns=["n", "total ms (median)", "µs per expression", "vs croniter"],
        notes=[
            "Target: none set by the issue; ratios are to croniter called directly. "
            f"Median of {repeats} rounds (subjects take turns); {distinct:,} distinct "
            "expressions (taskops caches the parse of up to 4,096); timezones "
            f"{', '.join(TIMEZONES)} in turn. 'cold': the parse cache cleared before each "
            "round. "
            "APScheduler 3 takes 5 fields only, so it is compared on the 5-field subset.",
        ],
    )

    def add(subject: str, key: str, n: int, reference: str | None) -> None:
        seconds = measured[key]
        table.add(
            subject,
            n=f"{n:,}",
            **{
                "total ms (median)": seconds * 1000,
                "µs per expression": seconds / n * 1e6,
                "vs croniter": ratio(seconds, measured[reference]) if reference else "1.00x",
            },
        )

    n, m = len(pairs), len(five)
    add("taskops parse + next_run (cold)", "taskops_full", n, "croniter_full")
    add("taskops parse only (cold)", "taskops_parse_cold", n, "croniter_full")
    add("taskops parse only (warm cache)", "taskops_parse_warm", n, "croniter_full")
    add("taskops next_run on built schedules", "taskops_next", n, "croniter_next")
    add("croniter construct + get_next", "croniter_full", n, None)
    add("croniter set_current + get_next (built)", "croniter_next", n, "croniter_full")
    add("APScheduler from_crontab + next (5-field)", "aps_full", m, "croniter_subset")
    add("croniter construct + get_next (5-field)", "croniter_subset", m, None)
    add("taskops parse + next_run (5-field, cold)", "taskops_subset", m, "croniter_subset")
    return [table]
