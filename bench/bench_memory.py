"""Benchmark: memory of an idle vacd and its role children, this tree against a baseline.

Run as root: ``.venv/bin/python -m bench.bench_memory [--cycles N] [--baseline REV |
--no-baseline] [--metrics]``. In a fresh network namespace (its own UDP 995 and port 80,
its own ``ip``/``iptables`` state), a real ``vacd --foreground`` runs the default roles
(factory, responder, metadata, MJF: since the responder runs in a thread of the factory's
process, three children; with ``--metrics`` also the metrics role, which the baseline
does not have; the results name the roles whose heartbeats were seen) on an idle configuration: a space of one factory and no
machinetypes, libvirt's built-in ``test:///default`` driver (a real libvirt connection and
NAT network, no shared libvirtd touched). Once the factory has finished N cycles (default
3: its ``factory-heartbeat`` changed N times) and 2 s more have passed, Pss and Rss of
vacd and every child are read from ``/proc/PID/smaps_rollup`` and summed per role and in
total. The same is done side by side with the ``vac`` of git revision REV (default
38e2225, the state the issue measured) extracted with ``git archive``. Results:
``bench/results/memory.txt``. This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, Optional, Tuple

from bench import machine_line, write_results
from bench.sidebyside import BASELINE_REV, REPO, baseline_tree
from vac.paths import Paths

RESULTS = os.path.join(REPO, "bench", "results", "memory.txt")
FACTORY = "factory1.example.com"
CONF = f"""[settings]
vac_space = vac01.example.com
factory_hostname = {FACTORY}
factories = {FACTORY}
total_processors = 2
libvirt_uri = test:///default
"""
METRICS_CONF = "metrics_address = 127.0.0.1:9101\n"
ROLE_ORDER = ("vacd", "vacd-factory", "vacd-responder", "vacd-metadata", "vacd-mjf",
              "vacd-metrics")
KIB = 1024
TARGETS_MIB = (("6a", "PSS", 60.0), ("6b", "RSS", 100.0))    # issue 15 row 6


def smaps_rollup(pid: int) -> Tuple[int, int]:
    """(Pss, Rss) of process ``pid`` in KiB, from /proc/PID/smaps_rollup."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Pss", "Rss"):
                values[key] = int(rest.split()[0])
    return values["Pss"], values["Rss"]


def children(pid: int):
    """Pids of the direct children of ``pid`` (from /proc/PID/task/*/children)."""
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
            kids += [int(k) for k in f.read().split()]
    return kids


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm", encoding="ascii") as f:
        return f.read().strip()


def vacd_pid(launcher: int) -> int:
    """vacd's pid below ``ip netns exec`` (which execs, so usually the same pid)."""
    pid = launcher
    while comm(pid) != "vacd":
        kids = children(pid)
        if not kids:
            raise RuntimeError(f"no vacd below pid {launcher}")
        pid = kids[0]
    return pid


def measure_tree(vacd: int) -> Dict[str, Tuple[int, int]]:
    """Role name -> (Pss, Rss) KiB summed over vacd and all its descendants."""
    out: Dict[str, Tuple[int, int]] = {}
    todo = [vacd]
    while todo:
        pid = todo.pop()
        try:
            name, (pss, rss) = comm(pid), smaps_rollup(pid)
            todo += children(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        old = out.get(name, (0, 0))
        out[name] = (old[0] + pss, old[1] + rss)
    return out


@contextlib.contextmanager
def namespace():
    """A network namespace whose /etc/hosts (``ip netns exec`` bind-mounts
    /etc/netns/NS/hosts) names the factory: its peer query reaches its own responder
    through the system resolver, as a factory whose space is in DNS."""
    ns = f"vacmem-{os.getpid()}"
    etc = os.path.join("/etc/netns", ns)
    os.makedirs(etc)
    try:
        with open(os.path.join(etc, "hosts"), "w") as f:
            f.write(f"127.0.0.1 localhost {FACTORY}\n")
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            yield ns
        finally:
            subprocess.run(["ip", "netns", "del", ns], check=False)
    finally:
        shutil.rmtree(etc, ignore_errors=True)


def _wait_cycles(paths: Paths, proc: subprocess.Popen, cycles: int, timeout: float) -> int:
    """Wait until the factory heartbeat has changed ``cycles`` times; cycles seen."""
    seen, last, deadline = 0, None, time.monotonic() + timeout
    while seen < cycles and time.monotonic() < deadline and proc.poll() is None:
        try:
            mtime: Optional[float] = os.stat(paths.heartbeat("factory")).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime is not None and mtime != last:
            seen, last = seen + 1, mtime
        time.sleep(0.05)
    return seen


def _entry(code: str) -> str:
    """vacd's module in the tree ``code`` (vac.daemon before the vac.vacd package)."""
    new = os.path.exists(os.path.join(code, "vac", "vacd", "daemon.py"))
    return "vac.vacd.daemon" if new else "vac.daemon"


def beating_roles(paths: Paths) -> str:
    """The roles whose heartbeat file exists (each role, wherever it runs, writes one)."""
    roles = ("factory", "responder", "metadata", "mjf", "metrics")
    return ", ".join(r for r in roles if os.path.exists(paths.heartbeat(r)))


def one_run(code: str, cycles: int, metrics: bool,
            timeout: float = 300.0) -> Tuple[Dict[str, Tuple[int, int]], str]:
    """(process name -> (Pss, Rss) KiB, what was seen: factory cycles and the roles
    with heartbeats) of an idle vacd run from ``code``."""
    with tempfile.TemporaryDirectory() as root, namespace() as ns:
        paths = Paths(root=root)
        for d in paths.state_subdirs():
            os.makedirs(d, exist_ok=True)
        os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
        with open(paths.etc_vac_conf, "w") as f:
            f.write(CONF + (METRICS_CONF if metrics else ""))
        env = dict(os.environ, PYTHONPATH=code)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", _entry(code),
                                 "--root", root, "--foreground"], env=env, cwd=root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            seen = _wait_cycles(paths, proc, cycles, timeout)
            time.sleep(2.0)
            return (measure_tree(vacd_pid(proc.pid)),
                    f"factory cycles seen: {seen}; heartbeats of: {beating_roles(paths)}")
        finally:
            proc.terminate()
            proc.wait(60)


def table(label: str, figures: Dict[str, Tuple[int, int]], seen: str) -> list:
    lines = [f"[{label}] ({seen})"]
    for name in sorted(figures, key=lambda n: (ROLE_ORDER + (n,)).index(n)):
        pss, rss = figures[name]
        lines.append(f"  {name:<16} PSS {pss / KIB:6.1f} MiB  RSS {rss / KIB:6.1f} MiB")
    pss, rss = (sum(v[i] for v in figures.values()) for i in (0, 1))
    lines.append(f"  {'sum':<16} PSS {pss / KIB:6.1f} MiB  RSS {rss / KIB:6.1f} MiB")
    return lines


def totals(figures: Dict[str, Tuple[int, int]]) -> Tuple[int, int]:
    return sum(v[0] for v in figures.values()), sum(v[1] for v in figures.values())


def row_lines(now: Dict[str, Tuple[int, int]],
              base: Optional[Dict[str, Tuple[int, int]]]) -> list:
    """The ``ROW 6a``/``ROW 6b`` summary lines (protocol: bench/run_all.py)."""
    lines = []
    for (row, what, target), vac, old in zip(TARGETS_MIB, totals(now),
                                              totals(base) if base else (None, None)):
        mib = vac / KIB
        baseline = f"{old / KIB:.1f} MiB" if old else "-"
        ratio = f"{vac / old:.2f}" if old else "-"
        verdict = "met" if mib <= target else "NOT met"
        lines.append(f"ROW {row} | {what} sum of vacd and children, idle | vac {mib:.1f} MiB | "
                     f"baseline {baseline} | ratio {ratio} | target ≤ {target:.0f} MiB | "
                     f"{verdict}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench_memory")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--baseline", default=BASELINE_REV, help="git revision to compare")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--metrics", action="store_true", help="also run the metrics role")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_memory needs root (network namespaces, port 80)", file=sys.stderr)
        return 1
    lines = [machine_line("bench_memory"),
             f"# idle vacd (no machinetypes, libvirt test:///default) after {args.cycles} "
             f"factory cycles; Pss/Rss from /proc/PID/smaps_rollup, summed per process name; "
             f"load average {os.getloadavg()[0]:.1f}"]
    now, seen = one_run(REPO, args.cycles, args.metrics)
    lines += table("vac (this tree)" + (" with the metrics role" if args.metrics else ""),
                   now, seen)
    base = None
    if not args.no_baseline:
        with baseline_tree(args.baseline) as old:
            base, seen = one_run(old, args.cycles, False)
        lines += table(f"baseline {args.baseline}", base, seen)
    return write_results(RESULTS, lines + row_lines(now, base))


if __name__ == "__main__":
    sys.exit(main())
