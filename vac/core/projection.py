"""This factory's slots as its lifecycle actions will leave them (pure).

The planner decides lifecycle and creation in one go from what the cycle gathered; it
needs the state the lifecycle actions leave behind (a machine finalised now, with the
shutdown message Vac writes for it, is this cycle's last outcome of its machinetype) and
the executor's records need the same view. :func:`after` applies actions to slot records
the way the executor applies them to the files; the scheduling simulator uses it too.
Times are Unix seconds; ``now`` is the cycle's time.
"""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional

from vac.core.actions import (Account, Action, Destroy, Finalise, LowerShutdownTime, Preempt,
                              RecordUsage, WriteHeartbeat)
from vac.model import SlotRecord


def after(slot: SlotRecord, action: Action, now: float) -> SlotRecord:
    """``slot`` once ``action`` (one of this slot's) has been applied at ``now``."""
    if isinstance(action, WriteHeartbeat):
        return slot.updated(heartbeat_time=now, heartbeat_mtime=now,
                            cpu_seconds=action.cpu_seconds,
                            cpu_percentage=action.cpu_percentage)
    if isinstance(action, LowerShutdownTime):
        return slot.updated(shutdown_time_job=action.shutdown_time)
    if isinstance(action, Preempt):
        return slot.updated(shutdown_time_job=action.grace_until,
                            preempted_until=action.grace_until,
                            preempted_for=action.for_machinetype)
    if isinstance(action, Destroy) and action.shutdown_message and slot.machine_dir \
            and not slot.shutdown_message:       # the machine's own message always wins
        return slot.updated(shutdown_message=action.shutdown_message,
                            shutdown_message_time=now)
    if isinstance(action, Finalise):
        return slot.updated(finished_time=now)
    return slot


def action_name(action: Action) -> Optional[str]:
    """The machine an action concerns (None: a factory-wide action)."""
    if isinstance(action, Finalise):
        return action.slot.name
    return getattr(action, "name", None)


def slots_after(slots: Iterable[SlotRecord], actions: Iterable[Action],
                now: float) -> Dict[str, SlotRecord]:
    """Machine name -> its slot after every action of the list that concerns it."""
    result = {s.name: s for s in slots}
    for action in actions:
        name = action_name(action)
        if name in result:
            result[name] = after(result[name], action, now)
    return result


def finishes_after(finishes: Mapping[str, SlotRecord], slots: Mapping[str, SlotRecord],
                   actions: Iterable[Action]) -> Dict[str, SlotRecord]:
    """``finishes/MT`` after this cycle: the most recently *created* machine of each
    machinetype that is finalised or accounted now (a machine that stopped is its
    machinetype's latest outcome at once, though its slot is freed only once its APEL
    record is frozen)."""
    result = dict(finishes)
    for action in actions:
        if not isinstance(action, (Finalise, Account)):
            continue
        slot = slots.get(action.slot.name, action.slot)
        mt = slot.machinetype or ""
        old = result.get(mt)
        if old is None or (slot.created or 0) >= (old.created or 0):
            result[mt] = slot
    return result


def usage_after(usage: Mapping[str, float], actions: Iterable[Action]) -> Dict[str, float]:
    """Decayed HS06 seconds per machinetype (as of now) plus this cycle's RecordUsage."""
    result = dict(usage)
    for action in actions:
        if isinstance(action, RecordUsage):
            result[action.machinetype] = result.get(action.machinetype, 0.0) + \
                max(0.0, action.hs06_seconds)
    return result
