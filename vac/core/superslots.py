"""Processor allocation with superslots (SPEC §6.4).

A superslot is a group of machines sharing one shutdown time, so their processors become
free together. Filling an incomplete superslot takes priority over fair-share ranking.
Fix B23: a new machine's shutdown time is capped at the global ``shutdown_time``.
Times are Unix seconds; processors are counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from vac.core.configtypes import Machinetype


@dataclass(frozen=True)
class Choice:
    """A machinetype placed in a superslot: processors and shutdown time of the machine."""

    machinetype: str
    processors: int
    shutdown_time: int
    reason: str


def superslot_map(shutdown_times: Sequence[Optional[int]],
                  processors: Sequence[int]) -> Dict[int, int]:
    """shutdown time -> processors of the running machines ending then."""
    result: Dict[int, int] = {}
    for t, p in zip(shutdown_times, processors):
        if t is not None:
            result[int(t)] = result.get(int(t), 0) + p
    return result


def _fits_window(mt: Machinetype, remaining: float) -> bool:
    return mt.effective_min_wallclock_seconds <= remaining <= mt.max_wallclock_seconds


def fill_existing(ranked: Sequence[Machinetype], superslots: Mapping[int, int], free: int,
                  *, per_superslot: int, now: int, notes: List[str]) -> Tuple[Optional[Choice], int]:
    """Step 1: the first incomplete superslot a ranked machinetype fits; (choice, free left)."""
    for t in sorted(superslots):
        used = superslots[t]
        if used % per_superslot == 0:
            continue
        need = min(free, per_superslot - used % per_superslot)
        free -= need
        for mt in ranked:
            if need >= mt.min_processors and _fits_window(mt, t - now):
                procs = min(need, mt.max_processors, per_superslot)
                return Choice(mt.name, procs, t,
                              f"existing superslot finishing at {t} with "
                              f"{used}/{per_superslot} processors"), free
        notes.append(f"superslot finishing at {t} ({used}/{per_superslot}): no ranked "
                     f"machinetype fits {need} processor(s) and {t - now} s; reserved")
    return None, free


def open_new(ranked: Sequence[Machinetype], free: int, *, per_superslot: int, now: int,
             shutdown_time: Optional[int], notes: List[str]) -> Optional[Choice]:
    """Step 2: a new superslot for the first ranked machinetype whose minimum fits."""
    if free <= 0:
        notes.append("no free processors left for a new superslot")
        return None
    for mt in ranked:
        if min(free, per_superslot) < mt.min_processors:
            notes.append(f"{mt.name}: min_processors {mt.min_processors} > "
                         f"{min(free, per_superslot)} available")
            continue
        end = now + mt.max_wallclock_seconds
        if shutdown_time is not None and shutdown_time < end:
            end = shutdown_time                                  # B23
        procs = min(free, mt.max_processors, per_superslot)
        return Choice(mt.name, procs, end, f"new superslot finishing at {end}")
    return None


def choose(ranked: Sequence[Machinetype], superslots: Mapping[int, int], free: int, *,
           per_superslot: int, now: int, shutdown_time: Optional[int] = None,
           notes: Optional[List[str]] = None) -> Optional[Choice]:
    """Machinetype, processors and shutdown time for the next machine, or None (§6.4).

    ``free`` = processors not used by running machines; ``notes`` collects explanations.
    """
    notes = notes if notes is not None else []
    per_superslot = max(1, per_superslot)
    choice, free = fill_existing(ranked, superslots, free, per_superslot=per_superslot,
                                 now=now, notes=notes)
    if choice is None:
        choice = open_new(ranked, free, per_superslot=per_superslot, now=now,
                          shutdown_time=shutdown_time, notes=notes)
    return choice
