"""taskops: scheduled tasks, live jobs and runspaces, inside Jupyter.

::

    import taskops

    ops = taskops.open_site("path/to/site")
    ops.tasks.list(enabled=True)
"""

from taskops.errors import Conflict, Forbidden, InvalidInput, NotFound, TaskopsError
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
