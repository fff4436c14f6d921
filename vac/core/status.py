"""Status bodies of the VacQuery responses (SPEC §7.4), computed from slot snapshots.

Pure: the caller reads the state directory (``SlotRecord`` values), host facts and the
clock. Returned dicts hold only the type-specific fields; ``vac.core.vacquery.response``
adds the common envelope. Units: times in Unix seconds (int), HS06 floats, KiB for disk
and memory, bytes for ``bytes_per_processor``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from vac.constants import (COUNTING_WINDOW_SECONDS, MIB, STATE_RUNNING, STATE_SHUTDOWN,
                           STATE_STARTING)
from vac.core.configtypes import Config, Machinetype
from vac.core.slotstate import configured_hs06, machine_state, slot_hs06, slot_processors
from vac.core.vacquery import vo_of_fqan
from vac.model import SlotRecord

FIZZLE_MESSAGE = "300 Vac detects fizzle after {seconds} seconds"


def _int_or_none(value: Optional[float]) -> Optional[int]:
    return int(value) if value is not None else None


def _fqan_fields(fqan: Optional[str]) -> Dict[str, str]:
    return {"fqan": fqan, "vo": vo_of_fqan(fqan)} if fqan else {}


def machine_status(slot: SlotRecord, num_machines: int) -> Dict[str, Any]:
    """machine_status body of one slot."""
    state = machine_state(slot)
    used = slot.is_used
    processors = slot_processors(slot)
    shut = state == STATE_SHUTDOWN and used
    body: Dict[str, Any] = {
        "num_machines": num_machines,
        "machine": slot.name,
        "state": state,
        "machine_model": slot.machine_model if used else None,
        "uuid": slot.uuid if used else None,
        "created_time": slot.created if used else None,
        "started_time": _int_or_none(slot.started_time) if used else None,
        "heartbeat_time": _int_or_none(slot.heartbeat_time) if used else None,
        "num_cpus": processors,
        "num_processors": processors,
        "cpu_seconds": int(slot.cpu_seconds or 0),
        "cpu_percentage": float(slot.cpu_percentage or 0.0),
        "hs06": slot_hs06(slot),
        "machinetype": slot.machinetype if used else None,
        "shutdown_message": slot.shutdown_message if shut else None,
        "shutdown_time": _int_or_none(slot.shutdown_message_time) if shut else None,
    }
    body.update(_fqan_fields(slot.accounting_fqan if used else None))
    return body


def machine_statuses(cfg: Config, slots: Sequence[SlotRecord], now: float
                     ) -> List[Dict[str, Any]]:
    """One machine_status body per slot, in slot order."""
    return [machine_status(slot, len(slots)) for slot in slots]


def is_running(slot: SlotRecord, now: float) -> bool:
    """Started, heartbeat seen within the counting window, not finished (SPEC §7.4)."""
    return (machine_state(slot) == STATE_RUNNING and slot.heartbeat_time is not None
            and slot.heartbeat_time > now - COUNTING_WINDOW_SECONDS)


def is_starting(slot: SlotRecord, now: float) -> bool:
    """Not started, not finished, created within the counting window."""
    return (machine_state(slot) == STATE_STARTING and slot.created is not None
            and slot.created > now - COUNTING_WINDOW_SECONDS)


def finished_outcome(mt: Machinetype, finished: Optional[SlotRecord]
                     ) -> Tuple[Optional[str], Optional[int], Optional[str]]:
    """(shutdown_message first line, its time, machine) of the latest finished machine.

    A machine without a message that ran less than fizzle_seconds gets the synthetic
    ``300 Vac detects fizzle after N seconds`` timed at its last heartbeat (B6 fixed).
    """
    if finished is None:
        return None, None, None
    if finished.shutdown_message:
        first = finished.shutdown_message.splitlines()[0]
        return first, _int_or_none(finished.shutdown_message_time), finished.name
    started, heartbeat = finished.started_time, finished.heartbeat_time
    if started is not None and heartbeat is not None:
        lasted = int(heartbeat - started)
        if lasted < mt.fizzle_seconds:
            return FIZZLE_MESSAGE.format(seconds=lasted), int(heartbeat), finished.name
    return None, None, finished.name


def is_making_room(slot: SlotRecord, now: float) -> bool:
    """A preempted machine still running, or finished within the counting window and its
    slot not yet reused (the room it made is not yet taken)."""
    if slot.finished_time is not None:
        return slot.finished_time > now - COUNTING_WINDOW_SECONDS
    return is_running(slot, now) or is_starting(slot, now)


def scheduling_fields(mt: Machinetype, cfg: Config, slots: Sequence[SlotRecord],
                      now: float, decayed_hs06_seconds: float) -> Dict[str, Any]:
    """Optional machinetype_status fields of this implementation (original factories
    ignore them): ``decayed_hs06_seconds`` with a share half-life,
    ``preemptible_processors`` for a preemptible machinetype (its running machines past
    fizzle and not yet preempted), ``preempted_for_processors`` when machines are being
    preempted to make room for it (until their slots are reused)."""
    body: Dict[str, Any] = {}
    if cfg.settings.share_half_life_seconds > 0:
        body["decayed_hs06_seconds"] = round(decayed_hs06_seconds, 1)
    if mt.preemptible:
        body["preemptible_processors"] = sum(
            slot_processors(s) for s in slots if s.machinetype == mt.name
            and is_running(s, now) and s.preempted_until is None
            and s.started_time is not None and now - s.started_time >= mt.fizzle_seconds)
    preempting = sum(slot_processors(s) for s in slots
                     if s.preempted_for == mt.name and is_making_room(s, now))
    if preempting:
        body["preempted_for_processors"] = preempting
    return body


def machinetype_status(mt: Machinetype, cfg: Config, slots: Sequence[SlotRecord],
                       now: float, finished: Optional[SlotRecord],
                       decayed_hs06_seconds: float = 0.0) -> Dict[str, Any]:
    """machinetype_status body of one configured machinetype."""
    running = [s for s in slots if s.machinetype == mt.name and is_running(s, now)]
    starting = [s for s in slots if s.machinetype == mt.name and is_starting(s, now)]
    counted = running + starting
    processors = sum(slot_processors(s) for s in counted)          # B19: allocated_cpu
    young = [s for s in running if s.started_time > now - mt.fizzle_seconds]
    message, message_time, machine = finished_outcome(mt, finished)
    body: Dict[str, Any] = {
        "num_machinetypes": len(cfg.machinetypes),
        "machinetype": mt.name,
        "bytes_per_processor": cfg.settings.mb_per_processor * MIB,
        "running_hs06": round(sum(slot_hs06(s) for s in counted), 2),
        "running_machines": len(counted),
        "running_cpus": processors,
        "running_processors": processors,
        "num_before_fizzle": len(starting) + len(young),
        "shutdown_message": message,
        "shutdown_time": message_time,
        "shutdown_machine": machine,
        "max_wallclock_seconds": mt.max_wallclock_seconds,
        "min_wallclock_seconds": mt.effective_min_wallclock_seconds,
        "max_processors": mt.max_processors,
        "min_processors": mt.min_processors,
    }
    body.update(_fqan_fields(mt.accounting_fqan))
    body.update(scheduling_fields(mt, cfg, slots, now, decayed_hs06_seconds))
    return body


def machinetype_statuses(cfg: Config, slots: Sequence[SlotRecord], now: float,
                         finishes: Optional[Mapping[str, SlotRecord]] = None,
                         usage: Optional[Mapping[str, float]] = None
                         ) -> List[Dict[str, Any]]:
    """One body per configured machinetype (sorted by name).

    ``finishes`` maps machinetype -> the most recently created finished machine of that
    type (from ``finishes/MT``); without it the newest finished slot still on disk is used.
    ``usage``: machinetype -> decayed HS06 seconds as of ``now`` (share half-life).
    """
    if finishes is None:
        finishes = latest_finished(slots)
    usage = usage or {}
    concerning = slots_concerning(slots)
    return [machinetype_status(mt, cfg, concerning.get(name, ()), now, finishes.get(name),
                               usage.get(name, 0.0))
            for name, mt in sorted(cfg.machinetypes.items())]


def slots_concerning(slots: Sequence[SlotRecord]) -> Dict[str, List[SlotRecord]]:
    """Machinetype -> the slots of that machinetype or preempted for it, in their order:
    all that its body looks at (one pass instead of one per machinetype)."""
    groups: Dict[str, List[SlotRecord]] = {}
    for slot in slots:
        if slot.machinetype is not None:
            groups.setdefault(slot.machinetype, []).append(slot)
        if slot.preempted_for is not None and slot.preempted_for != slot.machinetype:
            groups.setdefault(slot.preempted_for, []).append(slot)
    return groups


def latest_finished(slots: Sequence[SlotRecord]) -> Dict[str, SlotRecord]:
    """Per machinetype, the finished slot machine with the greatest creation time."""
    best: Dict[str, SlotRecord] = {}
    for slot in slots:
        if slot.is_used and slot.finished_time is not None and slot.machinetype:
            old = best.get(slot.machinetype)
            if old is None or (slot.created or 0) > (old.created or 0):
                best[slot.machinetype] = slot
    return best


def total_processors(cfg: Config, host_processors: int) -> int:
    """total_processors from the configuration, else the processors of the host."""
    return cfg.settings.total_processors or host_processors


def factory_status(cfg: Config, counts: Optional[Sequence[float]],
                   sysinfo: Mapping[str, Any], heartbeats: Mapping[str, Optional[float]],
                   now: float) -> Dict[str, Any]:
    """factory_status body.

    ``counts``: (running machines, slots, running processors, max processors, running
    HS06) from the counts file, or None. ``sysinfo``: host facts (see
    vac.adapters.sysinfo.gather). ``heartbeats``: role -> heartbeat file ctime or None.
    """
    running_machines, running_processors, running_hs06 = 0, 0, 0.0
    if counts:
        running_machines, running_processors = int(counts[0]), int(counts[2])
        running_hs06 = float(counts[4])
    total = total_processors(cfg, int(sysinfo.get("processor_count", 1)))
    max_hs06 = round(configured_hs06(cfg.settings, total), 2)
    body: Dict[str, Any] = {
        "running_cpus": running_processors, "running_processors": running_processors,
        "running_machines": running_machines, "running_hs06": running_hs06,
        "max_cpus": total, "max_processors": total, "max_machines": total,
        "max_hs06": max_hs06, "total_cpus": total, "total_machines": total,
        "total_hs06": max_hs06,
        "load_average": round(float(sysinfo.get("load_average", 0.0)), 2),
        "kernel_version": str(sysinfo.get("kernel_version", "")),
        "os_issue": str(sysinfo.get("os_issue") or sysinfo.get("kernel_version", "")),
        "boot_time": int(sysinfo.get("boot_time", 0)),
    }
    for key in ("root_disk_avail_kb", "root_disk_avail_inodes", "vac_disk_avail_kb",
                "vac_disk_avail_inodes", "swap_used_kb", "swap_free_kb", "mem_used_kb",
                "mem_total_kb"):
        body[key] = int(sysinfo.get(key, 0))
    body["daemon_disk_avail_kb"] = body["vac_disk_avail_kb"]
    body["daemon_disk_avail_inodes"] = body["vac_disk_avail_inodes"]
    for role in ("factory", "responder", "mjf", "metadata"):
        body[f"{role}_heartbeat_time"] = int(heartbeats.get(role) or 0)
    return body
