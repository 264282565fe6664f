"""The bootstrap of a Python job: ``python _runner.py <script.py>``, executed by path, or
forked by the engine's fork server (``python _runner.py --serve``, see :func:`serve`), which
runs the same :func:`main` in a child that has the job's session, files, folder and
environment.

The engine starts it in the job's own session, with the task's app folder as the working
directory and stdout and stderr going to ``<job dir>/stdout.log`` and ``stderr.log``. The job
comes from the environment (besides the inherited one, the task's ``environment`` and each
parameter as a string variable):

========================  ===============================================================
``TASKOPS_JOB_ID``        the job id (``0`` outside the engine)
``TASKOPS_TASK_ID``       the task id, e.g. ``vault.VaultBackup`` (empty for ad-hoc jobs)
``TASKOPS_APP``           the task's app, e.g. ``vault`` or ``global``
``TASKOPS_SITE``          the site folder
``TASKOPS_DATA_DIR``      the site's data folder
``TASKOPS_JOB_DIR``       the job's folder (may be unset outside the engine)
``TASKOPS_PARAMS``        the parameters as a JSON object, with their real types
``TASKOPS_RUNSPACE_ID``   the runspace of the job (not read here)
========================  ===============================================================

What it does:

1. ``sys.path[0]`` becomes the script's folder, so a script imports its sibling modules (and
   never the engine's modules that sit beside this file); ``sys.argv`` is ``[script]``.
2. The script's syntax tree, never its code, says whether it defines a top-level
   ``def run(...)``. If so the script is loaded as the module ``__taskops_task__`` (its
   ``if __name__ == "__main__":`` block stays silent) and ``run(ctx)`` is called with a
   :class:`TaskContext`; otherwise it runs as ``__main__`` through ``runpy.run_path`` and
   reads its parameters from the environment.
3. At the end ``<job dir>/result.json`` holds ``{"exitCode": <int>, "error": <str or null>}``
   and the process exits with that code:

   =================================  ====  =================================================
   the task                           exit  error
   =================================  ====  =================================================
   returns                            0     null
   raises                             1     its last line, e.g. ``ValueError: bad vault file``
                                            (the traceback goes to stderr)
   raises ``SystemExit(n)``           n     null for 0, else ``exit code n`` (an n outside
                                            0-255 exits with 1: 256 would read as success)
   raises ``SystemExit("text")``      1     ``text`` (also printed to stderr)
   is interrupted (KeyboardInterrupt) 130   ``KeyboardInterrupt``
   gets SIGTERM                       143   ``stopped by SIGTERM``
   cannot start                       2     ``no script at <path>``,
                                            ``SyntaxError: <msg> (<file>, line <n>)``, or why
                                            ``TASKOPS_JOB_ID`` / ``TASKOPS_PARAMS`` are wrong
   =================================  ====  =================================================

   Without ``TASKOPS_JOB_DIR`` no file is written; the exit code still tells.

SIGTERM raises ``SystemExit(143)`` inside the task, so its ``finally`` blocks and context
managers run; further SIGTERMs are ignored while it cleans up (the engine's SIGKILL after its
grace period is the backstop).

Progress from any executable: a job of any kind (a shell script, a binary) reports progress
by writing ``$TASKOPS_JOB_DIR/progress.json`` as
``{"fraction": 0.4, "message": "copying", "time": <seconds since the epoch>}``. Write it to a
temporary file in the same folder and rename that over ``progress.json``, so the engine never
reads half a file. ``ctx.progress`` does exactly this for Python tasks.

Imports: the standard library only, never ``taskops``, so a task's process carries none of the
console's code; modules that only some jobs need (ast aside) are imported where they are used,
since every job pays for the runner's start-up.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import time

# typing costs milliseconds at start-up: mypy reads this block, Python skips it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from types import CodeType, FrameType, ModuleType, TracebackType
    from typing import Any

__all__ = ["TaskContext", "build_context", "context_from_environ", "main"]

CANNOT_START = 2
"""Exit code when the task could not start: no script, a syntax error, a bad environment."""
INTERRUPTED = 130
"""Exit code of a task ended by KeyboardInterrupt (128 + SIGINT, as a shell reports it)."""
TERMINATED = 143
"""Exit code of a task stopped by SIGTERM (128 + SIGTERM, as a shell reports it)."""

_MODULE_NAME = "__taskops_task__"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_HANDLER_NAME = "taskops.task.lines"


class TaskContext:
    """What a task's ``run(ctx)`` receives.

    ``task`` (task id, empty for ad-hoc jobs), ``app``, ``job_id`` (0 outside the engine),
    ``params`` (the task's parameters with their JSON types), ``env`` (the process
    environment), ``logger`` (lines on stdout, see :func:`build_context`), ``site_dir``,
    ``data_dir`` and ``job_dir`` (None outside the engine); ``progress(fraction, message)``
    reports how far the task is.
    """

    __slots__ = (
        "app",
        "data_dir",
        "env",
        "job_dir",
        "job_id",
        "logger",
        "params",
        "site_dir",
        "task",
    )

    def __init__(
        self,
        *,
        task: str,
        app: str,
        job_id: int,
        params: dict[str, Any],
        env: dict[str, str],
        logger: logging.Logger,
        site_dir: Path,
        data_dir: Path,
        job_dir: Path | None = None,
    ) -> None:
        self.task = task
        self.app = app
        self.job_id = job_id
        self.params = params
        self.env = env
        self.logger = logger
        self.site_dir = site_dir
        self.data_dir = data_dir
        self.job_dir = job_dir

    def __repr__(self) -> str:
        return (
            f"TaskContext(task={self.task!r}, app={self.app!r}, job_id={self.job_id}, "
            f"site_dir={str(self.site_dir)!r})"
        )

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress: ``fraction`` of the work is done (clamped to 0..1).

        With a job folder, ``<job dir>/progress.json`` is replaced atomically by
        ``{"fraction", "message", "time"}``; in any case a line such as ``[...] 40% copying``
        is logged. Raises TypeError when ``fraction`` is not a real number, ValueError when
        it is NaN, OSError when the report cannot be written.
        """
        import math
        import numbers

        if not isinstance(fraction, numbers.Real):
            raise TypeError(
                f"progress fraction must be a number from 0 to 1, "
                f"not {type(fraction).__name__} {fraction!r}"
            )
        value = float(fraction)
        if math.isnan(value):
            raise ValueError("progress fraction must be a number from 0 to 1, not NaN")
        value = min(1.0, max(0.0, value))
        text = str(message)
        if self.job_dir is not None:
            _write_json_atomic(
                self.job_dir,
                "progress.json",
                {"fraction": value, "message": text, "time": time.time()},
            )
        self.logger.info("%.0f%%%s", value * 100, f" {text}" if text else "")


def build_context(
    *,
    task: str,
    app: str,
    job_id: int,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    site_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    job_dir: str | os.PathLike[str] | None = None,
) -> TaskContext:
    """A task context, its logger set up: the one place a ``ctx`` is made.

    The logger (``taskops.task.<task id>``) writes INFO and above to stdout, one line per
    record, flushed as it is written: ``[2026-01-16 14:05:30] Found 15 files``, local time;
    WARNING and above name their level: ``[2026-01-16 14:05:31] WARNING: disk almost full``.
    A task that wants DEBUG lines lowers the level (``ctx.logger.setLevel(logging.DEBUG)``).
    The logger does not propagate, so a task that configures ``logging`` for itself gets no
    doubled lines; building a context again for the same task replaces its handler.
    """
    from pathlib import Path

    return TaskContext(
        task=task,
        app=app,
        job_id=job_id,
        params=dict(params),
        env=dict(env),
        logger=_line_logger(f"taskops.task.{task}" if task else "taskops.task"),
        site_dir=Path(site_dir),
        data_dir=Path(data_dir),
        job_dir=Path(job_dir) if job_dir is not None else None,
    )


def context_from_environ(
    environ: Mapping[str, str], *, script: str | os.PathLike[str] | None = None
) -> TaskContext:
    """The context of the job that ``environ`` describes (see the module's table).

    ``task`` is ``TASKOPS_TASK_ID`` (default empty); ``app`` is ``TASKOPS_APP``, else the app
    part of the task id; ``job_id`` is ``TASKOPS_JOB_ID`` (default 0); ``params`` is
    ``TASKOPS_PARAMS`` (default ``{}``); ``env`` is ``environ``; ``job_dir`` is
    ``TASKOPS_JOB_DIR`` (default None). The site is ``TASKOPS_SITE``, else the site
    ``script`` sits in: ``<site>`` of the nearest ``<site>/apps/<app>/`` above it (any app
    when the app is unknown), else the nearest folder above it with ``config/tasks.yaml``,
    else the working directory. The data folder is ``TASKOPS_DATA_DIR``, else
    ``<site>/data``.

    Raises ValueError naming the variable when ``TASKOPS_JOB_ID`` is not an integer or
    ``TASKOPS_PARAMS`` is not a JSON object.
    """
    from pathlib import Path

    task = environ.get("TASKOPS_TASK_ID", "")
    app = environ.get("TASKOPS_APP") or (task.partition(".")[0] if "." in task else "")
    raw_id = environ.get("TASKOPS_JOB_ID") or "0"
    try:
        job_id = int(raw_id)
    except ValueError as exc:
        raise ValueError(f"TASKOPS_JOB_ID must be an integer, not {raw_id!r}") from exc
    site = Path(environ.get("TASKOPS_SITE") or _site_of(script, app))
    return build_context(
        task=task,
        app=app,
        job_id=job_id,
        params=_params_of(environ.get("TASKOPS_PARAMS")),
        env=environ,
        site_dir=site,
        data_dir=environ.get("TASKOPS_DATA_DIR") or site / "data",
        job_dir=environ.get("TASKOPS_JOB_DIR") or None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job whose script ``argv`` names (default: ``sys.argv[1:]``, one path).

    Writes ``result.json`` into ``$TASKOPS_JOB_DIR`` when set and returns the exit code, as
    the module's table says; it raises nothing the task raises. It changes the process for
    the task: ``sys.argv``, ``sys.path[0]``, a thread that flushes stdout (``_Flusher``)
    and a SIGTERM handler.
    """
    return _prepare(argv)()


def _prepare(argv: Sequence[str] | None) -> Callable[[], int]:
    """All of :func:`main` before the task's own code (reading and compiling the script,
    its context, ``sys.argv`` and ``sys.path``); returns what runs the task (or reports
    why it cannot start) and returns the exit code. A held child of the fork server does
    this before it waits, so that its "go" starts the task's code at once."""
    args = list(sys.argv[1:] if argv is None else argv)
    job_dir = os.environ.get("TASKOPS_JOB_DIR") or None
    if len(args) != 1:
        return lambda: _cannot_start(job_dir, "usage: python _runner.py <script.py>")
    script = os.path.abspath(args[0])
    try:
        code, calls_run = _compile_script(script)
        ctx = context_from_environ(os.environ, script=script) if calls_run else None
    except _CannotStart as exc:
        message, details = str(exc), exc.details
        return lambda: _cannot_start(job_dir, message, details)
    except (ValueError, OSError) as exc:
        message = str(exc)
        return lambda: _cannot_start(job_dir, message)
    _enter_script_folder(script)

    def run() -> int:
        stop = _StopOnSigterm()
        flusher = _Flusher(sys.stdout, FLUSH_SECONDS)
        flusher.start()
        try:
            exit_code, error = _run_task(script, code, ctx, stop)
        finally:
            flusher.stop()
        _write_result(job_dir, exit_code, error)
        # Reported: a SIGTERM may now end the process at once, even while the interpreter
        # waits for threads the task left running.
        stop.release()
        return exit_code

    return run


FLUSH_SECONDS = 0.2
"""How often a Python task's stdout is flushed while it runs: a follower of stdout.log sees
its ``print()`` lines this soon, not a block at exit."""


class _Flusher:
    """Flushes ``stream`` every ``seconds`` on a thread of its own, from :meth:`start` until
    :meth:`stop`.

    The task's stdout stays block-buffered, as when the script runs alone. Line buffering
    (a write(2) per line) made a task that prints 100 MB line by line three times slower.
    :meth:`stop` waits for the thread, so that it never holds the stream's lock while the
    interpreter shuts down. ``_thread``, not ``threading``: every job pays for the
    runner's imports."""

    def __init__(self, stream: Any, seconds: float) -> None:
        self._stream = stream
        self._seconds = seconds
        self._stopping = _thread.allocate_lock()
        self._stopped = _thread.allocate_lock()
        self._pid: int | None = None

    def start(self) -> None:
        if self._stream is None:  # the process has no stdout (fd 1 was closed)
            return
        self._stopping.acquire()
        self._stopped.acquire()
        self._pid = os.getpid()
        _thread.start_new_thread(self._run, ())

    def stop(self) -> None:
        # In a child the task forked, the thread does not exist: nothing to wait for.
        if self._pid != os.getpid():
            return
        self._pid = None
        self._stopping.release()
        self._stopped.acquire()

    def _run(self) -> None:
        try:
            while not self._stopping.acquire(timeout=self._seconds):
                try:
                    self._stream.flush()
                except (OSError, ValueError):  # closed or broken by the task: its business
                    return
        finally:
            self._stopped.release()


class _CannotStart(Exception):
    """The script cannot be run; ``details`` is what stderr should show."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


class _StopOnSigterm:
    """A SIGTERM handler that raises ``SystemExit(143)`` in the task while armed, once.

    Once: a second SIGTERM must not break off the cleanup the first one started. Disarmed
    (the task is over), SIGTERM is ignored until :meth:`release` restores the default.
    """

    def __init__(self) -> None:
        self.requested = False
        self._armed = False
        self._installed = False

    def arm(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        self._installed = self._armed = True

    def disarm(self) -> None:
        self._armed = False

    def release(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._armed and not self.requested:
            self.requested = True
            raise SystemExit(TERMINATED)


def _line_logger(name: str) -> logging.Logger:
    """The logger ``name`` with one handler writing timestamped lines to stdout."""
    import logging

    class LineFormatter(logging.Formatter):
        def formatMessage(self, record: logging.LogRecord) -> str:
            level = f"{record.levelname}: " if record.levelno >= logging.WARNING else ""
            return f"[{record.asctime}] {level}{record.message}"

    # StreamHandler flushes after each record. The format string mentions asctime only so
    # that the base class fills in record.asctime for formatMessage.
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(LineFormatter("[%(asctime)s] %(message)s", datefmt=_TIME_FORMAT))
    logger = logging.getLogger(name)
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _site_of(script: str | os.PathLike[str] | None, app: str) -> Path:
    """The site ``script`` of ``app`` sits in (see :func:`context_from_environ`)."""
    from pathlib import Path

    if script is None:
        return Path.cwd()
    folders = Path(script).resolve().parents
    # The app folder first: it has a config/tasks.yaml of its own, which is not the site's.
    for folder in folders:
        if folder.parent.name == "apps" and app in ("", folder.name) and app != "global":
            return folder.parent.parent
    for folder in folders:
        if (folder / "config" / "tasks.yaml").is_file():
            return folder
    return Path.cwd()


def _params_of(raw: str | None) -> dict[str, Any]:
    """``TASKOPS_PARAMS`` decoded; ``{}`` when unset or empty. Raises ValueError."""
    if not raw:
        return {}
    import json

    try:
        params = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"TASKOPS_PARAMS is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ValueError(f"TASKOPS_PARAMS must be a JSON object, not {type(params).__name__}")
    return params


def _compile_script(script: str) -> tuple[CodeType, bool]:
    """The script's code, and whether it defines a top-level ``def run``.

    Raises _CannotStart when the script is missing, unreadable or not valid Python (compile
    errors such as ``return`` outside a function included, so every script that cannot run
    fails the same way, whichever way it would run).
    """
    import ast

    try:
        with open(script, "rb") as handle:
            source = handle.read()
    except FileNotFoundError as exc:
        raise _CannotStart(f"no script at {script}", f"no script at {script}\n") from exc
    except OSError as exc:
        message = f"cannot read the script {script}: {exc.strerror}"
        raise _CannotStart(message, message + "\n") from exc
    try:
        tree = ast.parse(source, filename=script)
        code = compile(tree, script, "exec")
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes in the source
        import traceback

        details = "".join(traceback.format_exception_only(type(exc), exc))
        raise _CannotStart(f"{type(exc).__name__}: {exc}", details) from exc
    calls_run = any(isinstance(node, ast.FunctionDef) and node.name == "run" for node in tree.body)
    return code, calls_run


def _enter_script_folder(script: str) -> None:
    """Make the script's folder ``sys.path[0]`` and the script ``sys.argv``."""
    folder = os.path.dirname(script)
    runner_folder = os.path.dirname(os.path.abspath(main.__code__.co_filename))
    # Executed by path, sys.path[0] is this file's folder, whose engine modules must not
    # shadow the task's; under -I or -P it is a library folder, which must stay.
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == runner_folder:
        sys.path[0] = folder
    else:
        sys.path.insert(0, folder)
    sys.argv = [script]


def _run_task(
    script: str, code: CodeType, ctx: TaskContext | None, stop: _StopOnSigterm
) -> tuple[int, str | None]:
    """Run the task, ``stop`` armed: ``run(ctx)`` with a context, else the script as
    ``__main__``. Returns ``(exit code, error)``; prints what stderr should show of a
    failure."""
    try:
        try:
            stop.arm()
            if ctx is None:
                import runpy

                runpy.run_path(script, run_name="__main__")
            else:
                _load_task_module(script, code).run(ctx)
        finally:
            # From here on a SIGTERM cannot break off the reporting below.
            stop.disarm()
    except SystemExit as exc:
        return _exit_outcome(exc.code, stopped=stop.requested)
    except BaseException as exc:
        import traceback

        tb = _task_frames(exc.__traceback__)
        traceback.print_exception(type(exc), exc, tb, file=sys.stderr)
        return (INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 1), _error_line(exc)
    return 0, None


def _load_task_module(script: str, code: CodeType) -> ModuleType:
    """Execute ``code`` as the module ``__taskops_task__`` and return the module."""
    from types import ModuleType

    module = ModuleType(_MODULE_NAME)
    module.__file__ = script
    # Registered before it runs, as an import would: pickle, dataclasses and typing look
    # classes up by their module's name.
    sys.modules[_MODULE_NAME] = module
    exec(code, module.__dict__)
    return module


def _exit_outcome(code: object, *, stopped: bool) -> tuple[int, str | None]:
    """``(exit code, error)`` of a ``SystemExit(code)``; prints a text code to stderr."""
    if code is None:
        return 0, None
    if isinstance(code, int):
        if stopped and code == TERMINATED:
            return TERMINATED, "stopped by SIGTERM"
        if code == 0:
            return 0, None
        return (code if 0 < code < 256 else 1), f"exit code {int(code)}"
    print(code, file=sys.stderr)
    return 1, str(code)


def _error_line(exc: BaseException) -> str:
    """The exception's own line, as a traceback ends: ``ValueError: bad vault file``."""
    import traceback

    summary = traceback.TracebackException(type(exc), exc, None)
    summary.__notes__ = None  # notes follow the line; the error is the line itself
    line = list(summary.format_exception_only())[-1].strip()
    # An exception class of the task reads as it would under __main__.
    return line.removeprefix(f"{_MODULE_NAME}.")


def _task_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from the task's first frame on: the runner's and runpy's own frames tell the
    task's author nothing. The whole of ``tb`` when the failure is the runner's own."""
    own = {main.__code__.co_filename}
    runpy = sys.modules.get("runpy")
    if runpy is not None:
        own.add(runpy.run_path.__code__.co_filename)
    frame = tb
    while frame is not None and frame.tb_frame.f_code.co_filename in own:
        frame = frame.tb_next
    return frame if frame is not None else tb


def _cannot_start(job_dir: str | None, error: str, details: str = "") -> int:
    """Report a task that could not start on stderr (``details``, else ``error``) and in
    ``result.json``; returns the exit code."""
    sys.stderr.write(details or f"{error}\n")
    _write_result(job_dir, CANNOT_START, error)
    return CANNOT_START


def _write_result(job_dir: str | None, exit_code: int, error: str | None) -> None:
    """Write ``result.json`` when there is a job folder. A failure to write is printed, not
    raised: the exit code still carries the outcome."""
    if job_dir is None:
        return
    try:
        _write_json_atomic(job_dir, "result.json", {"exitCode": exit_code, "error": error})
    except OSError as exc:
        print(f"taskops runner: cannot write result.json in {job_dir}: {exc}", file=sys.stderr)


def _write_json_atomic(
    folder: str | os.PathLike[str], name: str, data: Mapping[str, object]
) -> None:
    """Replace ``<folder>/<name>`` by ``data`` as JSON in one step. Raises OSError."""
    import contextlib
    import json
    import threading

    target = os.path.join(folder, name)
    # One temporary file per thread: tasks may report progress from several threads.
    temp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


# -- the fork server --------------------------------------------------------------------------

SERVE_FLAG = "--serve"
"""``python _runner.py --serve``: the fork server the engine keeps for Python jobs."""

GO_SIGNAL = signal.SIGUSR1
"""What the engine sends a held child (a ``hold`` request) when the job is to start."""

NOT_RELEASED = 75
"""The exit code of a held child whose "go" never came (EX_TEMPFAIL): it ran nothing."""

_MAX_FDS = 253
"""The most descriptors one message may carry (Linux's SCM_MAX_FD); the engine sends one
with each held executable's request."""

_PRELOADED = (
    "ast", "contextlib", "json", "linecache", "logging", "math", "numbers", "pathlib",
    "runpy", "shutil", "signal", "threading", "tokenize", "traceback",
)  # fmt: skip
"""The standard modules the runner imports for a job (``python -X importtime`` shows them:
about 20 ms together here), imported by the fork server before it forks."""


def serve() -> int:
    """The fork server: start Python jobs without starting an interpreter for each.

    The engine writes one JSON request per line on stdin: ``{"script", "cwd", "env",
    "stdout", "stderr"}``, or ``"argv"`` instead of ``"script"`` for an executable, and
    optionally ``"hold": <seconds>``, with ``"go": "pipe"`` for a held executable (see
    below). For each the server checks the working folder, forks,
    and answers one line on stdout: ``{"pid": <child>}`` or ``{"error": <why>}``. The child
    becomes its own session (a process group the engine can signal), takes the job's
    output files, folder and environment (``env`` replaces the environment), and runs
    :func:`main` on the script, as ``python _runner.py <script>`` would, or executes
    ``argv``. With ``hold`` the child does all of that but the last step, then waits for
    SIGUSR1 (the engine's "go", sent at the job's slot) for at most ``hold`` seconds; when
    none comes it ends without running anything (:data:`NOT_RELEASED`).

    A held executable waits in a shell instead of in this interpreter (``"go": "pipe"``,
    with stdin a Unix socket): the request comes with the read end of a pipe (SCM_RIGHTS)
    and the child, set up, executes ``/bin/sh`` waiting for a line on that pipe (see
    :data:`_HOLD_SCRIPT`). Its "go" is ``g`` written there; the pipe's end (the engine let
    go, closed it, or is gone) ends it having run nothing (:data:`NOT_RELEASED`). An exec
    from a fork of this interpreter first unmaps all of it, about 2 ms of CPU here: paid
    while the job waits, not at its slot, when the jobs due with it compete for the cores
    (50 due at once on two cores, half of them executables: the last begins ~30 ms after
    its slot instead of ~45).

    The server reaps its children and reports each end as ``{"exited": <pid>, "code":
    <exit code, negative for a signal>}``. It ends when stdin closes (the engine went
    away); the jobs it started run on (the next engine adopts them).
    """
    import collections
    import gc
    import importlib
    import json
    import select
    import socket
    import stat

    # what every job imports, imported once here: a forked job starts with it loaded
    for name in _PRELOADED:
        importlib.import_module(name)
    # a held child must not miss (nor die of) a "go" sent before it waits: blocked here,
    # inherited by every child, and kept pending until the child takes it
    signal.pthread_sigmask(signal.SIG_BLOCK, {GO_SIGNAL})
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)

    def say(message: Mapping[str, object]) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(1, data) :]

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            say({"exited": pid, "code": os.waitstatus_to_exitcode(status)})

    # the engine's socket, which can carry the pipes of held executables (else a pipe)
    requests = socket.socket(fileno=0) if stat.S_ISSOCK(os.fstat(0).st_mode) else None
    go_pipes: collections.deque[int] = collections.deque()  # came, their requests not yet
    pending = b""
    while True:
        # raw reads, not readline(): a buffered reader may hold several requests that
        # select() would then no longer report as readable
        ready, _, _ = select.select([0, wake_r], [], [])
        if wake_r in ready:
            while True:
                try:
                    if not os.read(wake_r, 4096):
                        break
                except BlockingIOError:
                    break
            reap()
        if 0 not in ready:
            continue
        if requests is None:
            data = os.read(0, 1 << 20)
        else:
            data, fds, flags, _ = socket.recv_fds(requests, 1 << 20, _MAX_FDS)
            go_pipes.extend(fds)
            if flags & socket.MSG_CTRUNC:  # pipes lost: the requests can no longer be paired
                sys.stderr.write("taskops fork server: more pipes came than it could take\n")
                return 1
        if not data:
            return 0  # the engine went away
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            go_pipe = None
            try:
                job = json.loads(line)
                if job.get("go") == "pipe":
                    if not go_pipes:
                        raise ValueError("a held executable's request came without its pipe")
                    go_pipe = job[_GO_PIPE] = go_pipes.popleft()
                    if not job.get("argv") or job.get("hold") is None:
                        raise ValueError("only a held executable waits on a pipe")
                cwd = job.get("cwd") or None
                if cwd is not None and not os.path.isdir(cwd):
                    raise FileNotFoundError(f"no working folder {cwd}")
                if not job.get("argv") and not job.get("script"):
                    raise ValueError("the request names neither a script nor argv")
            except (ValueError, OSError, AttributeError) as exc:
                if go_pipe is not None:
                    os.close(go_pipe)
                say({"error": str(exc)})
                continue
            # what the server holds goes to the collector's permanent generation: a child's
            # collections then never walk it, which would copy every page it lies on
            gc.freeze()
            pid = os.fork()
            if pid == 0:
                if requests is not None:
                    requests.detach()  # fd 0, which the child makes /dev/null
                # leave the server's loop; the job runs and ends like ``python _runner.py``
                raise _ForkedJob(job, (wake_r, wake_w, *go_pipes))
            if go_pipe is not None:
                os.close(go_pipe)  # the child's now
            say({"pid": pid})


class _ForkedJob(BaseException):
    """Raised in a forked child to leave :func:`serve` and run the job at top level."""

    def __init__(self, job: Mapping[str, Any], server_fds: tuple[int, ...]) -> None:
        super().__init__()
        self.job = job
        self.server_fds = server_fds


def _forked_job(job: Mapping[str, Any], server_fds: Sequence[int]) -> int:
    """In the forked child: become the job's process, wait for the engine's "go" when
    held, run it, return its exit code (an executable replaces the process instead)."""
    code = CANNOT_START
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in server_fds:
            os.close(fd)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(out, fd)
            os.close(out)
        if job.get("cwd"):
            os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        argv = job.get("argv")
        go_pipe = job.get(_GO_PIPE)
        if argv:
            keep = 3 if go_pipe is None else 4  # as Popen(close_fds=True), the pipe at 3
            if go_pipe is not None:
                os.dup2(go_pipe, _GO_FD)
            os.closerange(keep, os.sysconf("SC_OPEN_MAX"))
            run = None
        else:
            read = _file_stamp(job["script"])
            run = _prepare([job["script"]])
        hold = job.get("hold")
        if go_pipe is not None:
            return _hold_in_shell(job)
        if hold is not None:
            if run is not None:
                _warm_up()
            if not _wait_for_go(float(hold)):
                return NOT_RELEASED  # the engine did not start it (it went away, or gave up)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {GO_SIGNAL})
        if run is not None and _file_stamp(job["script"]) != read:
            run = _prepare([job["script"]])  # the script was changed while the job waited
        if run is None:
            _execute(job)
        else:
            code = run()
    except Exception as exc:  # cannot become the job (a file, a folder): say why
        sys.stderr.write(f"taskops runner: the job could not start: {exc}\n")
    return code


_EXIT_NICENESS = 10
"""How much a forked job lowers its priority for its last steps: a job that has reported
its end (result and output written) then no longer delays the jobs started with it on a
busy machine (two cores, five jobs due at once: the fifth begins ~1 ms sooner)."""


def _end_forked(code: int) -> None:
    """End a forked job without the interpreter's teardown. Freeing every object writes
    to pages the child shares with the fork server, one copy-on-write fault each: about
    8 ms of CPU for a job that did nothing. What an exit does that a task may rely on is
    done first, in the interpreter's order: its threads are waited for, the ``atexit``
    functions run, the task module's globals are let go (a file it left open is flushed
    and closed), and stdout and stderr are flushed."""
    import atexit
    import threading

    try:
        me = threading.current_thread()
        for thread in threading.enumerate():
            if thread is not me and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()  # what the interpreter's exit calls; no public equivalent
        # the rest (and the kernel's unmapping) gives way to jobs being started
        os.nice(_EXIT_NICENESS)
        module = sys.modules.pop(_MODULE_NAME, None)
        if module is not None:
            module.__dict__.clear()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    finally:
        os._exit(code)


_WARM_UP = compile(
    "import os, sys, time\ndef run(ctx):\n    return os.environ.get('X'), time.time()\n",
    "<warm-up>",
    "exec",
)
"""The module :func:`_warm_up` runs (compiled once, in the fork server)."""


def _warm_up() -> None:
    """What a held child does while it waits: what every job does after its "go" (a
    module executed, its function called, the result encoded), on a module of its own.
    The pages of the fork server that this touches are copied now (copy-on-write), not
    in the moments after the "go", when the jobs due together compete for the cores (five
    jobs due at once on two cores: the last begins ~1 ms after its slot instead of ~2)."""
    import json
    import threading
    from types import ModuleType

    module = ModuleType("__taskops_warm_up__")
    sys.modules[module.__name__] = module  # as the task's module will be
    exec(_WARM_UP, module.__dict__)
    module.run(None)
    del sys.modules[module.__name__]
    json.dumps({"exitCode": 0, "error": None})
    threading.enumerate()


def _wait_for_go(hold: float) -> bool:
    """Wait for the engine's "go", at most ``hold`` seconds; False when none came, or when
    the fork server ended meanwhile (its engine is gone: nobody will say "go")."""
    server = os.getppid()
    deadline = time.monotonic() + hold
    while (left := deadline - time.monotonic()) > 0:
        if signal.sigtimedwait({GO_SIGNAL}, min(left, 1.0)) is not None:
            return True
        if os.getppid() != server:
            return False
    return False


def _file_stamp(path: str) -> tuple[int, int] | None:
    """``(mtime in ns, size)`` of a file, None when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
"""Signals Python ignores that an executable gets back at their default (as ``Popen``'s
``restore_signals`` does)."""


_GO_PIPE = "_goPipe"
"""The key of a request under which the server puts the pipe that came with it."""

_GO_FD = 3
"""Where a held executable's shell finds the pipe its "go" comes through."""

_SHELL = "/bin/sh"

_HOLD_SCRIPT = (
    f'IFS= read -r go <&{_GO_FD}; exec {_GO_FD}<&-; [ "$go" = g ] || exit {NOT_RELEASED}; exec "$@"'
)
"""What ``/bin/sh -c`` runs for a held executable (the job's argv follows): wait for a line
on the pipe, and execute the job when it is ``g``. A shell takes ~1 ms to start, before the
slot, and its exec costs little: it is small."""


def _hold_in_shell(job: Mapping[str, Any]) -> int:
    """In a held executable's child (set up, its pipe at :data:`_GO_FD`): wait for the go
    in ``/bin/sh``. When the executable cannot be found the child waits here instead, and
    reports at its go that it could not start, as :func:`_execute` does. Returns
    :data:`NOT_RELEASED` when the pipe ends without a go."""
    import contextlib
    import shutil

    argv = [str(part) for part in job["argv"]]
    _restore_signals()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {GO_SIGNAL})
    if shutil.which(argv[0], path=os.environ.get("PATH", os.defpath)) is not None:
        # (the name, not the path found: the shell searches PATH as os.execvpe would)
        with contextlib.suppress(OSError):  # no shell: wait here
            os.execv(_SHELL, [_SHELL, "-c", _HOLD_SCRIPT, "taskops-held", *argv])
    with os.fdopen(_GO_FD, "rb", buffering=0) as pipe:
        if pipe.read(1) != b"g":
            return NOT_RELEASED
    _execute(job)
    return CANNOT_START  # not reached: _execute replaces the process or ends it


def _restore_signals() -> None:
    for signum in _DEFAULT_SIGNALS:  # ignored by Python, and an exec keeps them ignored
        signal.signal(signum, signal.SIG_DFL)


def _execute(job: Mapping[str, Any]) -> None:
    """Replace the child by the job's executable; when that fails, report it as
    ``Popen`` would have: "could not start: <why>" in stderr and the result."""
    argv = [str(part) for part in job["argv"]]
    _restore_signals()
    try:
        os.execvpe(argv[0], argv, os.environ)
    except OSError as exc:
        message = f"could not start: {exc}"
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        _write_result(os.environ.get("TASKOPS_JOB_DIR") or None, CANNOT_START, message)
        os._exit(CANNOT_START)


def _main_or_serve() -> int:
    if sys.argv[1:] != [SERVE_FLAG]:
        return main()
    try:
        return serve()
    except _ForkedJob as forked:
        child = forked
    # the job runs outside the except block, so that its own errors are not chained to
    # the unwinding of the server's stack ("During handling of the above exception...")
    _end_forked(_forked_job(child.job, child.server_fds))
    return CANNOT_START  # not reached: _end_forked ends the process


if __name__ == "__main__":
    sys.exit(_main_or_serve())
