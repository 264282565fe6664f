"""The scheduler's heap and misfire policy, driven by a fake clock (DST days included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from taskops.cron import Schedule
from taskops.engine.scheduler import ScheduledTask, Scheduler
from taskops.model import MisfirePolicy
from taskops.testing import FakeClock

BERLIN = "Europe/Berlin"


def task(
    task_id: str, expression: str, tz: str = "UTC", misfire: MisfirePolicy = MisfirePolicy.SKIP
) -> ScheduledTask:
    return ScheduledTask(id=task_id, schedule=Schedule.parse(expression, tz), misfire=misfire)


def run_until(scheduler: Scheduler, clock: FakeClock, end: datetime) -> list[tuple[str, datetime]]:
    """Advance the fake clock from wake-up to wake-up, as the engine does, collecting fires."""
    fired: list[tuple[str, datetime]] = []
    while True:
        wake = scheduler.next_wakeup()
        if wake is None or wake > end:
            return fired
        clock.set(max(wake, clock.now()))
        fires, missed = scheduler.due(clock.now())
        assert missed == []
        fired.extend((f.task_id, f.slot.astimezone(UTC)) for f in fires)


def test_fires_each_slot_once_in_time_order() -> None:
    clock = FakeClock(datetime(2026, 1, 16, 14, 0, 0, tzinfo=UTC))
    scheduler = Scheduler()
    scheduler.set_tasks(
        [task("a", "*/15 * * * *"), task("b", "0 * * * *"), task("c", "* * * * * */20")],
        now=clock.now(),
    )
    fired = run_until(scheduler, clock, datetime(2026, 1, 16, 15, 0, 0, tzinfo=UTC))
    a = [s for t, s in fired if t == "a"]
    b = [s for t, s in fired if t == "b"]
    c = [s for t, s in fired if t == "c"]
    assert [s.minute for s in a] == [15, 30, 45, 0]
    assert b == [datetime(2026, 1, 16, 15, 0, tzinfo=UTC)]
    assert len(c) == 3 * 60 and len(set(c)) == len(c)
    assert [s for _, s in fired] == sorted(s for _, s in fired)


def test_a_due_slot_fires_only_once_however_often_asked() -> None:
    clock = FakeClock(datetime(2026, 1, 16, 14, 0, 0, tzinfo=UTC))
    scheduler = Scheduler()
    scheduler.set_tasks([task("a", "* * * * *")], now=clock.now())
    clock.advance(60)
    assert [f.slot for f in scheduler.due(clock.now())[0]] == [clock.now()]
    assert scheduler.due(clock.now()) == ([], [])
    assert scheduler.next_wakeup() == clock.now() + timedelta(minutes=1)


def test_spring_forward_skipped_wall_time_runs_once_after_the_jump() -> None:
    # 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST
    clock = FakeClock(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    scheduler = Scheduler()
    scheduler.set_tasks([task("nightly", "30 2 * * *", BERLIN)], now=clock.now())
    fired = run_until(scheduler, clock, datetime(2026, 3, 31, 12, 0, tzinfo=UTC))
    local = [s.astimezone(Schedule.parse("* * * * *", BERLIN).zone) for _, s in fired]
    assert [(d.day, d.hour, d.minute) for d in local] == [(29, 3, 0), (30, 2, 30), (31, 2, 30)]


def test_fall_back_repeated_wall_time_runs_once_but_hourly_follows_absolute_time() -> None:
    # 2026-10-25: Berlin repeats 02:00-03:00 (CEST then CET)
    clock = FakeClock(datetime(2026, 10, 24, 23, 0, tzinfo=UTC))
    scheduler = Scheduler()
    scheduler.set_tasks(
        [task("nightly", "30 2 * * *", BERLIN), task("hourly", "0 * * * *", BERLIN)],
        now=clock.now(),
    )
    fired = run_until(scheduler, clock, datetime(2026, 10, 25, 4, 0, tzinfo=UTC))
    nightly = [s for t, s in fired if t == "nightly"]
    hourly = [s for t, s in fired if t == "hourly"]
    assert nightly == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # 02:30 CEST, once
    # every absolute hour, the repeated 02:00 included: 00..04 UTC
    assert hourly == [datetime(2026, 10, 25, h, 0, tzinfo=UTC) for h in range(0, 5)]


def test_misfire_skip_drops_missed_slots_and_resumes_after_now() -> None:
    start = datetime(2026, 1, 16, 14, 0, tzinfo=UTC)
    scheduler = Scheduler(misfire_grace=30)
    scheduler.set_tasks([task("a", "*/5 * * * *")], now=start + timedelta(hours=2), since=start)
    fires, missed = scheduler.due(start + timedelta(hours=2))
    assert fires == []
    assert [(m.task_id, m.first) for m in missed] == [("a", start + timedelta(minutes=5))]
    assert missed[0].resumes == start + timedelta(hours=2, minutes=5)
    assert scheduler.next_wakeup() == start + timedelta(hours=2, minutes=5)


def test_misfire_once_runs_one_of_the_missed_slots() -> None:
    start = datetime(2026, 1, 16, 14, 0, tzinfo=UTC)
    now = start + timedelta(hours=2)
    scheduler = Scheduler(misfire_grace=30)
    scheduler.set_tasks(
        [task("a", "*/5 * * * *", misfire=MisfirePolicy.ONCE)], now=now, since=start
    )
    fires, missed = scheduler.due(now)
    assert [(f.task_id, f.slot, f.misfired) for f in fires] == [
        ("a", start + timedelta(minutes=5), True)
    ]
    assert len(missed) == 1 and missed[0].resumes == now + timedelta(minutes=5)
    assert scheduler.due(now) == ([], [])


def test_a_slot_late_within_the_grace_still_runs_normally() -> None:
    start = datetime(2026, 1, 16, 14, 0, tzinfo=UTC)
    scheduler = Scheduler(misfire_grace=30)
    scheduler.set_tasks([task("a", "* * * * *")], now=start)
    fires, missed = scheduler.due(start + timedelta(minutes=1, seconds=20))
    assert [(f.slot, f.misfired) for f in fires] == [(start + timedelta(minutes=1), False)]
    assert missed == []


def test_a_clock_jump_forward_is_a_misfire_not_a_burst() -> None:
    clock = FakeClock(datetime(2026, 1, 16, 14, 0, tzinfo=UTC))
    scheduler = Scheduler(misfire_grace=30)
    scheduler.set_tasks([task("a", "* * * * * *")], now=clock.now())
    clock.advance(hours=3)  # suspend, or the clock set forward
    fires, missed = scheduler.due(clock.now())
    assert fires == [] and len(missed) == 1
    assert scheduler.next_wakeup() == clock.now() + timedelta(seconds=1)


def test_changing_a_schedule_reschedules_only_that_task() -> None:
    now = datetime(2026, 1, 16, 14, 0, 10, tzinfo=UTC)
    scheduler = Scheduler()
    a, b = task("a", "0 * * * *"), task("b", "30 * * * *")
    scheduler.set_tasks([a, b], now=now)
    assert scheduler.next_slot("a") == datetime(2026, 1, 16, 15, 0, tzinfo=UTC)
    scheduler.set_tasks([task("a", "*/10 * * * *"), b], now=now)
    assert scheduler.next_slot("a") == datetime(2026, 1, 16, 14, 10, tzinfo=UTC)
    assert scheduler.next_slot("b") == datetime(2026, 1, 16, 14, 30, tzinfo=UTC)
    scheduler.set_tasks([b], now=now)  # a disabled or deleted
    assert len(scheduler) == 1
    assert scheduler.next_wakeup() == datetime(2026, 1, 16, 14, 30, tzinfo=UTC)
    assert scheduler.due(datetime(2026, 1, 16, 14, 20, tzinfo=UTC)) == ([], [])


def test_tasks_sharing_a_schedule_fire_together_and_are_counted_per_slot() -> None:
    """Tasks with one expression and timezone share their next slot (computed once per
    slot, not per task); ``pending_at`` says how many are due at a slot, which is how far
    ahead the engine prepares it. Another zone with the same expression keeps its own
    slots."""
    clock = FakeClock(datetime(2026, 3, 28, 23, 59, 0, tzinfo=UTC))  # DST in Berlin next
    scheduler = Scheduler()
    shared = [task(f"t{n}", "30 2 * * *") for n in range(50)]
    berlin = [task(f"b{n}", "30 2 * * *", BERLIN) for n in range(3)]
    scheduler.set_tasks([*shared, *berlin], now=clock.now())
    utc_slot = datetime(2026, 3, 29, 2, 30, tzinfo=UTC)
    berlin_slot = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:30 skipped: 03:00 CEST
    assert scheduler.pending_at(utc_slot) == 50
    assert scheduler.pending_at(berlin_slot) == 3
    assert scheduler.pending_at(utc_slot + timedelta(days=1)) == 0
    fired = run_until(scheduler, clock, datetime(2026, 3, 30, 3, 0, tzinfo=UTC))
    assert sorted(s for t, s in fired if t == "t7") == [utc_slot, utc_slot + timedelta(days=1)]
    assert sorted(s for t, s in fired if t == "b1") == [
        berlin_slot,
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST
    ]
    assert len(fired) == 2 * 53
    assert scheduler.pending_at(utc_slot) == 0  # fired: no longer pending
    assert scheduler.pending_at(utc_slot + timedelta(days=2)) == 50


def test_a_rescheduled_task_is_counted_at_its_new_slot() -> None:
    clock = FakeClock(datetime(2026, 1, 16, 14, 0, 0, tzinfo=UTC))
    scheduler = Scheduler()
    scheduler.set_tasks([task("a", "0 15 * * *"), task("b", "0 15 * * *")], now=clock.now())
    at_three = datetime(2026, 1, 16, 15, 0, tzinfo=UTC)
    assert scheduler.pending_at(at_three) == 2
    scheduler.set_tasks([task("a", "0 15 * * *"), task("b", "0 16 * * *")], now=clock.now())
    assert scheduler.pending_at(at_three + timedelta(hours=1)) == 1
    clock.set(at_three)
    assert [f.task_id for f in scheduler.due(clock.now())[0]] == ["a"]
    assert scheduler.pending_at(at_three) == 0  # b's old item gone with a's
