"""Benchmark: space-wide VacQuery traffic of N factories (issue "Fast and light", row 8).

Run with ``.venv/bin/python -m bench.bench_space_scale [--sizes 10,100,1000]``.

Drives ``vac.sim.spacescale``: every factory runs the real planner each one-minute cycle
and polls the space through the real client (``vac.services.spacepoll`` and
``vac.services.peers``: requests encoded, replies built by the responder's code, decoded,
validated and matched by cookie) over an in-memory exchange that counts every datagram
and byte. Side by side in the same run, for each N:

* baseline ``all peers``: today's behaviour, every factory asks every factory (its
  planners get every report exactly; its traffic is that of real full polls);
* ``subspaces``: ``subspace_min_factories = 10``, ``subspace_size`` 0 (about √N);
* ``subspaces, 10 % original``: the same with every tenth factory speaking only
  VacQuery 01.03 (ignores the ``subspace`` field, polls everybody itself).

Every factory's digest of its own subspace is published before the first cycle (a
space in its steady state; from cold, the first cycle asks nearly everybody). Figures
per factory and cycle after 1 warm-up cycle: datagrams and UDP payload bytes
(sent + received), and the share error: the largest difference over the machinetypes
between the machinetype's share of the space's running HS06 as the factory's reports say
and as all reports exactly say at that instant (``disagree``: cycles whose first-ranked
machinetype differs from the exact one's). Results: ``bench/results/space_scale.txt``,
``.json`` and ``.svg``. This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from typing import Dict, List, Sequence
from xml.sax.saxutils import escape

from vac.sim import spacescale

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "space_scale")
CASES = (("all peers", "all", 0), ("subspaces", "subspaces", 0),
         ("subspaces, 10 % original", "subspaces", 10))


def cycles_for(n: int) -> int:
    """Measured cycles: fewer for big spaces (each cycle is N real polls)."""
    return 20 if n <= 10 else 10 if n <= 100 else 2


def run(sizes: Sequence[int]) -> List[dict]:
    rows = []
    for n in sizes:
        for label, mode, percent in CASES:
            start = time.monotonic()
            fig = spacescale.run_case(n, mode, cycles_for(n), originals=n * percent // 100,
                                      subspace_min_factories=10)
            row = dict(dataclasses.asdict(fig), case=label, seconds=time.monotonic() - start,
                       datagrams_per_cycle=fig.datagrams_per_cycle,
                       bytes_per_cycle=fig.bytes_per_cycle, mean_error=fig.mean_error,
                       client_ms=1000 * fig.client_cpu_per_poll)
            rows.append(row)
            print(f"  N={n:5d} {label:26s} {fig.datagrams_per_cycle:9.1f} datagrams "
                  f"{fig.mean_error:.4f} error ({row['seconds']:.0f} s)", flush=True)
    return rows


def report(rows: List[dict]) -> str:
    base = {r["factories"]: r for r in rows if r["case"] == "all peers"}
    lines = [
        "vac space traffic benchmark (bench/bench_space_scale.py)",
        f"date (UTC):  {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}",
        f"host:        {platform.machine()} cpus={os.cpu_count()} "
        f"python={platform.python_version()}",
        "machinetypes a (target share 1) and b (3), 4 processors per factory; per factory and",
        "cycle after 1 warm-up cycle (digests primed); ratio = vac / all-peers baseline of",
        "the same N in the same run",
        "",
        f"{'N':>5} {'case':26}{'datagrams':>10}{'ratio':>7}{'bytes':>10}{'ratio':>7}"
        f"{'mean err':>9}{'max err':>8}{'disagree':>9}{'share a':>8}{'poll CPU ms':>12}"
        f"{'cycles':>7}"]
    for r in rows:
        b = base[r["factories"]]
        lines.append(
            f"{r['factories']:5d} {r['case']:26}{r['datagrams_per_cycle']:10.1f}"
            f"{r['datagrams_per_cycle'] / b['datagrams_per_cycle']:7.3f}"
            f"{r['bytes_per_cycle']:10.0f}{r['bytes_per_cycle'] / b['bytes_per_cycle']:7.3f}"
            f"{r['mean_error']:9.4f}{r['error_max']:8.3f}"
            f"{r['disagree'] / max(1, r['cycles']):9.3f}{r['shares'].get('a', 0):8.3f}"
            f"{r['client_ms']:12.1f}{r['cycles'] // r['factories']:7d}")
    lines += ["", "datagrams, bytes: sent + received per factory and cycle (UDP payload);",
              "mean/max err: |share of running HS06 seen - exact|, largest over machinetypes;",
              "disagree: share of factory-cycles ranking another machinetype first than the",
              "  exact reports would; share a: machinetype a's share of running HS06 at the",
              "  end (target 0.25); poll CPU ms: the querying client's CPU per poll (the",
              "  in-memory responders' share excluded); space-wide traffic is N x the",
              "  per-factory figure.", ""] + row_lines(rows)
    return "\n".join(lines) + "\n"


def row_lines(rows: List[dict]) -> List[str]:
    """Issue 15 row 8 in bench/BENCH-ROWS form, at the biggest N measured: datagrams per
    factory and cycle by subspaces vs all peers (space-wide: N times that), and the
    share error the subspaces cost."""
    n = max(r["factories"] for r in rows)
    case = {r["case"]: r for r in rows if r["factories"] == n}
    if "all peers" not in case or "subspaces" not in case:
        return []
    base, vac = case["all peers"], case["subspaces"]
    ratio = vac["datagrams_per_cycle"] / base["datagrams_per_cycle"]
    exponent = ""
    small = [r for r in rows if r["case"] == "subspaces" and r["factories"] < n]
    if small:                   # growth of the space-wide traffic, N^k between sizes
        m = max(small, key=lambda r: r["factories"])
        k = math.log(n * vac["datagrams_per_cycle"] / (m["factories"] *
                     m["datagrams_per_cycle"])) / math.log(n / m["factories"])
        exponent = f"; space-wide traffic grows as N^{k:.2f} from N = {m['factories']}"
    met = ratio < 1 and vac["mean_error"] <= 0.01 and \
        abs(vac["shares"].get("a", 0) - base["shares"].get("a", 0)) <= 0.01
    return [f"ROW 8 | space traffic, datagrams per factory per cycle at N = {n} "
            f"(subspaces vs all peers; share error vs the exact all-peers answer: mean "
            f"{vac['mean_error']:.4f}, max {vac['error_max']:.3f}; final share of a "
            f"{vac['shares'].get('a', 0):.3f} vs {base['shares'].get('a', 0):.3f}, target "
            f"0.25{exponent}) | "
            f"vac {vac['datagrams_per_cycle']:.1f} datagrams | "
            f"baseline {base['datagrams_per_cycle']:.1f} datagrams | ratio {ratio:.3f} | "
            f"target sub-quadratic space-wide traffic at the same share accuracy | "
            f"{'met' if met else 'NOT met'}"]


def svg(rows: List[dict]) -> str:
    """Two log-x panels: datagrams per factory per cycle (log y) and mean share error."""
    import math
    width, height, margin, gap = 900, 380, 60, 80
    panel = (width - 2 * margin - gap) / 2
    sizes = sorted({r["factories"] for r in rows})
    colours = {"all peers": "#d62728", "subspaces": "#1f77b4",
               "subspaces, 10 % original": "#2ca02c"}
    lo_n, hi_n = math.log10(min(sizes)), math.log10(max(sizes))
    top = max(r["datagrams_per_cycle"] for r in rows) * 2
    err_top = max(max(r["mean_error"] for r in rows) * 1.3, 0.001)

    def x(n: float, left: float) -> float:
        return left + (math.log10(n) - lo_n) / max(hi_n - lo_n, 1e-9) * panel

    def y_log(v: float) -> float:
        return height - margin - math.log10(max(v, 1)) / math.log10(top) * (height - 2 * margin)

    def y_lin(v: float) -> float:
        return height - margin - v / err_top * (height - 2 * margin)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    panels = ((margin, "datagrams per factory per cycle (log)", y_log, "datagrams_per_cycle"),
              (margin + panel + gap, "mean share error vs all peers", y_lin, "mean_error"))
    for left, title, y, key in panels:
        out.append(f'<text x="{left + panel / 2}" y="25" text-anchor="middle" '
                   f'font-size="14">{escape(title)}</text>')
        out.append(f'<rect x="{left}" y="{margin}" width="{panel}" '
                   f'height="{height - 2 * margin}" fill="none" stroke="black"/>')
        for n in sizes:
            out.append(f'<text x="{x(n, left):.1f}" y="{height - margin + 16}" '
                       f'text-anchor="middle">N={n}</text>')
        ticks = [10 ** k for k in range(0, int(math.log10(top)) + 1)] if key != "mean_error" \
            else [err_top * i / 4 for i in range(5)]
        for t in ticks:
            label = f"{t:g}" if key != "mean_error" else f"{t:.3f}"
            out.append(f'<text x="{left - 5}" y="{y(t) + 4:.1f}" text-anchor="end">'
                       f'{label}</text>')
        for case, colour in colours.items():
            points = [(x(r["factories"], left), y(r[key])) for r in rows if r["case"] == case]
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                       + " ".join(f"{a:.1f},{b:.1f}" for a, b in points) + '"/>')
            out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>'
                    for a, b in points]
    for i, (case, colour) in enumerate(colours.items()):
        out.append(f'<text x="{margin + 10}" y="{margin + 18 + 15 * i}" fill="{colour}">'
                   f'{escape(case)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args(list(argv) or None)
    rows = run([int(s) for s in args.sizes.split(",")])
    text = report(rows)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    for suffix, content in ((".txt", text), (".svg", svg(rows)),
                            (".json", json.dumps(rows, indent=1, sort_keys=True) + "\n")):
        with open(RESULTS + suffix, "w") as f:
            f.write(content)
    print(text, end="")


if __name__ == "__main__":
    main()
