"""Benchmark: metadata and MJF services answering many machines at once.

Run with ``.venv/bin/python -m bench.bench_httpd [--machines N] [--requests R]``.
Starts both roles on 127.0.0.1 (ephemeral ports; 127.0.0.N stands for slot N through the
test resolver) over N machine directories, then every machine fetches, each on a NEW
connection as guests do: ``/latest/user-data`` and ``/latest/meta-data/instance-id`` from
the metadata service, ``jobfeatures/allocated_cpu`` from MJF and a 1 kB ``PUT
/joboutputs/heartbeat``, R times, all machines in parallel (one thread each).
Results go to ``bench/results/httpd.txt``. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from typing import List

from tests.services.ctxhelpers import (loopback_resolver, make_config, make_machine,
                                       request, running_role)
from vac.paths import Paths
from vac.services import metadata_httpd, mjf_httpd

RESULTS = os.path.join(os.path.dirname(__file__), "results", "httpd.txt")


def _machine_loop(md, mjf, ordinal: int, rounds: int, lat: List[float], errors: List[str]):
    src = f"127.0.0.{ordinal}"
    calls = [(md, "GET", "/latest/user-data", None),
             (md, "GET", "/latest/meta-data/instance-id", None),
             (mjf, "GET", "/jobfeatures/allocated_cpu", None),
             (mjf, "PUT", "/joboutputs/heartbeat", b"x" * 1000)]
    for _ in range(rounds):
        for addr, method, path, body in calls:
            t0 = time.perf_counter()
            status = request(addr, method, path, source=src, body=body)[0]
            lat.append(time.perf_counter() - t0)
            if status not in (200, 201):
                errors.append(f"{src} {method} {path}: {status}")


def run(machines: int, rounds: int) -> str:
    with tempfile.TemporaryDirectory() as root:
        paths = Paths(root=root)
        for n in range(2, machines + 2):
            make_machine(paths, n, user_data=b"#!/bin/sh\n" + b"# padding\n" * 400)
        cfg, resolve = make_config(), loopback_resolver(paths)
        with running_role(mjf_httpd.run_role, paths, cfg, resolve=resolve) as mjf, \
                running_role(metadata_httpd.run_role, paths, cfg, resolve=resolve) as md:
            lat: List[float] = []
            errors: List[str] = []
            threads = [threading.Thread(target=_machine_loop,
                                        args=(md, mjf, n, rounds, lat, errors))
                       for n in range(2, machines + 2)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    return (f"bench_httpd on {platform.node()} ({os.cpu_count()} CPUs, Python "
            f"{platform.python_version()})\n"
            f"machines={machines} rounds={rounds} requests={len(lat)} errors={len(errors)}\n"
            f"wall={wall:.2f} s  throughput={len(lat) / wall:.0f} requests/s "
            f"(client and servers share the CPUs)\n"
            f"latency p50={q[49] * 1000:.1f} ms p99={q[98] * 1000:.1f} ms "
            f"max={lat[-1] * 1000:.1f} ms\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--requests", type=int, default=10, help="rounds per machine")
    args = parser.parse_args(argv)
    text = run(args.machines, args.requests)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        f.write(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
