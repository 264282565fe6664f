"""taskops: scheduled tasks, live jobs and runspaces, inside Jupyter.

::

    import taskops

    ops = taskops.open_site("path/to/site")
    ops.tasks.list(enabled=True)
"""

from typing import TYPE_CHECKING, Any

from taskops.errors import Conflict, Forbidden, InvalidInput, NotFound, TaskopsError

if TYPE_CHECKING:
    from taskops.service import TaskOps, open_site

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "TaskOps",
    "TaskopsError",
    "__version__",
    "open_site",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The service (SQLAlchemy, the engine) is imported on first use, so that a module of
    # the package that does not need it (the dashboard page's placeholder, the runner's
    # helpers) is imported without it.
    if name in ("TaskOps", "open_site"):
        from taskops import service

        return getattr(service, name)
    raise AttributeError(f"module 'taskops' has no attribute {name!r}")
