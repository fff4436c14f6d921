"""Summary rows of issue 15 (protocol: every bench writes, in its own results file,

    ROW <id> | <measure> | vac <figure> | baseline <figure> | ratio <r> | target <t> | <met|NOT met>

one line per row it measures). :func:`collect` gathers them from bench/results/*.txt and
:func:`render` makes bench/results/summary.txt; :func:`row` writes one line.
"""

from __future__ import annotations

import glob
import os
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

PREFIX = "ROW "
SUMMARY = "summary.txt"


class Row(NamedTuple):
    """One row as written by its bench (figures keep their units)."""

    id: str
    measure: str
    vac: str
    baseline: str
    ratio: str
    target: str
    met: str
    source: str = ""          # the results file it came from


def row(row_id: str, measure: str, vac: str, baseline: str, ratio: float, target: str,
        met: bool) -> str:
    """A ROW line; ``vac`` and ``baseline`` carry their units ("62.4 ms")."""
    return (f"{PREFIX}{row_id} | {measure} | vac {vac} | baseline {baseline} | "
            f"ratio {ratio:.3f} | target {target} | {'met' if met else 'NOT met'}")


def _strip(text: str, word: str) -> str:
    return text[len(word):].strip() if text.startswith(word) else text


def parse_line(line: str, source: str = "") -> Optional[Row]:
    """The Row of a ``ROW`` line, None for any other line or a malformed one."""
    if not line.startswith(PREFIX):
        return None
    fields = [f.strip() for f in line[len(PREFIX):].split(" | ")]
    if len(fields) != 7:
        return None
    row_id, measure, vac, base, ratio, target, met = fields
    if met not in ("met", "NOT met"):
        return None
    return Row(row_id, measure, _strip(vac, "vac "), _strip(base, "baseline "),
               _strip(ratio, "ratio "), _strip(target, "target "), met, source)


def parse(text: str, source: str = "") -> Tuple[List[Row], List[str]]:
    """Rows of a results file, and the ``ROW`` lines that could not be read."""
    rows, bad = [], []
    for line in text.splitlines():
        parsed = parse_line(line.rstrip(), source)
        if parsed is not None:
            rows.append(parsed)
        elif line.startswith(PREFIX):
            bad.append(line.rstrip())
    return rows, bad


def _order(row_id: str) -> Tuple[float, str]:
    digits = ""
    for ch in row_id:
        if not (ch.isdigit() or ch == "."):
            break
        digits += ch
    try:
        return float(digits.rstrip(".")), row_id
    except ValueError:
        return float("inf"), row_id


def collect(results_dir: str) -> Tuple[List[Row], List[str]]:
    """Every row of bench/results/*.txt (not the summary itself), by row id."""
    rows: List[Row] = []
    bad: List[str] = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.txt"))):
        if os.path.basename(path) == SUMMARY:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            found, unread = parse(f.read(), os.path.basename(path))
        rows += found
        bad += [f"{os.path.basename(path)}: {line}" for line in unread]
    return sorted(rows, key=lambda r: _order(r.id)), bad


def render(rows: Sequence[Row], header: Iterable[str], bad: Sequence[str] = ()) -> str:
    """The summary: header lines, then one block per row (id, met, figures, measure)."""
    lines = [f"# {h}" for h in header]
    lines.append(f"# {len(rows)} rows, {sum(r.met == 'met' for r in rows)} met")
    width = max([len(r.id) for r in rows] + [2])
    for r in rows:
        lines.append(f"{r.id:<{width}}  {r.met:<7}  vac {r.vac}  |  baseline {r.baseline}  |  "
                     f"ratio {r.ratio}  |  target {r.target}")
        lines.append(f"{'':<{width}}  {r.measure}  [{r.source}]")
    lines += [f"# unreadable ROW line in {b}" for b in bad]
    return "\n".join(lines) + "\n"
