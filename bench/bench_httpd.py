"""Benchmark: metadata and MJF services under a burst of guests and under slow clients.

Run with ``.venv/bin/python -m bench.bench_httpd [--machines N] [--rounds R] [--repeat K]
[--baseline REV | --no-baseline]``. Each role runs in its own process, as under vacd
(bench/httpd_serve.py, logging its access log to a file), on 127.0.0.1; 127.0.0.N stands
for slot N. The same scenarios run against the working tree and, side by side, against
the services of git revision REV (default: the last one with the thread-per-connection
server), extracted into a temporary directory:

- **burst** (K runs per side, interleaved with the baseline's, so that both see the same
  load from whatever else shares the machine; the median of the runs' p99 is compared):
  R rounds in which N guests, each on a new connection and all at the same
  instant (one selector loop opens every connection at once), GET ``/latest/user-data``
  from metadata and ``/jobfeatures/allocated_cpu`` from MJF; then all N PUT a 1 kB
  ``/joboutputs/heartbeat``. Latency is per request, from connect() to the whole reply.
- **slow clients**: 8 other sources each hold 16 half-sent requests to each service,
  sending one more header byte every second; meanwhile another slot GETs and PUTs once
  every 0.5 s (20 probes, 5 s timeout each). Reported: probes answered, their latency, and
  how many slow connections the services still hold after 12 s.

The machine directories (and so the JOBOUTPUTS files PUT writes) go under ``--state-dir``
(default: the temporary directory); the results name its file system, since a PUT's cost
is mostly that file system's (an ext4 without a journal scans for a free inode on every
create while many were just freed: several times the CPU of a journalled one).
Results go to ``bench/results/httpd.txt`` (``--results``), ending with the rows 12.7a (GET)
and 12.7b (PUT) of the benchmark summary (the ROW lines bench/run_all.py collects: the median
p99 of the runs against the baseline's, target < 50 ms). This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Optional, Tuple

import psutil

from bench.burstclient import Address, Call, Result, SlowClients, burst, http_request
from bench.sidebyside import BASELINE_REV, REPO, baseline_tree, write_results
from tests.services.ctxhelpers import make_machine
from vac.adapters.statefs import write_started
from vac.paths import Paths

RESULTS = os.path.join(REPO, "bench", "results", "httpd.txt")
SERVE = os.path.join(REPO, "bench", "httpd_serve.py")
SLOW_SOURCES = [f"127.0.0.{n}" for n in range(200, 208)]
PROBE_SOURCE = "127.0.0.199"


def file_system(path: str) -> str:
    """The type of the file system holding ``path`` ("ext4 without journal" when so)."""
    path = os.path.realpath(path)
    best = max((p for p in psutil.disk_partitions(all=True)
                if path == p.mountpoint or path.startswith(p.mountpoint.rstrip("/") + "/")),
               key=lambda p: len(p.mountpoint), default=None)
    if best is None:
        return "unknown file system"
    journals = os.listdir("/proc/fs/jbd2") if os.path.isdir("/proc/fs/jbd2") else None
    device = os.path.basename(best.device) + "-"
    if best.fstype == "ext4" and journals is not None \
            and not any(j.startswith(device) for j in journals):
        return "ext4 without journal"
    return best.fstype


def cpu_seconds(pids: List[int]) -> float:
    """User + system CPU time used so far by the processes ``pids``."""
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


@contextlib.contextmanager
def servers(code: str, root: str) -> Iterator[Tuple[Address, Address, List[int]]]:
    """(metadata, mjf) addresses and the pids of the two roles running from the ``vac``
    under ``code``."""
    env = dict(os.environ, PYTHONPATH=code)
    procs = [subprocess.Popen([sys.executable, SERVE, role, root], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for role in ("metadata", "mjf")]
    try:
        addrs = []
        for proc in procs:
            host, port = proc.stdout.readline().split()
            addrs.append((host, int(port)))
        yield addrs[0], addrs[1], [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.stdin.close()
            proc.wait(30)


def burst_rounds(md: Address, mjf: Address, machines: int, rounds: int) -> List[Result]:
    sources = [f"127.0.0.{n}" for n in range(2, machines + 2)]
    gets = [Call(kind, addr, s, http_request("GET", path, host=addr)) for s in sources
            for kind, addr, path in (("GET", md, "/latest/user-data"),
                                     ("GET", mjf, "/jobfeatures/allocated_cpu"))]
    puts = [Call("PUT", mjf, s, http_request("PUT", "/joboutputs/heartbeat", b"x" * 1000,
                                             host=mjf)) for s in sources]
    results: List[Result] = []
    for _ in range(rounds):
        for calls in (gets, puts):
            results += burst(calls)
            time.sleep(0.2)
    return results


def slow_survival(md: Address, mjf: Address, probes: int = 20) -> Dict[str, object]:
    start = time.monotonic()
    slow = SlowClients([md, mjf], SLOW_SOURCES, per_source=16)
    held = len(slow.socks)
    results: List[Result] = []
    try:
        for _ in range(probes):
            results += burst([Call("GET", md, PROBE_SOURCE,
                                   http_request("GET", "/latest/user-data", host=md))],
                             timeout=5)
            results += burst([Call("PUT", mjf, PROBE_SOURCE, http_request(
                "PUT", "/joboutputs/heartbeat", b"x" * 1000, host=mjf))], timeout=5)
            time.sleep(0.5)
        time.sleep(max(0.0, 12 - (time.monotonic() - start)))
        open_after = slow.still_open()
    finally:
        slow.close()
    return {"attempted": slow.attempted, "held": held, "open_after_12s": open_after,
            "results": results}


def percentile(values: List[float], pct: int) -> float:
    """The ``pct``-th percentile of at least two values (within their range)."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _quantiles(values: List[float]) -> str:
    values = sorted(values)
    if len(values) < 2:
        return "n/a"
    return (f"p50={percentile(values, 50) * 1000:.1f} ms "
            f"p99={percentile(values, 99) * 1000:.1f} ms "
            f"max={values[-1] * 1000:.1f} ms")


def p99(results: List[Result], kind: str) -> Optional[float]:
    lat = [r.seconds for r in results if r.kind == kind and r.status in (200, 201)]
    return percentile(lat, 99) if len(lat) > 1 else None


def burst_line(n: int, bursts: List[Result], cpu: float, load: float) -> str:
    """One run of the burst scenario on one line."""
    errors = sum(r.status not in (200, 201) for r in bursts)
    parts = [f"  run {n}: load {load:.1f}, {len(bursts)} requests, {errors} errors, "
             f"server CPU {cpu * 1e6 / max(1, len(bursts)):.0f} us/request"]
    for kind in ("GET", "PUT"):
        ok = sorted(r.seconds for r in bursts if r.kind == kind and r.status in (200, 201))
        seen = sorted(r.observed for r in bursts if r.kind == kind and r.status in (200, 201))
        if len(ok) > 1:
            parts.append(f"{kind} p50 {statistics.median(ok) * 1000:.1f} p99 "
                         f"{percentile(ok, 99) * 1000:.1f} ms (client saw "
                         f"p99 {percentile(seen, 99) * 1000:.1f})")
    return "; ".join(parts) + "\n"


def slow_lines(slow: Dict[str, object]) -> str:
    probes: List[Result] = slow["results"]       # type: ignore[assignment]
    lines = [f"  slow clients: 8 sources x 16 half-sent requests to each service "
             f"({slow['attempted']} tried, {slow['held']} connected)"]
    for kind in ("GET", "PUT"):
        mine = [r for r in probes if r.kind == kind]
        ok = [r.seconds for r in mine if r.status in (200, 201)]
        lines.append(f"    another slot's {kind}: {len(ok)}/{len(mine)} answered, "
                     f"{_quantiles(ok) if len(ok) > 1 else ''}".rstrip(", "))
    lines.append(f"    slow connections still held by the services after 12 s: "
                 f"{slow['open_after_12s']}/{slow['held']}")
    return "\n".join(lines) + "\n"


def measure(code: str, machines: int, rounds: int, with_slow: bool,
            state_dir: Optional[str] = None):
    """(burst results, server CPU seconds, load average, slow-client results or None)."""
    with tempfile.TemporaryDirectory(dir=state_dir) as root:
        paths = Paths(root=root)
        for n in list(range(2, machines + 2)) + [int(PROBE_SOURCE.split(".")[3])]:
            mdir = make_machine(paths, n, user_data=b"#!/bin/sh\n" + b"# padding\n" * 400)
            write_started(mdir, time.time())      # booted: as every machine that PUTs
        with servers(code, root) as (md, mjf, pids):
            load, cpu = os.getloadavg()[0], cpu_seconds(pids)
            bursts = burst_rounds(md, mjf, machines, rounds)
            cpu = cpu_seconds(pids) - cpu
            slow = slow_survival(md, mjf) if with_slow else None
    return bursts, cpu, load, slow


def median_p99(runs, kind: str) -> Optional[float]:
    values = [v for v in (p99(bursts, kind) for bursts, _cpu, _load in runs) if v]
    return statistics.median(values) if values else None


def median_cpu(runs) -> float:
    """The median over the runs of the servers' CPU seconds per request."""
    return statistics.median(cpu / max(1, len(bursts)) for bursts, cpu, _load in runs)


TARGET_P99 = 0.050      # issue 12 point 7: p99 under 50 ms


def row_lines(new_runs, base_runs, machines: int) -> str:
    """The issue-12.7 summary rows (bench/run_all.py collects them), GET and PUT."""
    lines = ""
    for row, kind in (("12.7a", "GET"), ("12.7b", "PUT")):
        new, base = median_p99(new_runs, kind), median_p99(base_runs, kind)
        met = "met" if new < TARGET_P99 else "NOT met"
        lines += (f"ROW {row} | metadata+MJF burst {kind} p99, {machines} guests | "
                  f"vac {new * 1000:.1f} ms | baseline {base * 1000:.1f} ms | "
                  f"ratio {new / base:.2f} | target < {TARGET_P99 * 1000:.0f} ms | {met}\n")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="burst runs per side")
    parser.add_argument("--baseline", default=BASELINE_REV, help="git revision to compare")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--state-dir", default=tempfile.gettempdir(),
                        help="where the machine directories go (its file system matters)")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        sides = [("this tree", REPO)]
        if not args.no_baseline:
            sides.append((f"baseline {args.baseline}",
                          stack.enter_context(baseline_tree(args.baseline))))
        runs: Dict[str, list] = {label: [] for label, _ in sides}
        slow: Dict[str, Dict[str, object]] = {}
        for i in range(args.repeat):          # interleaved, so both see the same load
            for label, code in sides:
                bursts, cpu, load, survival = measure(code, args.machines, args.rounds, i == 0,
                                                      args.state_dir)
                runs[label].append((bursts, cpu, load))
                if survival is not None:
                    slow[label] = survival
    text = (f"bench_httpd on {platform.node()} ({os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}); each role in its own process, client in a "
            f"third; burst: {args.machines} guests at the same instant, {args.rounds} "
            f"rounds per run; machine directories on {file_system(args.state_dir)}\n")
    for label, _code in sides:
        text += f"[{label}]\n" + "".join(burst_line(n + 1, *run)
                                          for n, run in enumerate(runs[label]))
        medians = ", ".join(f"{kind} {median_p99(runs[label], kind) * 1000:.1f} ms"
                            for kind in ("GET", "PUT"))
        text += (f"  median p99 of the runs: {medians}; median server CPU "
                 f"{median_cpu(runs[label]) * 1e6:.0f} us/request\n" + slow_lines(slow[label]))
    if len(sides) == 2:
        new_runs, base_runs = runs[sides[0][0]], runs[sides[1][0]]
        for kind in ("GET", "PUT"):
            new, base = median_p99(new_runs, kind), median_p99(base_runs, kind)
            text += f"burst {kind} median p99, this tree / baseline: {new / base:.2f}\n"
        text += (f"server CPU per request, this tree / baseline: "
                 f"{median_cpu(new_runs) / median_cpu(base_runs):.2f}\n")
        text += row_lines(new_runs, base_runs, args.machines)
    write_results(args.results, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
