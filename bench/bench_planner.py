"""Benchmark: one planner decision at the scale of a big space (issue "Fast and light", row 3).

Run with ``.venv/bin/python -m bench.bench_planner [--repeat N]``.

Inputs: a factory of 256 slots (half running, half free), 100 machinetypes and the
machinetype_status reports of 500 factories (each reporting all 100 machinetypes, some
with aborts). Timed: ``vac.core.planner.plan`` (lifecycle + creation) with
``max_creations_per_cycle`` 1 and 16.

The baseline is the planner of commit ``BASELINE_COMMIT`` (before this change), extracted
with ``git archive`` into a temporary directory and run side by side in a child process
with that tree first on ``sys.path``; the same script builds the same inputs through the
API both versions share (CycleInputs, Config, SlotRecord, DomainInfo/MachineInfo, HostFacts). No copy
of the old algorithm is kept in the repository. Results: ``bench/results/planner.txt``.
This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from types import MappingProxyType
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results", "planner.txt")
BASELINE_COMMIT = "38e2225"       # main before the scheduling work (issue rows 3 and 4)
SLOTS, MACHINETYPES, REPORTS = 256, 100, 500
NOW = 1_700_000_000


def build_inputs(creations: int):
    """CycleInputs of the benchmark (only API common to the baseline and this tree)."""
    from vac.constants import GB, MIB
    from vac.core import planner
    from vac.core.configtypes import Config, Machinetype, Settings
    from vac import model
    from vac.model import DomainState, HostFacts, SlotRecord
    if hasattr(model, "MachineInfo"):          # this tree: machines carry their backend
        from vac.machinemodels import LIBVIRT

        def _machine(*fields):
            return model.MachineInfo(*fields, None, LIBVIRT)
    else:                                      # the baseline's DomainInfo
        _machine = model.DomainInfo
    rng = random.Random(7)
    factory = "f0000.example.com"
    mts = [Machinetype(f"mt{i:03d}", target_share=float(1 + i % 7),
                       max_wallclock_seconds=86400, backoff_seconds=600, fizzle_seconds=600)
           for i in range(MACHINETYPES)]
    cfg = Config(settings=Settings(vac_space="vac01.example.com", factory_hostname=factory,
                                   max_creations_per_cycle=creations, hs06_per_processor=10.0),
                 machinetypes=MappingProxyType({m.name: m for m in mts}))
    slots, domains = [], []
    for o in range(SLOTS):
        name = f"f0000-{o:02d}.example.com"
        if o % 2:
            slots.append(SlotRecord(ordinal=o, name=name))
            continue
        mt = mts[o % MACHINETYPES].name
        slots.append(SlotRecord(
            ordinal=o, name=name, created=NOW - 3600, machinetype=mt, machine_model="cernvm3",
            machine_dir=f"/bench/machines/{NOW - 3600}_{mt}_{name}", started_time=NOW - 3590,
            heartbeat_time=NOW - 60, heartbeat_mtime=NOW - 60, cpu_seconds=3000.0,
            shutdown_time_job=NOW + 80000, processors=1, hs06=10.0, uuid=f"u{o}"))
        domains.append(_machine(name, f"u{o}", DomainState.RUNNING, 3100.0))
    reports: Dict[str, Dict[str, dict]] = {}
    for f in range(REPORTS):
        per_mt = {}
        for m in mts:
            abort = rng.random() < 0.05
            per_mt[m.name] = {
                "machinetype": m.name, "running_hs06": float(rng.randrange(0, 40)),
                "num_before_fizzle": rng.randrange(0, 2),
                "shutdown_message": "300 Nothing to do" if abort else "200 Success",
                "shutdown_time": NOW - rng.randrange(2000, 90000), "shutdown_machine": "m"}
        reports[f"f{f:04d}.example.com"] = per_mt
    host = HostFacts(SLOTS, 0.0, 0.0, 1024 * 1024 * MIB, 512 * 1024 * MIB, 100 * GB)
    return planner.CycleInputs(cfg, slots, domains, host, reports, NOW - 86400)


def as_gathered(inputs, times: List[float]):
    """This tree only: ``inputs`` as the factory's gather step hands them over: the
    peers' bodies also summed into ReportColumns as the poll decodes each one (that
    time, per cycle, is appended to ``times``), this factory's own report computed by
    the planner from its slots."""
    from vac.core import planner
    from vac.core.reportcolumns import ReportColumns
    from dataclasses import replace
    factory = inputs.config.settings.factory_hostname
    peers = {f: r for f, r in inputs.reports.items() if f != factory}
    t0 = time.perf_counter()
    columns = ReportColumns()
    for position, per_mt in enumerate(peers.values()):
        for name, status in per_mt.items():
            columns.add(position, name, status)
    times.append((time.perf_counter() - t0) * 1000.0)
    return replace(inputs, reports=peers, peer_columns=columns,
                   own=planner.OwnFacts({}, {}))


def measure(repeat: int) -> Dict[str, List[float]]:
    """Milliseconds per plan() for 1 and 16 creations (inputs built once each); for this
    tree also the milliseconds of summing the bodies as they are decoded ("decode")."""
    from vac.core import planner
    out: Dict[str, List[float]] = {"decode": []}
    for creations in (1, 16):
        inputs = build_inputs(creations)
        if hasattr(planner, "creation_totals"):
            inputs = as_gathered(inputs, out["decode"])
        times = []
        for i in range(repeat):
            t0 = time.perf_counter()
            result = planner.plan(inputs, NOW, random.Random(i))
            times.append((time.perf_counter() - t0) * 1000.0)
        out[str(creations)] = times
        out[f"{creations}-created"] = [float(len(result.creates))]
    return out


def _child(code_dir: str, repeat: int) -> Dict[str, List[float]]:
    env = dict(os.environ, PYTHONPATH=code_dir + os.pathsep + HERE)
    res = subprocess.run([sys.executable, "-c",
                          "import sys, json, bench_planner as b;"
                          f"print(json.dumps(b.measure({repeat})))"],
                         cwd=code_dir, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def baseline_tree(tmp: str) -> str:
    """``vac/`` of BASELINE_COMMIT extracted below ``tmp``."""
    archive = subprocess.run(["git", "-C", REPO, "archive", BASELINE_COMMIT, "vac"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    return tmp


TARGETS_MS = {"1": 10.0, "16": 15.0}        # issue 15 row 3: one creation, 16 creations


def main(argv=None) -> int:
    from bench import machine_line, write_results   # not in the child's sys.path
    from bench.rows import row
    parser = argparse.ArgumentParser(prog="bench_planner")
    parser.add_argument("--repeat", type=int, default=5, help="runs per child process")
    parser.add_argument("--rounds", type=int, default=5, help="alternating child pairs")
    args = parser.parse_args(argv)
    base: Dict[str, List[float]] = {}
    vac: Dict[str, List[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:          # rounds alternate the two trees
        old_tree = baseline_tree(tmp)
        for _ in range(args.rounds):
            for tree, into in ((old_tree, base), (REPO, vac)):
                for key, values in _child(tree, args.repeat).items():
                    into.setdefault(key, []).extend(values)
    load = os.getloadavg()[0]
    decode = vac["decode"]
    lines = [machine_line("bench_planner") + f", load average {load:.2f} at the end",
             f"# vac.core.planner.plan: {SLOTS} slots (128 running), {MACHINETYPES} "
             f"machinetypes, {REPORTS} peer reports of {MACHINETYPES} machinetypes each; "
             f"median (min-max) ms over {args.rounds} x {args.repeat} runs, child processes "
             f"of the baseline (commit {BASELINE_COMMIT}) and of vac alternating",
             "# vac is timed from the reports as its gather step hands them over: every "
             "peer body also summed into ReportColumns as the poll decoded it (not timed "
             "here: it happens while the poll waits on the network), this factory's own "
             "report computed from its slots inside the timed plan; the baseline walks "
             "the report dicts inside plan()",
             f"# summing the {REPORTS - 1} peers' bodies into ReportColumns as they are "
             f"decoded: median {statistics.median(decode):.1f} ms per cycle "
             f"({min(decode):.1f}-{max(decode):.1f}; "
             f"{statistics.median(decode) * 1000 / ((REPORTS - 1) * MACHINETYPES):.2f} "
             f"us per body), spread over the poll"]
    rows = []
    for row_id, creations in (("3a", "1"), ("3b", "16")):
        b, v = base[creations], vac[creations]
        mb, mv = statistics.median(b), statistics.median(v)
        lines.append(f"{creations:>2} creation(s): baseline {mb:7.1f} ms ({min(b):.1f}-"
                     f"{max(b):.1f})  vac {mv:6.1f} ms ({min(v):.1f}-{max(v):.1f})  "
                     f"ratio {mv / mb:.3f} x baseline (min/min {min(v) / min(b):.3f})  "
                     f"(machines planned: baseline "
                     f"{base[creations + '-created'][-1]:.0f}, vac "
                     f"{vac[creations + '-created'][-1]:.0f})")
        rows.append(row(
            row_id, f"planner decision, {SLOTS} slots x {MACHINETYPES} machinetypes x "
            f"{REPORTS} peer reports, {creations} creation(s), median of "
            f"{len(v)} (vac min {min(v):.1f} ms, baseline min {min(b):.1f} ms; load "
            f"{load:.1f})", f"{mv:.1f} ms", f"{mb:.1f} ms", mv / mb,
            f"<= {TARGETS_MS[creations]:g} ms", mv <= TARGETS_MS[creations]))
    return write_results(RESULTS, lines + rows)


if __name__ == "__main__":
    sys.exit(main())
