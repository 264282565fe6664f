"""SearchReindex: rebuild the search index of the demo data, one slice per step.

Reads the files under ``<data>/demo/`` (``.gz`` ones too; not the vault, not the index),
splits them into ``STEPS`` slices and indexes one slice per step, waiting ``STEP_SECONDS``
between steps, the way a real reindex yields to the server: with the defaults (36 x 5 s)
a run takes about three minutes and costs almost no CPU. Progress is reported at every
step. The index, written at the end in one piece, is ``<data>/demo/search/index.json``:
term -> files, and the ``TOP_TERMS`` most frequent terms.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULTS = {"STEPS": 36, "STEP_SECONDS": 5, "TOP_TERMS": 20}
WORD = re.compile(r"[a-z][a-z0-9_]{2,}")
SKIPPED_FOLDERS = {"search", "vault"}  # the index itself, and secrets never go in an index


def read_text(path: Path) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", errors="replace") as source:
                return source.read()
        return path.read_text(errors="replace")
    except (OSError, EOFError):  # rotated away or half-written meanwhile: skip it
        return ""


def run(ctx: Any) -> None:
    params = {**DEFAULTS, **ctx.params}
    steps = max(1, int(params["STEPS"]))
    pause = float(params["STEP_SECONDS"])
    demo = ctx.data_dir / "demo"
    out = demo / "search" / "index.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    files = sorted(
        p
        for p in demo.rglob("*")
        if p.is_file()
        and not p.name.startswith(".")
        and p.relative_to(demo).parts[0] not in SKIPPED_FOLDERS
    )
    ctx.logger.info("reindexing %d files in %d steps of %g s", len(files), steps, pause)
    ctx.progress(0.0, f"0/{len(files)} files")
    postings: dict[str, set[str]] = {}
    counts: Counter[str] = Counter()
    done = 0
    for step in range(1, steps + 1):
        batch = files[done : len(files) * step // steps]
        for path in batch:
            words = WORD.findall(read_text(path).lower())
            counts.update(words)
            for word in set(words):
                postings.setdefault(word, set()).add(path.relative_to(demo).as_posix())
        done += len(batch)
        ctx.logger.info(
            "step %d/%d: %d/%d files, %d terms", step, steps, done, len(files), len(postings)
        )
        ctx.progress(step / steps, f"{done}/{len(files)} files, {len(postings)} terms")
        if step < steps:
            time.sleep(pause)

    index = {
        "builtAt": datetime.now().astimezone().isoformat(timespec="seconds"),
        "files": len(files),
        "terms": len(postings),
        "top": counts.most_common(int(params["TOP_TERMS"])),
        "postings": {word: sorted(paths) for word, paths in sorted(postings.items())},
    }
    partial = out.with_name(".index.json.partial")
    partial.write_text(json.dumps(index))
    partial.replace(out)
    ctx.logger.info("index written: %d terms from %d files", len(postings), len(files))


# Without the runner: STEPS=3 STEP_SECONDS=1 python tasks/search_reindex.py
if __name__ == "__main__":
    from taskops.demo import run_standalone

    run_standalone(run, "global.SearchReindex", DEFAULTS, __file__)
