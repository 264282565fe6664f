"""The runspace sampler on real processes and a real SQLite store."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import psutil
import pytest

from taskops.inspect.processes import create_time_of
from taskops.inspect.sampler import DiscoveredProcess, RunspaceSampler
from taskops.model import Availability, RunspaceKind, RunspaceState
from taskops.store import Store
from taskops.testing import FakeClock, wait_for

MB = 1024 * 1024

Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.for_sqlite(tmp_path / "data" / "taskops.db")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def open_row(
    store: Store,
    clock: FakeClock,
    pid: int,
    *,
    kind: RunspaceKind = RunspaceKind.KERNEL,
    create_time: float | None = None,
    owner: str = "alice",
) -> int:
    return store.open_runspace(
        kind=kind,
        owner=owner,
        now=clock.now(),
        pid=pid,
        create_time=create_time if create_time is not None else create_time_of(pid),
        purpose="test",
    )


def test_samples_are_plausible_and_history_grows(
    store: Store, clock: FakeClock, spawn: Spawn
) -> None:
    child = spawn(mb=50)
    child_row = open_row(store, clock, child.pid, kind=RunspaceKind.WORKER)
    me = os.getpid()
    engine_row = open_row(store, clock, me, kind=RunspaceKind.ENGINE, owner="TaskEngine")
    sampler = RunspaceSampler(store, clock=clock)

    for tick in range(1, 4):
        samples = {s.runspace_id: s for s in sampler.sample_once()}
        clock.advance(2)
        assert set(samples) == {child_row, engine_row}
        assert len(store.runspace_samples(child_row)) == tick
        assert len(store.runspace_samples(engine_row)) == tick

    row = store.runspace_row(child_row)
    assert row.memory_mb is not None and 50 <= row.memory_mb <= 150
    assert row.thread_count is not None and row.thread_count >= 1
    # stdin, stdout, stderr at least
    assert row.handle_count is not None and row.handle_count >= 3
    assert row.sampled_at is not None
    assert row.state == RunspaceState.OPENED.value
    history = store.runspace_samples(child_row)
    assert [t for t, _, _ in history] == sorted(t for t, _, _ in history)
    assert all(m is not None and 50 <= m <= 150 for _, m, _ in history)
    ours = store.runspace_row(engine_row)
    assert ours.state == RunspaceState.OPENED.value
    assert ours.thread_count is not None and ours.thread_count >= 1


def test_unreadable_values_are_unknown_not_zero(
    store: Store, clock: FakeClock, spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = spawn()
    row_id = open_row(store, clock, child.pid)

    def denied(self: psutil.Process) -> int:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "num_fds", denied)
    [sample] = RunspaceSampler(store, clock=clock).sample_once()
    assert sample.runspace_id == row_id
    assert sample.handle_count is None
    assert sample.memory_mb is not None and sample.memory_mb > 0
    assert store.runspace_row(row_id).handle_count is None


def test_reused_pid_is_told_apart_by_create_time(
    store: Store, clock: FakeClock, spawn: Spawn
) -> None:
    child = spawn()
    real_start = create_time_of(child.pid)
    assert real_start is not None
    # rows that claim this pid for a process that started long before: the pid was reused
    kernel = open_row(store, clock, child.pid, create_time=real_start - 100)
    worker = open_row(
        store, clock, child.pid, create_time=real_start - 200, kind=RunspaceKind.WORKER
    )
    engine = open_row(
        store, clock, child.pid, create_time=real_start - 300, kind=RunspaceKind.ENGINE
    )
    real = open_row(store, clock, child.pid)

    samples = RunspaceSampler(store, clock=clock).sample_once()

    assert [s.runspace_id for s in samples] == [real]
    assert store.runspace_row(kernel).state == RunspaceState.BROKEN.value
    assert store.runspace_row(engine).state == RunspaceState.BROKEN.value
    # a worker's end is recorded by its engine (with the exit code); it is only not read
    left = store.runspace_row(worker)
    assert left.state == RunspaceState.OPENED.value
    assert left.sampled_at is None and store.runspace_samples(worker) == []
    assert store.runspace_row(real).state == RunspaceState.OPENED.value


def test_gone_process_breaks_a_kernel_and_leaves_a_worker(
    store: Store, clock: FakeClock, spawn: Spawn
) -> None:
    kernel_child, worker_child = spawn(), spawn()
    kernel = open_row(store, clock, kernel_child.pid)
    worker = open_row(store, clock, worker_child.pid, kind=RunspaceKind.WORKER)
    sampler = RunspaceSampler(store, clock=clock)
    assert len(sampler.sample_once()) == 2

    for child in (kernel_child, worker_child):
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    clock.advance(2)
    assert sampler.sample_once() == []

    broken = store.runspace_row(kernel)
    assert broken.state == RunspaceState.BROKEN.value
    assert broken.closed_at == clock.now()
    assert store.runspace_row(worker).state == RunspaceState.OPENED.value
    assert len(store.runspace_samples(worker)) == 1


class SleepSource:
    """A fake source reporting real processes as kernels, or failing when told."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.fail = False

    def discover(self) -> Iterable[DiscoveredProcess]:
        if self.fail:
            raise RuntimeError("kernel manager unreachable")
        return [
            DiscoveredProcess(
                pid=pid,
                kind=RunspaceKind.KERNEL,
                owner="alice",
                purpose="notebook analysis.ipynb",
                app="WebHostMetrics",
                availability=Availability.BUSY,
            )
            for pid in self.pids
        ]


def test_source_rows_open_and_close(
    store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        source = SleepSource()
        source.pids = [sleeper.pid]
        sampler = RunspaceSampler(store, clock=clock, sources=[source])

        [sample] = sampler.sample_once()
        [row] = store.runspace_rows(live_only=True)
        assert sample.runspace_id == row.id
        assert (row.kind, row.pid, row.owner) == ("kernel", sleeper.pid, "alice")
        assert (row.purpose, row.app) == ("notebook analysis.ipynb", "WebHostMetrics")
        assert row.create_time == pytest.approx(create_time_of(sleeper.pid))
        assert row.availability == Availability.BUSY.value
        assert row.memory_mb is not None and row.memory_mb > 0

        clock.advance(2)
        sampler.sample_once()  # the same process again: the same row
        assert [r.id for r in store.runspace_rows()] == [row.id]
        assert len(store.runspace_samples(row.id)) == 2

        source.fail = True  # a failing source changes nothing and stops nothing
        with caplog.at_level(logging.ERROR, logger="taskops.inspect"):
            assert len(sampler.sample_once()) == 1
        assert "kernel manager unreachable" in caplog.text
        assert store.runspace_row(row.id).state == RunspaceState.OPENED.value

        source.fail = False
        source.pids = []  # shut down by its manager: closed normally, not Broken
        assert sampler.sample_once() == []
        closed = store.runspace_row(row.id)
        assert closed.state == RunspaceState.CLOSED.value
        assert closed.availability == Availability.NONE.value
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)


def test_old_samples_and_old_closed_runspaces_are_pruned(
    store: Store, clock: FakeClock, spawn: Spawn
) -> None:
    child = spawn()
    live = open_row(store, clock, child.pid)
    old = store.open_runspace(kind=RunspaceKind.WORKER, owner="Manual", now=clock.now())
    store.close_runspace(old, state=RunspaceState.CLOSED, now=clock.now())
    sampler = RunspaceSampler(store, clock=clock, history_seconds=600)
    sampler.sample_once()

    clock.advance(30)  # not due yet: nothing pruned
    sampler.sample_once()
    assert len(store.runspace_samples(live)) == 2

    clock.advance(hours=25)
    sampler.sample_once()
    assert len(store.runspace_samples(live)) == 1
    assert [r.id for r in store.runspace_rows()] == [live]


def test_thread_starts_samples_and_stops_cleanly(
    store: Store, spawn: Spawn, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = spawn()
    row = store.open_runspace(
        kind=RunspaceKind.KERNEL,
        owner="alice",
        now=FakeClock().now(),
        pid=child.pid,
        create_time=create_time_of(child.pid),
    )
    sampler = RunspaceSampler(store, interval=0.05)
    record = store.record_samples
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        record(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "record_samples", flaky)
    with caplog.at_level(logging.ERROR, logger="taskops.inspect"):
        sampler.start()
        try:
            assert sampler.running
            with pytest.raises(RuntimeError, match="running already"):
                sampler.start()
            # a failed tick is logged and the thread goes on sampling
            wait_for(lambda: len(store.runspace_samples(row)) >= 3, what="three samples")
        finally:
            sampler.stop()
    assert not sampler.running
    assert "disk full" in caplog.text
    assert not any(t.name == "taskops-runspace-sampler" for t in threading.enumerate())
    count = len(store.runspace_samples(row))
    sampler.sample_once()  # still usable by hand after stop
    assert len(store.runspace_samples(row)) == count + 1
    sampler.stop()  # a second stop does nothing


def test_interval_and_history_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="interval"):
        RunspaceSampler(store, interval=0)
    with pytest.raises(ValueError, match="history_seconds"):
        RunspaceSampler(store, history_seconds=-1)


def test_closed_rows_are_not_sampled(store: Store, clock: FakeClock, spawn: Spawn) -> None:
    child = spawn()
    row = open_row(store, clock, child.pid)
    store.close_runspace(row, state=RunspaceState.CLOSED, now=clock.now())
    assert RunspaceSampler(store, clock=clock).sample_once() == []
    assert store.runspace_row(row).state == RunspaceState.CLOSED.value
    assert store.runspace_samples(row) == []


@pytest.mark.parametrize("interval", [1.0, 2.0, 5.0])
def test_ticks_of_a_second_or_more_fall_half_way_between_whole_seconds(
    store: Store, interval: float
) -> None:
    sampler = RunspaceSampler(store, interval=interval)
    before = time.time()
    wait = sampler._until_next_tick()
    after = time.time()
    assert interval - 0.5 <= wait <= interval + 1.0
    # the tick lands on x.5 s (slots fall on whole seconds)
    assert min(abs((before + wait) % 1.0 - 0.5), abs((after + wait) % 1.0 - 0.5)) < 0.01


def test_ticks_under_a_second_keep_their_interval(store: Store) -> None:
    assert RunspaceSampler(store, interval=0.2)._until_next_tick() == 0.2
