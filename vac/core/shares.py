"""Fair shares, priority tiers and back-off across the space (SPEC §6.2, §6.3, §6.5).

Input: machinetype_status reports keyed factory -> machinetype -> dict (fields of SPEC §7.4:
running_hs06, num_before_fizzle, shutdown_message, shutdown_time; and the optional fields
of this implementation, ``decayed_hs06_seconds`` and ``preempted_for_processors``, which
original factories neither send nor read). Output: the eligible machinetypes ranked by
(tier, machinegroup score, machinetype score, random tie-breaker), highest tier first,
then most starved, where a score is running HS06 / target_share summed over the
responding factories and the tier is the machinetype's ``priority`` while it is below its
target share of the space's running HS06 (0 above it, so a priority brings a machinetype
to its share first but not beyond; with every priority 0 this is SPEC §6.2 exactly).

With ``share_half_life_seconds`` > 0 a machinetype's score also counts its past usage:
(running HS06 + decayed HS06·s × ln 2 / half-life) / target_share. The decayed HS06·s
divided by the mean life (half-life / ln 2) is an HS06 rate, so a machinetype that has
run R HS06 for a long time scores 2R / share, and one that was starved scores less and
catches up. With half-life 0 the score is exactly today's.

Speed: the reports are walked once per cycle (:func:`space_totals`); each creation of the
cycle only adds its own machine to the totals (:func:`standings` with ``planned``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

try:
    from typing import Protocol
except ImportError:  # Python < 3.8
    Protocol = object  # type: ignore

from vac.constants import ABORT_CODE_MIN
from vac.core.configtypes import Config, Machinetype

Reports = Mapping[str, Mapping[str, Mapping[str, Any]]]
DECAYED_FIELD = "decayed_hs06_seconds"          # optional machinetype_status fields
PREEMPTED_FOR_FIELD = "preempted_for_processors"


class Rng(Protocol):
    """The part of ``random.Random`` the planner uses (seeded by the caller)."""

    def random(self) -> float: ...


@dataclass(frozen=True)
class Totals:
    """One machinetype summed over the space (and this cycle's planned machines)."""

    hs06: float = 0.0             # running + starting HS06
    nbf: float = 0.0              # machines before fizzle
    last_abort: float = 0.0       # Unix seconds of the latest abort message, 0 if none
    usage: float = 0.0            # decayed HS06·seconds of finished machines
    preempting: float = 0.0       # processors being preempted to make room for it


_NO_TOTALS = Totals()


@dataclass(frozen=True)
class Standing:
    """One machinetype's standing in the space this cycle."""

    machinetype: str
    machinegroup: str
    score: float            # (running HS06 [+ decayed usage rate]) / share, over the space
    group_score: float
    num_before_fizzle: int
    last_abort: float       # Unix seconds, 0 if none
    restart_time: float     # creation allowed once now > restart_time (back-off)
    eligible: bool
    why_not: str = ""       # reason when not eligible
    priority: int = 0       # machinetype priority (preemption)
    running_hs06: float = 0.0
    preempting: float = 0.0  # processors being preempted for it across the space
    tier: int = 0           # ranking tier: priority while below its share (see tier())


def abort_code(message: Optional[str]) -> Optional[int]:
    """The message's three-digit code if it is an abort (>= 300), else None."""
    if not isinstance(message, str) or len(message) < 3 or not message[:3].isdigit():
        return None
    code = int(message[:3])
    return code if code >= ABORT_CODE_MIN else None


def _num(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError, OverflowError):     # junk, or an int past 1e308
        return 0.0


def space_totals(reports: Reports, names: Iterable[str], *, usage: bool = False,
                 preempting: bool = False,
                 start: Optional[Mapping[str, Totals]] = None) -> Dict[str, Totals]:
    """Per machinetype in ``names``: its totals over every report, in one walk.

    ``usage``/``preempting``: also sum the optional fields (only needed when the
    half-life or preemption is configured). ``start``: totals of the reports summed
    before these (the walk goes on from them, in the same order of additions).
    """
    begin = start or {}
    acc: Dict[str, List[float]] = {name: _fields(begin.get(name)) for name in names}
    aborts: Dict[Any, bool] = {}
    clean = set()                           # messages known not to be aborts
    for per_mt in reports.values():         # the hot loop of a big space: kept flat
        for name, status in per_mt.items():
            if name not in acc or not status:
                continue
            a = acc[name]
            try:
                hs06, nbf = status["running_hs06"], status["num_before_fizzle"]
                message = status["shutdown_message"]
            except KeyError:                # an incomplete report: missing adds nothing
                hs06, nbf = status.get("running_hs06"), status.get("num_before_fizzle")
                message = status.get("shutdown_message")
            try:                            # plain numbers add as they are (same floats)
                a[0] += hs06
            except (TypeError, OverflowError):
                a[0] += _num(hs06)
            try:
                a[1] += nbf
            except (TypeError, OverflowError):
                a[1] += _num(nbf)
            if message and (type(message) is not str or message not in clean):
                if _is_abort(message, aborts):
                    a[2] = max(a[2], _num(status.get("shutdown_time")))
                elif type(message) is str:
                    clean.add(message)
            if usage or preempting:
                a[3] += _num(status.get(DECAYED_FIELD)) if usage else 0.0
                a[4] += _num(status.get(PREEMPTED_FOR_FIELD)) if preempting else 0.0
    return {name: Totals(*a) for name, a in acc.items()}


def _is_abort(message: Any, cache: Dict[Any, bool]) -> bool:
    """abort_code(message) is not None, remembered per distinct message."""
    try:
        found = cache.get(message)
    except TypeError:                     # unhashable junk from a peer
        return isinstance(message, str) and abort_code(message) is not None
    if found is None:
        found = cache[message] = abort_code(message) is not None
    return found


def with_planned(totals: Totals, planned: Optional[Mapping[str, Any]]) -> Totals:
    """``totals`` plus this cycle's planned machines (running_hs06, num_before_fizzle)."""
    if not planned:
        return totals
    return replace(totals, hs06=totals.hs06 + _num(planned.get("running_hs06")),
                   nbf=totals.nbf + _num(planned.get("num_before_fizzle")))


def enabled(cfg: Config) -> List[Machinetype]:
    """Configured machinetypes with target_share > 0, in configuration order."""
    return [mt for mt in cfg.machinetypes.values() if mt.target_share > 0]


def _fields(t: Optional[Totals]) -> List[float]:
    if t is None:
        return [0.0, 0.0, 0.0, 0.0, 0.0]
    return [t.hs06, t.nbf, t.last_abort, t.usage, t.preempting]


def optional_fields(cfg: Config) -> Dict[str, bool]:
    """Which optional fields the configuration needs summed (``usage``, ``preempting``)."""
    return {"usage": cfg.settings.share_half_life_seconds > 0,
            "preempting": any(mt.preemptible for mt in cfg.machinetypes.values())}


def cycle_totals(cfg: Config, reports: Reports,
                 start: Optional[Mapping[str, Totals]] = None) -> Dict[str, Totals]:
    """:func:`space_totals` of the enabled machinetypes, with the optional fields the
    configuration needs (going on from ``start``, if given)."""
    return space_totals(reports, [mt.name for mt in enabled(cfg)], start=start,
                        **optional_fields(cfg))


def score(cfg: Config, mt: Machinetype, t: Totals) -> float:
    """(running HS06 [+ decayed usage × ln 2 / half-life]) / target_share."""
    half_life = cfg.settings.share_half_life_seconds
    if half_life > 0:
        return (t.hs06 + t.usage * math.log(2) / half_life) / mt.target_share
    return t.hs06 / mt.target_share


def standings(cfg: Config, reports: Reports, now: float,
              planned: Optional[Mapping[str, Mapping[str, Any]]] = None,
              totals: Optional[Mapping[str, Totals]] = None,
              previous: Sequence[Standing] = ()) -> List[Standing]:
    """Scores and eligibility of every configured machinetype with target_share > 0.

    ``totals`` (from :func:`cycle_totals`) saves walking ``reports`` again; ``planned``
    holds this cycle's own creations (machinetype -> running_hs06, num_before_fizzle);
    a Standing of ``previous`` (the last creation's) is reused where nothing changed.
    """
    mts = enabled(cfg)
    base = totals if totals is not None else cycle_totals(cfg, reports)
    planned = planned or {}
    sums = [with_planned(base.get(mt.name, _NO_TOTALS), planned[mt.name])
            if mt.name in planned else base.get(mt.name, _NO_TOTALS) for mt in mts]
    scores = ([score(cfg, mt, t) for mt, t in zip(mts, sums)]
              if cfg.settings.share_half_life_seconds > 0 else   # else score() inline:
              [t.hs06 / mt.target_share for mt, t in zip(mts, sums)])
    group_of = [mt.effective_machinegroup for mt in mts]
    groups: Dict[str, float] = {}
    for group, score_ in zip(group_of, scores):
        groups[group] = groups.get(group, 0.0) + score_
    total_share = sum(mt.target_share for mt in mts)
    total_hs06 = sum(t.hs06 for t in sums)
    before = {s.machinetype: s for s in previous}
    result = []
    for mt, t, score_, group in zip(mts, sums, scores, group_of):
        below = total_hs06 <= 0 or t.hs06 < mt.target_share / total_share * total_hs06
        old = before.get(mt.name)
        if old is not None and old.running_hs06 == t.hs06 and old.score == score_ \
                and old.group_score == groups[group] \
                and old.num_before_fizzle == int(t.nbf) \
                and old.tier == tier(mt.priority, below):
            result.append(old)
            continue
        result.append(_standing(cfg, mt, t, score_, groups[group], below, now))
    return result


def _standing(cfg: Config, mt: Machinetype, t: Totals, score_: float, group_score: float,
              below: bool, now: float) -> Standing:
    restart = t.last_abort + mt.backoff_seconds + (mt.fizzle_seconds if t.nbf > 0 else 0)
    why = _why_not(cfg, mt, now, t.last_abort, restart)
    return Standing(mt.name, mt.effective_machinegroup, score_, group_score, int(t.nbf),
                    t.last_abort, restart, not why, why, mt.priority, t.hs06, t.preempting,
                    tier(mt.priority, below))


def tier(priority: int, below_share: bool) -> int:
    """Ranking tier: a positive priority counts only while the machinetype is below its
    target share of the space's running HS06 (then it is created first); above its share
    it competes by score like everyone else. A negative priority always counts."""
    return priority if below_share or priority < 0 else 0


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
    """Eligible machinetypes: highest tier first, then the most starved machinegroup,
    then machinetype (SPEC §6.2 when every priority is 0)."""
    keyed = [(-s.tier, s.group_score, s.score, rng.random(), s)
             for s in stands if s.eligible]
    keyed.sort(key=lambda k: (k[0], k[1], k[2], k[3]))
    return [k[4] for k in keyed]
