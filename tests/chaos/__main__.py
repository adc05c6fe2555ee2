"""`make chaos` (`python -m tests.chaos`): the fault matrix, in the shipped configuration.

    python -m tests.chaos                   # every fault, on PostgreSQL and (starred) on SQLite
    python -m tests.chaos --quick           # a small version of each (what `make test` runs)
    python -m tests.chaos --only "broker"   # the faults whose name contains a word
    python -m tests.chaos --write-docs      # and put the table in docs/reliability.md

It prints the fault under way and the operations acknowledged so far, then a table: per fault,
events committed, effects applied, and how many were lost, duplicated, unexpected or out of
order, and how long the suite took to converge once the fault was healed. Exit 1 unless every row
is clean.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.chaos.faults import FAULTS
from tests.chaos.harness import TABLE_HEAD, Result, in_suite_order, matrix
from tests.run import preflight, test_environment
from tests.support import databases

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
BEGIN, END = "<!-- matrix:begin -->", "<!-- matrix:end -->"
MIN_EVENTS = 10_000  # what a full run moves at least, over every fault


def write_docs(results: list[Result], seconds: float) -> None:
    text = DOCS.read_text()
    events = sum(r.events for r in results)
    table = "\n".join(
        [
            BEGIN,
            f"Latest `make chaos` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{events} events in {seconds / 60:.0f} min):",
            "",
            TABLE_HEAD,
            *(r.line() for r in results),
            END,
        ]
    )
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOCS.write_text(text[:start] + table + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small version of every fault")
    parser.add_argument("--only", action="append", default=[], help="faults whose name contains this")
    parser.add_argument("--databases", default="postgresql,sqlite", help="postgresql, sqlite or both")
    parser.add_argument("--write-docs", action="store_true", help="write the table to docs/reliability.md")
    args = parser.parse_args()
    chosen = in_suite_order(
        f for f in FAULTS if not args.only or any(w.lower() in f.name.lower() for w in args.only)
    )
    wanted = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(wanted) - {"postgresql", "sqlite"}
    if unknown or not chosen:
        parser.error(f"unknown database(s) {sorted(unknown)}" if unknown else "no fault matches --only")
    preflight()
    tmp = Path(tempfile.mkdtemp(prefix="suite-chaos-"))
    os.environ.update(test_environment(tmp))
    prefix = f"suite_c{uuid.uuid4().hex[:8]}_"
    os.environ["TEST_RUN_PREFIX"] = prefix
    started = time.monotonic()
    results: list[Result] = []
    failures: list[str] = []
    try:
        rows = sum(1 for database in ("postgresql", "sqlite") for fault in FAULTS if getattr(fault, database))
        # each row's share of a full run's MIN_EVENTS, with a margin (a row's count is read as it ends)
        per_row = 0 if args.quick else math.ceil(MIN_EVENTS * 1.05 / rows)
        with matrix(tmp / "work", quick=args.quick, min_events=per_row) as runner:
            for database in wanted:
                for fault in chosen:
                    if not getattr(fault, database):
                        continue
                    print(f"\n=== {fault.name} on {database}", flush=True)
                    try:
                        results.append(runner.run(fault, database))
                    except Exception as exc:  # noqa: BLE001 - the table says which fault broke the run
                        failures.append(f"{fault.name} on {database}: {type(exc).__name__}: {exc}"[:3000])
                        print(failures[-1], flush=True)
    finally:
        databases.drop_databases(prefix)
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.monotonic() - started
    print(f"\n{TABLE_HEAD}")
    for result in results:
        print(result.line())
    events = sum(r.events for r in results)
    print(f"\n{events} events in {seconds:.0f} s; {len(failures)} fault(s) broke the run")
    for failure in failures:
        print(f"  {failure}")
    clean = not failures and all(r.report.clean() for r in results)
    if not args.quick and not args.only and events < MIN_EVENTS:
        print(f"only {events} events: a full run moves at least {MIN_EVENTS}")
        clean = False
    if args.write_docs and clean:
        write_docs(results, seconds)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
