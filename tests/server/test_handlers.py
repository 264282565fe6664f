"""The REST handlers through real HTTP to an in-process jupyter-server (``jp_fetch``), with
the engine of the extension running real jobs on a temporary site."""

from __future__ import annotations

import asyncio
import getpass
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN_TOKEN, API, OTHER_TOKEN, wait_state

from taskops.server.handlers import handlers

Api = Callable[..., Any]


# -- tasks ---------------------------------------------------------------------------------


async def test_tasks_list_filters_and_masks_secrets(api: Api) -> None:
    status, body = await api("GET", "/tasks")
    assert status == 200
    assert body["count"] == 4
    assert [t["id"] for t in body["tasks"]] == [
        "global.Echo",
        "global.Fails",
        "global.Slow",
        "vault.Backup",
    ]
    echo = body["tasks"][0]
    assert echo["environment"]["API_TOKEN"] != "s3cr3t-value"
    assert "s3cr3t-value" not in json.dumps(body)
    assert echo["scheduleText"] and echo["nextRun"] and echo["isDefault"] is True

    assert [t["id"] for t in (await api("GET", "/tasks", app="vault"))[1]["tasks"]] == [
        "vault.Backup"
    ]
    assert [t["id"] for t in (await api("GET", "/tasks", enabled="false"))[1]["tasks"]] == [
        "global.Slow"
    ]
    assert [t["id"] for t in (await api("GET", "/tasks", status="disabled"))[1]["tasks"]] == [
        "global.Slow"
    ]
    assert [t["id"] for t in (await api("GET", "/tasks", search="vault"))[1]["tasks"]] == [
        "vault.Backup"
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"enabled": "maybe"}, "enabled"), ({"status": "sleepy"}, "status")],
)
async def test_tasks_list_refuses_bad_query_values(
    api: Api, query: dict[str, str], field: str
) -> None:
    status, body = await api("GET", "/tasks", **query)
    assert status == 400
    assert field in body["message"]


async def test_task_detail_has_history_and_unknown_ids_are_404(api: Api) -> None:
    status, task = await api("GET", "/tasks/global.Echo")
    assert status == 200
    assert task["history"] == []
    for path in ("/tasks/global.Nope", "/tasks/nope", "/tasks/global.Nope/history"):
        status, body = await api("GET", path)
        assert status == 404, path
        assert "Nope" in body["message"] or "nope" in body["message"]


async def test_create_update_and_refusals_change_nothing(api: Api, api_site: Path) -> None:
    spec = {
        "app": "vault",
        "name": "Rotate",
        "description": "Rotate keys",
        "schedule": "0 1 * * *",
        "scriptPath": "tasks/echo.sh",
        "parameters": {"KEEP": 3},
        "environment": {"DB_PASSWORD": "hunter2"},
        "termination": {"maxRuntime": 60, "maxFailures": 2, "killOnTimeout": True},
    }
    status, task = await api("POST", "/tasks", spec)
    assert status == 201, task
    assert task["id"] == "vault.Rotate" and task["isDefault"] is False
    assert task["environment"]["DB_PASSWORD"] != "hunter2"

    bad_cases: list[tuple[Any, int, str | None]] = [
        ("{not json", 400, None),
        ("[1, 2]", 400, None),
        ({**spec, "name": "Other", "colour": "red"}, 400, "colour"),
        ({**spec, "name": "Other", "enabled": "yes"}, 400, "enabled"),
        ({**spec, "name": "Other", "schedule": "61 * * * *"}, 400, "schedule"),
        ({**spec, "name": "Other", "timezone": "Mars/Base"}, 400, "timezone"),
        ({**spec, "name": "Other", "scriptPath": "../../../etc/passwd"}, 400, "scriptPath"),
        ({**spec, "app": "nowhere", "name": "Other"}, 400, "app"),
        (spec, 409, None),  # the name is taken now
    ]
    for body, code, field in bad_cases:
        status, answer = await api("POST", "/tasks", body)
        assert status == code, (body, answer)
        assert answer["message"]
        if field is not None:
            assert field in answer.get("problems", {}) or field in answer["message"], answer
    assert (await api("GET", "/tasks"))[1]["count"] == 5

    status, changed = await api("PUT", "/tasks/vault.Rotate", {"schedule": "*/5 * * * *"})
    assert status == 200
    assert changed["schedule"] == "*/5 * * * *"
    assert changed["description"] == "Rotate keys"
    status, answer = await api("PUT", "/tasks/vault.Rotate", {"schedule": "nope"})
    assert status == 400 and "schedule" in answer["problems"]
    status, answer = await api("PUT", "/tasks/global.Echo", {"scriptPath": "tasks/other.sh"})
    assert status in (400, 409), answer  # a default task's script path is read-only
    assert (await api("GET", "/tasks/vault.Rotate"))[1]["schedule"] == "*/5 * * * *"


async def test_enable_disable_duplicate_copy_delete_restore(api: Api) -> None:
    status, task = await api("POST", "/tasks/global.Slow/enable")
    assert status == 200 and task["enabled"] is True
    status, task = await api("POST", "/tasks/global.Slow/disable")
    assert status == 200 and task["enabled"] is False and task["status"] == "Disabled"

    status, dup = await api("POST", "/tasks/global.Echo/duplicate", {"name": "Echo2"})
    assert status == 201 and dup["id"] == "global.Echo2" and dup["isDefault"] is False
    status, answer = await api("POST", "/tasks/global.Echo/duplicate", {"colour": 1})
    assert status == 400
    status, copied = await api("POST", "/tasks/global.Echo/copy", {"targetApp": "vault"})
    assert status == 201 and copied["app"] == "vault", copied
    status, answer = await api("POST", "/tasks/global.Echo/copy", {})
    assert status == 400 and "targetApp" in answer["message"]
    status, answer = await api("POST", "/tasks/global.Echo/copy", {"targetApp": "nowhere"})
    assert status in (400, 404)

    status, answer = await api("DELETE", "/tasks/global.Echo2")
    assert status == 200 and "deleted" in answer["message"]
    assert (await api("GET", "/tasks/global.Echo2"))[0] == 404
    status, answer = await api("DELETE", "/tasks/global.Echo")
    assert status == 200 and "marked deleted" in answer["message"]
    assert (await api("GET", "/tasks/global.Echo"))[0] == 404
    status, task = await api("POST", "/tasks/global.Echo/restore")
    assert status == 200 and task["id"] == "global.Echo"

    status, bulk = await api(
        "POST", "/tasks/bulk", {"action": "disable", "ids": ["global.Echo", "global.Fails"]}
    )
    assert status == 200, bulk
    assert {t["id"] for t in (await api("GET", "/tasks", enabled="false"))[1]["tasks"]} >= {
        "global.Echo",
        "global.Fails",
    }
    assert (await api("POST", "/tasks/bulk", {"action": "explode", "ids": []}))[0] == 400


# -- jobs ----------------------------------------------------------------------------------


async def test_run_now_output_paging_and_follow(api: Api) -> None:
    status, job = await api("POST", "/tasks/global.Echo/run")
    assert status == 202, job
    assert job["state"] in ("Queued", "Running") and job["owner"] == "Manual"
    done = await wait_state(api, job["id"], "Completed")
    assert done["exitCode"] == 0
    assert f"hello from {job['id']}" in done["output"]
    assert "oops" in done["errorOutput"]

    status, page = await api("GET", f"/jobs/{job['id']}/output", offset=0, stream="stdout")
    assert status == 200 and page["done"] is True
    assert page["text"] == f"hello from {job['id']}\n"
    status, rest = await api("GET", f"/jobs/{job['id']}/output", offset=page["nextOffset"])
    assert rest == {
        "text": "",
        "nextOffset": page["nextOffset"],
        "done": True,
        "size": page["size"],
    }
    assert page["size"] == page["nextOffset"]
    status, err = await api("GET", f"/jobs/{job['id']}/output", stream="stderr")
    assert err["text"] == "oops\n"
    status, streamed = await api("GET", f"/jobs/{job['id']}/output", follow="true")
    assert status == 200  # one NDJSON line for a job that has ended
    assert streamed["done"] is True and streamed["text"] == page["text"]
    for query, field in (({"stream": "stdin"}, "stream"), ({"offset": "-1"}, "offset")):
        status, answer = await api("GET", f"/jobs/{job['id']}/output", **query)
        assert status == 400 and field in answer["message"]

    status, history = await api("GET", "/tasks/global.Echo/history", limit=5)
    assert [j["id"] for j in history["history"]] == [job["id"]]
    status, task = await api("GET", "/tasks/global.Echo")
    assert [j["id"] for j in task["history"]] == [job["id"]]
    status, history = await api("GET", "/tasks/global.Echo/history", status="failed")
    assert history["history"] == []
    for query in ({"limit": "abc"}, {"limit": "0"}, {"offset": "-3"}, {"status": "x"}):
        assert (await api("GET", "/tasks/global.Echo/history", **query))[0] == 400


async def test_follow_streams_until_the_job_ends(api: Api, jp_fetch: Any) -> None:
    _, job = await api("POST", "/tasks/global.Slow/run")
    await wait_state(api, job["id"], "Running")
    lines: list[dict[str, Any]] = []
    buffer = b""

    def on_chunk(chunk: bytes) -> None:
        nonlocal buffer
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            lines.append(json.loads(line))

    async def stop_after_ticks() -> None:
        deadline = time.monotonic() + 20
        while sum(page["text"].count("tick") for page in lines) < 2:
            assert time.monotonic() < deadline, lines
            await asyncio.sleep(0.05)
        assert (await api("POST", f"/jobs/{job['id']}/stop"))[0] == 200

    stopper = asyncio.ensure_future(stop_after_ticks())
    response = await jp_fetch(
        *f"apps/WebHostTaskManagement/api/v1/jobs/{job['id']}/output".split("/"),
        params={"follow": "true"},
        headers={"Authorization": f"token {ADMIN_TOKEN}"},
        streaming_callback=on_chunk,
        request_timeout=60,
    )
    await stopper
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    assert "".join(page["text"] for page in lines).startswith("start\ntick\n")
    assert lines[-1]["done"] is True
    offsets = [page["nextOffset"] for page in lines]
    assert offsets == sorted(offsets)
    assert (await api("GET", f"/jobs/{job['id']}"))[1]["state"] == "Stopped"


async def test_jobs_list_stop_remove_and_conflicts(api: Api) -> None:
    _, job = await api("POST", "/tasks/global.Slow/run")
    running = await wait_state(api, job["id"], "Running")
    status, listed = await api("GET", "/jobs", state="running")
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    assert (await api("GET", "/jobs", state="sleeping"))[0] == 400
    assert (await api("GET", "/jobs", owner="TaskEngine"))[1]["jobs"] == []

    status, answer = await api("POST", f"/jobs/{job['id']}/remove")
    assert status == 409 and "running" in answer["message"].lower()
    status, answer = await api("POST", f"/jobs/{job['id']}/stop")
    assert status == 200 and answer["job"]["state"] == "Stopped"
    assert running["pid"]
    status, answer = await api("POST", f"/jobs/{job['id']}/remove")
    assert status == 200
    assert job["id"] not in [j["id"] for j in (await api("GET", "/jobs"))[1]["jobs"]]
    for path in ("/jobs/999999", "/jobs/abc", "/jobs/999999/output"):
        assert (await api("GET", path))[0] == 404, path
    assert (await api("POST", "/jobs/999999/stop"))[0] == 404


async def test_failed_job_restarts(api: Api) -> None:
    _, job = await api("POST", "/tasks/global.Fails/run")
    failed = await wait_state(api, job["id"], "Failed")
    assert failed["exitCode"] == 3 and "corrupt" in failed["error"]
    status, again = await api("POST", f"/jobs/{job['id']}/restart")
    assert status == 202 and again["id"] != job["id"] and again["taskId"] == "global.Fails"


# -- runspaces -----------------------------------------------------------------------------


async def test_runspaces_list_detail_close(api: Api) -> None:
    deadline = time.monotonic() + 20
    while True:
        status, listed = await api("GET", "/runspaces")
        engines = [r for r in listed["runspaces"] if r["kind"] == "engine"]
        if engines:
            break
        assert time.monotonic() < deadline, listed
        await asyncio.sleep(0.1)
    engine = engines[0]
    assert (await api("GET", f"/runspaces/{engine['id']}"))[1]["pid"] == engine["pid"]
    status, diagnostics = await api("GET", f"/runspaces/{engine['id']}/diagnostics")
    assert status == 200 and diagnostics["commandLine"]
    status, answer = await api(
        "POST", f"/runspaces/{engine['id']}/close", {"force": True, "confirmation": engine["id"]}
    )
    assert status == 409 and "engine" in answer["message"]

    assert (await api("GET", "/runspaces", minAge="abc"))[0] == 400
    assert (await api("GET", "/runspaces", state="Sleepy"))[0] == 400
    assert (await api("GET", "/runspaces/424242"))[0] == 404
    assert (await api("GET", "/runspaces", minAge="3600"))[1]["runspaces"] == []

    _, job = await api("POST", "/tasks/global.Slow/run")
    running = await wait_state(api, job["id"], "Running")
    worker_id = running["runspaceId"]
    assert worker_id
    for body, code in (
        ({"force": True, "confirmation": str(worker_id + 1000)}, 409),
        ({"force": False, "confirmation": str(worker_id)}, 400),
        ({"confirmation": str(worker_id)}, 400),
        ({"force": True, "confirmation": [1]}, 400),
        ({"force": True, "confirmation": str(worker_id), "why": "x"}, 400),
    ):
        status, answer = await api("POST", f"/runspaces/{worker_id}/close", body)
        assert status == code, (body, answer)
    assert (await api("GET", f"/jobs/{job['id']}"))[1]["state"] == "Running"
    status, answer = await api(
        "POST", f"/runspaces/{worker_id}/close", {"force": True, "confirmation": str(worker_id)}
    )
    assert status == 200, answer
    assert answer["runspace"]["state"] in ("Closed", "Broken")
    await wait_state(api, job["id"], "Stopped")
    status, samples = await api("GET", f"/runspaces/{engine['id']}/memory")
    assert status == 200 and isinstance(samples["samples"], list)


# -- the rest ------------------------------------------------------------------------------


async def test_stats_settings_apps_audit_errors_engine(api: Api) -> None:
    status, stats = await api("GET", "/stats")
    assert status == 200
    assert stats["tasks"] == {"total": 4, "enabled": 3, "running": 0, "failed24h": 0}
    assert set(stats["jobs"]) >= {"total", "running", "completedLastHour", "failedLastHour"}
    assert set(stats["runspaces"]) >= {"total", "opened", "busy", "broken", "totalMemoryMB"}

    status, settings = await api("GET", "/settings")
    assert status == 200 and settings["settings"]["maxConcurrentTasks"] == 10
    assert {f["key"] for f in settings["fields"]} >= {"autoRefreshInterval"}
    status, answer = await api("PUT", "/settings", {"maxConcurrentTasks": 3})
    assert status == 200 and answer["settings"]["maxConcurrentTasks"] == 3
    for bad in ({"maxConcurrentTasks": "many"}, {"noSuchSetting": 1}, {"maxConcurrentTasks": -1}):
        status, answer = await api("PUT", "/settings", bad)
        assert status == 400, (bad, answer)
    assert (await api("GET", "/settings"))[1]["settings"]["maxConcurrentTasks"] == 3

    assert (await api("GET", "/apps"))[1]["apps"] == ["global", "vault"]
    status, audit = await api("GET", "/audit")
    assert status == 200
    first = audit["entries"][0]
    assert first["action"] == "settings.update" and first["user"] == "alice"
    assert (await api("GET", "/audit", action="task.run"))[1]["entries"] == []
    assert (await api("GET", "/audit", action="explode"))[0] == 400
    assert (await api("GET", "/audit", since="yesterday"))[0] == 400
    assert (await api("GET", "/audit", since="2000-01-01T00:00:00+00:00"))[1]["entries"]

    assert (await api("GET", "/site/errors"))[1] == {"errors": []}
    status, engine = await api("GET", "/engine")
    assert status == 200 and "running" in engine
    status, notes = await api("GET", "/notifications")
    assert status == 200 and notes["notifications"] == []


async def test_schedule_preview(api: Api) -> None:
    status, preview = await api(
        "GET",
        "/schedule/preview",
        expression="0 3 * * *",
        timezone="Europe/Berlin",
        count="3",
        start="2026-03-28T12:00:00+00:00",
    )
    assert status == 200
    assert preview["valid"] is True and preview["text"]
    assert preview["nextRuns"] == [
        "2026-03-29T03:00:00+02:00",  # after the spring-forward jump, 03:00 is CEST
        "2026-03-30T03:00:00+02:00",
        "2026-03-31T03:00:00+02:00",
    ]
    status, preview = await api("GET", "/schedule/preview", expression="99 * * * *")
    assert status == 200 and preview["valid"] is False and "schedule" in preview["problems"]
    status, preview = await api("GET", "/schedule/preview", expression="* * * * *", timezone="X/Y")
    assert preview["valid"] is False and "timezone" in preview["problems"]
    for query in (
        {},
        {"expression": "* * * * *", "count": "abc"},
        {"expression": "* * * * *", "start": "2026-01-01T00:00:00"},
    ):
        assert (await api("GET", "/schedule/preview", **query))[0] == 400, query


async def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    status, answer = await api("GET", "/nowhere")
    assert status == 404 and "no such route" in answer["message"]
    status, answer = await api("POST", "/tasks/global.Echo/explode", {})
    assert status == 404
    status, answer = await api("DELETE", "/stats")
    assert status == 405 and answer["message"]


async def test_openapi_document_lists_every_route(api: Api) -> None:
    status, document = await api("GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    assert len(document["paths"]) >= 20


# -- authorization -------------------------------------------------------------------------


def concrete_routes() -> list[tuple[str, str]]:
    """(method, path) for every route, with ids filled in."""
    out = []
    for pattern, handler in handlers():
        if "(?:/.*)?" in pattern:
            out.extend([("GET", "/nowhere"), ("POST", "/tasks/global.Echo/explode")])
            continue
        path = pattern.removeprefix("/apps/WebHostTaskManagement/api/v1").removesuffix("/?")
        path = (
            path.replace("(?P<task_id>[^/]+)", "global.Echo")
            .replace("(?P<job_id>[^/]+)", "1")
            .replace("(?P<runspace_id>[^/]+)", "1")
        )
        for method in ("GET", "POST", "PUT", "DELETE"):
            if hasattr(handler, method.lower()):
                if "(?P<action>" in path:
                    head, options = path.split("(?P<action>")
                    for action in options.rstrip(")").split("|"):
                        out.append((method, head + action))
                else:
                    out.append((method, path))
    return out


async def test_a_user_without_the_role_and_no_login_are_refused_everywhere(api: Api) -> None:
    routes = concrete_routes()
    assert len(routes) >= 30
    for method, path in routes:
        body = {} if method in ("POST", "PUT") else None
        for token in (OTHER_TOKEN, None):
            status, answer = await api(method, path, body, token=token)
            assert status == 403, (method, path, token, answer)
            assert answer["message"], (method, path)
            if token is None:
                assert "authentication required" in answer["message"], (method, path)
        if method == "GET":
            status, answer = await api(method, path, token=OTHER_TOKEN)
            assert "system_admin" in answer["message"]
    # nothing happened
    status, tasks = await api("GET", "/tasks")
    assert [t["enabled"] for t in tasks["tasks"]] == [True, True, False, True]
    assert (await api("GET", "/audit"))[1]["entries"] == []


async def test_the_servers_own_token_is_not_an_admin_when_roles_are_set(
    api: Api, jp_serverapp: Any
) -> None:
    status, answer = await api("GET", "/tasks", token=jp_serverapp.identity_provider.token)
    assert status == 403 and "system_admin" in answer["message"]


@pytest.mark.parametrize("identity", ["single-user"])
async def test_on_a_single_user_server_its_token_holds_the_role(
    api: Api, jp_serverapp: Any
) -> None:
    token = jp_serverapp.identity_provider.token
    status, body = await api("GET", "/tasks", token=token)
    assert status == 200 and body["count"] == 4
    status, task = await api("POST", "/tasks/global.Slow/enable", token=token)
    assert status == 200 and task["enabled"] is True
    # jupyter-server makes up a random anonymous user for the token holder: the audit
    # names the account running the server instead
    (entry,) = (await api("GET", "/audit", token=token))[1]["entries"]
    assert entry["action"] == "task.enable"
    assert entry["user"] == f"{getpass.getuser()} (token)"
    assert (await api("GET", "/tasks", token=None))[0] == 403


@pytest.mark.parametrize("identity", ["no-site"])
async def test_without_a_site_the_api_says_so(api: Api, jp_serverapp: Any) -> None:
    status, body = await api("GET", "/tasks", token=jp_serverapp.identity_provider.token)
    assert status == 503
    assert "site" in body["message"]


async def test_browser_posts_need_the_xsrf_token(api: Api, jp_fetch: Any) -> None:
    # log in with the token once: the server sets its login cookie
    response = await jp_fetch(
        "apps",
        "WebHostTaskManagement",
        "api",
        "v1",
        "tasks",
        params={"token": ADMIN_TOKEN},
    )
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    login = "; ".join(c for c in cookies if not c.startswith("_xsrf"))
    assert login
    headers = {"Cookie": login, "Authorization": ""}
    got = await jp_fetch(
        "apps", "WebHostTaskManagement", "api", "v1", "tasks", headers=headers, raise_error=False
    )
    assert got.code == 200  # reading with the cookie works
    enable = (*API.strip("/").split("/"), "tasks", "global.Slow", "enable")
    posted = await jp_fetch(*enable, method="POST", body="", headers=headers, raise_error=False)
    assert posted.code == 403  # no _xsrf: refused
    xsrf = "xsrf-value-for-test"
    with_xsrf = {"Cookie": f"{login}; _xsrf={xsrf}", "X-XSRFToken": xsrf, "Authorization": ""}
    posted = await jp_fetch(*enable, method="POST", body="", headers=with_xsrf, raise_error=False)
    assert posted.code == 200, posted.body


async def test_every_change_is_audited_with_the_authenticated_user(api: Api) -> None:
    spec = {"app": "global", "name": "Audited", "schedule": "0 1 * * *"}
    spec["scriptPath"] = "tasks/slow.sh"
    assert (await api("POST", "/tasks", spec))[0] == 201
    assert (await api("PUT", "/tasks/global.Audited", {"description": "x"}))[0] == 200
    assert (await api("POST", "/tasks/global.Audited/disable"))[0] == 200
    assert (await api("POST", "/tasks/global.Audited/enable"))[0] == 200
    assert (await api("POST", "/tasks/global.Audited/duplicate", {"name": "Audited2"}))[0] == 201
    assert (await api("POST", "/tasks/global.Audited/copy", {"targetApp": "vault"}))[0] == 201
    assert (await api("DELETE", "/tasks/global.Audited2"))[0] == 200
    _, job = await api("POST", "/tasks/global.Audited/run")
    running = await wait_state(api, job["id"], "Running")
    assert (await api("POST", f"/jobs/{job['id']}/stop"))[0] == 200
    assert (await api("POST", f"/jobs/{job['id']}/remove"))[0] == 200
    _, other = await api("POST", "/tasks/global.Audited/run")
    running = await wait_state(api, other["id"], "Running")
    worker = str(running["runspaceId"])
    body = {"force": True, "confirmation": worker}
    assert (await api("POST", f"/runspaces/{worker}/close", body))[0] == 200
    assert (await api("PUT", "/settings", {"autoRefreshInterval": 2}))[0] == 200
    assert (await api("PUT", "/settings", {"autoRefreshInterval": "soon"}))[0] == 400

    _, audit = await api("GET", "/audit", limit=100)
    entries = audit["entries"]
    assert {e["user"] for e in entries} == {"alice"}
    assert {e["action"] for e in entries} == {
        "task.create",
        "task.update",
        "task.enable",
        "task.disable",
        "task.duplicate",
        "task.copy",
        "task.delete",
        "task.run",
        "job.stop",
        "job.remove",
        "runspace.close",
        "settings.update",
    }
    refused = [e for e in entries if e["result"] == "failure"]
    assert [e["action"] for e in refused] == ["settings.update"]
    assert entries[0]["action"] == "settings.update"  # newest first


async def test_kernels_are_runspaces_owned_by_their_notebook(api: Api, jp_fetch: Any) -> None:
    response = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps(
            {"path": "ops/check.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
        ),
    )
    session = json.loads(response.body)
    kernel_id = session["kernel"]["id"]
    deadline = time.monotonic() + 30
    while True:
        _, listed = await api("GET", "/runspaces", kind="kernel")
        kernels = [r for r in listed["runspaces"] if kernel_id in (r["purpose"] or "")]
        if kernels and kernels[0]["memoryMB"]:
            break
        assert time.monotonic() < deadline, listed
        await asyncio.sleep(0.2)
    (kernel,) = kernels
    assert kernel["owner"] == "ops/check.ipynb"
    assert kernel["availability"] in ("Available", "Busy")
    assert kernel["pid"] and kernel["state"] == "Opened"

    body = {"force": True, "confirmation": str(kernel["id"])}
    status, answer = await api("POST", f"/runspaces/{kernel['id']}/close", body)
    assert status == 200, answer
    assert answer["runspace"]["state"] == "Closed"
    listed_kernels = json.loads((await jp_fetch("api", "kernels")).body)
    assert kernel_id not in [k["id"] for k in listed_kernels]


@pytest.mark.parametrize("identity", ["no-engine"])
async def test_without_an_engine_runs_wait_and_kernels_are_still_sampled(
    api: Api, jp_fetch: Any
) -> None:
    status, engine = await api("GET", "/engine")
    assert status == 200 and engine["running"] is False
    assert "no engine" in engine["message"]
    status, job = await api("POST", "/tasks/global.Echo/run")
    assert status == 202 and job["state"] == "Queued"

    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({}))
    kernel_id = json.loads(response.body)["id"]
    deadline = time.monotonic() + 30
    while True:
        _, listed = await api("GET", "/runspaces", kind="kernel")
        if any(kernel_id in (r["purpose"] or "") for r in listed["runspaces"]):
            break
        assert time.monotonic() < deadline, listed
        await asyncio.sleep(0.2)
    assert (await api("GET", f"/jobs/{job['id']}"))[1]["state"] == "Queued"
