"""The API on a real jupyter-server: in-process for handler tests (``jp_fetch``), and as a
``taskops serve`` subprocess on a free local port for the whole path.

Two identities everywhere: ``alice`` holds ``system_admin``, ``bob`` is logged in without
it (``taskops.server.testing.TokenUsers`` maps a token to each).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# pytest-jupyter's fixtures and async-test hooks, for the tests in this folder only
from pytest_jupyter.jupyter_core import *  # noqa: F403
from pytest_jupyter.jupyter_server import *  # noqa: F403

from taskops.demo import create_demo_site
from taskops.testing import API_PATH, Served, make_site, serve_site

API = API_PATH
ADMIN_TOKEN = "alice-token-0123456789"
OTHER_TOKEN = "bob-token-9876543210"

SCRIPTS = {
    "tasks/echo.sh": '#!/bin/sh\necho "hello from $TASKOPS_JOB_ID"\necho "oops" >&2\n',
    "tasks/slow.sh": '#!/bin/sh\necho "start"\nwhile true; do echo tick; sleep 0.2; done\n',
    "tasks/fails.sh": '#!/bin/sh\necho "vault file is corrupt" >&2\nexit 3\n',
}

TASKS: dict[str, list[dict[str, Any]]] = {
    "global": [
        {
            "name": "Echo",
            "description": "Say hello",
            "schedule": "0 3 * * *",
            "scriptPath": "tasks/echo.sh",
            "environment": {"API_TOKEN": "s3cr3t-value"},
        },
        {
            "name": "Slow",
            "description": "Runs until stopped",
            "schedule": "0 4 * * *",
            "scriptPath": "tasks/slow.sh",
            "enabled": False,
        },
        {
            "name": "Fails",
            "description": "Always fails",
            "schedule": "0 5 * * *",
            "scriptPath": "tasks/fails.sh",
        },
    ],
    "vault": [
        {
            "name": "Backup",
            "description": "Back up the vault",
            "schedule": "30 2 * * *",
            "scriptPath": "tasks/echo.sh",
        }
    ],
}


def identity_config() -> dict[str, Any]:
    """Server config with the two identities and the role mapping."""
    return {
        "ServerApp": {"identity_provider_class": "taskops.server.testing.TokenUsers"},
        "TokenUsers": {"users": {ADMIN_TOKEN: "alice", OTHER_TOKEN: "bob"}},
        "TaskopsApp": {"roles": {"alice": ["system_admin"]}, "default_roles": []},
    }


def build_site(root: Path) -> Path:
    make_site(root, TASKS, timezone="UTC", scripts=False)
    for rel, text in SCRIPTS.items():
        for app_dir in (root, root / "apps" / "vault"):
            path = app_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755)
    return root


# -- in-process server (jp_fetch) ----------------------------------------------------------


@pytest.fixture(autouse=True)
def _keep_taskops_environment() -> Iterator[None]:
    """The extension publishes its site to its kernels through ``TASKOPS_*`` variables of
    the server's process: in-process servers must not leave them to later tests."""
    before = {k: v for k, v in os.environ.items() if k.startswith("TASKOPS_")}
    for key in before:
        del os.environ[key]
    yield
    for key in [k for k in os.environ if k.startswith("TASKOPS_")]:
        del os.environ[key]
    os.environ.update(before)


@pytest.fixture
def api_site(tmp_path: Path) -> Path:
    return build_site(tmp_path / "site")


@pytest.fixture
def identity() -> str:
    """How the in-process server is set up: ``two-users`` (alice and bob, the default),
    ``no-engine`` (the same, hosting no engine), ``single-user`` (jupyter-server's own
    token, no role mapping) or ``no-site``. Override
    with ``@pytest.mark.parametrize("identity", [...])``."""
    return "two-users"


@pytest.fixture
def jp_server_config(api_site: Path, identity: str) -> dict[str, Any]:
    two_users = identity in ("two-users", "no-engine")
    config: dict[str, Any] = identity_config() if two_users else {"ServerApp": {}, "TaskopsApp": {}}
    if identity == "no-engine":
        config["TaskopsApp"]["run_engine"] = False
    config["ServerApp"]["jpserver_extensions"] = {"taskops.server": True}
    if identity != "no-site":
        config["TaskopsApp"].update(site=str(api_site), engine_poll=0.05, stop_grace=1.0)
    return config


@pytest.fixture
def api(jp_fetch: Any) -> Callable[..., Any]:
    """``await api(method, path, body=None, token=ADMIN_TOKEN, **query)`` -> (status, JSON)
    of a request to the taskops API; never raises for an HTTP error status."""

    async def call(
        method: str, path: str, body: Any = None, *, token: str | None = ADMIN_TOKEN, **query: Any
    ) -> tuple[int, Any]:
        # an empty header keeps jp_fetch from adding the server's own token
        headers = {"Authorization": f"token {token}" if token else ""}
        kwargs: dict[str, Any] = {"method": method, "headers": headers, "raise_error": False}
        if query:
            kwargs["params"] = {k: str(v) for k, v in query.items()}
        if body is not None:
            kwargs["body"] = body if isinstance(body, str | bytes) else json.dumps(body)
        elif method in ("POST", "PUT"):
            kwargs["body"] = ""
        parts = [p for p in (API + path).split("/") if p]
        response = await jp_fetch(*parts, **kwargs)
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text.strip() else None)

    return call


async def wait_state(
    api: Callable[..., Any], job_id: int, *states: str, timeout: float = 20.0
) -> dict[str, Any]:
    """The job once it is in one of ``states`` (polls with a deadline); a Running job once
    its process and runspace are recorded too."""
    deadline = time.monotonic() + timeout
    while True:
        status, job = await api("GET", f"/jobs/{job_id}")
        assert status == 200, job
        started = job["state"] != "Running" or (job["pid"] and job["runspaceId"])
        if job["state"] in states and started:
            return job  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} stayed {job['state']}, wanted {states}")
        await asyncio.sleep(0.05)


# -- `taskops serve` in a subprocess -------------------------------------------------------


def start_served(
    root: Path, site: Path, *, config: dict[str, Any] | None = None, args: tuple[str, ...] = ()
) -> Served:
    """``taskops serve --site SITE`` on a free port, called by alice (``ADMIN_TOKEN``) when
    ``config`` maps the tokens to users (``identity_config()``)."""
    return serve_site(
        root, site, token="server-own-token", client_token=ADMIN_TOKEN, config=config, args=args
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``taskops serve`` on a fresh copy of the demo site, with the two identities."""
    root = tmp_path_factory.mktemp("served")
    site = root / "demo"
    create_demo_site(site)
    server = start_served(root, site, config=identity_config())
    yield server
    server.stop()
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)
