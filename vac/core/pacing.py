"""When the next factory cycle is due (pure): creation paced by the guests' boot progress.

The original creates at most one machine per ``cycle_seconds`` (60 s), so an empty
16-slot factory takes a quarter of an hour to fill. Here, after a cycle that created
machines, the next cycle comes ``fast_cycle_seconds`` after the previous one once every
machine it created is seen running by its backend and has used ``BOOT_CPU_SECONDS``
of CPU (its guest is executing, not stuck); otherwise after ``cycle_seconds`` as before.
Each cycle gathers fresh host facts, so the overload (load average), memory and disk
vetoes and the superslot rules decide every creation as they always do: a factory whose
load rises stops creating. ``fast_cycle_seconds = 0`` restores the original pacing.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from vac.core.configtypes import Config
from vac.model import MachineInfo

BOOT_CPU_SECONDS = 1.0      # CPU a new guest has used when it counts as booting


def guest_booting(domain: Optional[MachineInfo]) -> bool:
    """The hypervisor runs the guest and it has used BOOT_CPU_SECONDS of CPU."""
    return domain is not None and domain.state.is_active and \
        domain.cpu_seconds >= BOOT_CPU_SECONDS


def cycle_due(cfg: Config, waited: float, created: Sequence[str],
              domain: Callable[[str], Optional[MachineInfo]]) -> bool:
    """True when the next cycle should start ``waited`` seconds after the last one ended.

    ``created``: names of the machines the last cycle created; ``domain(name)``: the
    hypervisor's current view of one (None if it is gone).
    """
    s = cfg.settings
    if waited >= s.cycle_seconds:
        return True
    if s.fast_cycle_seconds <= 0 or not created or waited < s.fast_cycle_seconds:
        return False
    return all(guest_booting(domain(name)) for name in created)
