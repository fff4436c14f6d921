"""A dependency-free SVG line chart of running HS06 per machinetype over simulated hours."""

from __future__ import annotations

from typing import Dict, List, Sequence
from xml.sax.saxutils import escape

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
WIDTH, HEIGHT, MARGIN = 800, 420, 60


def render_svg(times: Sequence[float], series: Dict[str, Sequence[float]],
               title: str = "") -> str:
    """SVG text: x = hours, y = HS06; one polyline per machinetype plus share legend."""
    t_max = max(times) if times else 1.0
    y_max = max([max(v) for v in series.values() if v] + [1.0]) * 1.1
    sx = (WIDTH - 2 * MARGIN) / (t_max or 1.0)
    sy = (HEIGHT - 2 * MARGIN) / y_max

    def xy(t: float, v: float) -> str:
        return f"{MARGIN + t * sx:.1f},{HEIGHT - MARGIN - v * sy:.1f}"

    parts: List[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="25" text-anchor="middle" font-size="15">'
        f'{escape(title)}</text>',
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" '
        f'y2="{HEIGHT - MARGIN}" stroke="black"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" '
        f'stroke="black"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 20}" text-anchor="middle">hours</text>',
        f'<text x="15" y="{HEIGHT / 2}" transform="rotate(-90 15 {HEIGHT / 2})" '
        f'text-anchor="middle">running HS06</text>']
    for i in range(5):
        t, v = t_max * i / 4, y_max * i / 4
        parts.append(f'<text x="{MARGIN + t * sx:.1f}" y="{HEIGHT - MARGIN + 15}" '
                     f'text-anchor="middle">{t:.1f}</text>')
        parts.append(f'<text x="{MARGIN - 5}" y="{HEIGHT - MARGIN - v * sy + 4:.1f}" '
                     f'text-anchor="end">{v:.0f}</text>')
    for i, (name, values) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(xy(t, v) for t, v in zip(times, values))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                     f'points="{points}"/>')
        parts.append(f'<text x="{WIDTH - MARGIN - 100}" y="{MARGIN + 15 * i}" '
                     f'fill="{colour}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_svg(path: str, times: Sequence[float], series: Dict[str, Sequence[float]],
              title: str = "") -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_svg(times, series, title))
