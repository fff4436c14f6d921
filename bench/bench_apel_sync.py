"""Benchmark: ``vac apel-sync`` over one million archived APEL job records.

Run with ``.venv/bin/python -m bench.bench_apel_sync [--records N] [--keep DIR]``.
Generates N archived v0.3 records (one month, 30 day directories) in a temporary
directory, then times, each in a fresh child process with a warm page cache:

* ``vac``: ``vac --root TMP apel-sync YYYYMM`` (in-process CLI entry point);
* ``baseline``: a naive loop that globs ``YYYYMM*/*`` and reads each file's first two lines.

Wall time and peak RSS (``getrusage``) come from normal runs; the Python heap peak from a
separate ``tracemalloc`` run. Results go to ``bench/results/apel_sync.txt``.
This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from contextlib import redirect_stdout

MONTH = "202303"
DAYS = 30
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "apel_sync.txt")

RECORD = ("APEL-individual-job-message: v0.3\nSite: UKI-EXAMPLE\n"
          "SubmitHost: vac01.example.com/vac-factory{f}.example.com\n"
          "MachineName: factory{f}-{slot:02d}.example.com\nQueue: lhcb-prod\n"
          "LocalJobId: 00000000-0000-4000-8000-{i:012d}\nLocalUserId: factory{f}.example.com\n"
          "GlobalUserName: /DC=com/DC=example/DC=vac01\nFQAN: /lhcb/Role=NULL/Capability=NULL\n"
          "WallDuration: 86100\nCpuDuration: 83000\nProcessors: 1\nNodeCount: 1\n"
          "StartTime: 1677628800\nEndTime: 1677714900\nInfrastructureDescription: APEL-VAC\n"
          "InfrastructureType: grid\nMemoryReal: 2097152\nMemoryVirtual: 2097152\n"
          "ServiceLevelType: HEPSPEC\nServiceLevel: 10.5\n%%\n")


def generate(root: str, records: int) -> float:
    """Write ``records`` archive files under ``root``'s apel-archive; returns seconds."""
    t0 = time.monotonic()
    archive = os.path.join(root, "var", "lib", "vac", "apel-archive")
    per_day = -(-records // DAYS)
    for i in range(records):
        day, k = divmod(i, per_day)
        directory = os.path.join(archive, f"{MONTH}{day + 1:02d}")
        if k == 0:
            os.makedirs(directory, exist_ok=True)
        name = f"{k % 240000:06d}{i:08x}"
        with open(os.path.join(directory, name), "w") as f:
            f.write(RECORD.format(f=1 + i % 2, slot=i % 64, i=i))
    return time.monotonic() - t0


def run_vac(root: str) -> None:
    from vac.cli import main
    out = io.StringIO()
    with redirect_stdout(out):
        main(["--root", root, "apel-sync", MONTH])
    sys.stderr.write(out.getvalue()[-300:])


def run_baseline(root: str) -> None:
    pattern = os.path.join(root, "var", "lib", "vac", "apel-archive", MONTH + "*", "*")
    n = 0
    for path in sorted(glob.glob(pattern), reverse=True):
        with open(path) as f:
            f.readline()
            f.readline()
        n += 1
    sys.stderr.write(f"baseline read {n} files\n")


def child(mode: str, root: str, trace: bool) -> None:
    """Entry point of one measured child process: prints one JSON line."""
    import vac.cli  # noqa: F401 - both modes start from the same loaded interpreter
    if trace:
        tracemalloc.start()
    t0 = time.monotonic()
    (run_vac if mode == "vac" else run_baseline)(root)
    seconds = time.monotonic() - t0
    result = {"seconds": seconds,
              "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    if trace:
        result["heap_peak_bytes"] = tracemalloc.get_traced_memory()[1]
    print(json.dumps(result))


def measure(mode: str, root: str, trace: bool = False) -> dict:
    argv = [sys.executable, "-m", "bench.bench_apel_sync", "--child", mode, root]
    if trace:
        argv.append("--trace")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} child failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(records: int, gen_seconds: float, vac: dict, base: dict) -> str:
    lines = [
        "vac apel-sync benchmark (bench/bench_apel_sync.py)",
        f"date (UTC):      {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}",
        f"host:            {platform.node()} {platform.machine()} cpus={os.cpu_count()} "
        f"python={platform.python_version()}",
        f"archive:         {records} records in {DAYS} day directories of {MONTH}, "
        f"2 SubmitHosts (generated in {gen_seconds:.1f} s)",
        "page cache:      warm (one unmeasured baseline pass first)",
        "each figure from a fresh child process that has imported vac.cli before measuring",
        "",
        f"{'':22}{'vac apel-sync':>16}{'naive baseline':>16}{'ratio vac/base':>16}",
    ]
    for key, label, scale, unit in (("seconds", "wall time", 1, "s"),
                                    ("maxrss_kib", "peak RSS", 1 / 1024, "MiB"),
                                    ("heap_peak_bytes", "Python heap peak", 1 / 2 ** 20, "MiB")):
        v, b = vac[key] * scale, base[key] * scale
        lines.append(f"{label + ' (' + unit + ')':22}{v:16.2f}{b:16.2f}{v / b:16.2f}")
    lines += ["", f"per record (vac):    {vac['seconds'] / records * 1e6:.1f} us",
              "baseline = glob YYYYMM*/*, sort, read the first two lines of each file;",
              "vac also parses Site/SubmitHost, checks them and queues 2 sync records via dirq."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="DIR", help="reuse/keep the archive in DIR")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "ROOT"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.trace)
        return
    root = args.keep or tempfile.mkdtemp(prefix="vac-bench-apel-")
    try:
        gen = 0.0
        if not os.path.isdir(os.path.join(root, "var", "lib", "vac", "apel-archive")):
            gen = generate(root, args.records)
        measure("baseline", root)                     # warm the page cache
        vac, base = measure("vac", root), measure("baseline", root)
        vac["heap_peak_bytes"] = measure("vac", root, trace=True)["heap_peak_bytes"]
        base["heap_peak_bytes"] = measure("baseline", root, trace=True)["heap_peak_bytes"]
        text = report(args.records, gen, vac, base)
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            f.write(text)
        print(text, end="")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
