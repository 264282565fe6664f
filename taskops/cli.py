"""The ``taskops`` command.

    taskops demo [--dir DIR] [--create-only] [serve options]
                                                 create the demo site when missing, serve it
    taskops serve [--site DIR] [--ip 127.0.0.1] [--port 8765] [--token T] [--no-browser]
                  [--kernel-idle-timeout SECONDS]
                                                 REST API + engine + dashboard until SIGTERM
    taskops tasks list [--site DIR] [--app A] [--enabled|--disabled] [--status S]
                       [--search TEXT] [--json]
    taskops tasks show|enable|disable|delete|restore|export ID [--site DIR] [--json]
    taskops tasks errors [--site DIR] [--json]   problems found in the site's files
    taskops tasks run ID [--site DIR] [--json]   run a task now (queued for the engine)
    taskops engine [--site DIR] [--grace S] [--lease-ttl S]
                                                 run the engine headless until SIGTERM/SIGINT
    taskops jobs list [--state S] [--owner O] [--search TEXT] [--task ID] [--limit N]
    taskops jobs show|stop|remove|restart ID
    taskops jobs tail ID [--stream stdout|stderr] [--follow]
    taskops jobs start [--owner O] [--name N] [--app A] -- COMMAND [ARG...]
    taskops runspaces list [--state S] [--owner O] [--min-age SECONDS] [--all]
    taskops runspaces show ID                    details and diagnostics (JSON)
    taskops runspaces close ID --confirm ID      force-close: the id typed twice

``--site`` defaults to ``$TASKOPS_SITE``. Exit status: 0 done, 2 bad input, 3 not found,
4 conflict, 1 any other error; the message goes to standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from taskops.errors import Conflict, InvalidInput, NotFound, TaskopsError
from taskops.model import Job, Task
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
    _show(task.to_dict(), out)


def _warn_site_errors(ops: TaskOps) -> None:
    for error in ops.site_errors():
        sys.stderr.write(f"taskops: warning: {error}\n")


def _open(args: argparse.Namespace) -> TaskOps:
    site = args.site or os.environ.get("TASKOPS_SITE")
    if not site:
        raise InvalidInput("no site: give --site DIR or set TASKOPS_SITE")
    return open_site(site)


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from taskops.demo import create_demo_site

    target = Path(args.dir).expanduser()
    created = create_demo_site(target)
    out.write(f"{'Created' if created else 'Using'} the demo site at {target.resolve()}\n\n")
    with open_site(target) as ops:
        _print_tasks(ops.tasks.list(), out)
        _warn_site_errors(ops)
    if args.create_only:
        out.write(
            f"\nNext: taskops serve --site {target}   (API, engine and dashboard until Ctrl+C)\n"
            f"      taskops jobs list --site {target}   (their jobs; or in Python: "
            f"taskops.open_site({str(target)!r}))\n"
        )
        return 0
    out.write("\n")
    return _serve(target, args, out)


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    site = args.site or os.environ.get("TASKOPS_SITE")
    if not site:
        raise InvalidInput("no site: give --site DIR or set TASKOPS_SITE")
    path = Path(site).expanduser()
    if not path.is_dir():
        raise InvalidInput(f"no site folder at {path}")
    return _serve(path, args, out)


def _serve(site: Path, args: argparse.Namespace, out: TextIO) -> int:
    # imported here, not at the top: the server's imports are too slow for every command
    from taskops.server.serve import DEFAULT_KERNEL_IDLE_TIMEOUT, serve

    idle = args.kernel_idle_timeout
    return serve(
        site,
        ip=args.ip,
        port=args.port,
        token=args.token,
        open_browser=not args.no_browser,
        kernel_idle_timeout=DEFAULT_KERNEL_IDLE_TIMEOUT if idle is None else idle,
        out=out,
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


def _print_jobs(jobs: list[Job], tz: str, out: TextIO) -> None:
    rows = [
        [
            str(j.id),
            j.name,
            j.state.value + (" (over time)" if j.over_time else ""),
            j.owner,
            _when(j.started_at, tz),
            f"{j.duration_seconds:.1f}s" if j.duration_seconds is not None else "-",
            "-" if j.exit_code is None else str(j.exit_code),
            f"{j.progress:.0%}" if j.progress is not None and not j.state.finished else "",
            (j.error or "")[:60],
        ]
        for j in jobs
    ]
    headers = ["ID", "NAME", "STATE", "OWNER", "STARTED", "DURATION", "EXIT", "PROGRESS", "ERROR"]
    _table(rows, headers, out)


def _dump(value: Any, out: TextIO) -> None:
    json.dump(value, out, indent=2)
    out.write("\n")


def _show(data: dict[str, Any], out: TextIO) -> None:
    width = max(len(k) for k in data)
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        out.write(f"{key.ljust(width)}  {shown if shown is not None else '-'}\n")


def _warn_no_engine(ops: TaskOps) -> None:
    status = ops.engine.status()
    if not status["running"]:
        sys.stderr.write(f"taskops: warning: {status['message']}\n")


def _report_queued(ops: TaskOps, job: Job, as_json: bool, out: TextIO) -> None:
    if as_json:
        _dump(job.to_dict(), out)
    else:
        out.write(f"Queued job {job.id} ({job.name})\n")
    _warn_no_engine(ops)


def _cmd_run(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        job = ops.tasks.run(args.id)
        _report_queued(ops, job, args.json, out)


def _cmd_engine(args: argparse.Namespace, out: TextIO) -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with _open(args) as ops:
            engine = ops.engine.start(
                wait=1.0, poll_interval=args.poll, lease_ttl=args.lease_ttl, stop_grace=args.grace
            )
            state = "active" if engine.active else "standing by (another engine holds the lease)"
            sys.stderr.write(f"taskops engine: {state} for {ops.site.root} (pid {os.getpid()})\n")
            sys.stderr.flush()
            was_active = engine.active
            while not stop.wait(0.5):
                if engine.active != was_active:
                    was_active = engine.active
                    state = "active" if was_active else "standing by"
                    sys.stderr.write(f"taskops engine: {state}\n")
                    sys.stderr.flush()
            sys.stderr.write("taskops engine: stopping (running jobs are stopped first)\n")
            sys.stderr.flush()
            ops.engine.stop()
            sys.stderr.write("taskops engine: stopped\n")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cmd_jobs_list(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        jobs = ops.jobs.list(
            state=args.state, owner=args.owner, search=args.search, task=args.task, limit=args.limit
        )
        if args.json:
            _dump([j.to_dict() for j in jobs], out)
        else:
            _print_jobs(jobs, ops.timezone, out)


def _cmd_jobs_show(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        data = ops.jobs.get(args.id).to_dict()
        data["output"] = ops.jobs.tail(args.id)
        if args.json:
            _dump(data, out)
        else:
            _show(data, out)


def _cmd_jobs_tail(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        if args.follow:
            for text in ops.jobs.follow(args.id, args.stream):
                out.write(text)
                out.flush()
        else:
            out.write(ops.jobs.tail(args.id, args.stream, max_bytes=args.bytes))
            out.flush()


def _cmd_jobs_action(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        if args.action == "remove":
            ops.jobs.remove(args.id)
            result: dict[str, Any] = {"id": args.id, "result": "removed"}
            text = f"Removed job {args.id}"
        else:
            job = ops.jobs.stop(args.id) if args.action == "stop" else ops.jobs.restart(args.id)
            result = job.to_dict()
            verb = "Job" if args.action == "stop" else "Restarted as job"
            text = f"{verb} {job.id} ({job.name}): {job.state.value}"
            if args.action == "restart" or not job.state.finished:
                _warn_no_engine(ops)
        if args.json:
            _dump(result, out)
        else:
            out.write(text + "\n")


def _cmd_jobs_start(args: argparse.Namespace, out: TextIO) -> None:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise InvalidInput("give the command to run after --")
    with _open(args) as ops:
        what: str | list[str] = command[0] if len(command) == 1 else command
        job = ops.jobs.start(what, owner=args.owner, name=args.name, app=args.app)
        _report_queued(ops, job, args.json, out)


def _cmd_runspaces_list(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        spaces = ops.runspaces.list(
            state=args.state,
            owner=args.owner,
            min_age=args.min_age,
            include_closed=args.all,
        )
        if args.json:
            _dump([r.to_dict() for r in spaces], out)
            return
        rows = [
            [
                str(r.id),
                r.kind.value,
                str(r.pid or "-"),
                r.state.value,
                r.availability.value,
                r.owner,
                f"{r.age_seconds:.0f}s",
                "-" if r.thread_count is None else str(r.thread_count),
                "-" if r.memory_mb is None else f"{r.memory_mb:.1f}",
                r.purpose or "",
            ]
            for r in spaces
        ]
        headers = ["ID", "KIND", "PID", "STATE", "AVAILABILITY", "OWNER", "AGE", "THREADS"]
        _table(rows, [*headers, "MEMORY MB", "PURPOSE"], out)


def _cmd_runspaces_show(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        try:
            data = ops.runspaces.diagnostics(args.id)
        except Conflict:  # the process is gone: what the store knows still helps
            data = ops.runspaces.get(args.id).to_dict()
        _dump(data, out)


def _cmd_runspaces_close(args: argparse.Namespace, out: TextIO) -> None:
    with _open(args) as ops:
        space = ops.runspaces.close(args.id, args.confirm)
        if args.json:
            _dump(space.to_dict(), out)
        else:
            out.write(f"Closed runspace {space.id} (pid {space.pid}): {space.state.value}\n")


def _seconds(text: str) -> int:
    """argparse type: a whole number of seconds, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskops", description="The taskops console.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serving = argparse.ArgumentParser(add_help=False)
    serving.add_argument("--ip", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serving.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    serving.add_argument(
        "--token", help="the login token (default: $TASKOPS_TOKEN, else a random one, printed)"
    )
    serving.add_argument("--no-browser", action="store_true", help="do not open a browser")
    serving.add_argument(
        "--kernel-idle-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="shut down kernels no page is connected to (closed dashboard pages) after this "
        "long idle; 0: never (default 300)",
    )

    demo = commands.add_parser(
        "demo", parents=[serving], help="create the demo site when missing, and serve it"
    )
    demo.add_argument("--dir", default="taskops-demo", help="where (default ./taskops-demo)")
    demo.add_argument(
        "--create-only", action="store_true", help="create the site and list its tasks; no server"
    )
    demo.set_defaults(func=_cmd_demo)

    serve = commands.add_parser(
        "serve",
        parents=[serving],
        help="serve a site: REST API, engine and dashboard in one jupyter-server",
    )
    serve.add_argument("--site", help="the site folder (default: $TASKOPS_SITE)")
    serve.set_defaults(func=_cmd_serve)

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
    run = actions.add_parser("run", parents=[common], help="run a task now")
    run.add_argument("id", help="the task id, <app>.<name>")
    run.set_defaults(func=_cmd_run)

    engine = commands.add_parser(
        "engine", parents=[common], help="run the engine headless until SIGTERM or SIGINT"
    )
    engine.add_argument("--poll", type=float, default=0.2, help="seconds between store polls")
    engine.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="seconds a stopped job gets between SIGTERM and SIGKILL (default 5)",
    )
    engine.add_argument(
        "--lease-ttl",
        type=float,
        default=10.0,
        help="seconds after its last heartbeat before a standby engine takes over (default 10)",
    )
    engine.set_defaults(func=_cmd_engine)

    jobs = commands.add_parser("jobs", help="list, follow, stop and remove jobs")
    job_actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = job_actions.add_parser("list", parents=[common], help="list jobs, newest first")
    listing.add_argument("--state", help="Queued, Running, Completed, Failed, Stopped, Terminated")
    listing.add_argument("--owner", help="TaskEngine, Manual, AppInit or an app")
    listing.add_argument("--search", help="text in the name or task id")
    listing.add_argument("--task", help="jobs of one task id")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=_cmd_jobs_list)
    show = job_actions.add_parser("show", parents=[common], help="one job with its output tail")
    show.add_argument("id")
    show.set_defaults(func=_cmd_jobs_show)
    tail = job_actions.add_parser("tail", parents=[common], help="a job's output")
    tail.add_argument("id")
    tail.add_argument("--stream", choices=["stdout", "stderr"], default="stdout")
    tail.add_argument("--follow", "-f", action="store_true", help="until the job ends")
    tail.add_argument("--bytes", type=int, default=8192, help="how much of the end to show")
    tail.set_defaults(func=_cmd_jobs_tail)
    for name, help_text in (
        ("stop", "stop a job (SIGTERM to its group, grace, SIGKILL)"),
        ("remove", "remove a finished job from the list"),
        ("restart", "run the task of a failed job again"),
    ):
        sub = job_actions.add_parser(name, parents=[common], help=help_text)
        sub.add_argument("id")
        sub.set_defaults(func=_cmd_jobs_action)
    start = job_actions.add_parser("start", parents=[common], help="queue an ad-hoc job")
    start.add_argument("--owner", default="Manual")
    start.add_argument("--name")
    start.add_argument("--app", default="global")
    start.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...] or a script")
    start.set_defaults(func=_cmd_jobs_start)

    spaces = commands.add_parser("runspaces", help="inspect and force-close runspaces")
    space_actions = spaces.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = space_actions.add_parser("list", parents=[common], help="list runspaces")
    listing.add_argument("--state")
    listing.add_argument("--owner")
    listing.add_argument("--min-age", type=float, help="seconds")
    listing.add_argument("--all", action="store_true", help="closed ones of the last day too")
    listing.set_defaults(func=_cmd_runspaces_list)
    show = space_actions.add_parser("show", parents=[common], help="details and diagnostics")
    show.add_argument("id", type=int)
    show.set_defaults(func=_cmd_runspaces_show)
    close = space_actions.add_parser("close", parents=[common], help="force-close a runspace")
    close.add_argument("id", type=int)
    close.add_argument("--confirm", required=True, help="the runspace id again, to confirm")
    close.set_defaults(func=_cmd_runspaces_close)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status = args.func(args, sys.stdout)
    except TaskopsError as exc:
        sys.stderr.write(f"taskops: error: {exc}\n")
        for kind, code in EXIT_CODES:
            if isinstance(exc, kind):
                return code
        return 1
    except BrokenPipeError:  # the reader went away (`taskops jobs list | head`)
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep exit from flushing again
        return 0
    except OSError as exc:  # a folder that cannot be read or written, a full disk
        sys.stderr.write(f"taskops: error: {exc}\n")
        return 1
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
