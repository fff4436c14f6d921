"""Fair shares and back-off across the space (SPEC §6.2, §6.3, §6.5).

Input: machinetype_status reports keyed factory -> machinetype -> dict (fields of SPEC §7.4:
running_hs06, num_before_fizzle, shutdown_message, shutdown_time). Output: the eligible
machinetypes ranked by (machinegroup score, machinetype score, random tie-breaker), where a
score is running HS06 / target_share summed over the responding factories.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from vac.constants import ABORT_CODE_MIN, COUNTING_WINDOW_SECONDS
from vac.core.configtypes import Config, Machinetype
from vac.model import SlotRecord

Reports = Mapping[str, Mapping[str, Mapping[str, Any]]]


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


def rank(stands: Sequence[Standing], rng: random.Random) -> List[Standing]:
    """Eligible machinetypes, most starved machinegroup then machinetype first."""
    keyed = [(s.group_score, s.score, rng.random(), s) for s in stands if s.eligible]
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed]


# --- this factory's own report (used when its responder does not answer, §6.5) ---------

def _counts_as_running(slot: SlotRecord, now: float) -> bool:
    return (slot.started_time is not None and slot.finished_time is None
            and slot.heartbeat_time is not None
            and slot.heartbeat_time > now - COUNTING_WINDOW_SECONDS)


def _counts_as_starting(slot: SlotRecord, now: float) -> bool:
    return (slot.started_time is None and slot.finished_time is None
            and slot.created is not None and slot.created > now - COUNTING_WINDOW_SECONDS)


def outcome_message(slot: SlotRecord, fizzle_seconds: int) -> Dict[str, Any]:
    """Shutdown message/time of a finished machine, with the synthetic fizzle (B6 fixed)."""
    if slot.shutdown_message and slot.shutdown_message[:3].isdigit():
        return {"shutdown_message": slot.shutdown_message.splitlines()[0],
                "shutdown_time": slot.shutdown_message_time}
    if slot.started_time is not None and slot.heartbeat_time is not None:
        ran = slot.heartbeat_time - slot.started_time
        if ran < fizzle_seconds:
            return {"shutdown_message": f"300 Vac detects fizzle after {int(ran)} seconds",
                    "shutdown_time": slot.heartbeat_time}
    return {"shutdown_message": slot.shutdown_message, "shutdown_time":
            slot.shutdown_message_time}


def own_report(cfg: Config, slots: Sequence[SlotRecord], now: float) -> Dict[str, Dict]:
    """machinetype -> minimal machinetype_status built from this factory's slot files."""
    report: Dict[str, Dict] = {}
    for mt in cfg.machinetypes.values():
        hs06, nbf, latest = 0.0, 0, None
        for slot in slots:
            if slot.machinetype != mt.name or not slot.is_used:
                continue
            running, starting = _counts_as_running(slot, now), _counts_as_starting(slot, now)
            if running or starting:
                hs06 += slot.hs06 if slot.hs06 is not None else 1.0 * (slot.processors or 1)
            if starting or (running and slot.started_time is not None
                            and slot.started_time > now - mt.fizzle_seconds):
                nbf += 1
            if slot.finished_time is not None and (latest is None
                                                   or (slot.created or 0) > (latest.created or 0)):
                latest = slot
        entry: Dict[str, Any] = {"machinetype": mt.name, "running_hs06": hs06,
                                 "num_before_fizzle": nbf, "shutdown_message": None,
                                 "shutdown_time": None}
        if latest is not None:
            entry.update(outcome_message(latest, mt.fizzle_seconds))
        report[mt.name] = entry
    return report
