"""The Runspaces screens as widgets, without a browser: a real SQLite site, real child
processes for the detail and Force Close, and the service's state checked after each click."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import ipywidgets.widgets.widget as widget_module
import pytest

import taskops
from taskops.inspect.processes import create_time_of
from taskops.model import MASK, Availability, JobState, RunspaceKind, RunspaceState
from taskops.store import JobStart
from taskops.store.store import RunspaceSample
from taskops.testing import FakeClock, make_site, wait_for
from taskops.ui.runspaces import ForceCloseDialog, RunspaceDetail, RunspaceList, age_text

Start = Callable[..., subprocess.Popen[bytes]]

SECRET = "supersecret-7f3a"
PLAIN = "visible-value-91c2"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start sleeping python children in sessions of their own; every one is killed at
    teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def launch(env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(child)
        return child

    try:
        yield launch
    finally:
        for child in started:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=10)


def open_row(
    ops: taskops.TaskOps,
    *,
    kind: RunspaceKind = RunspaceKind.KERNEL,
    owner: str = "alice",
    pid: int | None = None,
    **fields: Any,
) -> int:
    return ops.store.open_runspace(
        kind=kind,
        owner=owner,
        now=ops.clock.now(),
        pid=pid,
        create_time=create_time_of(pid) if pid is not None else None,
        **fields,
    )


def sample(
    ops: taskops.TaskOps, runspace_id: int, memory: float | None, threads: int | None
) -> None:
    ops.store.record_samples(
        [
            RunspaceSample(
                runspace_id=runspace_id, memory_mb=memory, thread_count=threads, handle_count=7
            )
        ],
        now=ops.clock.now(),
    )


def rows_by_id(screen: RunspaceList) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in screen.table.items}


def classes(screen: RunspaceList, runspace_id: int) -> set[str]:
    return set(rows_by_id(screen)[runspace_id]["rowClass"].split())


def live_widgets() -> int:
    return len(widget_module._instances)


@pytest.fixture
def spaces(ops: taskops.TaskOps, clock: FakeClock) -> dict[str, int]:
    """Rows without processes (the list only reads the store): an engine opened 2 hours
    ago, a busy worker (1 hour), a kernel of bob's (now) and a broken worker."""
    out = {"engine": open_row(ops, kind=RunspaceKind.ENGINE, owner="TaskEngine")}
    clock.advance(hours=1)
    out["worker"] = open_row(
        ops,
        kind=RunspaceKind.WORKER,
        owner="Manual",
        availability=Availability.BUSY,
        purpose="Job_x",
    )
    clock.advance(minutes=59)
    out["broken"] = open_row(ops, kind=RunspaceKind.WORKER, owner="Manual")
    ops.store.close_runspace(out["broken"], state=RunspaceState.BROKEN, now=clock.now())
    clock.advance(minutes=1)
    out["kernel"] = open_row(ops, owner="bob")
    sample(ops, out["engine"], 40.0, 5)
    sample(ops, out["worker"], 150.5, 3)
    return out


# -- the list ------------------------------------------------------------------------------


def test_quick_stats_and_rows_match_the_service(
    ops: taskops.TaskOps, spaces: dict[str, int]
) -> None:
    screen = RunspaceList(ops)
    summary = ops.runspaces.summary()
    assert summary == {"total": 3, "opened": 3, "busy": 1, "broken": 1, "totalMemoryMB": 190.5}
    for key, css in (
        ("total", "total"),
        ("opened", "opened"),
        ("busy", "busy"),
        ("broken", "broken"),
        ("totalMemoryMB", "memory"),
    ):
        assert f">{summary[key]}<" in screen.stat_values[key].value, key
        card = next(c for c in screen.stats.children if f"taskops-stat-{css}" in c._dom_classes)
        assert screen.stat_values[key] in card.children
    # All: the live ones, by id
    assert list(rows_by_id(screen)) == [spaces["engine"], spaces["worker"], spaces["kernel"]]
    worker = rows_by_id(screen)[spaces["worker"]]
    assert worker["state"] == "Opened" and worker["stateColour"] == "success"
    assert (worker["owner"], worker["kind"], worker["availability"]) == (
        "Manual",
        "Background Job",
        "Busy",
    )
    assert worker["ownerTitle"] == "Background Job: Job_x"
    assert worker["created"] == "2026-01-16T15:05:30+00:00"
    assert worker["createdText"] == "2026-01-16 15:05:30"
    assert (worker["age"], worker["ageText"]) == (3600.0, "1 h 00 min")
    assert (worker["threads"], worker["memory"], worker["memoryText"]) == (3, 150.5, "150.5")
    kernel = rows_by_id(screen)[spaces["kernel"]]
    assert (kernel["threads"], kernel["threadsText"], kernel["memoryText"]) == (None, "—", "—")
    assert kernel["live"] is True


def test_filters_by_state_owner_and_age(
    ops: taskops.TaskOps, spaces: dict[str, int], clock: FakeClock
) -> None:
    screen = RunspaceList(ops)
    assert screen.owner_filter.options == (
        ("All", "All"),
        ("bob", "bob"),
        ("Manual", "Manual"),
        ("Task Engine", "TaskEngine"),  # labelled as on the Jobs screen, filtered by name
    )
    screen.state_filter.value = "Broken"
    assert list(rows_by_id(screen)) == [spaces["broken"]]
    broken = rows_by_id(screen)[spaces["broken"]]
    assert broken["state"] == "Broken" and broken["live"] is False
    screen.state_filter.value = "Closed"
    assert list(rows_by_id(screen)) == []
    screen.state_filter.value = "Opened"
    assert len(rows_by_id(screen)) == 3
    screen.state_filter.value = "All"

    screen.owner_filter.value = "Manual"
    assert list(rows_by_id(screen)) == [spaces["worker"]]
    screen.owner_filter.value = "All"

    screen.age_filter.value = 3600
    assert list(rows_by_id(screen)) == [spaces["engine"], spaces["worker"]]
    screen.age_filter.value = 21600
    assert list(rows_by_id(screen)) == []
    clock.advance(hours=22, minutes=30)  # the engine is 24.5 hours old now, the worker 23.5
    screen.refresh()
    assert list(rows_by_id(screen)) == [spaces["engine"], spaces["worker"], spaces["kernel"]]
    screen.age_filter.value = 86400
    assert list(rows_by_id(screen)) == [spaces["engine"]]
    assert "taskops-runspace-old" in classes(screen, spaces["engine"])  # the default: a day
    screen.age_filter.value = 0
    assert "taskops-runspace-old" not in classes(screen, spaces["worker"])


def test_a_process_held_for_a_queued_job_shows_as_opening_and_can_be_chosen(
    ops: taskops.TaskOps, spaces: dict[str, int]
) -> None:
    now = ops.clock.now()
    job_id = ops.store.insert_job(
        name="Task_Tick", owner="TaskEngine", state=JobState.QUEUED, queued_at=now
    )
    start = JobStart(job_id=job_id, name="Task_Tick", task_id=None, app=None, owner="TaskEngine")
    (held,) = ops.store.open_workers([start], now=now)
    screen = RunspaceList(ops)
    assert "Opening" in screen.state_filter.options
    screen.state_filter.value = "Opening"
    assert list(rows_by_id(screen)) == [held]
    row = rows_by_id(screen)[held]
    assert (row["state"], row["stateColour"], row["availability"]) == (
        "Opening",
        "info",
        "Available",
    )
    screen.state_filter.value = "Opened"
    assert held not in rows_by_id(screen)


def test_an_owner_that_went_away_stays_chosen(
    ops: taskops.TaskOps, spaces: dict[str, int], clock: FakeClock
) -> None:
    screen = RunspaceList(ops)
    screen.owner_filter.value = "bob"
    ops.store.close_runspace(spaces["kernel"], state=RunspaceState.CLOSED, now=clock.now())
    clock.advance(hours=25)  # no longer listed even with the closed ones
    screen.refresh()
    assert ("bob", "bob") in screen.owner_filter.options
    assert screen.owner_filter.value == "bob"
    assert rows_by_id(screen) == {}


def test_rows_are_highlighted_as_the_settings_say(
    ops: taskops.TaskOps, spaces: dict[str, int]
) -> None:
    screen = RunspaceList(ops)
    engine, worker, kernel = spaces["engine"], spaces["worker"], spaces["kernel"]
    # the defaults: older than a day (none), over 100 MB (the worker)
    assert classes(screen, worker) == {"taskops-runspace-row", "taskops-runspace-hungry"}
    assert rows_by_id(screen)[worker]["rowStyle"] == "background-color: #ffe0b2"
    assert rows_by_id(screen)[worker]["warning"] == "uses more than 100 MB"
    assert classes(screen, engine) == {"taskops-runspace-row"}
    assert rows_by_id(screen)[engine]["rowStyle"] is None
    assert rows_by_id(screen)[engine]["warning"] is None

    ops.settings.update({"runspaceMemoryWarning": 200, "runspaceAgeWarning": 3600})
    screen.refresh()
    assert classes(screen, worker) == {"taskops-runspace-row"}  # 1 h old is not older
    assert classes(screen, engine) == {"taskops-runspace-row", "taskops-runspace-old"}
    assert rows_by_id(screen)[engine]["rowStyle"] == "background-color: #fff59d"
    assert rows_by_id(screen)[engine]["warning"] == "older than 1 h 00 min"
    assert classes(screen, kernel) == {"taskops-runspace-row"}

    ops.settings.update({"runspaceMemoryWarning": 30, "runspaceAgeWarning": 60})
    screen.refresh()
    assert classes(screen, engine) == {
        "taskops-runspace-row",
        "taskops-runspace-old",
        "taskops-runspace-hungry",
    }
    assert rows_by_id(screen)[engine]["rowStyle"] == "background-color: #ffe0b2"  # orange wins

    screen.state_filter.value = "Broken"
    broken = rows_by_id(screen)[spaces["broken"]]
    # red, and not "old": the age of an ended runspace is no warning
    assert set(broken["rowClass"].split()) == {"taskops-runspace-row", "taskops-runspace-broken"}
    assert broken["rowStyle"] == "background-color: #ffcdd2"


def test_refresh_updates_the_same_widgets(
    ops: taskops.TaskOps, spaces: dict[str, int], clock: FakeClock
) -> None:
    screen = RunspaceList(ops)
    table, model_id = screen.table, screen.table.model_id
    screen.refresh()
    before = live_widgets()
    new = open_row(ops, owner="carol")
    sample(ops, spaces["kernel"], 12.25, 2)
    screen.ticker.interval = 0  # no tick is dropped as too soon
    screen.ticker.tick()
    assert screen.table is table and table.model_id == model_id
    assert live_widgets() == before
    assert new in rows_by_id(screen)
    assert rows_by_id(screen)[spaces["kernel"]]["memoryText"] == "12.2"
    assert ("carol", "carol") in screen.owner_filter.options
    assert ">4<" in screen.stat_values["total"].value
    # a new refresh interval applies at the next refresh
    ops.settings.update({"autoRefreshInterval": 2})
    screen.refresh_button.click()
    assert screen.ticker.interval == 2
    assert live_widgets() == before


def test_an_unknown_runspace_is_an_error_in_the_alerts(
    ops: taskops.TaskOps, spaces: dict[str, int]
) -> None:
    screen = RunspaceList(ops)
    screen.table.vue_inspect(999)
    assert screen.alerts.messages == [("error", "no runspace 999")]
    assert screen.list_view in screen.children and not screen.showing_detail


# -- the detail ----------------------------------------------------------------------------


def widget_state_text() -> str:
    return json.dumps([w.get_state() for w in list(widget_module._instances.values())], default=str)


def test_detail_shows_the_runspace_its_samples_and_its_process(
    ops: taskops.TaskOps, start: Start, clock: FakeClock, tmp_path: Path
) -> None:
    child = start(env={"API_TOKEN": SECRET, "PLAIN_SETTING": PLAIN})
    job_id = ops.store.insert_job(
        name="Task_MetricsCollection_20260116_140530",
        owner="TaskEngine",
        state=JobState.QUEUED,
        queued_at=clock.now(),
        task_id="WebHostMetrics.MetricsCollection",
        app="WebHostMetrics",
    )
    row = open_row(
        ops,
        kind=RunspaceKind.WORKER,
        owner="TaskEngine",
        pid=child.pid,
        job_id=job_id,
        task_id="WebHostMetrics.MetricsCollection",
        app="WebHostMetrics",
        purpose="Metrics collection background job",
        availability=Availability.BUSY,
    )
    for memory, threads in ((10.5, 2), (None, None), (12.0, 3)):
        sample(ops, row, memory, threads)
        clock.advance(2)
    clock.advance(hours=26)

    screen = RunspaceList(ops)
    screen.table.vue_inspect(row)
    detail = screen.detail
    assert screen.showing_detail and screen.list_view not in screen.children
    assert f"Runspace {row}" in detail.heading.value and "Opened" in detail.heading.value
    info = detail.information.value
    for text in ("Busy", "worker (Background Job)", str(child.pid), "2026-01-16 14:05:30"):
        assert text in info, text
    assert "1 day 2 hours" in info
    resources = detail.resources.value
    assert ">3<" in resources and ">12.0<" in resources and ">7<" in resources
    owner = detail.owner.value
    for text in (
        "Task Engine",
        f"{job_id} Task_MetricsCollection_20260116_140530 (Queued)",
        "WebHostMetrics.MetricsCollection",
        "Metrics collection background job",
    ):
        assert text in owner, text

    # the chart: memory with its gap, threads on the second axis
    assert detail.figure is not None and detail.figure in detail.chart.children
    memory, threads = detail.figure.data
    assert list(memory.y) == [10.5, None, 12.0]
    assert list(threads.y) == [2, None, 3]
    assert threads.yaxis == "y2"
    assert memory.x[0] == "2026-01-16 14:05:30"
    drawn = detail.figure.data[0]
    screen.ticker.interval = 0
    screen.ticker.tick()  # no new sample: not drawn again
    assert detail.figure.data[0] is drawn
    sample(ops, row, 14.0, 4)
    screen.ticker.tick()
    assert list(detail.figure.data[0].y) == [10.5, None, 12.0, 14.0]
    assert ">14.0<" in detail.resources.value

    # the inspection: names of variables, never their values
    inspection = detail.inspection.value
    assert "API_TOKEN" in inspection and "PLAIN_SETTING" in inspection
    assert str(tmp_path) in inspection
    assert "time.sleep(60)" in inspection
    assert "libc" in inspection  # a shared library the child has mapped
    assert detail.diagnostics is not None and detail.diagnostics["pid"] == child.pid
    text = widget_state_text()
    assert SECRET not in text and PLAIN not in text

    filename, data = detail.export_button.prepare()
    assert filename == f"runspace-{row}-diagnostics.json"
    exported = json.loads(data)
    assert exported["id"] == row and exported["pid"] == child.pid
    assert exported["environment"]["API_TOKEN"] == MASK
    assert exported["environment"]["PLAIN_SETTING"] == PLAIN  # not a secret: exported
    assert any("libc" in Path(path).name for path in exported["modules"])
    assert SECRET.encode() not in data
    assert screen.alerts.messages == []

    detail.back_button.click()
    assert screen.list_view in screen.children and not screen.showing_detail


def test_detail_of_a_process_that_cannot_be_read_says_why(
    ops: taskops.TaskOps, spaces: dict[str, int]
) -> None:
    screen = RunspaceList(ops)
    screen.open_runspace(spaces["kernel"])  # a row without a process
    detail = screen.detail
    assert "no process yet" in detail.inspection.value
    assert "taskops-runspace-diagnostics-note" in detail.inspection.value
    assert detail.diagnostics is None
    assert "No samples yet" in [a.text for a in detail.figure.layout.annotations]
    _filename, data = detail.export_button.prepare()
    exported = json.loads(data)
    assert exported["id"] == spaces["kernel"]
    assert "no process yet" in exported["diagnosticsError"]
    remote = open_row(ops, host="other-host.example")
    detail.load(remote)
    assert "remote (on host other-host.example)" in detail.inspection.value
    assert "Remote" in detail.information.value
    assert screen.alerts.messages == []


def test_detail_chart_shows_the_samples_in_the_sites_timezone(
    tmp_path: Path, clock: FakeClock
) -> None:
    site = make_site(tmp_path / "berlin", {}, timezone="Europe/Berlin")
    with taskops.open_site(site, user="alice", clock=clock) as berlin:
        row = open_row(berlin)
        sample(berlin, row, 20.0, 4)
        detail = RunspaceDetail(berlin, row)
        [memory, threads] = detail.figure.data
        # 14:05:30 UTC in January is 15:05:30 in Berlin: the time the site reads
        assert list(memory.x) == ["2026-01-16 15:05:30"]
        assert (list(memory.y), list(threads.y)) == ([20.0], [4])
        assert detail.figure.layout.annotations == ()


def test_ages_read_in_days_and_hours_from_a_day_on() -> None:
    assert age_text(59) == "59.0 s"
    assert age_text(86_400 + 3599) == "1 day"
    assert age_text(86_400 + 3600) == "1 day 1 hour"
    assert age_text(15 * 86_400 + 3 * 3600 + 59) == "15 days 3 hours"


# -- force close ---------------------------------------------------------------------------


def test_force_close_asks_for_the_id_then_ends_the_process(
    ops: taskops.TaskOps, start: Start, clock: FakeClock
) -> None:
    child = start()
    row = open_row(ops, owner="Task_MetricsCollection", pid=child.pid)
    clock.advance(days=15, hours=3)
    screen = RunspaceList(ops)
    screen.table.vue_force_close(row)
    dialog = screen.force_closer
    assert dialog.shown and dialog in screen._dialogs.children
    warning = dialog.warning_text.value
    for line in (
        "WARNING: This action is DANGEROUS",
        "Runspace:",
        f"<b>{row}</b>",
        "Owner:",
        "Task_MetricsCollection",
        "Age:",
        "15 days 3 hours",
        "Force-closing a runspace may:",
        "• Cause data loss",
        "• Leave orphaned resources",
        "• Crash associated jobs",
        "• Corrupt in-progress operations",
        "Only use this if the runspace is stuck and you've verified it's safe to close.",
    ):
        assert line in warning, line
    assert dialog.id_input.continuous_update
    assert dialog.confirm_button.disabled
    for wrong in ("", str(row + 1), f"{row}0", "yes"):
        dialog.id_input.value = wrong
        assert dialog.confirm_button.disabled, wrong
        dialog.confirm_button.click()  # a click on a disabled button does nothing
    assert child.poll() is None
    dialog.id_input.value = str(row)
    assert not dialog.confirm_button.disabled

    dialog.confirm_button.click()

    wait_for(lambda: child.poll() is not None, what="the runspace's process to end")
    assert not dialog.shown
    assert ops.runspaces.get(row).state is RunspaceState.CLOSED
    assert screen.alerts.messages == [("success", f"Force-closed runspace {row}: it is Closed")]
    assert row not in rows_by_id(screen)  # All shows the live ones
    screen.state_filter.value = "Closed"
    assert rows_by_id(screen)[row]["state"] == "Closed"
    assert rows_by_id(screen)[row]["live"] is False


def test_force_close_from_the_detail(ops: taskops.TaskOps, start: Start) -> None:
    child = start()
    row = open_row(ops, pid=child.pid)
    screen = RunspaceList(ops)
    screen.open_runspace(row)
    detail = screen.detail
    assert not detail.force_close_button.disabled
    detail.force_close_button.click()
    dialog = screen.force_closer
    assert dialog.shown and dialog.runspace is not None and dialog.runspace.id == row
    dialog.cancel_button.click()
    assert not dialog.shown and child.poll() is None
    detail.force_close_button.click()
    dialog.id_input.value = f" {row} "
    dialog.confirm_button.click()
    wait_for(lambda: child.poll() is not None, what="the runspace's process to end")
    assert "Closed" in detail.heading.value
    assert detail.force_close_button.disabled
    assert "changed or gone" in detail.inspection.value  # read again: nothing to read


def test_force_close_of_the_engine_is_refused(ops: taskops.TaskOps) -> None:
    row = open_row(ops, kind=RunspaceKind.ENGINE, owner="TaskEngine", pid=os.getpid())
    screen = RunspaceList(ops)
    screen.table.vue_force_close(row)
    dialog = screen.force_closer
    dialog.id_input.value = str(row)
    dialog.confirm_button.click()
    [(kind, message)] = screen.alerts.messages
    assert kind == "error" and "taskops engine" in message
    assert dialog.shown and "taskops engine" in dialog.problem.value
    assert not dialog.confirm_button.disabled  # the id is still typed: it may be tried again
    assert dialog.confirm_button.description == "Force Close"
    assert ops.runspaces.get(row).state is RunspaceState.OPENED


def test_a_detail_and_a_dialog_on_their_own(ops: taskops.TaskOps, start: Start) -> None:
    child = start()
    row = open_row(ops, pid=child.pid)
    detail = RunspaceDetail(ops, row)
    dialog = detail.force_closer
    assert isinstance(dialog, ForceCloseDialog) and dialog in detail.children
    assert dialog.css_class == "taskops-force-close"
    detail.refresh_button.click()
    assert detail.diagnostics is not None
    detail.force_close_button.click()
    dialog.id_input.value = str(row)
    dialog.confirm_button.click()
    wait_for(lambda: child.poll() is not None, what="the runspace's process to end")
    assert "Closed" in detail.heading.value
