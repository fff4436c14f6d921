"""Benchmark: time from vac's create_vm call to a running domain, and to guest power-off.

Run as root with the real test environment up (``tools/testenv.sh start``):
``.venv/bin/python -m bench.bench_vm_lifecycle [--runs 5]``. Each run executes the two
real-guest integration tests (cernvm3 on an LV, vm-raw on a qcow2 overlay; TCG guests),
which print one ``[vm timing]`` line each. Results go to ``bench/results/vm_lifecycle.txt``.
This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

RESULTS = os.path.join(os.path.dirname(__file__), "results", "vm_lifecycle.txt")
TEST = "tests/integration/test_vm_lifecycle.py"
LINE = re.compile(r"\[vm timing\] (\S+): create->running ([0-9.]+) s, "
                  r"create->power-off ([0-9.]+) s")


def one_run() -> List[Tuple[str, float, float]]:
    proc = subprocess.run([sys.executable, "-m", "pytest", TEST, "-q", "-s",
                           "-p", "no:cacheprovider", "-k", "cernvm3 or vm_raw"],
                          capture_output=True, text=True, timeout=900, check=False)
    found = [(m.group(1), float(m.group(2)), float(m.group(3)))
             for m in LINE.finditer(proc.stdout)]
    if proc.returncode != 0 or len(found) != 2:
        raise RuntimeError(f"integration run failed:\n{proc.stdout[-3000:]}")
    return found


def summary(values: List[float]) -> str:
    return (f"min {min(values):.2f} s, median {statistics.median(values):.2f} s, "
            f"max {max(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_vm_lifecycle")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    timings: Dict[str, Dict[str, List[float]]] = {}
    for _ in range(args.runs):
        for model, running, off in one_run():
            per = timings.setdefault(model, {"running": [], "off": []})
            per["running"].append(running)
            per["off"].append(off)
    lines = [f"VM lifecycle through vac.services.vm on {platform.node()} "
             f"({os.cpu_count()} CPUs, TCG guests, {args.runs} runs)"]
    for model, per in timings.items():
        lines.append(f"{model}: create -> running:   {summary(per['running'])}")
        lines.append(f"{model}: create -> power-off: {summary(per['off'])}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
