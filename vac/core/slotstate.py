"""Per-slot lifecycle (SPEC §3.2, §3.7-3.10): state of each slot and the actions it needs.

Pure: inputs are SlotRecords, MachineInfos, the Config and ``now`` (Unix seconds).
Fixes kept here: B17 (no heartbeat check after a shutdown-time destroy), B18 (a machine
without ``shutdowntime_job`` is limited by created + max_wallclock_seconds, never destroyed
at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from vac.constants import (HEARTBEAT_NOT_CREATED, HEARTBEAT_NOT_UPDATED, PREEMPTED_MESSAGE,
                           STATE_PAUSED, STATE_RUNNING, STATE_SHUTDOWN, STATE_STARTING)
from vac.core import naming, projection
from vac.core.actions import (Account, Action, Destroy, ExpireMachineDir, Finalise,
                              LowerShutdownTime, RecordUsage, WriteHeartbeat)
from vac.core.configtypes import Config, Machinetype, Settings
from vac.machinemodels import DEFAULT_MODEL, backend_of
from vac.model import DomainState, MachineInfo, SlotRecord

DEFAULT_MACHINES_DIR_DAYS = 3.0
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class MachineDirInfo:
    """One ``machines/`` entry: path, machinetype, heartbeat mtime (None if absent) and
    whether its APEL record is pending (such a directory never expires)."""

    path: str
    machinetype: str
    heartbeat_mtime: Optional[float]
    record_pending: bool = False


@dataclass
class SlotOutcome:
    """What one slot looks like after this cycle's lifecycle actions."""

    slot: SlotRecord
    state: str
    actions: List[Action] = field(default_factory=list)
    shutdown_time: Optional[int] = None   # effective (possibly lowered) shutdown time
    record_owed: bool = False             # shut down, its APEL record not yet frozen

    @property
    def free(self) -> bool:
        """The slot can take a new machine (one owing its record keeps the slot)."""
        return self.state == STATE_SHUTDOWN and not self.record_owed

    @property
    def running(self) -> bool:
        return self.state == STATE_RUNNING

    @property
    def processors(self) -> int:
        return slot_processors(self.slot)

    @property
    def hs06(self) -> float:
        return slot_hs06(self.slot)


def slot_processors(slot: SlotRecord) -> int:
    """Allocated processors of a slot's machine (jobfeatures/allocated_cpu, else 1)."""
    return slot.processors if slot.processors and slot.processors > 0 else 1


def slot_hs06(slot: SlotRecord) -> float:
    """HS06 of a slot's machine: machinefeatures/hs06, else 1.0 HS06 per processor."""
    return float(slot.hs06) if slot.hs06 is not None else 1.0 * slot_processors(slot)


def configured_hs06(settings: Settings, processors: int) -> float:
    """HS06 of ``processors`` processors by the configuration: hs06_per_processor each,
    else 1.0 (what ``slot_hs06`` reads back from a machine created now)."""
    return (settings.hs06_per_processor or 1.0) * processors


def slot_backend(slot: SlotRecord) -> Optional[str]:
    """The backend running a slot's machine ("module:Class"; None: unknown model)."""
    return backend_of(slot.machine_model or DEFAULT_MODEL)


def machine_state(slot: SlotRecord) -> str:
    """State string from files alone (SPEC §3.2; the responder never asks the hypervisor)."""
    if not slot.is_used or slot.finished_time is not None:
        return STATE_SHUTDOWN
    if slot.started_time is None:
        return STATE_STARTING
    return STATE_RUNNING


def slot_state(slot: SlotRecord, domain: Optional[MachineInfo]) -> str:
    """State string of SPEC §3.2 from the files plus the backend's view (any model)."""
    from_files = machine_state(slot)
    if from_files != STATE_RUNNING:
        return from_files
    if domain is None or domain.state in (DomainState.SHUTOFF, DomainState.CRASHED):
        return STATE_SHUTDOWN
    if not domain.state.is_active:
        return STATE_PAUSED
    return STATE_RUNNING


def effective_shutdown_time(slot: SlotRecord, mt: Optional[Machinetype]) -> Optional[int]:
    """The machine's own limit: shutdowntime_job, else created + max_wallclock (B18)."""
    if slot.shutdown_time_job is not None:
        return slot.shutdown_time_job
    if mt is not None and slot.created is not None:
        return slot.created + mt.max_wallclock_seconds
    return None


def heartbeat_line(slot: SlotRecord, domain: MachineInfo,
                   now: float) -> Tuple[float, Optional[float]]:
    """(CPU seconds, CPU % over the interval since the last heartbeat, or None)."""
    cpu = domain.cpu_seconds
    if slot.cpu_seconds is None or slot.heartbeat_time is None or now <= slot.heartbeat_time:
        return cpu, None
    pct = 100.0 * (cpu - slot.cpu_seconds) / (now - slot.heartbeat_time)
    return cpu, max(0.0, round(pct, 1))


def heartbeat_file_problem(slot: SlotRecord, mt: Optional[Machinetype], now: float,
                           vacd_start: float) -> Optional[str]:
    """Shutdown message for a machine whose joboutputs heartbeat file is missing/stale."""
    if mt is None or not mt.heartbeat_file or mt.fizzle_seconds <= 0:
        return None
    if slot.started_time is None or now <= slot.started_time + mt.fizzle_seconds:
        return None
    if now <= vacd_start + mt.fizzle_seconds:
        return None
    if slot.heartbeat_file_mtime is None:
        return HEARTBEAT_NOT_CREATED
    if mt.heartbeat_seconds > 0 and slot.heartbeat_file_mtime < now - mt.heartbeat_seconds:
        return HEARTBEAT_NOT_UPDATED
    return None


def _running_actions(out: SlotOutcome, cfg: Config, domain: MachineInfo, now: float,
                     vacd_start: float) -> None:
    """Heartbeat, shutdown-time lowering, shutdown-time and heartbeat-file destroys."""
    slot = out.slot
    mdir = slot.machine_dir or ""
    mt = cfg.machinetypes.get(slot.machinetype or "")
    cpu, pct = heartbeat_line(slot, domain, now)
    out.actions.append(WriteHeartbeat(slot.name, mdir, cpu, pct))
    limit = effective_shutdown_time(slot, mt)
    global_limit = cfg.settings.shutdown_time
    if global_limit is not None and (limit is None or global_limit < limit):
        limit = global_limit
        out.actions.append(LowerShutdownTime(slot.name, mdir, global_limit,
                                             f"global shutdown_time {global_limit}"))
    out.shutdown_time = limit
    if slot.preempted_until is not None and now >= slot.preempted_until:
        out.actions.append(Destroy(slot.name, f"preemption grace for {slot.preempted_for} "
                                   f"ended at {slot.preempted_until}", mdir,
                                   preempted_message(slot),
                                   cfg.settings.shutdown_grace_seconds, slot_backend(slot)))
        out.state = STATE_SHUTDOWN
        return
    if limit is not None and now > limit:
        out.actions.append(Destroy(slot.name, f"passed shutdowntime {limit} without stopping",
                                   mdir, None, cfg.settings.shutdown_grace_seconds,
                                   slot_backend(slot)))
        out.state = STATE_SHUTDOWN
        return  # B17: no heartbeat-file check after this destroy
    message = heartbeat_file_problem(slot, mt, now, vacd_start)
    if message is not None:
        out.actions.append(Destroy(slot.name, f"{mt.heartbeat_file if mt else ''}: {message}",
                                   mdir, message, cfg.settings.shutdown_grace_seconds,
                                   slot_backend(slot)))
        out.state = STATE_SHUTDOWN


def preempted_message(slot: SlotRecord) -> Optional[str]:
    """The code-100 shutdown message of a preempted machine (None if not preempted)."""
    if slot.preempted_until is None:
        return None
    return PREEMPTED_MESSAGE.format(for_machinetype=slot.preempted_for or "-")


def usage_hs06_seconds(slot: SlotRecord, now: float) -> float:
    """HS06 x wall seconds of a finished machine (last heartbeat, else now, - start)."""
    if slot.started_time is None:
        return 0.0
    end = slot.heartbeat_time if slot.heartbeat_time is not None else now
    return slot_hs06(slot) * max(0.0, end - slot.started_time)


def why_no_record(slot: SlotRecord) -> Optional[str]:
    """Why a finished machine gets no APEL record (SPEC §9.1), or None if it gets one.

    Decided from the machine directory alone: its times and the accounting inputs
    captured at its creation (``slot.accounting``), never today's configuration.
    """
    if not slot.machine_dir:
        return "no machine directory"
    if slot.started_time is None:
        return "never started"
    if slot.heartbeat_time is None:
        return "no heartbeat time"
    if slot.accounting is None:
        return (f"machinetype {slot.machinetype} is no longer configured and the machine "
                "directory has no accounting.json")
    ran = slot.heartbeat_time - slot.started_time
    if ran < slot.accounting.fizzle_seconds:
        return f"ran {int(ran)}s, less than fizzle_seconds {slot.accounting.fizzle_seconds}"
    return None


def record_owed(slot: SlotRecord) -> bool:
    """The machine gets an APEL record that is not yet frozen in its directory."""
    return not slot.record_frozen and why_no_record(slot) is None


def _finalise_actions(out: SlotOutcome, cfg: Config, now: float,
                      final_cpu_seconds: Optional[float] = None) -> None:
    """Clean-up destroy, accounting and ``finished`` for a shut-down, unfinished machine.

    ``final_cpu_seconds``: the CPU seconds the backend measured for the stopped machine
    (a container's cgroup after its exit), used by the record when more than its last
    heartbeat's: the CPU used after the last heartbeat is not lost.

    A machine whose record is owed is not finalised (its slot is not freed) until a
    later cycle finds the record frozen in its directory: a record that cannot be
    written (full disk) is retried every cycle instead of being lost. A preempted
    machine that stopped by itself still gets its code-100 message.
    """
    slot = out.slot
    if not slot.is_used or slot.finished_time is not None:
        return
    if not any(isinstance(a, Destroy) for a in out.actions):
        out.actions.append(Destroy(slot.name, "clean up after the machine stopped",
                                   slot.machine_dir, preempted_message(slot),
                                   backend=slot_backend(slot)))
    for action in out.actions:        # the record sees this cycle's heartbeat and message
        slot = projection.after(slot, action, now)
    if final_cpu_seconds is not None and final_cpu_seconds > (slot.cpu_seconds or 0.0):
        slot = replace(slot, cpu_seconds=final_cpu_seconds)
    started = slot.started_time is not None
    if started:
        out.actions.append(Account(slot, "started machine finished"))
    out.record_owed = record_owed(slot)
    if out.record_owed:
        return
    if started and cfg.settings.share_half_life_seconds > 0 and slot.machinetype:
        out.actions.append(RecordUsage(slot.machinetype, usage_hs06_seconds(slot, now)))
    out.actions.append(Finalise(slot, started, "machine has shut down" if started
                                else "only-starting machine cleaned up"))


def slot_outcome(slot: SlotRecord, domain: Optional[MachineInfo], cfg: Config, now: float,
                 vacd_start: float) -> SlotOutcome:
    """State and lifecycle actions for one slot (SPEC §3.7), in the order to apply them."""
    out = SlotOutcome(slot, slot_state(slot, domain))
    if out.state == STATE_RUNNING and domain is not None:
        _running_actions(out, cfg, domain, now, vacd_start)
    elif out.state == STATE_RUNNING:           # non-VM model confirmed by other means
        out.shutdown_time = effective_shutdown_time(
            slot, cfg.machinetypes.get(slot.machinetype or ""))
    elif out.state == STATE_PAUSED:
        out.actions.append(Destroy(slot.name, "paused without shutting down", slot.machine_dir,
                                   preempted_message(slot),   # or powering off in its grace
                                   backend=slot_backend(slot)))
        out.state = STATE_SHUTDOWN
    elif out.state == STATE_STARTING:
        out.actions.append(Destroy(slot.name, "still in starting state in a new cycle",
                                   slot.machine_dir, backend=slot_backend(slot)))
        out.state = STATE_SHUTDOWN
    if out.state == STATE_SHUTDOWN:
        final = domain.cpu_seconds if domain is not None and \
            domain.state == DomainState.SHUTOFF else None
        _finalise_actions(out, cfg, now, final)
    return out


def zombie_reason(domain: MachineInfo, slot: Optional[SlotRecord]) -> Optional[str]:
    """Why a machine named like one of our slots is a zombie, or None if it belongs there
    (``domain.backend``: the backend that listed it, vac.machinemodels)."""
    if slot is None:
        return "no slot with this ordinal on this factory"
    if not slot.is_used:
        return "slot file or machine directory missing"
    if slot_backend(slot) != domain.backend:
        return f"running alongside a {slot.machine_model} machine"
    if slot.finished_time is not None:
        return "machine already finished"
    if slot.started_time is not None and slot.uuid != domain.uuid:
        return f"UUID {domain.uuid} differs from job_id {slot.uuid}"
    return None


def zombie_destroys(factory: str, slots: Sequence[SlotRecord],
                    domains: Sequence[MachineInfo], grace_seconds: int) -> List[Destroy]:
    """Destroy actions for domains of this factory's naming that match no live machine."""
    by_ordinal: Dict[int, SlotRecord] = {s.ordinal: s for s in slots}
    actions = []
    for domain in domains:
        ordinal = naming.ordinal_from_name(factory, domain.name)
        if ordinal is None:
            continue
        reason = zombie_reason(domain, by_ordinal.get(ordinal))
        if reason is not None:
            actions.append(Destroy(domain.name, f"zombie: {reason}", None, None, grace_seconds,
                                   domain.backend))
    return actions


def expired_dirs(entries: Sequence[MachineDirInfo], machinetypes: Mapping[str, Machinetype],
                 now: float) -> List[ExpireMachineDir]:
    """Machine directories whose heartbeat mtime is older than machines_dir_days (§3.10)."""
    actions = []
    for entry in entries:
        mt = machinetypes.get(entry.machinetype)
        days = mt.machines_dir_days if mt is not None else DEFAULT_MACHINES_DIR_DAYS
        if days <= 0 or entry.heartbeat_mtime is None or entry.record_pending:
            continue
        if entry.heartbeat_mtime < now - days * SECONDS_PER_DAY:
            actions.append(ExpireMachineDir(entry.path, f"heartbeat older than {days:g} days"))
    return actions
