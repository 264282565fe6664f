"""The folders and output files of jobs queued ahead, made in a thread of their own."""

from __future__ import annotations

import threading
from pathlib import Path

from taskops.engine.executor import FolderMaker, JobFiles
from taskops.testing import wait_for


def _made(files: JobFiles) -> bool:
    return files.stdout.is_file() and files.stderr.is_file()


def test_folders_are_made_in_order_and_what_exists_is_kept(tmp_path: Path) -> None:
    jobs = [JobFiles(tmp_path / "jobs" / str(job_id)) for job_id in range(1, 41)]
    jobs[3].folder.mkdir(parents=True)
    jobs[3].stdout.write_text("already there\n")
    maker = FolderMaker()
    try:
        maker.make(jobs)
        wait_for(lambda: all(_made(files) for files in jobs), what="every folder")
    finally:
        maker.close()
    assert jobs[3].stdout.read_text() == "already there\n"  # appended to, never truncated
    assert all(files.output_bytes() == 0 for files in jobs if files is not jobs[3])


def test_a_folder_that_cannot_be_made_does_not_stop_the_others(tmp_path: Path) -> None:
    blocker = tmp_path / "jobs"
    blocker.write_text("a file where the jobs folder should be")
    bad = JobFiles(blocker / "1")
    good = JobFiles(tmp_path / "other" / "2")
    maker = FolderMaker()
    try:
        maker.make([bad, good])
        wait_for(lambda: _made(good), what="the folder after the one that failed")
    finally:
        maker.close()
    assert not bad.folder.exists()


def test_a_closed_maker_stops_and_starts_again_when_asked(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    maker = FolderMaker()
    maker.make([JobFiles(tmp_path / "first")])
    wait_for(lambda: _made(JobFiles(tmp_path / "first")), what="the first folder")
    (thread,) = set(threading.enumerate()) - before
    maker.close()
    assert not thread.is_alive()
    maker.make([JobFiles(tmp_path / "later")])
    try:
        wait_for(lambda: _made(JobFiles(tmp_path / "later")), what="a folder asked later")
    finally:
        maker.close()
