"""The server's Jupyter kernels as runspaces (kind ``kernel``).

The kernel manager lives on the server's event loop and is not thread-safe, while the
runspace sampler and the API's service calls run in threads. So both ways in here hop
onto the loop: ``discover()`` (called by the sampler thread) reads the kernels there, and
``close()`` (called by ``ops.runspaces.close`` in a worker thread) shuts a kernel down
there, and each waits for the answer with a deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from taskops.errors import Conflict
from taskops.model import Availability, Runspace, RunspaceKind
from taskops.server.dashboard import DASHBOARD_ROUTE
from taskops.service.runspaces import DiscoveredProcess

__all__ = ["KernelRunspaces"]

_log = logging.getLogger("taskops.server")

T = TypeVar("T")

VOILA_PAGE_PREFIX = "/voila/render/"


class KernelRunspaces:
    """A ``RunspaceSource`` over a jupyter-server kernel manager, and the closer of its
    runspaces (``ops.runspaces.set_closer(RunspaceKind.KERNEL, kernels.close)``).

    Owner: the notebook path of the kernel's session, the Voila page that started it
    (``voila:<notebook>``, ``voila:dashboard``), else ``jupyter``. Availability: Busy
    while the kernel executes, else Available."""

    def __init__(
        self,
        kernel_manager: Any,
        session_manager: Any,
        loop: asyncio.AbstractEventLoop,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.kernel_manager = kernel_manager
        self.session_manager = session_manager
        self.loop = loop
        self.timeout = timeout
        self._kernel_of_pid: dict[int, str] = {}

    def _on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise

    # -- RunspaceSource --------------------------------------------------------------------

    def discover(self) -> list[DiscoveredProcess]:
        """The live kernels with a local process. Called off the loop; raises when the
        loop does not answer within the timeout (the sampler then keeps the rows)."""
        found = self._on_loop(self._kernels())
        self._kernel_of_pid = {process.pid: kernel_id for kernel_id, process in found}
        return [process for _, process in found]

    async def _kernels(self) -> list[tuple[str, DiscoveredProcess]]:
        paths: dict[str, str] = {}
        if self.session_manager is not None:
            for session in await self.session_manager.list_sessions():
                kernel = session.get("kernel") or {}
                if kernel.get("id") and session.get("path"):
                    paths[kernel["id"]] = session["path"]
        found = []
        for kernel_id in self.kernel_manager.list_kernel_ids():
            try:
                kernel = self.kernel_manager.get_kernel(kernel_id)
            except KeyError:  # shut down meanwhile
                continue
            pid = getattr(getattr(kernel, "provisioner", None), "pid", None)
            state = getattr(kernel, "execution_state", None)
            if not isinstance(pid, int) or state == "dead":
                continue
            owner = paths.get(kernel_id) or _voila_page(kernel) or "jupyter"
            found.append(
                (
                    kernel_id,
                    DiscoveredProcess(
                        pid=pid,
                        kind=RunspaceKind.KERNEL,
                        owner=owner,
                        purpose=f"Jupyter kernel {kernel_id} ({kernel.kernel_name})",
                        availability=(
                            Availability.BUSY if state == "busy" else Availability.AVAILABLE
                        ),
                    ),
                )
            )
        return found

    # -- closer ----------------------------------------------------------------------------

    def close(self, runspace: Runspace) -> str:
        """Shut the runspace's kernel down through the kernel manager (at once, as a
        force-close should), from a thread off the loop. Raises Conflict when no kernel
        of this server has its process. Returns ``"kill"``."""
        kernel_id = self._kernel_of_pid.get(runspace.pid or -1)
        if kernel_id is None:
            # the sampler may not have looked since the kernel started: look now
            self.discover()
            kernel_id = self._kernel_of_pid.get(runspace.pid or -1)
        if kernel_id is None:
            raise Conflict(
                f"runspace {runspace.id}: no kernel of this server has process {runspace.pid}"
            )
        _log.info("force-closing kernel %s (runspace %s)", kernel_id, runspace.id)
        self._on_loop(self.kernel_manager.shutdown_kernel(kernel_id, now=True))
        return "kill"


def _voila_page(kernel: Any) -> str | None:
    """``voila:<notebook>`` for a kernel Voila started (``voila:dashboard`` for the
    dashboard page's): Voila passes the page's path in the kernel's environment
    (``SCRIPT_NAME``), which the kernel manager keeps with its launch arguments."""
    launch = getattr(kernel, "_launch_args", None)
    env = launch.get("env") if isinstance(launch, dict) else None
    script = env.get("SCRIPT_NAME") if isinstance(env, dict) else None
    if not isinstance(script, str):
        return None
    if script.rstrip("/").endswith(DASHBOARD_ROUTE.rstrip("/")):
        return "voila:dashboard"
    if VOILA_PAGE_PREFIX not in script:
        return None
    return "voila:" + script.split(VOILA_PAGE_PREFIX, 1)[1]
