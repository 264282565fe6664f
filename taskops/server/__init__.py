"""The jupyter-server extension: the REST API, and the engine and runspace sampler of the
served site. Enable it with ``ServerApp.jpserver_extensions = {"taskops.server": True}``
(installing taskops does this: ``jupyter_server_config.d/taskops.json``)."""

from typing import Any

__all__ = ["_jupyter_server_extension_points"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from taskops.server.app import TaskopsApp

    return [{"module": "taskops.server.app", "app": TaskopsApp}]
