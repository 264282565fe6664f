"""The Python job runner, run as the engine runs it: a real process in its own session, with
the job's environment, cwd in the app folder and its output going to files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import taskops.engine
from taskops.engine._runner import FLUSH_SECONDS, context_from_environ
from taskops.testing import wait_for

RUNNER = Path(taskops.engine.__file__).resolve().with_name("_runner.py")
STAMP = r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\]"


@dataclass(frozen=True)
class Job:
    """A script in an app folder of a site in ``tmp_path``, and the job folder it reports to."""

    root: Path

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def app_dir(self) -> Path:
        return self.site / "apps" / "vault"

    @property
    def folder(self) -> Path:
        return self.site / "data" / "jobs" / "7"

    def script(self, source: str, name: str = "tasks/task.py") -> Path:
        path = self.app_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        return path

    def environ(self, params: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "TASKOPS_JOB_ID": "7",
            "TASKOPS_TASK_ID": "vault.VaultBackup",
            "TASKOPS_APP": "vault",
            "TASKOPS_SITE": str(self.site),
            "TASKOPS_DATA_DIR": str(self.site / "data"),
            "TASKOPS_JOB_DIR": str(self.folder),
            "TASKOPS_PARAMS": json.dumps(params or {}),
            "TASKOPS_RUNSPACE_ID": "3",
            **extra,
        }

    def start(
        self, script: Path | str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start the runner on ``script`` as the engine does."""
        env = self.environ() if env is None else env
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.out.open("wb") as out, self.err.open("wb") as err:
            return subprocess.Popen(
                [sys.executable, str(RUNNER), str(script)],
                env=env,
                cwd=self.app_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def run(self, script: Path | str, env: dict[str, str] | None = None) -> Finished:
        """Run the runner on ``script`` to its end."""
        proc = self.start(script, env)
        try:
            return self.finished(proc.wait(timeout=30))
        finally:
            stop(proc)

    @property
    def out(self) -> Path:
        return self.folder / "stdout.log"

    @property
    def err(self) -> Path:
        return self.folder / "stderr.log"

    def finished(self, code: int) -> Finished:
        result = self.folder / "result.json"
        return Finished(
            code=code,
            stdout=self.out.read_text(),
            stderr=self.err.read_text(),
            result=json.loads(result.read_text()) if result.exists() else None,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill what is left of a runner's process group (a failed test leaves nothing behind)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str
    result: dict[str, Any] | None

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


@pytest.fixture
def job(tmp_path: Path) -> Job:
    job = Job(tmp_path)
    job.app_dir.mkdir(parents=True)
    return job


# --- the context ---------------------------------------------------------------------------


def test_run_gets_the_jobs_context_with_params_in_their_json_types(job: Job) -> None:
    script = job.script(
        """import json, os, pathlib

def run(ctx):
    print(json.dumps({
        "task": ctx.task, "app": ctx.app, "job_id": ctx.job_id, "params": ctx.params,
        "types": {k: type(v).__name__ for k, v in ctx.params.items()},
        "site": str(ctx.site_dir), "data": str(ctx.data_dir),
        "paths": isinstance(ctx.site_dir, pathlib.Path) and isinstance(ctx.data_dir, pathlib.Path),
        "env": ctx.env.get("DATA_PATH"), "cwd": os.getcwd(),
        "logger": type(ctx.logger).__name__,
    }))
"""
    )
    params = {"RETENTION_DAYS": 30, "RATE": 0.25, "NAME": "x", "ON": True, "KEEP": [1, 2]}
    done = job.run(script, job.environ(params, DATA_PATH="data"))

    assert (done.code, done.result, done.stderr) == (0, {"exitCode": 0, "error": None}, "")
    seen = json.loads(done.stdout)
    assert seen == {
        "task": "vault.VaultBackup",
        "app": "vault",
        "job_id": 7,
        "params": params,
        "types": {
            "RETENTION_DAYS": "int",
            "RATE": "float",
            "NAME": "str",
            "ON": "bool",
            "KEEP": "list",
        },
        "site": str(job.site),
        "data": str(job.site / "data"),
        "paths": True,
        "env": "data",
        "cwd": str(job.app_dir),
        "logger": "Logger",
    }


def test_log_lines_are_timestamped_and_come_in_order_with_prints(job: Job) -> None:
    script = job.script(
        """import logging

def run(ctx):
    print("first")
    ctx.logger.info("Found %d files", 15)
    ctx.logger.debug("hidden at the default level")
    ctx.logger.warning("disk almost full")
    ctx.logger.error("vault locked")
    ctx.logger.setLevel(logging.DEBUG)
    ctx.logger.debug("now shown")
    print("last")
"""
    )
    done = job.run(script)

    assert done.code == 0, done.stderr
    assert len(done.lines) == 6, done.lines
    patterns = [
        "first",
        rf"{STAMP} Found 15 files",
        rf"{STAMP} WARNING: disk almost full",
        rf"{STAMP} ERROR: vault locked",
        rf"{STAMP} now shown",
        "last",
    ]
    for pattern, line in zip(patterns, done.lines, strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)
    stamp = done.lines[1][1:20]
    assert abs(time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) - time.time()) < 60


def test_output_reaches_the_file_while_the_task_still_runs(job: Job) -> None:
    script = job.script(
        """import os, time

def wait(name):
    while not os.path.exists(name):
        time.sleep(0.01)

def run(ctx):
    print("printed")
    wait("go-on")
    ctx.logger.info("logged")
    wait("finish")
"""
    )
    proc = job.start(script)
    try:
        wait_for(lambda: job.out.read_text() == "printed\n", timeout=10, what="the print")
        (job.app_dir / "go-on").touch()
        wait_for(lambda: "] logged\n" in job.out.read_text(), timeout=10, what="the log line")
        (job.app_dir / "finish").touch()
        assert proc.wait(timeout=10) == 0
    finally:
        stop(proc)


def test_a_task_that_forks_or_closes_its_stdout_still_ends(job: Job) -> None:
    # the child of a fork returns through the runner without the flusher's thread; the
    # parent closes the stream the thread flushes
    script = job.script(
        """import os, sys

def run(ctx):
    pid = os.fork()
    if pid == 0:
        print("child")
        return
    os.waitpid(pid, 0)
    print("parent", sys.stdout.line_buffering)
    sys.stdout.close()
"""
    )
    done = job.run(script)
    assert (done.code, done.stdout, done.result) == (
        0,
        "child\nparent False\n",
        {"exitCode": 0, "error": None},
    ), done.stderr


def test_a_runner_without_stdout_runs_its_task(job: Job) -> None:
    # it runs for several of the flusher's periods
    script = job.script(
        "import time\n\ndef run(ctx):\n    ctx.logger.info('no stdout')\n"
        f"    time.sleep({3 * FLUSH_SECONDS})\n"
    )
    job.folder.mkdir(parents=True, exist_ok=True)
    with job.err.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(RUNNER), str(script)],
            env=job.environ(),
            cwd=job.app_dir,
            stdin=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=lambda: os.close(1),  # sys.stdout is None in the runner
        )
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        stop(proc)
    # the log line (to stderr, for want of stdout), and no error of the flusher's thread
    assert re.fullmatch(STAMP + r" no stdout\n", job.err.read_text()), job.err.read_text()
    assert json.loads((job.folder / "result.json").read_text()) == {"exitCode": 0, "error": None}


def test_progress_writes_progress_json_and_logs_a_line(job: Job) -> None:
    script = job.script(
        """def run(ctx):
    ctx.progress(-0.5, "start")
    ctx.progress(1.7)
    ctx.progress(0.4, "copying")
    try:
        ctx.progress("half")
    except TypeError as exc:
        print(exc)
"""
    )
    before = time.time()
    done = job.run(script)

    assert done.code == 0, done.stderr
    assert [re.sub(STAMP, "[t]", line) for line in done.lines] == [
        "[t] 0% start",
        "[t] 100%",
        "[t] 40% copying",
        "progress fraction must be a number from 0 to 1, not str 'half'",
    ]
    report = json.loads((job.folder / "progress.json").read_text())
    assert report.keys() == {"fraction", "message", "time"}
    assert (report["fraction"], report["message"]) == (0.4, "copying")
    assert before - 1 <= report["time"] <= time.time() + 1
    # written through a temporary file that is gone again
    assert sorted(p.name for p in job.folder.iterdir()) == [
        "progress.json",
        "result.json",
        "stderr.log",
        "stdout.log",
    ]


def test_without_a_job_folder_progress_only_logs_and_no_result_is_written(job: Job) -> None:
    script = job.script('def run(ctx):\n    ctx.progress(0.5, "half")\n    raise SystemExit(4)\n')
    env = job.environ()
    del env["TASKOPS_JOB_DIR"]
    done = job.run(script, env)

    assert done.code == 4
    assert [re.sub(STAMP, "[t]", line) for line in done.lines] == ["[t] 50% half"]
    assert sorted(p.name for p in job.folder.iterdir()) == ["stderr.log", "stdout.log"]


# --- results -------------------------------------------------------------------------------


def test_a_returning_task_succeeds(job: Job) -> None:
    done = job.run(job.script("def run(ctx):\n    return 'ignored'\n"))
    assert (done.code, done.result, done.stdout, done.stderr) == (
        0,
        {"exitCode": 0, "error": None},
        "",
        "",
    )


def test_an_exception_fails_the_job_with_its_line_and_the_traceback_on_stderr(job: Job) -> None:
    script = job.script(
        """def run(ctx):
    ctx.logger.info("opening the vault")
    open_vault()


def open_vault():
    raise ValueError("bad vault file")
"""
    )
    done = job.run(script)

    assert done.code == 1
    assert done.result == {"exitCode": 1, "error": "ValueError: bad vault file"}
    assert done.stderr.startswith("Traceback (most recent call last):\n")
    assert f'File "{script}", line 3, in run' in done.stderr
    assert 'raise ValueError("bad vault file")' in done.stderr
    assert done.stderr.endswith("ValueError: bad vault file\n")
    assert "_runner.py" not in done.stderr  # the task's frames only


def test_an_exception_class_of_the_task_reads_as_its_own_name(job: Job) -> None:
    script = job.script(
        """class VaultError(Exception):
    pass


def run(ctx):
    exc = VaultError("sealed")
    exc.add_note("try again after unsealing")
    raise exc
"""
    )
    done = job.run(script)
    assert done.result == {"exitCode": 1, "error": "VaultError: sealed"}
    assert "try again after unsealing" in done.stderr


@pytest.mark.parametrize(
    ("raising", "code", "error", "stderr"),
    [
        ("SystemExit(0)", 0, None, ""),
        ("SystemExit(3)", 3, "exit code 3", ""),
        ("SystemExit(300)", 1, "exit code 300", ""),
        ('SystemExit("vault is sealed")', 1, "vault is sealed", "vault is sealed\n"),
        ("KeyboardInterrupt", 130, "KeyboardInterrupt", "Traceback"),
    ],
)
def test_how_a_task_ends_sets_exit_code_and_error(
    job: Job, raising: str, code: int, error: str | None, stderr: str
) -> None:
    done = job.run(job.script(f"def run(ctx):\n    raise {raising}\n"))
    assert (done.code, done.result) == (code, {"exitCode": code, "error": error})
    assert done.stderr.startswith(stderr)


def test_sigterm_runs_the_tasks_cleanup_and_ends_with_143(job: Job) -> None:
    script = job.script(
        """import pathlib, time

def run(ctx):
    pathlib.Path("started").touch()
    try:
        time.sleep(30)
    finally:
        ctx.logger.info("cleaning up")
        pathlib.Path("cleaned").touch()
"""
    )
    proc = job.start(script)
    try:
        wait_for((job.app_dir / "started").exists, timeout=10, what="the task to start")
        os.killpg(proc.pid, signal.SIGTERM)
        done = job.finished(proc.wait(timeout=10))
    finally:
        stop(proc)

    assert (done.code, done.result) == (143, {"exitCode": 143, "error": "stopped by SIGTERM"})
    assert (job.app_dir / "cleaned").exists()
    assert done.lines[-1].endswith("] cleaning up")


# --- how a script is run -------------------------------------------------------------------


def test_a_script_without_run_runs_as_main(job: Job) -> None:
    script = job.script(
        """import os, sys

if __name__ == "__main__":
    print("main ran", sys.argv == [__file__], os.environ["RETENTION_DAYS"])
"""
    )
    done = job.run(script, job.environ({"RETENTION_DAYS": 30}, RETENTION_DAYS="30"))
    assert (done.code, done.stdout, done.result) == (
        0,
        "main ran True 30\n",
        {"exitCode": 0, "error": None},
    )


def test_a_script_with_run_does_not_run_its_main_block(job: Job) -> None:
    script = job.script(
        """import sys

def run(ctx):
    print("run ran in", __name__, sys.argv == [__file__])

if __name__ == "__main__":
    print("main ran")
"""
    )
    done = job.run(script)
    assert (done.code, done.stdout) == (0, "run ran in __taskops_task__ True\n")


def test_a_run_inside_a_class_or_block_is_not_a_task_entry_point(job: Job) -> None:
    script = job.script(
        """class Job:
    def run(self, ctx):
        print("method ran")

if __name__ == "__main__":
    print("main ran")
"""
    )
    assert job.run(script).stdout == "main ran\n"


def test_a_script_imports_its_sibling_modules_and_not_the_engines(job: Job) -> None:
    job.script("GREETING = 'from the sibling'\n", name="tasks/helper.py")
    script = job.script(
        """import importlib.util, sys
import helper

def run(ctx):
    print(helper.GREETING)
    print(importlib.util.find_spec("executor") is None, sys.path[0])
"""
    )
    done = job.run(script)
    assert done.lines == ["from the sibling", f"True {script.parent}"], done.stderr


@pytest.mark.parametrize("with_run", [True, False])
def test_the_runner_never_imports_taskops(job: Job, with_run: bool) -> None:
    check = 'print("taskops loaded:", any(m.split(".")[0] == "taskops" for m in sys.modules))'
    body = f"def run(ctx):\n    {check}\n" if with_run else f"{check}\n"
    done = job.run(job.script(f"import sys\n\n{body}"))
    assert (done.code, done.stdout) == (0, "taskops loaded: False\n"), done.stderr


# --- jobs that cannot start ----------------------------------------------------------------


def test_a_missing_script_cannot_start(job: Job) -> None:
    missing = job.app_dir / "tasks" / "gone.py"
    done = job.run(missing)
    assert (done.code, done.result) == (2, {"exitCode": 2, "error": f"no script at {missing}"})
    assert done.stderr == f"no script at {missing}\n"


def test_a_syntax_error_cannot_start_and_names_file_and_line(job: Job) -> None:
    script = job.script("def run(ctx):\n    print('unclosed'\n")
    done = job.run(script)
    assert done.code == 2 and done.result is not None
    assert re.fullmatch(r"SyntaxError: .+ \(task\.py, line 2\)", done.result["error"])
    assert f'File "{script}", line 2' in done.stderr


def test_a_compile_error_cannot_start_either(job: Job) -> None:
    done = job.run(job.script("print('never')\nreturn 1\n"))
    assert done.code == 2 and done.stdout == ""
    assert done.result == {
        "exitCode": 2,
        "error": "SyntaxError: 'return' outside function (task.py, line 2)",
    }


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{not json", "TASKOPS_PARAMS is not valid JSON: "),
        ("[1, 2]", "TASKOPS_PARAMS must be a JSON object, not list"),
    ],
)
def test_bad_params_cannot_start(job: Job, raw: str, error: str) -> None:
    script = job.script("def run(ctx):\n    print('never')\n")
    done = job.run(script, job.environ(TASKOPS_PARAMS=raw))
    assert done.code == 2 and done.stdout == "" and done.result is not None
    assert done.result["error"].startswith(error)
    assert done.stderr.startswith(error)


# --- the context outside the engine --------------------------------------------------------


def test_context_from_environ_finds_the_site_a_script_sits_in(tmp_path: Path) -> None:
    site = tmp_path / "apps" / "site"  # a folder named apps above the site misleads nothing
    for folder in (site, site / "apps" / "vault"):
        (folder / "config").mkdir(parents=True)
        (folder / "config" / "tasks.yaml").write_text("tasks: []\n")
    app_script = site / "apps" / "vault" / "tasks" / "x.py"

    unknown = context_from_environ({}, script=app_script)
    app = context_from_environ({"TASKOPS_TASK_ID": "vault.Backup"}, script=app_script)
    shared = context_from_environ({"TASKOPS_APP": "global"}, script=site / "tasks" / "a.py")
    nowhere = context_from_environ({}, script=tmp_path / "elsewhere" / "a.py")

    assert (unknown.site_dir, unknown.data_dir) == (site, site / "data")
    assert (unknown.task, unknown.app, unknown.job_id, unknown.params) == ("", "", 0, {})
    assert unknown.job_dir is None and unknown.env == {}
    assert (app.site_dir, app.app) == (site, "vault")
    assert (shared.site_dir, shared.app) == (site, "global")
    assert nowhere.site_dir == Path.cwd()


def test_context_from_environ_refuses_a_job_id_that_is_no_integer() -> None:
    with pytest.raises(ValueError, match="TASKOPS_JOB_ID must be an integer, not 'seven'"):
        context_from_environ({"TASKOPS_JOB_ID": "seven"})
