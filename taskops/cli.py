"""The ``taskops`` command.

    taskops demo [--dir DIR]                     create the demo site and list its tasks
    taskops tasks list [--site DIR] [--app A] [--enabled|--disabled] [--status S]
                       [--search TEXT] [--json]
    taskops tasks show|enable|disable|delete|restore|export ID [--site DIR] [--json]
    taskops tasks errors [--site DIR] [--json]   problems found in the site's files

``--site`` defaults to ``$TASKOPS_SITE``. Exit status: 0 done, 2 bad input, 3 not found,
4 conflict, 1 any other error; the message goes to standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from taskops.errors import Conflict, InvalidInput, NotFound, TaskopsError
from taskops.model import Task
from taskops.service import TaskOps, open_site

__all__ = ["main"]

EXIT_CODES: list[tuple[type[TaskopsError], int]] = [(InvalidInput, 2), (NotFound, 3), (Conflict, 4)]


def _when(value: datetime | None, tz: str) -> str:
    if value is None:
        return "-"
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")


def _table(rows: list[list[str]], headers: list[str], out: TextIO) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out.write(line.rstrip() + "\n")
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _print_tasks(tasks: list[Task], out: TextIO) -> None:
    rows = [
        [
            t.id,
            t.app,
            t.spec.schedule,
            t.schedule_text,
            t.status.value,
            _when(t.last_run, t.timezone),
            _when(t.next_run, t.timezone),
        ]
        for t in tasks
    ]
    _table(rows, ["ID", "APP", "SCHEDULE", "WHEN", "STATUS", "LAST RUN", "NEXT RUN"], out)


def _print_task(task: Task, out: TextIO) -> None:
    data = task.to_dict()
    width = max(len(k) for k in data)
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        out.write(f"{key.ljust(width)}  {shown if shown is not None else '-'}\n")


def _warn_site_errors(ops: TaskOps) -> None:
    for error in ops.site_errors():
        sys.stderr.write(f"taskops: warning: {error}\n")


def _open(args: argparse.Namespace) -> TaskOps:
    site = args.site or os.environ.get("TASKOPS_SITE")
    if not site:
        raise InvalidInput("no site: give --site DIR or set TASKOPS_SITE")
    return open_site(site)


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> None:
    from taskops.demo import create_demo_site

    target = Path(args.dir).expanduser()
    created = create_demo_site(target)
    out.write(f"{'Created' if created else 'Using'} the demo site at {target.resolve()}\n\n")
    with open_site(target) as ops:
        _print_tasks(ops.tasks.list(), out)
        _warn_site_errors(ops)
    out.write(
        f"\nNext: taskops tasks show <ID> --site {target}   "
        f"(or in Python: taskops.open_site({str(target)!r}))\n"
    )


def _cmd_list(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        tasks = ops.tasks.list(
            app=args.app, enabled=args.enabled, status=args.status, search=args.search
        )
        if args.json:
            json.dump([t.to_dict() for t in tasks], out, indent=2)
            out.write("\n")
        else:
            _print_tasks(tasks, out)
        _warn_site_errors(ops)


def _single(action: Callable[[TaskOps, str], Any]) -> Callable[[argparse.Namespace, TextIO], None]:
    def run(args: argparse.Namespace, out: TextIO) -> None:
        with _open(args) as ops:
            result = action(ops, args.id)
            if isinstance(result, Task):
                if args.json:
                    json.dump(result.to_dict(), out, indent=2)
                    out.write("\n")
                else:
                    _print_task(result, out)
            elif isinstance(result, dict):
                json.dump(result, out, indent=2)
                out.write("\n")
            elif args.json:
                json.dump({"id": args.id, "result": "deleted"}, out)
                out.write("\n")
            else:
                out.write(f"Deleted {args.id}\n")

    return run


def _cmd_errors(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        errors = ops.site_errors()
        if args.json:
            json.dump([e.to_dict() for e in errors], out, indent=2)
            out.write("\n")
        elif not errors:
            out.write("No problems found in the site's files.\n")
        else:
            for error in errors:
                out.write(f"{error}\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskops", description="The taskops console.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="create the demo site and list its tasks")
    demo.add_argument("--dir", default="taskops-demo", help="where (default ./taskops-demo)")
    demo.set_defaults(func=_cmd_demo)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--site", help="the site folder (default: $TASKOPS_SITE)")
    common.add_argument("--json", action="store_true", help="answer in JSON")

    tasks = commands.add_parser("tasks", help="list and change tasks")
    actions = tasks.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list tasks")
    listing.add_argument("--app")
    group = listing.add_mutually_exclusive_group()
    group.add_argument("--enabled", dest="enabled", action="store_const", const=True)
    group.add_argument("--disabled", dest="enabled", action="store_const", const=False)
    listing.add_argument("--status", help="Enabled, Disabled or Running")
    listing.add_argument("--search", help="text in the name or description")
    listing.set_defaults(func=_cmd_list)

    single: dict[str, tuple[str, Callable[[TaskOps, str], Any]]] = {
        "show": ("show one task", lambda ops, i: ops.tasks.get(i)),
        "enable": ("enable a task", lambda ops, i: ops.tasks.enable(i)),
        "disable": ("disable a task", lambda ops, i: ops.tasks.disable(i)),
        "delete": ("delete a custom task, hide a default one", lambda ops, i: ops.tasks.delete(i)),
        "restore": ("bring back a deleted default task", lambda ops, i: ops.tasks.restore(i)),
        "export": ("print a task's configuration as JSON", lambda ops, i: ops.tasks.export(i)),
    }
    for name, (help_text, action) in single.items():
        sub = actions.add_parser(name, parents=[common], help=help_text)
        sub.add_argument("id", help="the task id, <app>.<name>")
        sub.set_defaults(func=_single(action))

    errors = actions.add_parser("errors", parents=[common], help="problems in the site's files")
    errors.set_defaults(func=_cmd_errors)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.func(args, sys.stdout)
    except TaskopsError as exc:
        sys.stderr.write(f"taskops: error: {exc}\n")
        for kind, code in EXIT_CODES:
            if isinstance(exc, kind):
                return code
        return 1
    except OSError as exc:  # a folder that cannot be read or written, a full disk
        sys.stderr.write(f"taskops: error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
