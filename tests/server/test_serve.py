"""``taskops serve`` end to end: a real subprocess on a free local port, real HTTP, real
jobs, real Jupyter kernels; ``taskops demo`` and the clean stop on SIGTERM and SIGINT."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import (
    ADMIN_TOKEN,
    API,
    OTHER_TOKEN,
    build_site,
    identity_config,
    start_served,
)

import taskops
from taskops.server.handlers import handlers
from taskops.testing import Served, free_port, jupyter_env, wait_for

pytestmark = pytest.mark.slow

TICKER = '#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8; do echo "tick $i"; sleep 0.3; done\necho done\n'
LOOPER = '#!/bin/sh\necho "looping"\nwhile true; do echo tick; sleep 0.2; done\n'


# -- helpers -------------------------------------------------------------------------------


def http(
    method: str, url: str, body: Any = None, *, token: str | None, timeout: float = 30
) -> tuple[int, Any]:
    """(status, JSON or None) of a request to any URL of the server; ``token=None`` sends
    no Authorization header at all. Never raises for an HTTP error status."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"token {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, (json.loads(text) if text.strip() else None)
    except ValueError:
        return status, text


def ok(served: Served, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    """The JSON reply of an API call by alice, which must answer ``status``."""
    got, reply = served.request(method, path, body)
    assert got == status, f"{method} {path} -> {got} {reply}\n{log_tail(served)}"
    return reply


def log_tail(served: Served, chars: int = 4000) -> str:
    return "server log (tail):\n" + served.log.read_text(errors="replace")[-chars:]


def wait_job(served: Served, job_id: int, *states: str, timeout: float = 20.0) -> dict[str, Any]:
    """The job once it is in one of ``states``; a Running job once its process and its
    runspace are recorded too."""

    def reached() -> dict[str, Any] | None:
        job = ok(served, "GET", f"/jobs/{job_id}")
        started = job["state"] != "Running" or (job["pid"] and job["runspaceId"])
        return job if job["state"] in states and started else None

    return wait_for(reached, timeout=timeout, what=f"job {job_id} to be {' or '.join(states)}")


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes of process group ``pgid``."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def assert_group_gone(pgid: int, timeout: float = 2.0) -> None:
    """No live process of the group remains. (The short deadline only covers the instant
    between a signalled process's death and its reaping; nothing gets signalled here.)"""
    try:
        wait_for(lambda: not group_members(pgid), timeout=timeout, what=f"group {pgid} to end")
    except TimeoutError:
        members = group_members(pgid)
        raise AssertionError(
            f"process group {pgid} still running: "
            + "; ".join(f"{p} {psutil.Process(p).cmdline()}" for p in members)
        ) from None


def write_script(site: Path, rel: str, text: str) -> None:
    path = site / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def create_task(served: Served, name: str, script: str) -> dict[str, Any]:
    spec = {
        "app": "global",
        "name": name,
        "description": f"end-to-end test task {name}",
        "schedule": "0 3 * * *",
        "scriptPath": script,
        "enabled": False,  # runs only when asked to
    }
    task: dict[str, Any] = ok(served, "POST", "/tasks", spec, status=201)
    assert task["id"] == f"global.{name}"
    assert task["isDefault"] is False and task["scriptPath"] == script
    return task


def run_task(served: Served, task_id: str) -> dict[str, Any]:
    job: dict[str, Any] = ok(served, "POST", f"/tasks/{task_id}/run", status=202)
    assert isinstance(job["id"], int) and job["taskId"] == task_id
    assert job["owner"] == "Manual" and job["state"] in ("Queued", "Running")
    return job


def follow_output(served: Served, job_id: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The pages of ``GET /jobs/:id/output?follow=true``, read line by line as they come,
    each with ``at`` (monotonic arrival time) added, until one says done."""
    req = urllib.request.Request(f"{served.api}/jobs/{job_id}/output?follow=true")
    req.add_header("Authorization", f"token {served.token}")
    deadline = time.monotonic() + timeout
    pages: list[dict[str, Any]] = []
    with urllib.request.urlopen(req, timeout=timeout) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        while True:
            assert time.monotonic() < deadline, f"the output stream did not end: {pages}"
            line = response.readline()
            if not line:
                break
            page = json.loads(line)
            page["at"] = time.monotonic()
            pages.append(page)
            if page["done"]:
                break
        assert not response.read(), "nothing may follow the page that says done"
    return pages


def audit_since(served: Served, since: datetime, **query: str) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"since": since.isoformat(), "limit": "1000", **query})
    entries: list[dict[str, Any]] = ok(served, "GET", f"/audit?{params}")["entries"]
    return entries


# -- 1. the whole path as a user -----------------------------------------------------------


def test_create_run_follow_stop_and_force_close_as_alice(served: Served) -> None:
    since = datetime.now(UTC)
    write_script(served.site, "tasks/e2e_ticker.sh", TICKER)
    write_script(served.site, "tasks/e2e_looper.sh", LOOPER)
    ticker = create_task(served, "E2eTicker", "tasks/e2e_ticker.sh")
    looper = create_task(served, "E2eLooper", "tasks/e2e_looper.sh")
    listed = [t["id"] for t in ok(served, "GET", "/tasks")["tasks"]]
    assert {ticker["id"], looper["id"]} <= set(listed)

    # run the ticker and follow its output as it is written
    job = run_task(served, ticker["id"])
    assert re.fullmatch(r"Task_E2eTicker_\d{8}_\d{6}", job["name"]), job["name"]
    pages = follow_output(served, job["id"])
    text = "".join(page["text"] for page in pages)
    assert text.splitlines() == [f"tick {i}" for i in range(1, 9)] + ["done"]
    assert pages[-1]["done"] is True and pages[-1]["nextOffset"] == len(text.encode())
    # it streamed: text came in several pages, some of it before the job had ended
    assert len([page for page in pages if page["text"]]) >= 2, pages
    assert any(page["text"] and not page["done"] for page in pages), pages
    ended = wait_job(served, job["id"], "Completed", "Failed", "Stopped", "Terminated")
    assert ended["state"] == "Completed", ended
    assert ended["exitCode"] == 0 and ended["endedAt"] and ended["durationSeconds"] > 1
    assert "tick 8" in ended["output"]

    # a job that loops until stopped: POST /jobs/:id/stop
    first = wait_job(served, run_task(served, looper["id"])["id"], "Running")
    pid = first["pid"]
    assert running(pid) and os.getpgid(pid) == pid  # its own process group
    reply = ok(served, "POST", f"/jobs/{first['id']}/stop")
    assert reply["job"]["state"] == "Stopped", reply
    assert wait_job(served, first["id"], "Stopped")["endedAt"]
    assert not running(pid)
    assert_group_gone(pid)

    # another run of it: its worker runspace is listed, then force-closed
    second = wait_job(served, run_task(served, looper["id"])["id"], "Running")
    assert second["id"] != first["id"]

    def worker() -> dict[str, Any] | None:
        spaces = ok(served, "GET", "/runspaces?kind=worker")["runspaces"]
        return next((s for s in spaces if s["jobId"] == second["id"]), None)

    space = wait_for(worker, timeout=15, what=f"the worker runspace of job {second['id']}")
    assert space["id"] == second["runspaceId"]
    assert space["kind"] == "worker" and space["pid"] == second["pid"]
    assert space["state"] == "Opened" and space["taskId"] == looper["id"]

    wrong = str(space["id"] + 1000)
    status, refused = served.request(
        "POST", f"/runspaces/{space['id']}/close", {"force": True, "confirmation": wrong}
    )
    assert status == 409 and str(space["id"]) in refused["message"], refused
    assert ok(served, "GET", f"/runspaces/{space['id']}")["state"] == "Opened"
    assert ok(served, "GET", f"/jobs/{second['id']}")["state"] == "Running"
    assert running(second["pid"])

    closed = ok(
        served,
        "POST",
        f"/runspaces/{space['id']}/close",
        {"force": True, "confirmation": str(space["id"])},
    )
    assert closed["runspace"]["state"] == "Closed", closed
    assert ok(served, "GET", f"/runspaces/{space['id']}")["state"] == "Closed"
    assert (
        wait_job(served, second["id"], "Stopped", "Terminated", "Failed", "Completed")["state"]
        == "Stopped"
    )
    assert not running(second["pid"])
    assert_group_gone(second["pid"])

    # alice's changes are in the audit log, as hers
    entries = audit_since(served, since, user="alice")
    assert all(entry["user"] == "alice" for entry in entries)
    done = {(e["action"], e["target"], e["result"]) for e in entries}
    expected = {
        ("task.create", ticker["id"], "success"),
        ("task.create", looper["id"], "success"),
        ("task.run", ticker["id"], "success"),
        ("task.run", looper["id"], "success"),
        ("job.stop", f"job:{first['id']}", "success"),
        ("runspace.close", f"runspace:{space['id']}", "failure"),
        ("runspace.close", f"runspace:{space['id']}", "success"),
    }
    assert expected <= done, sorted(done)
    runs = [e for e in entries if e["action"] == "task.run"]
    assert {e["details"].get("jobId") for e in runs} >= {job["id"], first["id"], second["id"]}


# -- 2. no role, no access -----------------------------------------------------------------


def concrete_paths(task_id: str, job_id: int, runspace_id: int) -> list[str]:
    """Every route pattern of ``handlers()`` with real ids filled in (each action of a
    route with a choice of actions)."""
    ids = {"task_id": task_id, "job_id": str(job_id), "runspace_id": str(runspace_id)}
    paths = []
    for pattern, _handler in handlers():
        path = pattern.removeprefix(API).removesuffix("/?")
        for name, value in ids.items():
            path = re.sub(rf"\(\?P<{name}>[^)]*\)", value, path)
        path = path.replace("(?:/.*)?", "/no/such/route")  # the catch-all: a JSON 404
        choice = re.search(r"\(\?P<action>([^)]*)\)", path)
        filled = [path.replace(choice[0], a) for a in choice[1].split("|")] if choice else [path]
        for full in filled:
            assert "(" not in full and "\\" not in full, f"unfilled pattern: {full}"
            paths.append(full)
    return paths


def task_definitions(served: Served) -> list[dict[str, Any]]:
    """The tasks without what the engine changes as it runs them."""
    moving = {"status", "lastRun", "lastState", "nextRun"}
    tasks = ok(served, "GET", "/tasks")["tasks"]
    return [{k: v for k, v in task.items() if k not in moving} for task in tasks]


def test_without_the_role_or_a_token_every_route_is_403(served: Served) -> None:
    since = datetime.now(UTC)
    jobs = ok(served, "GET", "/jobs")["jobs"]
    job_id = jobs[0]["id"] if jobs else 1
    engine = ok(served, "GET", "/runspaces?kind=engine")["runspaces"][0]["id"]
    paths = concrete_paths("global.HealthCheck", job_id, engine)
    assert len(paths) >= 30 and "/tasks/global.HealthCheck/run" in paths
    before = task_definitions(served)
    settings = ok(served, "GET", "/settings")["settings"]

    refused = []
    for path in paths:
        for method in ("GET", "POST", "PUT", "DELETE"):
            body: dict[str, Any] | None = {} if method in ("POST", "PUT") else None
            for who, token in (("bob", OTHER_TOKEN), ("nobody", None)):
                status, reply = http(method, served.api + path, body, token=token)
                if not (
                    status == 403
                    and isinstance(reply, dict)
                    and isinstance(reply.get("message"), str)
                    and reply["message"]
                ):
                    refused.append(f"{who} {method} {path}: {status} {reply!r}")
    assert not refused, "\n".join(refused)

    assert task_definitions(served) == before
    assert ok(served, "GET", "/settings")["settings"] == settings
    assert ok(served, "GET", "/audit?user=bob")["entries"] == []
    assert [e for e in audit_since(served, since) if e["user"] != "alice"] == []


# -- 3. kernels as runspaces ---------------------------------------------------------------


@pytest.fixture
def kernel(served: Served) -> Iterator[dict[str, Any]]:
    """A kernel started through the Jupyter REST API of the served server (shut down
    afterwards if the test left it running)."""
    status, model = http(
        "POST", served.url + "/api/kernels", {"name": "python3"}, token=ADMIN_TOKEN
    )
    assert status == 201, f"{status} {model}\n{log_tail(served)}"
    yield model
    kernels = http("GET", served.url + "/api/kernels", token=ADMIN_TOKEN)[1]
    if model["id"] in [k["id"] for k in kernels]:
        http("DELETE", f"{served.url}/api/kernels/{model['id']}", token=ADMIN_TOKEN)


def test_kernels_are_runspaces_busy_while_executing_and_force_closable(
    served: Served, kernel: dict[str, Any]
) -> None:
    from jupyter_client.blocking.client import BlockingKernelClient

    def listed() -> dict[str, Any] | None:
        spaces = ok(served, "GET", "/runspaces?kind=kernel")["runspaces"]
        return next((s for s in spaces if kernel["id"] in (s["purpose"] or "")), None)

    space = wait_for(listed, timeout=20, what=f"kernel {kernel['id']} as a runspace")
    assert space["kind"] == "kernel" and space["state"] == "Opened"
    assert space["owner"] == "jupyter"  # no notebook session, no Voila page
    pid = space["pid"]
    assert isinstance(pid, int) and running(pid)
    assert any(kernel["id"] in part for part in psutil.Process(pid).cmdline())

    # the connection file is in the server's runtime folder, under the served root
    connection = served.runtime_dir / f"kernel-{kernel['id']}.json"
    assert connection.is_file()
    client = BlockingKernelClient(connection_file=str(connection))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=30)
        client.execute("import time; time.sleep(20)")

        def busy() -> bool:
            return bool((now := listed()) and now["availability"] == "Busy")

        wait_for(busy, timeout=15, what="the kernel runspace to be Busy")

        wrong = {"force": True, "confirmation": "nope"}
        status, _ = served.request("POST", f"/runspaces/{space['id']}/close", wrong)
        assert status == 409 and running(pid)
        right = {"force": True, "confirmation": space["id"]}
        closed = ok(served, "POST", f"/runspaces/{space['id']}/close", right)
    finally:
        client.stop_channels()
    assert closed["runspace"]["state"] == "Closed", closed
    kernels = http("GET", served.url + "/api/kernels", token=ADMIN_TOKEN)[1]
    assert kernel["id"] not in [k["id"] for k in kernels]
    wait_for(lambda: not running(pid), timeout=5, what=f"kernel process {pid} to end")
    assert ok(served, "GET", f"/runspaces/{space['id']}")["state"] == "Closed"
    assert listed() is None


# -- 4. a clean stop -----------------------------------------------------------------------


def test_voila_serves_a_notebook_of_the_site_behind_the_login(served: Served) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import taskops\nops = taskops.open_site()\n"
                "print('site tasks:', len(ops.tasks.list()))"
            )
        ]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, served.site / "hello.ipynb")
    page = served.url + "/voila/render/hello.ipynb"
    request = urllib.request.Request(page, headers={"Authorization": f"token {served.token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        html = response.read().decode()
    # the kernel found the served site through TASKOPS_SITE
    count = served.request("GET", "/tasks")[1]["count"]
    assert f"site tasks: {count}" in html, html[-2000:]
    # without a login the page is the server's login form
    with urllib.request.urlopen(page, timeout=30) as response:
        assert urllib.parse.urlsplit(response.geturl()).path == "/login"
        assert "site tasks" not in response.read().decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_and_its_running_jobs(
    tmp_path: Path, signum: signal.Signals
) -> None:
    site = build_site(tmp_path / "site")
    server = start_served(tmp_path, site, config=identity_config())
    try:
        job = wait_job(server, run_task(server, "global.Slow")["id"], "Running")
        pid = job["pid"]
        assert running(pid)
        server.process.send_signal(signum)
        try:
            code = server.process.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running 30 s after {signum.name}\n{log_tail(server)}"
            ) from None
        assert code == 0, log_tail(server)
        assert_group_gone(pid)
    finally:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(10)
    log = server.log.read_text()
    assert "taskops: stopped" in log
    with taskops.open_site(site) as ops:
        recorded = ops.jobs.get(job["id"])
    assert recorded.state.value == "Stopped", (recorded, log[-4000:])
    assert recorded.ended_at is not None


# -- 5. taskops demo -----------------------------------------------------------------------


@pytest.mark.parametrize("given", [True, False], ids=["given-token", "generated-token"])
def test_demo_creates_the_site_serves_it_and_prints_only_a_generated_token(
    tmp_path: Path, given: bool
) -> None:
    folder = tmp_path / "my-demo"
    env = jupyter_env(tmp_path)  # no TASKOPS_TOKEN, no JUPYTER config of the user
    assert "TASKOPS_TOKEN" not in env
    port, token = free_port(), "demo-given-token-31415926535"
    argv = [sys.executable, "-m", "taskops.cli", "demo", "--dir", str(folder)]
    argv += ["--port", str(port), "--no-browser"] + (["--token", token] if given else [])
    out = tmp_path / "demo.log"
    with out.open("w") as handle:
        process = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def login_url() -> str | None:
            if process.poll() is not None:
                raise AssertionError(f"taskops demo exited: {out.read_text()}")
            found = re.search(r"login: (http://\S+)", out.read_text())
            return found.group(1) if found else None

        url = wait_for(login_url, timeout=60, what="taskops demo to print its login URL")
        assert url.startswith(base + "/")
        if given:
            assert token not in url
            use = token
        else:
            printed = re.search(r"[?&]token=([0-9a-f]{32,})$", url)
            assert printed, url
            use = printed.group(1)

        def answers() -> bool:
            try:
                return http("GET", f"{base}{API}/engine", token=use, timeout=5)[0] == 200
            except OSError:
                return False

        wait_for(answers, timeout=60, what="the demo's API to answer with the token")
        # the dashboard's URL, with the token to log in only when it was generated
        printed_dashboard = re.search(r"dashboard: (.+)", out.read_text())
        assert printed_dashboard, out.read_text()
        dashboard = printed_dashboard.group(1).strip()
        if given:
            assert dashboard == f"{base}/apps/WebHostTaskManagement/?token=<your token>"
        else:
            assert dashboard == f"{base}/apps/WebHostTaskManagement/?token={use}"
            # following it logs in (no other credentials) and shows the Voila page
            with urllib.request.urlopen(dashboard, timeout=120) as response:
                assert urllib.parse.urlsplit(response.geturl()).path == (
                    "/apps/WebHostTaskManagement/"
                )
                page = response.read().decode()
            assert "application/vnd.jupyter.widget-view+json" in page, page[-3000:]
        assert (folder / "config" / "tasks.yaml").is_file()
        tasks = http("GET", f"{base}{API}/tasks", token=use)[1]["tasks"]
        assert "global.HealthCheck" in [t["id"] for t in tasks]
        assert http("GET", f"{base}{API}/tasks", token="wrong-token")[0] == 403
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, out.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    printed_all = out.read_text()
    assert "Created the demo site" in printed_all
    if given:
        assert token not in printed_all, "a token the user gave must never be printed"
