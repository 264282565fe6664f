"""``taskops serve``: one jupyter-server on one port with the taskops extension (REST API,
engine, runspace sampler) and Voila, behind the server's token login.

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

from taskops.server.handlers import API_BASE

__all__ = ["DEFAULT_IP", "DEFAULT_PORT", "serve", "server_argv"]

DEFAULT_IP = "127.0.0.1"
DEFAULT_PORT = 8765


def server_argv(
    site: Path,
    *,
    ip: str,
    port: int,
    token: str,
    open_browser: bool,
    data_dir: str | None = None,
    store_url: str | None = None,
) -> list[str]:
    """The jupyter-server command-line options for serving ``site``."""
    argv = [
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.open_browser={open_browser}",
        f"--ServerApp.root_dir={site}",
        f"--TaskopsApp.site={site}",
        "--Voila.port_retries=0",
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
    out: TextIO = sys.stdout,
) -> int:
    """Serve ``site`` until SIGTERM or SIGINT. The token is ``token``, else
    ``$TASKOPS_TOKEN``, else a random one, printed in the login URL (a token the user gave
    is not printed). Returns the exit status (0 after a clean stop)."""
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
        f"  API:   {base}{API_BASE}/  (header 'Authorization: token {shown}')\n"
        f"  login: {base}/?token={shown}\n"
        "Stop with Ctrl+C or SIGTERM.\n"
    )
    out.flush()
    app.start()
    out.write("taskops: stopped\n")
    out.flush()
    return 0
