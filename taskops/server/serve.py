"""``taskops serve``: one jupyter-server on one port with the taskops extension (REST API,
dashboard page, engine, runspace sampler) and Voila, behind the server's token login.

Every load of the dashboard page starts a kernel, and closing the page does not stop it
(Voila's shutdown call is refused without an ``_xsrf`` token, voila #1458): so the server
culls kernels that no page or client is connected to once they have been idle for
``kernel_idle_timeout`` seconds. A connected kernel (an open page) is never culled.

SIGTERM and SIGINT stop it cleanly: the server's shutdown stops the extension, whose engine
stops its running jobs first. (jupyter-server asks "Shut down? (y/n)" on Ctrl+C at a
terminal; a service manager's SIGINT must not wait for an answer, so both signals stop.)
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from taskops.server.dashboard import DASHBOARD_ROUTE
from taskops.server.handlers import API_BASE

__all__ = [
    "DEFAULT_IP",
    "DEFAULT_KERNEL_IDLE_TIMEOUT",
    "DEFAULT_PORT",
    "cull_interval",
    "serve",
    "server_argv",
]

DEFAULT_IP = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_KERNEL_IDLE_TIMEOUT = 300
"""Seconds an unconnected kernel (a closed dashboard page's) may stay idle."""

MAX_CULL_INTERVAL = 60


def cull_interval(idle_timeout: int) -> int:
    """Seconds between two looks for idle kernels: a quarter of ``idle_timeout``, from 1
    to 60 (so a kernel goes at most a quarter later than its timeout, 60 s at worst)."""
    return max(1, min(MAX_CULL_INTERVAL, idle_timeout // 4))


def server_argv(
    site: Path,
    *,
    ip: str,
    port: int,
    token: str,
    open_browser: bool,
    data_dir: str | None = None,
    store_url: str | None = None,
    kernel_idle_timeout: int = DEFAULT_KERNEL_IDLE_TIMEOUT,
) -> list[str]:
    """The jupyter-server command-line options for serving ``site``: its root is the site,
    its default page the dashboard, and kernels without a connection idle for
    ``kernel_idle_timeout`` seconds are shut down (0: never). Raises ValueError for a
    negative timeout."""
    if kernel_idle_timeout < 0:
        raise ValueError(
            f"kernel_idle_timeout must be 0 or more seconds, not {kernel_idle_timeout}"
        )
    argv = [
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.open_browser={open_browser}",
        f"--ServerApp.root_dir={site}",
        f"--TaskopsApp.site={site}",
        f"--ServerApp.default_url={DASHBOARD_ROUTE}",
        "--Voila.port_retries=0",
        f"--MappingKernelManager.cull_idle_timeout={kernel_idle_timeout}",
        f"--MappingKernelManager.cull_interval={cull_interval(kernel_idle_timeout)}",
        # an open page holds a websocket to its kernel: never cull those
        "--MappingKernelManager.cull_connected=False",
    ]
    if data_dir:
        argv.append(f"--TaskopsApp.data_dir={data_dir}")
    if store_url:
        argv.append(f"--TaskopsApp.store_url={store_url}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")  # containers and CI run as root
    return argv


def serve(
    site: Path,
    *,
    ip: str = DEFAULT_IP,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    open_browser: bool = True,
    data_dir: str | None = None,
    store_url: str | None = None,
    kernel_idle_timeout: int = DEFAULT_KERNEL_IDLE_TIMEOUT,
    out: TextIO = sys.stdout,
) -> int:
    """Serve ``site`` until SIGTERM or SIGINT. The token is ``token``, else
    ``$TASKOPS_TOKEN``, else a random one, printed in the login and dashboard URLs (a token
    the user gave is not printed). Returns the exit status (0 after a clean stop)."""
    from jupyter_server.serverapp import ServerApp

    given = token or os.environ.get("TASKOPS_TOKEN")
    token = given or secrets.token_hex(24)
    # a token the user chose is theirs to know: only a generated one is printed
    shown = "<your token>" if given else token
    app: Any = ServerApp.instance()
    app.initialize(
        argv=server_argv(
            site.resolve(),
            ip=ip,
            port=port,
            token=token,
            open_browser=open_browser,
            data_dir=data_dir,
            store_url=store_url,
            kernel_idle_timeout=kernel_idle_timeout,
        )
    )

    def stop(signum: int, _frame: Any) -> None:
        app.log.info("taskops: signal %s, stopping (running jobs are stopped first)", signum)
        app.stop(from_signal=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host = "127.0.0.1" if ip in ("", "0.0.0.0") else ip  # a URL to reach "all interfaces"
    base = f"http://{host}:{app.port}{app.base_url.rstrip('/')}"
    out.write(
        f"taskops: serving {site.resolve()}\n"
        f"  dashboard: {base}{DASHBOARD_ROUTE}?token={shown}\n"
        f"  API:   {base}{API_BASE}/  (header 'Authorization: token {shown}')\n"
        f"  login: {base}/?token={shown}\n"
        "Stop with Ctrl+C or SIGTERM.\n"
    )
    out.flush()
    app.start()
    out.write("taskops: stopped\n")
    out.flush()
    return 0
