"""Simulator scenarios of priority tiers with preemption and of fair share with a memory.

``preemption``: a low-priority preemptible machinetype fills two idle factories, then a
high-priority machinetype arrives; figures: hours until it holds its target share (with
and without preemption), processors preempted, work lost (HS06 hours run by preempted
machines that had not finished their work when their grace ended).

``halflife``: two machinetypes with equal shares; ``steady`` always has work, ``bursty``
only every other 12 hours. With ``share_half_life_seconds`` 0 the share of the HS06
hours run over the week is compared with the share under a one-day half-life.
"""

from __future__ import annotations

import random
from typing import Dict, List, Optional

from vac.core.configtypes import Machinetype
from vac.sim.simulator import START, Result, Simulation

FACTORIES, PROCESSORS = 2, 16
HOUR = 3600.0


def _first_reach(result: Result, machinetype: str, level: float, since: float) -> Optional[float]:
    """Hours after ``since`` until the machinetype's running HS06 first reaches ``level``."""
    for t, v in zip(result.times, result.hs06[machinetype]):
        if t >= since and v >= level:
            return round(t - since, 2)
    return None


def final_shares(result: Result) -> Dict[str, float]:
    """Each machinetype's fraction of the running HS06 at the end."""
    last = {mt: series[-1] for mt, series in result.hs06.items()}
    total = sum(last.values())
    return {mt: round(v / total, 3) if total else 0.0 for mt, v in last.items()}


def _preemption_run(hours: float, arrive_hour: float, preemptible: bool,
                    seed: int) -> Result:
    low = Machinetype("low", target_share=1.0, priority=0, preemptible=preemptible,
                      preemption_grace_seconds=900, max_wallclock_seconds=12 * 3600)
    high = Machinetype("high", target_share=3.0, priority=10,
                       max_wallclock_seconds=12 * 3600)

    def work(mt: str, now: float, rng: random.Random) -> float:
        return rng.uniform(6 * HOUR, 10 * HOUR) if mt == "low" else rng.uniform(2 * HOUR,
                                                                                 6 * HOUR)

    sim = Simulation([low], FACTORIES, PROCESSORS, work, seed=seed)

    def arrive(s: Simulation) -> None:
        if s.now >= START + arrive_hour * HOUR and len(s.machinetypes) == 1:
            s.reconfigure([low, high])
    return sim.run(hours, on_step=arrive)


def scenario_preemption(hours: float = 12.0, arrive_hour: float = 2.0, seed: int = 1) -> Result:
    """Low-priority preemptible machines fill the space; a high-priority machinetype
    (target share 3 : 1) arrives at ``arrive_hour``."""
    result = _preemption_run(hours, arrive_hour, True, seed)
    without = _preemption_run(hours, arrive_hour, False, seed)
    target = 0.75 * FACTORIES * PROCESSORS * 10.0          # HS06 of a 3:1 share
    reached = _first_reach(result, "high", 0.95 * target, arrive_hour)
    slow = _first_reach(without, "high", 0.95 * target, arrive_hour)
    result.figures = {
        "final_share_high": final_shares(result)["high"],
        "hours_to_95pct_of_target_share": reached if reached is not None else -1.0,
        "hours_to_95pct_without_preemption": slow if slow is not None else -1.0,
        "processors_preempted": float(result.preempted_processors),
        "low_machines_created": float(result.created.get("low", 0)),
        "low_aborts": float(result.aborts.get("low", 0)),
        "work_lost_hs06_hours": round(result.work_lost_hs06_hours, 1),
        "high_target_hs06": target,
    }
    result.compared = {"high (no preemption)": without.hs06["high"],
                       "low (no preemption)": without.hs06["low"]}
    return result


def _halflife_run(hours: float, half_life: int, seed: int) -> Result:
    def work(mt: str, now: float, rng: random.Random) -> float:
        if mt == "bursty" and int((now - START) // (12 * HOUR)) % 2 == 1:
            return 0.0
        return rng.uniform(1 * HOUR, 3 * HOUR)
    mts = [Machinetype("steady", target_share=1.0, max_wallclock_seconds=6 * 3600,
                       backoff_seconds=1800),
           Machinetype("bursty", target_share=1.0, max_wallclock_seconds=6 * 3600,
                       backoff_seconds=1800)]
    return Simulation(mts, FACTORIES, PROCESSORS, work, seed=seed,
                      share_half_life_seconds=half_life).run(hours)


def share_errors(result: Result, machinetype: str, target: float) -> Dict[str, float]:
    """|share of HS06 hours - target| over the whole run and averaged over each day."""
    total = [sum(v) for v in zip(*result.hs06.values())]
    mine = result.hs06[machinetype]
    days: Dict[int, List[float]] = {}
    for t, m, a in zip(result.times, mine, total):
        day = days.setdefault(int(t // 24), [0.0, 0.0])
        day[0] += m
        day[1] += a
    daily = [abs(m / a - target) for m, a in days.values() if a > 0]
    return {"cumulative": round(abs(sum(mine) / sum(total) - target), 4),
            "mean_daily": round(sum(daily) / len(daily), 4) if daily else 0.0}


def scenario_halflife(hours: float = 168.0, half_life: int = 86400, seed: int = 1) -> Result:
    """Alternating demand over a week, with half-life 0 and ``half_life``."""
    plain = _halflife_run(hours, 0, seed)
    memory = _halflife_run(hours, half_life, seed)
    e0, e1 = share_errors(plain, "bursty", 0.5), share_errors(memory, "bursty", 0.5)
    memory.figures = {
        "half_life_seconds": float(half_life),
        "final_share_bursty_without": final_shares(plain)["bursty"],
        "final_share_bursty_with": final_shares(memory)["bursty"],
        "bursty_share_error_cumulative_without": e0["cumulative"],
        "bursty_share_error_cumulative_with": e1["cumulative"],
        "share_error_mean_daily_without": e0["mean_daily"],
        "share_error_mean_daily_with": e1["mean_daily"],
    }
    memory.compared = {"steady (half-life 0)": plain.hs06["steady"],
                       "bursty (half-life 0)": plain.hs06["bursty"]}
    return memory
