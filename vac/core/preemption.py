"""Priority tiers: graceful preemption of lower-priority machines (pure).

When no machine could be created for lack of room (no free slot or processors) and an
eligible machinetype of a higher ``priority`` is below its target share across the
space, the factory may preempt running machines of lower priorities whose machinetypes
are ``preemptible``. At most one round per cycle: one waiting machinetype, and never more
processors than it needs (its deficit against its share) nor a machine that has
not passed its ``fizzle_seconds``. A preempted machine is told through MJF (its
``shutdowntime`` moves to now + its machinetype's ``preemption_grace_seconds``); when the
grace ends it is shut down with the code-100 message (see vac.core.slotstate).

The space decides, so two factories do not preempt for the same demand: the deficit
counts the processors already being preempted for the machinetype anywhere (optional
``preempted_for_processors`` of machinetype_status), and of the factories that report
preemptible machines (optional ``preemptible_processors``) only the first in a hash order
that changes every ``ROUND_SECONDS`` preempts in that round. Times are Unix seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from vac.core.actions import Preempt
from vac.core.configtypes import Config, Machinetype
from vac.core.shares import Reports, Standing, _num
from vac.core.slotstate import SlotOutcome, configured_hs06

PREEMPTIBLE_FIELD = "preemptible_processors"   # optional machinetype_status field
ROUND_SECONDS = 60        # the hash order of the factories changes this often


@dataclass(frozen=True)
class Room:
    """What the creation step left: free processors and whether a slot is free."""

    free_processors: int
    free_slot: bool


def waiting_order(stands: Sequence[Standing]) -> List[Standing]:
    """Eligible machinetypes by priority (highest first), then most starved."""
    return sorted((s for s in stands if s.eligible),
                  key=lambda s: (-s.priority, s.group_score, s.score, s.machinetype))


def deficit_processors(cfg: Config, stand: Standing, stands: Sequence[Standing]) -> int:
    """Processors ``stand`` lacks to reach its target share of the space's running HS06,
    counting those already being preempted for it, rounded to the nearest whole
    processor (halves up)."""
    mts = cfg.machinetypes
    shares = sum(mts[s.machinetype].target_share for s in stands)
    total = sum(s.running_hs06 for s in stands)
    per_processor = configured_hs06(cfg.settings, 1)
    target = mts[stand.machinetype].target_share / shares * total if shares > 0 else 0.0
    missing = target - stand.running_hs06 - stand.preempting * per_processor
    # nearest whole processors, halves up: afterwards it is closest to its share
    return max(0, math.floor(missing / per_processor + 0.5 + 1e-9))


def candidates(cfg: Config, outcomes: Sequence[SlotOutcome], waiting: Machinetype,
               now: float) -> List[SlotOutcome]:
    """Running machines this factory may preempt for ``waiting``, preferred first:
    lowest priority, then the youngest (least work lost)."""
    found = []
    for out in outcomes:
        slot = out.slot
        mt = cfg.machinetypes.get(slot.machinetype or "")
        if not out.running or mt is None or not mt.preemptible or \
                mt.priority >= waiting.priority or slot.preempted_until is not None:
            continue
        if slot.started_time is None or now - slot.started_time < mt.fizzle_seconds:
            continue                                        # never before fizzle
        if out.shutdown_time is not None and \
                out.shutdown_time <= now + mt.preemption_grace_seconds:
            continue                                        # it ends by then anyway
        found.append(out)
    found.sort(key=lambda o: (cfg.machinetypes[o.slot.machinetype or ""].priority,
                              -(o.slot.started_time or 0), o.slot.ordinal))
    return found


def select(victims: Sequence[SlotOutcome], need: int) -> List[SlotOutcome]:
    """Victims in order whose processors fit in ``need`` (never more in total)."""
    chosen, left = [], need
    for out in victims:
        if out.processors <= left:
            chosen.append(out)
            left -= out.processors
        if left == 0:
            break
    return chosen


def round_winner(cfg: Config, reports: Reports, waiting: Standing, has_victims: bool,
                 now: float) -> Optional[str]:
    """The factory that preempts for ``waiting`` in this round (None: nobody can)."""
    me = cfg.settings.factory_hostname
    lower = {name for name, mt in cfg.machinetypes.items()
             if mt.preemptible and mt.priority < waiting.priority}
    able = {f for f, per_mt in reports.items() if f != me and any(
        _num((per_mt.get(name) or {}).get(PREEMPTIBLE_FIELD)) > 0 for name in lower)}
    if has_victims:
        able.add(me)
    key = f"{waiting.machinetype} {int(now // ROUND_SECONDS)}"
    import hashlib      # here: the responder loads this module but never preempts
    return min(able, key=lambda f: hashlib.sha256(f"{key} {f}".encode()).hexdigest(),
               default=None)


def plan_preemption(cfg: Config, outcomes: Sequence[SlotOutcome],
                    stands: Sequence[Standing], reports: Reports, room: Room,
                    now: float) -> Tuple[List[Preempt], List[str]]:
    """At most one round of Preempt actions, and the notes explaining the decision."""
    if not any(mt.preemptible for mt in cfg.machinetypes.values()):
        return [], []
    notes: List[str] = []
    for stand in waiting_order(stands):
        waiting = cfg.machinetypes[stand.machinetype]
        victims = candidates(cfg, outcomes, waiting, now)
        if not victims and not any(m.preemptible and m.priority < waiting.priority
                                   for m in cfg.machinetypes.values()):
            continue
        actions = _round(cfg, stand, stands, reports, room, victims, now, notes)
        if actions is not None:
            return actions, notes
    return [], notes


def _round(cfg: Config, stand: Standing, stands: Sequence[Standing], reports: Reports,
           room: Room, victims: List[SlotOutcome], now: float,
           notes: List[str]) -> Optional[List[Preempt]]:
    """Preempt actions for ``stand`` (None: try the next waiting machinetype)."""
    waiting = cfg.machinetypes[stand.machinetype]
    name = waiting.name
    deficit = deficit_processors(cfg, stand, stands)
    need = deficit - (room.free_processors if room.free_slot else 0)
    if deficit < max(1, waiting.min_processors) or need <= 0:
        notes.append(f"Preemption: {name} (priority {waiting.priority}) needs no room: "
                     f"deficit {deficit} processor(s) against its share, counting "
                     f"{stand.preempting:g} already being preempted for it")
        return None
    winner = round_winner(cfg, reports, stand, bool(victims), now)
    if winner != cfg.settings.factory_hostname:
        notes.append(f"Preemption: {name} needs {need} processor(s); in this round "
                     f"{winner or 'no factory'} preempts for it")
        return []
    chosen = select(victims, need)
    freed = sum(o.processors for o in chosen)
    if freed + (room.free_processors if room.free_slot else 0) < waiting.min_processors:
        notes.append(f"Preemption: {name} needs {need} processor(s) but no set of "
                     f"preemptible machines past fizzle fits in that")
        return []
    return [_preempt(cfg, o, name, need, deficit, now) for o in chosen]


def _preempt(cfg: Config, out: SlotOutcome, for_mt: str, need: int, deficit: int,
             now: float) -> Preempt:
    slot = out.slot
    mt = cfg.machinetypes[slot.machinetype or ""]
    until = int(now) + mt.preemption_grace_seconds
    return Preempt(slot.name, slot.machine_dir or "", mt.name, for_mt, out.processors, until,
                   f"{for_mt} (priority {cfg.machinetypes[for_mt].priority}) is "
                   f"{deficit} processor(s) below its share and has no room; {need} "
                   f"needed here; {mt.name} has priority {mt.priority}")
