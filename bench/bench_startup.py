"""Benchmark: vacd start -> metadata and MJF serving a guest, this tree against a baseline.

Run as root: ``.venv/bin/python -m bench.bench_startup [--runs N] [--network-after S]
[--baseline REV | --no-baseline]``. In a fresh network namespace, ``vacd --roles
metadata,mjf`` (the real roles) starts with the default bind addresses 169.254.169.254:80
and 169.254.169.253:80, which do not exist yet. Once both roles run (their heartbeat
files exist, plus 0.3 s) and at least S seconds (default 1) after the start, the bench
adds the addresses, as the factory does when its first cycle makes the NAT network (on a
real factory the roles start first: the issue measured 10.7 s). A guest at
169.254.169.5 (slot 5) polls every 20 ms; measured from vacd's start: its first metadata
answer (GET instance-id) and its first accepted heartbeat (PUT /joboutputs/heartbeat).
TCG guest boot is excluded. The same runs are made side by side with the ``vac`` of git
revision REV (default: the last one that retried the bind every 10 s). Results go to
``bench/results/startup.txt``. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

from bench.sidebyside import BASELINE_REV, REPO, baseline_tree, write_results
from tests.services.ctxhelpers import FACTORY, make_machine, setns
from vac.paths import Paths

RESULTS = os.path.join(REPO, "bench", "results", "startup.txt")
GUEST = "169.254.169.5"
PROBES = {"metadata": ("169.254.169.254", "GET", "/latest/meta-data/instance-id", None, 200),
          "heartbeat": ("169.254.169.253", "PUT", "/joboutputs/heartbeat", b"0.1 0.1 0.1",
                        201)}
CONF = f"""[settings]
vac_space = vac01.example.com
factory_hostname = {FACTORY}
factories = {FACTORY}
total_processors = 2
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def namespace(tag: str):
    """A namespace with a veth pair: the guest's 169.254.169.5/32 on one end."""
    ns = f"vacstart-{tag}-{os.getpid()}"
    _ip("netns", "add", ns)
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", "vsa", "type", "veth", "peer", "name", "vsb")
        for dev in ("vsa", "vsb"):
            _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", ns, "addr", "add", GUEST + "/32", "dev", "vsb")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _probe(ns: str, what: str, t0: float, until: float, found: Dict[str, float]) -> None:
    setns(ns)
    host, method, path, body, want = PROBES[what]
    while time.monotonic() < until:
        conn = http.client.HTTPConnection(host, 80, timeout=0.2, source_address=(GUEST, 0))
        try:
            conn.request(method, path, body=body)
            if conn.getresponse().status == want:
                found[what] = time.monotonic() - t0
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.02)


def _wait_for_roles(paths: Paths, until: float) -> None:
    """Until both roles have written their heartbeat (they run, and tried to bind)."""
    while time.monotonic() < until and not all(
            os.path.exists(paths.heartbeat(role)) for role in ("metadata", "mjf")):
        time.sleep(0.02)


def daemon_module(code: str) -> str:
    """vacd's module in the tree at ``code`` (vac/daemon.py before vac/vacd/ existed)."""
    return ("vac.vacd.daemon" if os.path.exists(os.path.join(code, "vac", "vacd", "daemon.py"))
            else "vac.daemon")


def one_run(code: str, network_after: float, timeout: float = 30.0) -> Dict[str, float]:
    """Seconds from vacd's start to each probe's first success (missing: never)."""
    with tempfile.TemporaryDirectory() as root, namespace("b") as ns:
        paths = Paths(root=root)
        os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
        with open(paths.etc_vac_conf, "w") as f:
            f.write(CONF)
        make_machine(paths, 5)
        env = dict(os.environ, PYTHONPATH=code)
        found: Dict[str, float] = {}
        t0 = time.monotonic()
        vacd = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m",
                                 daemon_module(code), "--root", root, "--foreground",
                                 "--roles", "metadata,mjf"],
                                env=env, cwd=root, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        probes = [threading.Thread(target=_probe, args=(ns, what, t0, t0 + timeout, found))
                  for what in PROBES]
        try:
            for t in probes:
                t.start()
            _wait_for_roles(paths, t0 + timeout)
            time.sleep(max(0.3, t0 + network_after - time.monotonic()))
            found["network"] = time.monotonic() - t0
            subprocess.run(["ip", "-n", ns, "-batch", "-"], check=True, text=True,
                           input="".join(f"addr add {a}/32 dev vsa\n"
                                         for a in ("169.254.169.253", "169.254.169.254")))
            for t in probes:
                t.join(timeout + 5)
        finally:
            vacd.terminate()
            vacd.wait(30)
        return found


def summary(label: str, runs: List[Dict[str, float]]) -> str:
    nets = " ".join(f"{r['network']:.2f}" for r in runs if "network" in r)
    lines = [f"[{label}]", f"  addresses added after (s): {nets}"]
    for what in PROBES:
        times = [r[what] for r in runs if what in r]
        shown = " ".join(f"{t:.2f}" for t in times)
        median = f"median {statistics.median(times):.2f} s" if times else "never"
        lines.append(f"  vacd start -> first {what} accepted: {median} (runs: {shown}; "
                     f"{len(runs) - len(times)} failed)")
    return "\n".join(lines) + "\n"


def median_of(runs: List[Dict[str, float]], what: str) -> Optional[float]:
    times = [r[what] for r in runs if what in r]
    return statistics.median(times) if times else None


TARGET_SECONDS = 3.0    # issue 15 row 5: vacd start -> first heartbeat accepted within 3 s


def row_lines(now: List[Dict[str, float]], base: List[Dict[str, float]]) -> List[str]:
    """ROW 5a (first metadata answer) and 5b (first heartbeat accepted), medians."""
    from bench.rows import row
    lines = []
    for row_id, what in (("5a", "metadata"), ("5b", "heartbeat")):
        new, old = median_of(now, what), median_of(base, what)
        if new and old:
            lines.append(row(row_id, f"vacd start to the first {what} accepted from a guest "
                             f"(median of {len(now)} runs, addresses added once the roles "
                             f"run)", f"{new:.2f} s", f"{old:.2f} s", new / old,
                             f"<= {TARGET_SECONDS:g} s", new <= TARGET_SECONDS))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--network-after", type=float, default=1.0)
    parser.add_argument("--baseline", default=BASELINE_REV, help="git revision to compare")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_startup needs root (network namespaces, port 80)", file=sys.stderr)
        return 1
    text = (f"bench_startup on {platform.node()} ({os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}); service addresses appear once the roles run, "
            f"at least {args.network_after:.1f} s after vacd starts\n")
    now = [one_run(REPO, args.network_after) for _ in range(args.runs)]
    text += summary("this tree", now)
    if not args.no_baseline:
        with baseline_tree(args.baseline) as old:
            base = [one_run(old, args.network_after) for _ in range(args.runs)]
        text += summary(f"baseline {args.baseline}", base)
        for what in PROBES:
            new, old_median = median_of(now, what), median_of(base, what)
            if new and old_median:
                text += f"{what}: this tree / baseline = {new / old_median:.2f}\n"
        text += "".join(line + "\n" for line in row_lines(now, base))
    write_results(RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
