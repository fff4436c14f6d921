"""Benchmark: ``vac apel-sync`` over one million archived APEL job records.

Run with ``.venv/bin/python -m bench.bench_apel_sync [--records N] [--keep DIR]``.
Generates N archived v0.3 records (one month, 30 day directories) in a temporary
directory, with the day summaries the factory keeps while archiving them
(``vac.core.apelsummary.after_archive`` for every record, as ``accounting`` does), then
times, each in a fresh child process with a warm page cache:

* ``baseline``: a naive loop that globs ``YYYYMM*/*`` and reads each file's first two lines;
* ``vac apel-sync YYYYMM`` (in-process CLI entry point) with the day summaries
  - ``none``: no summary (the first run after upgrading; every day stale): every record
    is read, as before summaries existed, and the summaries are written;
  - ``archived``: as the factory left them, never checked by apel-sync (racy: each
    day's entries are counted, no record is read);
  - ``settled``: checked by an earlier apel-sync (each day: one stat, one small read).
    The daily cron run meets this for every day but the last one or two.

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

from vac.core import apel, apelsummary

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


VAC_DIR = os.path.join("var", "lib", "vac")
SUMMARY_STATES = ("none", "archived", "settled")


def _prepared(root: str, state: str) -> str:
    """Where the day summaries of one state are kept between measurements."""
    return os.path.join(root, f"apel-summary.{state}")


def generate(root: str, records: int) -> float:
    """Write ``records`` archive files under ``root``'s apel-archive, and the day
    summaries the factory would have left (state ``archived``); returns seconds."""
    t0 = time.monotonic()
    archive = os.path.join(root, VAC_DIR, "apel-archive")
    per_day = -(-records // DAYS)
    summary, directory, tick = None, "", 0
    for i in range(records):
        day, k = divmod(i, per_day)
        if k == 0:
            _save_archived(root, directory, summary)
            directory = os.path.join(archive, f"{MONTH}{day + 1:02d}")
            os.makedirs(directory, exist_ok=True)
            summary = None
        name = f"{k % 240000:06d}{i:08x}"
        text = RECORD.format(f=1 + i % 2, slot=i % 64, i=i)
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
        summary = apelsummary.after_archive(      # what accounting._note_archived does
            summary, tick if summary else None, tick + 1, False, name,
            apel.header_values(text, apelsummary.KEYS))
        tick += 1
    _save_archived(root, directory, summary)
    return time.monotonic() - t0


def _save_archived(root: str, directory: str, summary) -> None:
    if summary is None:
        return
    mtime = os.stat(directory).st_mtime_ns
    summary = apelsummary.DaySummary(mtime, summary.entries, 0, summary.counts,
                                     summary.newest, summary.invalid)
    _write(_prepared(root, "archived"), os.path.basename(directory),
           apelsummary.to_json(summary))


def _write(directory: str, day: str, text: str) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, day + ".json"), "w") as f:
        f.write(text)


def prepare_settled(root: str) -> None:
    """The ``archived`` summaries as an earlier apel-sync leaves them (checked now)."""
    now = time.time_ns()
    src = _prepared(root, "archived")
    for name in sorted(os.listdir(src)):
        with open(os.path.join(src, name)) as f:
            summary = apelsummary.from_json(f.read())
        checked = apelsummary.checked(summary, now)
        _write(_prepared(root, "settled"), name[:-5], apelsummary.to_json(checked or summary))


def install_summaries(root: str, state: str) -> None:
    """Put the day summaries of ``state`` in place (not timed)."""
    target = os.path.join(root, VAC_DIR, "apel-summary")
    shutil.rmtree(target, ignore_errors=True)
    if state != "none":
        shutil.copytree(_prepared(root, state), target)


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
    if mode != "baseline":
        install_summaries(root, mode)
    if trace:
        tracemalloc.start()
    t0 = time.monotonic()
    (run_baseline if mode == "baseline" else run_vac)(root)
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


def report(records: int, gen_seconds: float, results: dict) -> str:
    base = results["baseline"]
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
        f"{'day summaries':14}{'wall time (s)':>15}{'ratio':>8}{'peak RSS (MiB)':>16}"
        f"{'ratio':>8}{'heap peak (MiB)':>17}{'ratio':>8}",
    ]
    for mode in ("baseline",) + SUMMARY_STATES:
        r = results[mode]
        label = "naive baseline" if mode == "baseline" else "vac: " + mode
        lines.append(
            f"{label:14}{r['seconds']:15.3f}{r['seconds'] / base['seconds']:8.3f}"
            f"{r['maxrss_kib'] / 1024:16.1f}{r['maxrss_kib'] / base['maxrss_kib']:8.2f}"
            f"{r['heap_peak_bytes'] / 2 ** 20:17.2f}"
            f"{r['heap_peak_bytes'] / base['heap_peak_bytes']:8.3f}")
    lines += ["", "ratio = vac / naive baseline, measured side by side in this run;",
              "baseline = glob YYYYMM*/*, sort, read the first two lines of each file;",
              "vac: none     = no day summaries: every record read (as before summaries),",
              "                summaries written; also what --rescan does;",
              "vac: archived = summaries as the factory keeps them while archiving,",
              "                not yet checked: each day's entries counted, no record read;",
              "vac: settled  = summaries checked by an earlier apel-sync: one stat and one",
              "                small file per day;",
              "vac also queues the 2 sync records via dirq.", ""] + row_lines(records, results)
    return "\n".join(lines) + "\n"


def row_lines(records: int, results: dict) -> list:
    """Issue 15 row 7 in bench/BENCH-ROWS form: 7a with the day summaries as the factory
    keeps them (the daily cron run meets checked ones for all but the newest days), 7b
    with none (first run after an upgrade, or --rescan: no slower than before them)."""
    base = results["baseline"]["seconds"]
    kept, none = results["archived"]["seconds"], results["none"]["seconds"]
    settled = results["settled"]["seconds"]
    return [
        f"ROW 7a | vac apel-sync over {records:,} archived records, day summaries as the "
        f"factory keeps them (once checked by an apel-sync: {settled:.3f} s, ratio "
        f"{settled / base:.3f}) | vac {kept:.2f} s | baseline {base:.2f} s | ratio "
        f"{kept / base:.3f} | target <= 0.1 x the naive read loop | "
        f"{'met' if kept / base <= 0.1 else 'NOT met'}",
        f"ROW 7b | vac apel-sync over {records:,} archived records, no day summaries "
        f"(rebuilt from the archive: first run, or --rescan) | vac {none:.2f} s | baseline "
        f"{base:.2f} s | ratio {none / base:.3f} | target no slower than before summaries "
        f"(0.64 x) | {'met' if none / base <= 0.64 else 'NOT met'}"]


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
        if not os.path.isdir(os.path.join(root, VAC_DIR, "apel-archive")):
            gen = generate(root, args.records)
        prepare_settled(root)
        measure("baseline", root)                     # warm the page cache
        results = {mode: measure(mode, root) for mode in ("baseline",) + SUMMARY_STATES}
        for mode in results:
            results[mode]["heap_peak_bytes"] = measure(mode, root, trace=True)[
                "heap_peak_bytes"]
        text = report(args.records, gen, results)
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            f.write(text)
        print(text, end="")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
