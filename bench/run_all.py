"""Run every benchmark in bench/ in turn (``make bench``); each writes bench/results/*.txt."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("bench.bench_responder", "bench.bench_apel_sync", "bench.bench_httpd",
              "bench.bench_planner", "bench.bench_fill", "bench.bench_startup",
              "bench.bench_memory")


def main() -> int:
    status = 0
    for name in BENCHMARKS:
        print(f"=== {name}", flush=True)
        module = importlib.import_module(name)
        rc = module.main([]) if name.endswith("responder") else module.main()
        status = status or int(rc or 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
