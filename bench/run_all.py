"""Run every benchmark (``make bench``), then summarise the issue-15 rows.

``python -m bench.run_all [--quick] [--only NAME ...] [--summary-only]``. Each bench module runs
in its own process (``python -m bench.NAME``) and writes bench/results/*.txt; a module
not in this tree yet is skipped. Then every ``ROW`` line of bench/results/*.txt
(bench/rows.py) goes into bench/results/summary.txt under a header naming the date,
host, CPUs, Python and git commit, and the table is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import time
from typing import List, Optional, Sequence

from bench.rows import SUMMARY, collect, render

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
BENCHMARKS = ("bench_responder", "bench_planner", "bench_fill", "bench_startup",
              "bench_httpd", "bench_apel_sync", "bench_memory", "bench_space_scale")
# --quick (make bench-quick): smaller runs where a bench takes options for it; of the
# full run's 28 minutes on the 2-CPU VM, apel-sync spent 19 making and deleting a
# million record files
QUICK = {"bench_apel_sync": ["--records", "100000"], "bench_planner": ["--rounds", "3"],
         "bench_responder": ["--rounds", "3"]}


def git_commit() -> str:
    """Short commit of the tree, "+ changes" if it has uncommitted ones."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", REPO, *args], capture_output=True,
                              text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + changes" if git("status", "--porcelain", "--untracked-files=no")
                     else "")


def header(durations: Sequence[str] = ()) -> List[str]:
    """Date (UTC), host, CPUs, Python, commit, load; what each bench took."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return [f"issue 15 benchmark rows, {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}",
            f"host {platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs), "
            f"Python {platform.python_version()}, git commit {git_commit()}, load average "
            f"{load:.2f} at the end"] + list(durations)


def run(name: str, args: Sequence[str] = ()) -> Optional[float]:
    """Seconds ``python -m bench.NAME ARGS`` took; None if the module is not in this tree."""
    if importlib.util.find_spec(f"bench.{name}") is None:
        print(f"=== bench.{name}: not in this tree, skipped", flush=True)
        return None
    print(f"=== bench.{name} {' '.join(args)}", flush=True)
    start = time.monotonic()
    rc = subprocess.call([sys.executable, "-m", f"bench.{name}", *args], cwd=REPO)
    if rc:
        print(f"=== bench.{name} exited with {rc}", flush=True)
    return time.monotonic() - start


def summarise(durations: Sequence[str] = ()) -> str:
    """Write bench/results/summary.txt from the results files; returns its text."""
    rows, bad = collect(RESULTS)
    text = render(rows, header(durations), bad)
    with open(os.path.join(RESULTS, SUMMARY), "w") as f:
        f.write(text)
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run_all", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run just these")
    parser.add_argument("--summary-only", action="store_true",
                        help="run nothing, summarise the results files as they are")
    parser.add_argument("--quick", action="store_true",
                        help="smaller runs (fewer rounds, 100,000 APEL records)")
    args = parser.parse_args(argv)
    durations = []
    if not args.summary_only:
        total = time.monotonic()
        for name in args.only or BENCHMARKS:
            extra = QUICK.get(name, []) if args.quick else []
            seconds = run(name, extra)
            if seconds is not None:
                durations.append(f"{name} {' '.join(extra)} ran {seconds:.0f} s".replace(
                    "  ", " "))
        durations.append(f"all ran {time.monotonic() - total:.0f} s"
                         + (" (--quick)" if args.quick else ""))
    print(f"=== {os.path.join('bench', 'results', SUMMARY)}")
    sys.stdout.write(summarise(durations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
