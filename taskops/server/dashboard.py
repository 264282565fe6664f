"""The dashboard page: ``dashboards/taskops.ipynb`` rendered by Voila at the stable URL
``/apps/WebHostTaskManagement/``, behind the server's login and the ``system_admin`` role.

The notebook ships inside the package (``taskops/dashboards/taskops.ipynb`` in a wheel) or,
in an editable install, lives in the repository's ``dashboards/`` folder; it is never inside
the served site (the server's contents root). So the page is served by our own subclass of
Voila's page handler, which reads the notebook through a contents manager rooted at the
notebook's folder, while its kernel starts in the server's root (the site folder), like a
kernel of any notebook of the site. Voila's own server extension provides the rest of the
page (its static files, templates and the kernels' websockets).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.services.contents.filemanager import AsyncFileContentsManager
from tornado import web
from voila.configuration import VoilaConfiguration
from voila.paths import collect_template_paths
from voila.server_extension import load_config_file
from voila.tornado.handler import TornadoVoilaHandler

from taskops.server.auth import admin_refusal, audit_name
from taskops.server.handlers import NO_SITE

if TYPE_CHECKING:
    from taskops.server.app import ServerHost

__all__ = ["DASHBOARD_ROUTE", "DashboardHandler", "dashboard_handlers", "dashboard_notebook"]

DASHBOARD_ROUTE = "/apps/WebHostTaskManagement/"
"""Where a served site's dashboard is, relative to the server's base URL."""

NOTEBOOK_NAME = "taskops.ipynb"

_PACKAGE = Path(__file__).resolve().parents[1]


def dashboard_notebook() -> Path:
    """The dashboard notebook: the copy packaged in a wheel (``taskops/dashboards/``), else
    the repository's ``dashboards/taskops.ipynb`` beside the package (an editable install).
    Raises FileNotFoundError naming both places when neither exists."""
    candidates = [
        _PACKAGE / "dashboards" / NOTEBOOK_NAME,
        _PACKAGE.parent / "dashboards" / NOTEBOOK_NAME,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "the dashboard notebook is missing: looked for " + " and ".join(map(str, candidates))
    )


class DashboardHandler(TornadoVoilaHandler):  # type: ignore[misc]  # voila is untyped
    """Voila's page handler for the one dashboard notebook, for ``system_admin`` users.

    Without a login it redirects to the server's login page; a logged-in user without the
    role gets a 403 page; without a site, the notebook or Voila's server extension it
    answers 503; each error page says why."""

    def initialize(self, *, notebook_contents: Any, unavailable: str | None, **kwargs: Any) -> None:
        super().initialize(**kwargs)
        self._notebook_contents = notebook_contents
        self._unavailable = unavailable

    @property
    def contents_manager(self) -> Any:
        # the notebook is read from its own folder, not from the server's root (the site)
        return self._notebook_contents

    async def prepare(self) -> None:
        await super().prepare()
        user = self.current_user
        if self._finished or not user:
            return  # get() (``@web.authenticated``) sends whoever is not logged in to login
        host: ServerHost | None = self.settings.get("taskops_host")
        if host is None:
            raise web.HTTPError(503, NO_SITE)
        refusal = admin_refusal(user, host.roles, host.default_roles)
        if refusal:
            raise web.HTTPError(403, refusal)
        if self._unavailable:
            raise web.HTTPError(503, self._unavailable)
        if "voila_jinja2_env" not in self.settings:
            raise web.HTTPError(
                503,
                "Voila's server extension is not loaded in this server (voila.server_extension)",
            )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Voila's error template shows no message: say why in a page of our own
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else ""
        title = f"{status_code}: {self._reason}"
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n<p>{html.escape(message)}</p></body></html>\n"
        )


USER_VARIABLE = "TASKOPS_USER"
"""Who a dashboard kernel's changes are audited as (``taskops.open_site`` reads it)."""


def _as_the_user(handler: Any, notebook: Any, cwd: str) -> None:
    """Voila's prelaunch hook: the page's kernel acts as the user who opened it, so the
    audit log names them. A first cell, run before the dashboard's, sets the variable."""
    import nbformat

    name = audit_name(handler.current_user)
    source = f"import os\nos.environ[{USER_VARIABLE!r}] = {name!r}"
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["taskops-user"]})  # type: ignore[no-untyped-call]
    notebook.cells.insert(0, cell)


def dashboard_handlers(serverapp: Any) -> list[tuple[str, type[DashboardHandler], dict[str, Any]]]:
    """The dashboard's route (with and without its trailing slash) and its handler's
    arguments: what Voila's own server extension gives its page handler (the server's
    config, the template paths, the Voila configuration), plus the notebook."""
    voila_configuration = VoilaConfiguration(parent=serverapp)
    local_config = load_config_file()  # voila.json / voila.py, as Voila's extension reads
    if local_config is not None:
        voila_configuration.update_config(local_config)
    template_paths = collect_template_paths(["voila", "nbconvert"], voila_configuration.template)
    voila_configuration.prelaunch_hook = _as_the_user
    unavailable: str | None = None
    try:
        notebook = dashboard_notebook()
    except FileNotFoundError as exc:  # a broken install: the server runs, the page says why
        serverapp.log.error("taskops: %s", exc)
        unavailable, notebook = str(exc), _PACKAGE / NOTEBOOK_NAME
    contents = AsyncFileContentsManager(root_dir=str(notebook.parent), log=serverapp.log)
    kwargs: dict[str, Any] = {
        "config": serverapp.config,
        "template_paths": template_paths,
        "voila_configuration": voila_configuration,
        # relative to the contents root: Voila starts the kernel in its folder, "" (the
        # server's root, the site folder)
        "notebook_path": notebook.name,
        "notebook_contents": contents,
        "unavailable": unavailable,
    }
    return [(DASHBOARD_ROUTE.rstrip("/") + "/?", DashboardHandler, kwargs)]
