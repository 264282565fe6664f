"""Run the benchmarks: ``python -m bench [--quick] [--only NAME ...] [--write]``.

Each benchmark runs taskops beside its peers in this one run and prints a Markdown table;
``--write`` also writes them, with the machine and the date, to ``BENCHMARKS.md``.
``--quick`` makes every benchmark smaller (a smoke run, not figures to keep).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Table, machine

BENCHMARKS = {
    "next_fire": "bench.next_fire",
    "lateness": "bench.lateness",
    "throughput": "bench.throughput",
    "idle_cpu": "bench.idle_cpu",
    "rest": "bench.rest",
    "output": "bench.output",
    "dashboard": "bench.dashboard",
    "history": "bench.history",
}
"""Name -> module; each module has ``main(quick) -> list[Table]``."""

REPORT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args(argv)
    chosen = args.only or list(BENCHMARKS)
    print(f"# taskops benchmarks\n\n{machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    tables: list[Table] = []
    failed = []
    for name in chosen:
        started = time.monotonic()
        print(f"## {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(BENCHMARKS[name])
            produced = module.main(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        for table in produced:
            print(table.markdown(), flush=True)
        tables.extend(produced)
        print(f"## {name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    if args.write:
        write_report(tables)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def write_report(tables: list[Table]) -> None:
    """Write the tables of this run into BENCHMARKS.md, below its fixed head: a table of
    the same title is replaced, a new one added; tables of benchmarks not run are kept."""
    marker = "<!-- figures: written by python -m bench --write -->"
    text = REPORT.read_text() if REPORT.exists() else ""
    head, _, figures = text.partition(marker)
    sections: dict[str, str] = {}
    for block in figures.split("\n### ")[1:]:
        title = block.split("\n", 1)[0]
        sections[title] = "### " + block.rstrip() + "\n"
    for table in tables:
        sections[table.title] = table.markdown()
    body = "\n".join(sections.values())
    REPORT.write_text(
        f"{head.rstrip()}\n\n{marker}\n\n{machine()}; last written "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n{body}"
    )


if __name__ == "__main__":
    sys.exit(main())
