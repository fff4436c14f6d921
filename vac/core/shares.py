"""Fair shares and back-off across the space (SPEC §6.2, §6.3, §6.5).

Input: machinetype_status reports keyed factory -> machinetype -> dict (fields of SPEC §7.4:
running_hs06, num_before_fizzle, shutdown_message, shutdown_time). Output: the eligible
machinetypes ranked by (machinegroup score, machinetype score, random tie-breaker), where a
score is running HS06 / target_share summed over the responding factories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

try:
    from typing import Protocol
except ImportError:  # Python < 3.8
    Protocol = object  # type: ignore

from vac.constants import ABORT_CODE_MIN
from vac.core.configtypes import Config, Machinetype

Reports = Mapping[str, Mapping[str, Mapping[str, Any]]]


class Rng(Protocol):
    """The part of ``random.Random`` the planner uses (seeded by the caller)."""

    def random(self) -> float: ...


@dataclass(frozen=True)
class Standing:
    """One machinetype's standing in the space this cycle."""

    machinetype: str
    machinegroup: str
    score: float            # running HS06 / share, summed over factories
    group_score: float
    num_before_fizzle: int
    last_abort: float       # Unix seconds, 0 if none
    restart_time: float     # creation allowed once now > restart_time (back-off)
    eligible: bool
    why_not: str = ""       # reason when not eligible


def abort_code(message: Optional[str]) -> Optional[int]:
    """The message's three-digit code if it is an abort (>= 300), else None."""
    if not message or len(message) < 3 or not message[:3].isdigit():
        return None
    code = int(message[:3])
    return code if code >= ABORT_CODE_MIN else None


def _num(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _totals(reports: Reports, name: str) -> Dict[str, float]:
    """Sum a machinetype's running HS06 and before-fizzle count; find its latest abort."""
    hs06 = nbf = last_abort = 0.0
    for per_mt in reports.values():
        status = per_mt.get(name)
        if not status:
            continue
        hs06 += _num(status.get("running_hs06"))
        nbf += _num(status.get("num_before_fizzle"))
        if abort_code(status.get("shutdown_message")) is not None:
            last_abort = max(last_abort, _num(status.get("shutdown_time")))
    return {"hs06": hs06, "nbf": nbf, "last_abort": last_abort}


def standings(cfg: Config, reports: Reports, now: float) -> List[Standing]:
    """Scores and eligibility of every configured machinetype with target_share > 0."""
    enabled = [mt for mt in cfg.machinetypes.values() if mt.target_share > 0]
    totals = {mt.name: _totals(reports, mt.name) for mt in enabled}
    scores = {mt.name: totals[mt.name]["hs06"] / mt.target_share for mt in enabled}
    groups: Dict[str, float] = {}
    for mt in enabled:
        groups[mt.effective_machinegroup] = (groups.get(mt.effective_machinegroup, 0.0)
                                             + scores[mt.name])
    result = []
    for mt in enabled:
        t = totals[mt.name]
        restart = t["last_abort"] + mt.backoff_seconds + (mt.fizzle_seconds if t["nbf"] > 0
                                                          else 0)
        why = _why_not(cfg, mt, now, t["last_abort"], restart)
        result.append(Standing(mt.name, mt.effective_machinegroup, scores[mt.name],
                               groups[mt.effective_machinegroup], int(t["nbf"]),
                               t["last_abort"], restart, not why, why))
    return result


def _why_not(cfg: Config, mt: Machinetype, now: float, last_abort: float,
             restart: float) -> str:
    limit = cfg.settings.shutdown_time
    if limit is not None and not now + mt.effective_min_wallclock_seconds < limit:
        return (f"min_wallclock_seconds {mt.effective_min_wallclock_seconds} does not fit "
                f"before shutdown_time {limit}")
    if last_abort and not last_abort < now - (restart - last_abort):
        return f"backing off after abort at {last_abort:.0f} until {restart:.0f}"
    return ""


def rank(stands: Sequence[Standing], rng: Rng) -> List[Standing]:
    """Eligible machinetypes, most starved machinegroup then machinetype first."""
    keyed = [(s.group_score, s.score, rng.random(), s) for s in stands if s.eligible]
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed]
