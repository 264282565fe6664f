"""``TaskopsApp``: the jupyter-server extension that serves the REST API and the dashboard
page (``/apps/WebHostTaskManagement/``) of one site and hosts its engine and runspace sampler.

Enabled on install (``jupyter_server_config.d/taskops.json``); with no site configured
(``TaskopsApp.site`` or ``$TASKOPS_SITE``) it stays idle and its routes answer 503. With a
site, ``initialize_settings`` opens it, publishes it to the kernels the server starts
(``TASKOPS_SITE`` and friends, so ``taskops.open_site()`` finds it), registers the
server's kernels as runspaces, and starts the engine in its own threads; ``stop_extension``
stops the engine (its running jobs first) off the event loop when the server ends.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, List, Unicode, default

from taskops.model import RunspaceKind
from taskops.server.auth import ADMIN_ROLE
from taskops.server.dashboard import dashboard_handlers
from taskops.server.handlers import handlers
from taskops.server.kernels import KernelRunspaces
from taskops.service import TaskOps, open_site

__all__ = ["ServerHost", "TaskopsApp"]

SERVER_USER = "taskops-server"
"""Who the server's own changes are audited as (none so far: every change is a user's)."""


class ServerHost:
    """What the handlers share: the site's ``TaskOps``, the role mapping and the worker
    threads that run service calls off the event loop."""

    def __init__(
        self,
        ops: TaskOps,
        *,
        roles: dict[str, list[str]],
        default_roles: list[str],
        workers: int,
    ) -> None:
        self.ops = ops
        self.roles = roles
        self.default_roles = default_roles
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="taskops-api")


class TaskopsApp(ExtensionApp):
    """The taskops REST API, engine and runspace sampler inside jupyter-server."""

    name = "taskops"
    description = "taskops: scheduled tasks, live jobs and runspaces of one site"
    load_other_extensions = True

    site = Unicode(
        "",
        help="The site folder to serve (default: $TASKOPS_SITE). Empty: the extension idles.",
    ).tag(config=True)
    data_dir = Unicode(
        "",
        help="The site's data folder (default: $TASKOPS_DATA_DIR, else <site>/data).",
    ).tag(config=True)
    store_url = Unicode(
        "",
        help="SQLAlchemy URL of the store (default: $TASKOPS_STORE_URL, else SQLite in the "
        "data folder). A PostgreSQL URL lets several hosts share one site.",
    ).tag(config=True)
    roles = Dict(
        key_trait=Unicode(),
        value_trait=List(Unicode()),
        help="User name, or 'group:<name>' for a JupyterHub group -> its roles. Every route "
        f"requires the {ADMIN_ROLE!r} role. Default: under JupyterHub, the server's owner "
        f"($JUPYTERHUB_USER) holds {ADMIN_ROLE!r}; else empty (see default_roles).",
    ).tag(config=True)
    default_roles = List(
        Unicode(),
        help="The roles of an authenticated user whom `roles` names neither by name nor by "
        f"group. Default: [{ADMIN_ROLE!r}] on a single-user server (whoever holds its token "
        "or password is its administrator); [] under JupyterHub.",
    ).tag(config=True)
    run_engine = Bool(
        True,
        help="Host the site's engine (it stands by while another engine holds the site).",
    ).tag(config=True)
    engine_poll = Float(0.2, help="Seconds between the engine's looks at the store.").tag(
        config=True
    )
    stop_grace = Float(
        5.0, help="Seconds between SIGTERM and SIGKILL when the engine stops a job."
    ).tag(config=True)
    kernel_runspaces = Bool(
        True, help="Show the server's Jupyter kernels as runspaces (kind 'kernel')."
    ).tag(config=True)
    sample_interval = Float(2.0, help="Seconds between two samples of the runspaces.").tag(
        config=True
    )
    workers = Int(16, help="Threads that run API calls off the event loop.").tag(config=True)

    @default("roles")
    def _default_roles_map(self) -> dict[str, list[str]]:
        hub_user = os.environ.get("JUPYTERHUB_USER")
        return {hub_user: [ADMIN_ROLE]} if hub_user else {}

    @default("default_roles")
    def _default_default_roles(self) -> list[str]:
        return [] if os.environ.get("JUPYTERHUB_USER") else [ADMIN_ROLE]

    host: ServerHost | None = None
    _sampler: Any = None

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())
        self.handlers.extend(dashboard_handlers(self.serverapp))

    def initialize_settings(self) -> None:
        site = self.site or os.environ.get("TASKOPS_SITE", "")
        self.settings["taskops_host"] = None
        if not site:
            self.log.info("taskops: no site configured (TaskopsApp.site or TASKOPS_SITE)")
            return
        # open_site falls back on $TASKOPS_DATA_DIR and $TASKOPS_STORE_URL itself
        ops = open_site(
            site,
            data_dir=self.data_dir or None,
            store_url=self.store_url or None,
            user=SERVER_USER,
        )
        # the kernels this server starts (notebooks, the dashboard) open the same site
        os.environ["TASKOPS_SITE"] = str(ops.site.root)
        os.environ["TASKOPS_DATA_DIR"] = str(ops.site.data_dir)
        if self.store_url:
            os.environ["TASKOPS_STORE_URL"] = self.store_url
        self.host = ServerHost(
            ops,
            roles=dict(self.roles),
            default_roles=list(self.default_roles),
            workers=self.workers,
        )
        self.settings["taskops_host"] = self.host
        sources = []
        if self.kernel_runspaces:
            assert self.serverapp is not None
            kernels = KernelRunspaces(
                self.serverapp.kernel_manager,
                getattr(self.serverapp, "session_manager", None),
                cast(Any, self.serverapp.io_loop).asyncio_loop,
            )
            ops.runspaces.set_closer(RunspaceKind.KERNEL, kernels.close)
            sources.append(kernels)
        sampler = ops.runspaces.sampler(sources=sources, interval=self.sample_interval)
        if self.run_engine:
            # the engine runs in its own threads (the sampler with it); wait=0: do not wait
            # here for its lease
            ops.engine.start(
                wait=0.0,
                sampler=sampler,
                poll_interval=self.engine_poll,
                stop_grace=self.stop_grace,
            )
        else:
            self._sampler = sampler
            sampler.start()
        self.log.info("taskops: serving site %s (engine: %s)", ops.site.root, self.run_engine)

    async def stop_extension(self) -> None:
        """Stop the sampler and the engine (running jobs are stopped first), off the loop,
        so the kernels' discovery can still hop onto it meanwhile."""
        host = self.host
        if host is None:
            return
        self.log.info("taskops: stopping the engine and its running jobs")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown, host)
        host.executor.shutdown(wait=False, cancel_futures=True)
        self.host = None

    def _shutdown(self, host: ServerHost) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        host.ops.close()
