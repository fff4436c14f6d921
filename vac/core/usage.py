"""Decayed past usage per machinetype for fair share with a memory (pure).

A finished machine adds its HS06 x wall seconds to its machinetype's usage; usage decays
by a factor 2 every ``share_half_life_seconds`` (exp(-ln 2 * dt / half-life)). The state
file ``share-usage`` (read and written by vac.adapters.statefs) holds, per machinetype,
the value and the Unix time it was last decayed to, as JSON
``{"MACHINETYPE": [HS06_SECONDS, UNIX_TIME], ...}``.
"""

from __future__ import annotations

import json
import math
from typing import Dict, Mapping, Optional, Tuple

Usage = Dict[str, Tuple[float, float]]       # machinetype -> (HS06 seconds, as of time)


def decayed(value: float, since: float, now: float, half_life: float) -> float:
    """``value`` (as of ``since``) decayed to ``now``; unchanged if half_life <= 0."""
    if half_life <= 0 or now <= since:
        return value
    return value * math.exp(-math.log(2) * (now - since) / half_life)


def add(usage: Mapping[str, Tuple[float, float]], machinetype: str, hs06_seconds: float,
        now: float, half_life: float) -> Usage:
    """A copy of ``usage`` with ``hs06_seconds`` added to ``machinetype`` at ``now``."""
    result = dict(usage)
    value, since = result.get(machinetype, (0.0, now))
    result[machinetype] = (decayed(value, since, now, half_life) + max(0.0, hs06_seconds),
                           now)
    return result


def current(usage: Mapping[str, Tuple[float, float]], now: float,
            half_life: float) -> Dict[str, float]:
    """machinetype -> HS06 seconds decayed to ``now``."""
    return {mt: decayed(v, t, now, half_life) for mt, (v, t) in usage.items()}


def parse(text: Optional[str]) -> Usage:
    """The state file's content; anything unreadable counts as no usage."""
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        return {}
    result: Usage = {}
    if isinstance(raw, dict):
        for mt, pair in raw.items():
            try:
                value, since = float(pair[0]), float(pair[1])
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            if math.isfinite(value) and math.isfinite(since) and value >= 0:
                result[str(mt)] = (value, since)
    return result


def render(usage: Mapping[str, Tuple[float, float]]) -> str:
    """The state file's content."""
    return json.dumps({mt: [round(v, 3), round(t, 3)] for mt, (v, t) in sorted(usage.items())},
                      indent=1) + "\n"
