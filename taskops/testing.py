"""Fakes for tests and notebooks: real code, shared instead of copied into each test."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    import sqlalchemy

__all__ = [
    "API_PATH",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "DASHBOARD_PATH",
    "FakeClock",
    "RecordingContext",
    "Served",
    "free_port",
    "jupyter_env",
    "make_site",
    "serve_site",
    "traced_sql",
    "wait_for",
]

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (`apt-get install -y chromium`; .ci/run installs it). Playwright's own
browser download does not work on these machines."""

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""How headless Chromium is launched for the browser tests and benchmarks (RECIPES.md)."""

API_PATH = "/apps/WebHostTaskManagement/api/v1"
DASHBOARD_PATH = "/apps/WebHostTaskManagement/"

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], *, timeout: float = 10.0, what: str = "the condition"
) -> T:
    """Poll ``condition`` until it returns something truthy and return that; raise
    ``TimeoutError`` naming ``what`` at the deadline. (Tests wait on conditions, never on
    bare sleeps.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


_SCRIPT = """def run(ctx):\n    ctx.logger.info("hello from %s", ctx.task)\n"""


def make_site(
    root: Path,
    tasks: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    timezone: str | None = None,
    scripts: bool = True,
) -> Path:
    """Write a site with real files: ``tasks`` maps an app (``global`` or an app name) to
    its YAML task entries. With ``scripts``, a small Python script is written at each
    task's script path that does not exist yet. Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for app, entries in tasks.items():
        app_dir = root if app == "global" else root / "apps" / app
        document: dict[str, Any] = {"tasks": [dict(e) for e in entries]}
        if app == "global" and timezone:
            document["timezone"] = timezone
        (app_dir / "config").mkdir(parents=True, exist_ok=True)
        (app_dir / "config" / "tasks.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        for entry in entries:
            path = entry.get("scriptPath")
            if scripts and isinstance(path, str) and not Path(path).is_absolute():
                script = (app_dir / path).resolve()
                if script.is_relative_to(root.resolve()) and not script.exists():
                    script.parent.mkdir(parents=True, exist_ok=True)
                    script.write_text(_SCRIPT)
    if "global" not in tasks and timezone:
        (root / "config").mkdir(parents=True, exist_ok=True)
        (root / "config" / "tasks.yaml").write_text(yaml.safe_dump({"timezone": timezone}))
    return root


class FakeClock:
    """A clock that moves only when told. ``now()`` is timezone-aware (UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 16, 14, 5, 30, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, **kwargs: float) -> datetime:
        """Move forward by ``seconds`` (and/or ``minutes=``, ``hours=``...); returns the new now."""
        with self._lock:
            self._now += timedelta(seconds=seconds, **kwargs)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.astimezone(UTC)


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class RecordingContext:
    """A task context (``run(ctx)``) that records what the task logs and reports.

    It has the attributes a real job's context has: ``task``, ``app``, ``job_id``,
    ``params``, ``env``, ``logger``, ``progress(fraction, message)``, ``site_dir`` and
    ``data_dir``.
    """

    site_dir: Path
    data_dir: Path
    task: str = "global.Test"
    app: str = "global"
    job_id: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    progress_reports: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.logger = logging.getLogger(f"taskops.testing.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(_ListHandler(self.lines))

    def progress(self, fraction: float, message: str = "") -> None:
        self.progress_reports.append((fraction, message))


# -- `taskops serve` in a subprocess -------------------------------------------------------


PORT_TRIES = 3
"""How many free ports ``serve_site`` tries."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jupyter_env(root: Path) -> dict[str, str]:
    """This process's environment with Jupyter's folders under ``root`` (nothing reads or
    writes the user's) and no ``TASKOPS_*`` or ``JUPYTER*`` variables of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKOPS_", "JUPYTER"))}
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        folder = root / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


@dataclass
class Served:
    """A running ``taskops serve``: its URL, the token its client sends, the site and the
    process (its output goes to ``log``)."""

    url: str
    token: str
    site: Path
    process: subprocess.Popen[str]
    log: Path
    root: Path

    @property
    def api(self) -> str:
        return self.url + API_PATH

    @property
    def dashboard(self) -> str:
        """The dashboard's URL, logging in with the token."""
        return f"{self.url}{DASHBOARD_PATH}?token={self.token}"

    @property
    def runtime_dir(self) -> Path:
        """The server's JUPYTER_RUNTIME_DIR (kernel connection files)."""
        return self.root / "jupyter_runtime_dir"

    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        """(status, JSON) of ``method`` on the API ``path`` (with its query string)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api + path, data=data, method=method)
        req.add_header("Authorization", f"token {token or self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        return status, (json.loads(text) if text.strip() else None)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit status; SIGKILL to the group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(10)


def serve_site(
    root: Path,
    site: Path,
    *,
    token: str = "taskops-test-token",
    client_token: str | None = None,
    config: Mapping[str, Any] | None = None,
    args: Sequence[str] = (),
    timeout: float = 60.0,
) -> Served:
    """Start ``taskops serve --site SITE --token TOKEN`` on a free port, with Jupyter's
    folders under ``root`` (``config`` becomes its ``jupyter_server_config.json``), and wait
    until the API answers the client (``client_token``, default ``token``). A port taken
    by another process between choosing it and binding it is tried again on another."""
    for attempt in range(PORT_TRIES):
        try:
            return _serve_once(
                root,
                site,
                token=token,
                client_token=client_token,
                config=config,
                args=args,
                timeout=timeout,
            )
        except AssertionError as exc:
            if "is already in use" not in str(exc) or attempt == PORT_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def _serve_once(
    root: Path,
    site: Path,
    *,
    token: str = "taskops-test-token",
    client_token: str | None = None,
    config: Mapping[str, Any] | None = None,
    args: Sequence[str] = (),
    timeout: float = 60.0,
) -> Served:
    """One try of ``serve_site``."""
    env = jupyter_env(root)
    if config:
        (Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json").write_text(
            json.dumps(config)
        )
    port = free_port()
    log = root / "serve.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskops.cli",
                "serve",
                "--site",
                str(site),
                "--port",
                str(port),
                "--token",
                token,
                "--no-browser",
                *args,
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            start_new_session=True,
        )
    served = Served(
        url=f"http://127.0.0.1:{port}",
        token=client_token or token,
        site=site,
        process=process,
        log=log,
        root=root,
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"taskops serve exited: {log.read_text()}")
        try:
            return served.request("GET", "/engine")[0] == 200
        except OSError:
            return False

    try:
        wait_for(ready, timeout=timeout, what="taskops serve to answer")
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)  # leave no server behind a failed start
        process.wait(10)
        raise
    return served


@contextmanager
def traced_sql(
    engine: sqlalchemy.Engine, record: Callable[[str], None] | None = None
) -> Iterator[list[str]]:
    """The statements SQLite runs through ``engine`` (a SQLite store's, ``store._engine``)
    while the block runs, in the thread that runs them: a list filled as they run, or
    ``record`` called with each.
    This sees every path to the database (SQLAlchemy's or the DBAPI connection's own), so
    a test can count write transactions by their ``BEGIN IMMEDIATE``. (SQLite shows an
    ``executemany`` once per row.)"""
    import sqlalchemy as sa

    statements: list[str] = []
    on = threading.Event()
    on.set()
    note = record or statements.append

    def trace(sql: str) -> None:
        if on.is_set():
            note(sql)

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_trace_callback(trace)

    sa.event.listen(engine, "checkout", on_checkout)
    try:
        yield statements
    finally:
        on.clear()
        sa.event.remove(engine, "checkout", on_checkout)
