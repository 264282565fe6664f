"""A site: its folders, its apps, and the default tasks its YAML files declare.

::

    <site>/config/tasks.yaml                 global tasks (app "global")
    <site>/apps/<App>/config/tasks.yaml      the tasks of each app
    <site>/data/                             taskops.db, config/app.json, logs/, jobs/

``Catalog`` reads the YAML files and keeps what it read until a file changes. One broken
file hides only its own tasks; every problem is kept as a ``SiteError`` naming the file,
the task and the field.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from taskops.cron import load_timezone
from taskops.errors import InvalidInput, Problem
from taskops.model import GLOBAL_APP, NAME_PATTERN, SiteError
from taskops.spec import normalize_spec

__all__ = ["Catalog", "CatalogSnapshot", "DefaultTask", "Site", "system_timezone"]

TASKS_FILE = Path("config") / "tasks.yaml"
# libyaml's safe loader when present: ten times faster on large files.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def system_timezone() -> str:
    """The machine's IANA timezone name: ``$TZ``, else ``/etc/localtime``'s target, else UTC."""
    candidates: list[str] = []
    if os.environ.get("TZ"):
        candidates.append(os.environ["TZ"].lstrip(":"))
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        try:
            load_timezone(name)
        except InvalidInput:
            continue
        return name
    return "UTC"


class Site:
    """The folders of one site. Paths only: reading YAML is the ``Catalog``'s job."""

    def __init__(self, root: Path | str, *, data_dir: Path | str | None = None) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise InvalidInput(
                f"no site folder at {root}",
                problems=[Problem(field="site", message=f"{root} is not a folder")],
            )
        self.root = root.resolve()
        self.data_dir = Path(data_dir).expanduser().resolve() if data_dir else self.root / "data"

    def __repr__(self) -> str:
        return f"Site({str(self.root)!r})"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "taskops.db"

    @property
    def settings_file(self) -> Path:
        return self.data_dir / "config" / "app.json"

    @property
    def audit_log(self) -> Path:
        return self.data_dir / "logs" / "audit.log"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    def app_dir(self, app: str) -> Path:
        """The folder of an app (the site folder for ``global``)."""
        return self.root if app == GLOBAL_APP else self.root / "apps" / app

    def tasks_file(self, app: str) -> Path:
        return self.app_dir(app) / TASKS_FILE

    def apps(self) -> list[str]:
        """``global`` first, then every app folder under ``apps/`` with a valid name, sorted."""
        found: list[str] = []
        apps_dir = self.root / "apps"
        if apps_dir.is_dir():
            for entry in apps_dir.iterdir():
                if entry.is_dir() and NAME_PATTERN.match(entry.name) and entry.name != GLOBAL_APP:
                    found.append(entry.name)
        return [GLOBAL_APP, *sorted(found, key=str.lower)]

    def resolve_script(self, app: str, script_path: str) -> Path:
        """The absolute script file of ``script_path`` in ``app``.

        Relative to the app's folder; ``..`` is fine while the result stays inside the site.
        Raises InvalidInput (field ``scriptPath``) for an absolute path or one that resolves
        outside the site, through ``..`` or a symlink. The file need not exist.
        """
        if os.path.isabs(script_path) or script_path.startswith("~"):
            raise InvalidInput(
                f"scriptPath {script_path!r} must be relative to the app folder",
                problems=[Problem(field="scriptPath", message="must be a relative path")],
            )
        resolved = (self.app_dir(app) / script_path).resolve()
        if not resolved.is_relative_to(self.root):
            raise InvalidInput(
                f"scriptPath {script_path!r} resolves outside the site ({resolved})",
                problems=[
                    Problem(field="scriptPath", message="resolves to a file outside the site")
                ],
            )
        return resolved

    def script_path_for(self, app: str, script: Path) -> str:
        """The script path that reaches ``script`` from ``app``'s folder (for copied tasks)."""
        return Path(os.path.relpath(script, self.app_dir(app))).as_posix()


@dataclass(frozen=True, kw_only=True)
class DefaultTask:
    """A task declared in a site's YAML: its normalized spec and where it was read."""

    id: str
    app: str
    spec: Mapping[str, Any]
    file: Path
    file_mtime: datetime


@dataclass(frozen=True, kw_only=True)
class CatalogSnapshot:
    """Everything the YAML files said at one moment."""

    tasks: Mapping[str, DefaultTask]
    errors: list[SiteError]
    timezone: str
    apps: list[str]


def _rel(site: Site, path: Path) -> str:
    try:
        return path.relative_to(site.root).as_posix()
    except ValueError:
        return str(path)


class Catalog:
    """The site's default tasks, read from YAML and re-read when a file changes.

    Thread-safe. ``snapshot()`` looks at each tasks file's size and modification time and
    parses only when something changed.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self._lock = threading.Lock()
        self._signature: tuple[Any, ...] | None = None
        self._snapshot: CatalogSnapshot | None = None

    def _files(self, apps: list[str]) -> Iterator[tuple[str, Path]]:
        for app in apps:
            yield app, self.site.tasks_file(app)

    def _signature_of(self, apps: list[str]) -> tuple[Any, ...]:
        sig: list[Any] = []
        for app, path in self._files(apps):
            try:
                st = path.stat()
                sig.append((app, st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                sig.append((app, None))
        return tuple(sig)

    def signature(self) -> tuple[Any, ...]:
        """Size, modification time and inode of every tasks file: changes when any does."""
        return self._signature_of(self.site.apps())

    def snapshot(self) -> CatalogSnapshot:
        apps = self.site.apps()
        signature = self._signature_of(apps)
        with self._lock:
            if self._snapshot is None or signature != self._signature:
                self._snapshot = self._load(apps)
                self._signature = signature
            return self._snapshot

    def _load(self, apps: list[str]) -> CatalogSnapshot:
        errors: list[SiteError] = []
        documents: dict[str, tuple[Path, Any, datetime]] = {}
        for app, path in self._files(apps):
            if not path.exists():
                continue
            rel = _rel(self.site, path)
            try:
                text = path.read_text(encoding="utf-8")
                mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
                document = yaml.load(text, Loader=_YAML_LOADER)
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(SiteError(file=rel, app=app, message=f"cannot read: {exc}"))
                continue
            except yaml.YAMLError as exc:
                errors.append(SiteError(file=rel, app=app, message=f"invalid YAML: {exc}"))
                continue
            documents[app] = (path, document, mtime)

        timezone = self._site_timezone(documents.get(GLOBAL_APP), errors)
        tasks: dict[str, DefaultTask] = {}
        for app, (path, document, mtime) in documents.items():
            for task in self._tasks_of(app, path, document, mtime, timezone, errors):
                tasks[task.id] = task
        return CatalogSnapshot(tasks=tasks, errors=errors, timezone=timezone, apps=apps)

    def _site_timezone(
        self, global_doc: tuple[Path, Any, datetime] | None, errors: list[SiteError]
    ) -> str:
        if global_doc is None or not isinstance(global_doc[1], Mapping):
            return system_timezone()
        value = global_doc[1].get("timezone")
        if value is None:
            return system_timezone()
        try:
            if not isinstance(value, str):
                raise InvalidInput(f"must be an IANA timezone name, not {value!r}")
            load_timezone(value)
            return value
        except InvalidInput as exc:
            errors.append(
                SiteError(
                    file=_rel(self.site, global_doc[0]),
                    app=GLOBAL_APP,
                    field="timezone",
                    message=str(exc),
                )
            )
        return system_timezone()

    def _tasks_of(
        self,
        app: str,
        path: Path,
        document: Any,
        mtime: datetime,
        timezone: str,
        errors: list[SiteError],
    ) -> Iterator[DefaultTask]:
        rel = _rel(self.site, path)
        if document is None:
            return
        allowed_top = {"tasks", "timezone"} if app == GLOBAL_APP else {"tasks"}
        if not isinstance(document, Mapping):
            errors.append(
                SiteError(file=rel, app=app, message="must be a mapping with a 'tasks' list")
            )
            return
        for key in document:
            if key not in allowed_top:
                errors.append(
                    SiteError(
                        file=rel,
                        app=app,
                        field=str(key),
                        message=f"unknown top-level key (known: {', '.join(sorted(allowed_top))})",
                    )
                )
        entries = document.get("tasks") or []
        if not isinstance(entries, list):
            errors.append(SiteError(file=rel, app=app, field="tasks", message="must be a list"))
            return
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            label = entry.get("name") if isinstance(entry, Mapping) else None
            label = str(label) if label is not None else f"#{index + 1}"
            try:
                spec = normalize_spec(entry, site_timezone=timezone)
                self.site.resolve_script(app, spec["scriptPath"])
            except InvalidInput as exc:
                for problem in exc.problems or [Problem(field="task", message=str(exc))]:
                    errors.append(
                        SiteError(
                            file=rel,
                            app=app,
                            task=label,
                            field=problem.field,
                            message=problem.message,
                        )
                    )
                continue
            if spec["name"] in seen:
                errors.append(
                    SiteError(
                        file=rel,
                        app=app,
                        task=label,
                        field="name",
                        message="a task of this name is declared earlier in the file",
                    )
                )
                continue
            seen.add(spec["name"])
            yield DefaultTask(
                id=f"{app}.{spec['name']}", app=app, spec=spec, file=path, file_mtime=mtime
            )
