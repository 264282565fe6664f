"""``binder/``: what mybinder builds and starts. The image build (repo2docker) cannot run
here; its start script can: it is run as Binder runs it, in front of the server's command
line, and the dashboard and the engine must be there."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

from taskops.testing import DASHBOARD_PATH, Served, free_port, jupyter_env, wait_for

REPO = Path(__file__).resolve().parents[2]
BINDER = REPO / "binder"


def test_binder_files_install_this_repository_on_a_supported_python() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-")
    version = tuple(int(part) for part in runtime.removeprefix("python-").split("."))
    wanted = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert wanted.startswith(">=") and version >= tuple(
        int(part) for part in wanted.removeprefix(">=").split(".")
    )
    for script in ("postBuild", "start"):
        path = BINDER / script
        assert path.stat().st_mode & 0o111, f"{script} must be executable"
        subprocess.run(["bash", "-n", str(path)], check=True)  # parses
    assert "pip install --no-cache-dir ." in (BINDER / "postBuild").read_text()


def test_start_serves_the_demo_dashboard_with_its_engine(tmp_path: Path) -> None:
    env = jupyter_env(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env["HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    port, token = free_port(), "binder-test-token"
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                str(BINDER / "start"),
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    server = Served(
        url=f"http://127.0.0.1:{port}",
        token=token,
        site=home / "taskops-demo",
        process=process,
        log=log,
        root=tmp_path,
    )
    try:

        def engine_running() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                status, body = server.request("GET", "/engine")
            except OSError:
                return False
            return status == 200 and body["running"]

        wait_for(engine_running, timeout=90, what="the server and its engine")
        assert (server.site / "config" / "tasks.yaml").is_file()
        status, tasks = server.request("GET", "/tasks")
        assert status == 200 and tasks["count"] == 9  # the demo site's tasks
        page = urllib.request.Request(f"{server.url}{DASHBOARD_PATH}?token={token}")
        with urllib.request.urlopen(page, timeout=90) as answer:
            assert answer.status == 200
            assert "taskops" in answer.read().decode()
    finally:
        assert server.stop() == 0 or process.returncode is not None
