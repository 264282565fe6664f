"""``GET /tasks`` through real HTTP to an in-process jupyter-server whose engine runs real
jobs: each task's JSON is kept between answers, so every change must show in the next
answer (an edit, enabling and disabling, a job starting and ending, a slot passing), the
filters must still choose, and the Etag must follow the body."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from conftest import ADMIN_TOKEN, API, wait_state

Api = Callable[..., Any]


async def tasks(api: Api, **query: Any) -> dict[str, dict[str, Any]]:
    """Task id -> task of one ``GET /tasks``."""
    status, body = await api("GET", "/tasks", **query)
    assert status == 200, body
    assert body["count"] == len(body["tasks"])
    return {task["id"]: task for task in body["tasks"]}


async def test_the_list_holds_what_each_task_answers_alone(api: Api) -> None:
    listed = await tasks(api)
    assert list(listed) == ["global.Echo", "global.Fails", "global.Slow", "vault.Backup"]
    for task_id, task in listed.items():
        status, alone = await api("GET", f"/tasks/{task_id}")
        assert status == 200
        alone.pop("history")
        assert task == alone


async def test_edits_and_enabling_show_in_the_next_answer(api: Api) -> None:
    before = await tasks(api)
    status, _ = await api("PUT", "/tasks/global.Echo", {"description": "Say hello twice"})
    assert status == 200
    after = await tasks(api)
    assert after["global.Echo"]["description"] == "Say hello twice"
    assert after["global.Echo"]["overridden"] == ["description"]
    assert after["vault.Backup"] == before["vault.Backup"]

    assert (await api("POST", "/tasks/global.Echo/disable"))[0] == 200
    echo = (await tasks(api))["global.Echo"]
    assert (echo["enabled"], echo["status"], echo["nextRun"]) == (False, "Disabled", None)
    assert list(await tasks(api, enabled="false")) == ["global.Echo", "global.Slow"]
    assert list(await tasks(api, status="disabled", app="global")) == [
        "global.Echo",
        "global.Slow",
    ]
    assert list(await tasks(api, search="TWICE")) == ["global.Echo"]

    assert (await api("POST", "/tasks/global.Echo/enable"))[0] == 200
    echo = (await tasks(api))["global.Echo"]
    assert (echo["enabled"], echo["status"]) == (True, "Enabled")
    assert echo["nextRun"] == before["global.Echo"]["nextRun"]
    assert list(await tasks(api, enabled="false")) == ["global.Slow"]


async def test_jobs_starting_and_ending_show_in_the_next_answer(api: Api) -> None:
    _, job = await api("POST", "/tasks/global.Echo/run")
    done = await wait_state(api, job["id"], "Completed")
    echo = (await tasks(api))["global.Echo"]
    assert (echo["status"], echo["lastState"]) == ("Enabled", "Completed")
    assert echo["lastRun"] == done["startedAt"]

    _, job = await api("POST", "/tasks/global.Slow/run")  # disabled: run now still runs it
    running = await wait_state(api, job["id"], "Running")
    slow = (await tasks(api))["global.Slow"]
    assert (slow["status"], slow["lastState"]) == ("Running", "Running")
    assert slow["lastRun"] == running["startedAt"]
    assert list(await tasks(api, status="running")) == ["global.Slow"]

    assert (await api("POST", f"/jobs/{job['id']}/stop"))[0] == 200
    await wait_state(api, job["id"], "Stopped")
    slow = (await tasks(api))["global.Slow"]
    assert (slow["status"], slow["lastState"]) == ("Disabled", "Stopped")
    assert await tasks(api, status="running") == {}


async def test_next_run_moves_on_in_the_first_answer_after_its_slot(api: Api) -> None:
    status, _ = await api(
        "POST",
        "/tasks",
        {
            "app": "vault",
            "name": "Often",
            "schedule": "* * * * * */2",
            "scriptPath": "tasks/echo.sh",
        },
    )
    assert status == 201
    first = datetime.fromisoformat((await tasks(api))["vault.Often"]["nextRun"])
    deadline = time.monotonic() + 10
    while datetime.now(UTC) <= first:
        assert time.monotonic() < deadline, "the clock did not pass the next run"
        await asyncio.sleep(0.05)
    second = datetime.fromisoformat((await tasks(api))["vault.Often"]["nextRun"])
    assert second > first


async def test_the_etag_follows_the_body(jp_fetch: Any, api: Api) -> None:
    path = [p for p in f"{API}/tasks".split("/") if p]
    headers = {"Authorization": f"token {ADMIN_TOKEN}"}
    first = await jp_fetch(*path, headers=headers)
    etag = first.headers["Etag"]
    assert first.headers["Content-Type"] == "application/json"
    same = await jp_fetch(*path, headers={**headers, "If-None-Match": etag}, raise_error=False)
    assert (same.code, same.body) == (304, b"")

    assert (await api("PUT", "/tasks/vault.Backup", {"description": "Back it all up"}))[0] == 200
    changed = await jp_fetch(*path, headers={**headers, "If-None-Match": etag})
    assert changed.code == 200
    assert changed.headers["Etag"] != etag
    assert b"Back it all up" in changed.body
