"""The Jobs screens as widgets, without a browser: a real site, a real engine in this
process running real job processes, and the widgets clicked as a user would."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import ipywidgets.widgets.widget as widget_module
import pytest

import taskops
from taskops.model import JobState
from taskops.testing import make_site, wait_for
from taskops.ui import Dashboard
from taskops.ui.jobs import LIVE_SECONDS, MAX_SHOWN, JobDetail, JobList

TALKER = """\
import time
from pathlib import Path


def run(ctx):
    stop = Path(ctx.params["STOP_FILE"])
    for step in range(1, 10_000):
        print(f"line {step}", flush=True)
        ctx.progress(min(step / 100, 1.0), f"step {step}")
        if stop.exists():
            return
        time.sleep(0.05)
"""

FAILER = """\
import sys


def run(ctx):
    print("about to fail", flush=True)
    print("details on stderr", file=sys.stderr, flush=True)
    raise RuntimeError("the database is gone")
"""

BIG = """\
def run(ctx):
    line = "x" * 99 + "\\n"
    for _ in range(int(ctx.params["LINES"])):
        print(line, end="")
    print("the end")
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    stop_file = tmp_path / "stop-talking"
    root = make_site(
        tmp_path / "site",
        {
            "global": [
                {
                    "name": "Talker",
                    "schedule": "0 3 * * *",
                    "scriptPath": "tasks/talker.py",
                    "parameters": {"STOP_FILE": str(stop_file)},
                    "environment": {"API_TOKEN": "s3cr3t-value"},
                },
                {"name": "Failer", "schedule": "0 4 * * *", "scriptPath": "tasks/failer.py"},
                {
                    "name": "Fragile",
                    "schedule": "0 4 * * *",
                    "scriptPath": "tasks/failer.py",
                    "termination": {"maxFailures": 1},
                },
                {
                    "name": "Big",
                    "schedule": "0 5 * * *",
                    "scriptPath": "tasks/big.py",
                    "parameters": {"LINES": 4000},
                },
            ]
        },
        timezone="UTC",
        scripts=False,
    )
    (root / "tasks").mkdir(exist_ok=True)
    (root / "tasks" / "talker.py").write_text(TALKER)
    (root / "tasks" / "failer.py").write_text(FAILER)
    (root / "tasks" / "big.py").write_text(BIG)
    return root


@pytest.fixture
def ops(site: Path) -> Iterator[taskops.TaskOps]:
    with taskops.open_site(site, user="alice") as opened:
        opened.engine.start(sampler=None, poll_interval=0.05, stop_grace=1.0)
        yield opened
        opened.engine.stop(timeout=10)


def finished(ops: taskops.TaskOps, job_id: int, timeout: float = 30) -> taskops.Job:
    return wait_for(
        lambda: (job := ops.jobs.get(job_id)).state.finished and job,
        timeout=timeout,
        what=f"job {job_id} to end",
    )


def row(screen: JobList, job_id: int) -> dict[str, object]:
    return next(r for r in screen.table.items if r["id"] == job_id)


# -- the list ------------------------------------------------------------------------------


def test_list_shows_jobs_with_stats_and_refreshes_the_same_widgets(
    ops: taskops.TaskOps, tmp_path: Path
) -> None:
    failed = finished(ops, ops.tasks.run("global.Failer").id)
    talker = ops.tasks.run("global.Talker")
    wait_for(lambda: ops.jobs.get(talker.id).progress, what="the talker to report progress")
    screen = JobList(ops)
    assert screen.stats.values["running"].value.endswith(">1</span>")
    assert screen.stats.values["failedLastHour"].value.endswith(">1</span>")
    assert screen.table.total == 2
    running = row(screen, talker.id)
    assert running["state"] == "Running" and running["live"] is True
    assert running["owner"] == "Manual"  # Run Now
    assert isinstance(running["progress"], int) and 0 <= running["progress"] <= 100
    assert row(screen, failed.id)["state"] == "Failed"
    assert row(screen, failed.id)["live"] is False
    # a running job makes the screen live: it refreshes every LIVE_SECONDS at most
    assert screen.ticker.interval == min(LIVE_SECONDS, ops.settings.get()["autoRefreshInterval"])

    table_id, before = screen.table.model_id, len(widget_module._instances)
    first_elapsed = running["elapsed"]
    wait_for(
        lambda: (
            (screen.ticker.tick() or True) and row(screen, talker.id)["elapsed"] != first_elapsed
        ),
        timeout=15,
        what="the elapsed time to move on",
    )
    assert screen.table.model_id == table_id
    assert len(widget_module._instances) == before  # values changed, no widget was built

    (tmp_path / "stop-talking").touch()
    finished(ops, talker.id)
    screen.refresh()
    assert row(screen, talker.id)["state"] == "Completed"
    assert screen.ticker.interval == ops.settings.get()["autoRefreshInterval"]


def test_filters_by_state_owner_and_name(ops: taskops.TaskOps) -> None:
    failed = finished(ops, ops.tasks.run("global.Failer").id)
    init = ops.jobs.start([sys.executable, "-c", "print('hi')"], owner="AppInit", name="adhoc")
    manual = finished(ops, init.id)
    screen = JobList(ops)
    assert {r["id"] for r in screen.table.items} == {failed.id, manual.id}
    screen.state_filter.value = "Failed"
    assert [r["id"] for r in screen.table.items] == [failed.id]
    screen.state_filter.value = "All"
    screen.owner_filter.value = "AppInit"
    assert [r["id"] for r in screen.table.items] == [manual.id]
    assert screen.table.items[0]["owner"] == "App Init"
    screen.owner_filter.value = "Manual"  # Run Now
    assert [r["id"] for r in screen.table.items] == [failed.id]
    screen.owner_filter.value = "All"
    screen.search.value = "FAILER"  # the name (Task_Failer_...) in any case
    assert [r["id"] for r in screen.table.items] == [failed.id]
    screen.search.value = "nothing like it"
    assert screen.table.items == [] and screen.table.total == 0


def test_pages_come_from_the_database(ops: taskops.TaskOps) -> None:
    ids = [ops.jobs.start([sys.executable, "-c", "pass"], name=f"job{i}").id for i in range(12)]
    screen = JobList(ops)
    screen.table.vue_options({"page": 2, "itemsPerPage": 10})
    assert screen.table.total == 12
    assert [r["id"] for r in screen.table.items] == sorted(ids, reverse=True)[10:]
    screen.search.value = "job1"  # job1, job10, job11: back to page 1
    assert screen.table.page == 1 and screen.table.total == 3


def test_stop_through_the_dialog(ops: taskops.TaskOps) -> None:
    talker = ops.tasks.run("global.Talker")
    wait_for(lambda: ops.jobs.get(talker.id).state is JobState.RUNNING, what="it to run")
    screen = JobList(ops)
    screen.table.vue_act({"action": "stop", "id": talker.id})
    dialog = screen.confirm
    assert dialog.shown and dialog.title == "Confirm Stop Job"
    assert "Task_Talker" in dialog.text.value and "State: Running" in dialog.text.value
    assert "Elapsed:" in dialog.text.value and "terminate the job immediately" in dialog.text.value
    dialog.cancel_button.click()
    assert not dialog.shown and ops.jobs.get(talker.id).state is JobState.RUNNING

    screen.table.vue_act({"action": "stop", "id": talker.id})
    dialog.confirm_button.click()
    assert finished(ops, talker.id, timeout=15).state is JobState.STOPPED
    screen.refresh()
    assert row(screen, talker.id)["state"] == "Stopped"
    assert any(
        "stopped" in text.lower() or "Stopping" in text for _k, text in screen.alerts.messages
    )
    audit = [entry for entry in ops.audit_entries() if entry["action"] == "job.stop"]
    assert audit and audit[-1]["user"] == "alice"


def test_remove_a_finished_job_but_not_a_running_one(ops: taskops.TaskOps) -> None:
    done = finished(ops, ops.jobs.start([sys.executable, "-c", "pass"], name="done").id)
    screen = JobList(ops)
    screen.table.vue_act({"action": "remove", "id": done.id})
    assert all(r["id"] != done.id for r in screen.table.items)
    assert ops.jobs.get(done.id).removed
    talker = ops.tasks.run("global.Talker")
    screen.act("remove", talker.id)
    kind, text = screen.alerts.messages[0]
    assert kind == "error" and "stop it before removing it" in text
    ops.jobs.stop(talker.id)


# -- the detail ----------------------------------------------------------------------------


def test_detail_streams_output_as_it_is_written(ops: taskops.TaskOps, tmp_path: Path) -> None:
    talker = ops.tasks.run("global.Talker")
    screen = JobList(ops)
    screen.table.vue_open(talker.id)
    detail = screen.detail
    assert screen.showing_detail and detail.job_id == talker.id
    wait_for(
        lambda: (screen.ticker.tick() or True) and "line 3\n" in detail.output.text,
        timeout=20,
        what="the first lines to show",
    )
    shown = detail.output.text
    wait_for(
        lambda: (detail.refresh() or True) and len(detail.output.text) > len(shown),
        timeout=20,
        what="more lines to arrive",
    )
    assert detail.output.text.startswith(shown)  # appended, not replaced
    assert detail.output.text.count("line 1\n") == 1
    assert detail.stop_button.layout.display == "" and detail.remove_button.layout.display == "none"
    assert "Task: " not in detail.context.value  # a table, not prose
    assert "global.Talker" in detail.context.value
    assert "API_TOKEN=********" in detail.context.value
    assert "s3cr3t-value" not in detail.context.value
    assert "STOP_FILE=" in detail.context.value
    assert 'data-field="Elapsed"' in detail.info.value

    detail.autoscroll.value = False
    assert detail.output.autoscroll is False and detail.errors.autoscroll is False

    detail.ask_stop()
    assert detail.confirm.shown and "Task_Talker" in detail.confirm.text.value
    detail.confirm.confirm_button.click()
    assert finished(ops, talker.id, timeout=15).state is JobState.STOPPED
    detail.refresh()
    assert "Stopped" in detail.heading.value
    assert detail.stop_button.layout.display == "none"
    assert detail.remove_button.layout.display == ""
    filename, data = detail.download.prepare()
    assert filename == f"job-{talker.id}.log"
    assert data.decode().startswith("line 1\n") and "line 3\n" in data.decode()

    detail.back_button.click()
    assert not screen.showing_detail and screen.list_view in screen.children


def test_detail_of_a_failed_job_shows_errors_and_restarts_its_task(ops: taskops.TaskOps) -> None:
    failed = finished(ops, ops.tasks.run("global.Failer").id)
    screen = JobList(ops)
    screen.open_job(failed.id)
    detail = screen.detail
    assert "about to fail" in detail.output.text
    assert "details on stderr" in detail.errors.text
    assert "the database is gone" in detail.error_line.value
    assert detail.errors_box.layout.display == "flex"
    assert detail.restart_button.layout.display == ""
    detail.restart_button.click()
    assert detail.job_id is not None and detail.job_id != failed.id  # the new job is shown
    assert ops.jobs.get(detail.job_id).task_id == "global.Failer"
    assert screen.alerts.messages[0][0] == "success"
    again = finished(ops, detail.job_id)
    detail.refresh()
    assert again.state is JobState.FAILED and "Failed" in detail.heading.value

    detail.remove_button.click()
    assert ops.jobs.get(again.id).removed and not screen.showing_detail


def test_detail_keeps_the_end_of_a_long_output_and_downloads_all_of_it(
    ops: taskops.TaskOps,
) -> None:
    big = finished(ops, ops.tasks.run("global.Big").id)
    assert big.state is JobState.COMPLETED, big.error
    detail = JobDetail(ops)
    assert detail.load(big.id)
    assert len(detail.output.text) <= MAX_SHOWN
    assert detail.output.text.endswith("the end\n")
    assert "Download Log" in detail.output_note.value
    _name, data = detail.download.prepare()
    assert len(data) == 4000 * 100 + len("the end\n")
    detail.receive_button.click()  # read it all again: the same end, the same note
    assert detail.output.text.endswith("the end\n") and len(detail.output.text) <= MAX_SHOWN
    assert detail.alerts.messages[0][0] == "info"


def test_an_unknown_job_is_an_alert_not_a_crash(ops: taskops.TaskOps) -> None:
    screen = JobList(ops)
    screen.open_job(99999)
    assert not screen.showing_detail
    assert screen.alerts.messages[0] == ("error", "no job 99999")


def test_the_dashboard_opens_the_jobs_screen(ops: taskops.TaskOps) -> None:
    board = Dashboard(ops)
    board.nav.current = "jobs"
    assert isinstance(board.content.children[0], JobList)


# -- notifications -------------------------------------------------------------------------


def test_notifications_appear_as_they_happen_while_enabled(ops: taskops.TaskOps) -> None:
    before = finished(ops, ops.tasks.run("global.Failer").id)  # before the page opened
    wait_for(lambda: ops.notifications.list(), what="the first failure's notification")
    board = Dashboard(ops)
    board.check_notifications()
    assert not [m for m in board.alerts.messages if m[0] == "error"]  # history is not replayed

    failed = finished(ops, ops.tasks.run("global.Failer").id)
    wait_for(
        lambda: (
            (board.notification_ticker.tick() or True)
            and any(
                f"job {failed.id} of global.Failer failed" in t for _k, t in board.alerts.messages
            )
        ),
        timeout=15,
        what="the failure to show in the dashboard",
    )
    kind, text = board.alerts.messages[0]
    assert kind == "error" and text.startswith("Failed: ") and "the database is gone" in text
    assert f"job {before.id} " not in " ".join(t for _k, t in board.alerts.messages)

    ops.settings.update({"enableNotifications": False})
    board.alerts.clear()
    finished(ops, ops.tasks.run("global.Failer").id)
    board.check_notifications()
    assert board.alerts.messages == []


def test_an_auto_disable_shows_as_a_warning(ops: taskops.TaskOps) -> None:
    board = Dashboard(ops)
    finished(ops, ops.tasks.run("global.Fragile").id)
    wait_for(lambda: not ops.tasks.get("global.Fragile").enabled, what="the auto-disable")
    wait_for(
        lambda: (
            (board.check_notifications() or True)
            and any(
                t.startswith("Auto-disabled: global.Fragile") for _k, t in board.alerts.messages
            )
        ),
        timeout=15,
        what="the auto-disable to show",
    )
    assert ("warning", next(t for _k, t in board.alerts.messages if "Auto" in t)) in (
        board.alerts.messages
    )
