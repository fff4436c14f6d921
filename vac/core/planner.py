"""One factory cycle's decision (SPEC §3.7, §6): lifecycle actions, vetoes, creations.

Pure: the caller gathers Config, slot snapshots, the backends' machines, host facts and
the peers' reports once and passes ``now`` (Unix seconds) and a seeded
``random.Random``. :func:`plan` returns the whole decision: an ordered list of actions,
each with its reason, plus the vetoes and notes explaining the creation decision.
Finalisation always comes before creation (App. A.6). This factory's own report is
computed here from its slots as the lifecycle actions leave them (vac.core.projection),
never read back from its responder; the machines planned this cycle are held apart
from every factory's report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from vac.constants import MIB, MIN_STATE_FREE_BYTES, STATE_SHUTDOWN
from vac.core import naming, projection
from vac.core.actions import Action, Create, Destroy, Preempt, WriteCounts
from vac.core.configtypes import Config
from vac.core.mjf import memory_bytes
from vac.core.preemption import Room, plan_preemption
from vac.core.reportcolumns import ReportColumns
from vac.core.shares import Reports, Rng, Standing, Totals, cycle_totals, rank, standings
from vac.core.slotstate import (MachineDirInfo, SlotOutcome, configured_hs06,
                                effective_shutdown_time, expired_dirs, machine_state,
                                slot_backend, slot_outcome, zombie_destroys)
from vac.core.status import machinetype_statuses, total_processors
from vac.core.superslots import Choice, choose, superslot_map
from vac.model import HostFacts, MachineInfo, SlotRecord


@dataclass(frozen=True)
class OwnFacts:
    """What this factory's own report needs besides its slots, gathered once:
    ``finishes`` (machinetype -> the machine ``finishes/MT`` names) and ``usage``
    (machinetype -> decayed HS06 seconds as of now; empty without a share half-life)."""

    finishes: Mapping[str, SlotRecord]
    usage: Mapping[str, float]


@dataclass(frozen=True)
class CycleInputs:
    """Everything the planner needs, gathered once per cycle."""

    config: Config
    slots: Sequence[SlotRecord]
    machines: Sequence[MachineInfo]        # every open backend's machines of this factory
    host: HostFacts
    reports: Reports                       # factory -> machinetype -> machinetype_status
    vacd_start: float                      # Unix seconds the daemon started
    machine_dirs: Sequence[MachineDirInfo] = ()
    blockers: Sequence[str] = ()           # factory-level reasons not to create (e.g. network)
    volumes: Sequence[str] = ()            # logical volume names in the volume group
    unseen: FrozenSet[str] = frozenset()   # backends that could not be asked: slots held
    own: Optional[OwnFacts] = None         # given: this factory's report is computed here
    creating: bool = True                  # False: lifecycle only (invalid configuration)
    creation_config: Optional[Config] = None   # machinetypes to create (None: ``config``)
    peer_columns: Optional[ReportColumns] = None   # ``reports`` summed as decoded (with own)


@dataclass
class Plan:
    """The planner's answer: actions in order, plus the explanation of the creation step."""

    actions: List[Action] = field(default_factory=list)
    vetoes: List[str] = field(default_factory=list)
    states: Dict[str, str] = field(default_factory=dict)       # machine name -> state
    standings: List[Standing] = field(default_factory=list)
    ranked: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    room_bound: bool = False        # the last creation attempt failed for lack of room only
    capacity_superslots: Dict[int, int] = field(default_factory=dict)   # after lifecycle

    @property
    def creates(self) -> List[Create]:
        return [a for a in self.actions if isinstance(a, Create)]

    @property
    def preemptions(self) -> List[Preempt]:
        return [a for a in self.actions if isinstance(a, Preempt)]


@dataclass
class _Capacity:
    """Running totals updated as machines are planned."""

    running_processors: int
    max_processors: int
    processor_count: int
    superslots: Dict[int, int]
    free_ordinals: List[int]
    mem_available: Optional[int]           # bytes, None if unknown
    outcomes: List[SlotOutcome] = field(default_factory=list)


def vetoes(cfg: Config, host: HostFacts, cap: _Capacity, now: float) -> List[str]:
    """Every reason not to create a machine now, in the order of SPEC §6.1 (+memory, disk)."""
    return host_vetoes(cfg, host, cap, now) + room_vetoes(cap)


def host_vetoes(cfg: Config, host: HostFacts, cap: _Capacity, now: float) -> List[str]:
    """Load, memory, disk, shutdown_time and draining vetoes (not about free room)."""
    s, load, running = cfg.settings, host.load_average, cap.running_processors
    found = []
    if running > 4 and load > s.overload_per_processor * running:
        found.append(f"load average ({load:.2f}) > overload_per_processor "
                     f"({s.overload_per_processor}) * runningProcessors ({running})")
    if load > s.overload_per_processor * cap.processor_count:
        found.append(f"load average ({load:.2f}) > overload_per_processor "
                     f"({s.overload_per_processor}) * processorCount ({cap.processor_count})")
    if cap.mem_available is not None and cap.mem_available < s.mb_per_processor * MIB:
        found.append(f"free memory ({cap.mem_available // MIB} MiB) < mb_per_processor "
                     f"({s.mb_per_processor} MiB)")
    if host.state_free_bytes < MIN_STATE_FREE_BYTES:
        found.append(f"less than 1 GiB free in the state directory "
                     f"({host.state_free_bytes} bytes)")
    if s.shutdown_time is not None and s.shutdown_time < now:
        found.append(f"shutdown_time = {s.shutdown_time} has already passed")
    if s.draining:
        found.append("in draining mode")
    return found


def room_vetoes(cap: _Capacity) -> List[str]:
    """No processors or no slot left (the vetoes preemption may answer)."""
    found = []
    if cap.running_processors >= cap.max_processors:
        found.append(f"total_processors or /proc/cpuinfo limit ({cap.max_processors}) reached")
    if not cap.free_ordinals:
        found.append("no free slot")
    return found


def _lifecycle(inp: CycleInputs, now: float, result: Plan) -> List[SlotOutcome]:
    """Expiry, zombies and per-slot lifecycle actions; returns the slot outcomes."""
    cfg = inp.config
    factory = cfg.settings.factory_hostname
    result.actions.extend(expired_dirs(inp.machine_dirs, cfg.machinetypes, now))
    zombies = zombie_destroys(factory, inp.slots, inp.machines,
                              cfg.settings.shutdown_grace_seconds)
    result.actions.extend(zombies)
    gone = {(z.name, z.backend) for z in zombies}
    machines = {(m.name, m.backend): m for m in inp.machines
                if (m.name, m.backend) not in gone}
    outcomes = []
    for slot in sorted(inp.slots, key=lambda s: s.ordinal):
        backend = slot_backend(slot)
        if slot.is_used and backend in inp.unseen:
            out = held_outcome(slot, cfg)
        else:
            out = slot_outcome(slot, machines.get((slot.name, backend)), cfg, now,
                               inp.vacd_start)
        result.actions.extend(out.actions)
        result.states[slot.name] = out.state
        outcomes.append(out)
    result.actions.extend(volume_zombies(factory, inp.volumes, outcomes, result.actions))
    return outcomes


def held_outcome(slot: SlotRecord, cfg: Config) -> SlotOutcome:
    """A slot whose backend could not be asked: its state from the files alone, no
    action (it is never taken for shut down), its processors still counted."""
    out = SlotOutcome(slot, machine_state(slot))
    out.shutdown_time = effective_shutdown_time(slot, cfg.machinetypes.get(
        slot.machinetype or ""))
    return out


def volume_zombies(factory: str, volumes: Sequence[str], outcomes: Sequence[SlotOutcome],
                   actions: Sequence[Action]) -> List[Destroy]:
    """Destroy (which removes the LV) for our LVs whose slot holds no live machine,
    through the backend of the slot's last machine (it knows whether it is mounted)."""
    live = {o.slot.name for o in outcomes if o.state != STATE_SHUTDOWN}
    handled = {a.name for a in actions if isinstance(a, Destroy)}
    last = {o.slot.name: o.slot for o in outcomes}
    zombies = []
    for name in volumes:
        if naming.ordinal_from_name(factory, name) is None or name in live | handled:
            continue
        slot = last.get(name)
        zombies.append(Destroy(name, "zombie: logical volume without a live machine",
                               slot.machine_dir if slot else None,
                               backend=slot_backend(slot) if slot else None))
    return zombies


def _capacity(inp: CycleInputs, outcomes: Sequence[SlotOutcome]) -> _Capacity:
    running = [o for o in outcomes if o.running]
    host = inp.host
    return _Capacity(
        running_processors=sum(o.processors for o in running),
        max_processors=total_processors(inp.config, host.processor_count),
        processor_count=host.processor_count,
        superslots=superslot_map([o.shutdown_time for o in running],
                                 [o.processors for o in running]),
        free_ordinals=[o.slot.ordinal for o in outcomes if o.free],
        mem_available=host.mem_available_bytes if host.mem_total_bytes > 0 else None,
        outcomes=list(outcomes))


def _counts(inp: CycleInputs, outcomes: Sequence[SlotOutcome], cap: _Capacity) -> WriteCounts:
    running = [o for o in outcomes if o.running]
    return WriteCounts(len(running), len(inp.slots), cap.running_processors,
                       cap.max_processors, sum(o.hs06 for o in running))


def _create_one(inp: CycleInputs, cap: _Capacity, planned: Dict[str, Dict[str, Any]],
                totals: Mapping[str, Totals], now: int, rng: Rng,
                result: Plan) -> Optional[Create]:
    """Vetoes, ranking and superslot choice for one machine; updates ``cap`` and ``planned``.

    ``totals`` are the space's per-machinetype sums, walked once per cycle; ``planned``
    adds this cycle's own creations (the "(planned this cycle)" pseudo-factory).
    """
    cfg = inp.config
    blocked = list(inp.blockers) + host_vetoes(cfg, inp.host, cap, now)
    found = blocked + room_vetoes(cap)
    result.standings = standings(cfg, inp.reports, now, planned, totals, result.standings)
    result.room_bound = not blocked
    if found:               # standings still explain the machinetypes (vac plan, the log)
        result.vetoes = found
        return None
    ranked = rank(result.standings, rng)
    result.ranked = [s.machinetype for s in ranked]
    if not ranked:
        result.notes.append("No machinetype eligible for creation in this cycle")
        return None
    free = cap.max_processors - cap.running_processors
    choice = choose([cfg.machinetypes[s.machinetype] for s in ranked], cap.superslots, free,
                    per_superslot=cfg.settings.processors_per_superslot, now=now,
                    shutdown_time=cfg.settings.shutdown_time, notes=result.notes)
    if choice is None:
        result.notes.append("No machinetype suitable for creation in this cycle")
        return None
    result.room_bound = False
    needed = memory_bytes(cfg.settings, choice.processors)
    if cap.mem_available is not None and cap.mem_available < needed:
        result.vetoes = [f"free memory ({cap.mem_available // MIB} MiB) does not cover "
                         f"{choice.machinetype} with {choice.processors} processor(s) "
                         f"({needed // MIB} MiB)"]
        return None
    return _reserve(cfg, cap, planned, choice, needed)


def _reserve(cfg: Config, cap: _Capacity, planned: Dict[str, Dict[str, Any]],
             choice: Choice, memory_bytes: int) -> Create:
    """Book the chosen machine's slot, processors, superslot, memory and HS06."""
    ordinal = cap.free_ordinals.pop(0)
    cap.running_processors += choice.processors
    cap.superslots[choice.shutdown_time] = (cap.superslots.get(choice.shutdown_time, 0)
                                            + choice.processors)
    if cap.mem_available is not None:
        cap.mem_available -= memory_bytes
    entry = planned.setdefault(choice.machinetype, {"running_hs06": 0.0,
                                                    "num_before_fizzle": 0})
    entry["running_hs06"] += configured_hs06(cfg.settings, choice.processors)
    entry["num_before_fizzle"] += 1
    name = naming.machine_name(cfg.settings.factory_hostname, ordinal)
    return Create(ordinal, name, choice.machinetype, choice.processors, choice.shutdown_time,
                  choice.reason)


def plan_lifecycle(inp: CycleInputs, now: float) -> Tuple[Plan, _Capacity]:
    """The lifecycle half of :func:`plan`: expiry, zombies, per-slot actions and counts."""
    result = Plan()
    outcomes = _lifecycle(inp, now, result)
    cap = _capacity(inp, outcomes)
    result.actions.append(_counts(inp, outcomes, cap))
    return result, cap


def own_report(inp: CycleInputs, cfg: Config, actions: Sequence[Action],
               now: float) -> Dict[str, Dict[str, Any]]:
    """This factory's machinetype_status bodies (what its responder would say) once
    ``actions`` are applied: finalised machines finished, Vac's messages written."""
    own = inp.own or OwnFacts({}, {})
    after = projection.slots_after(inp.slots, actions, now)
    finishes = projection.finishes_after(own.finishes, after, actions)
    usage = projection.usage_after(own.usage, actions)
    slots = sorted(after.values(), key=lambda s: s.ordinal)
    return {b["machinetype"]: b for b in machinetype_statuses(cfg, slots, now, finishes, usage)}


def creation_reports(inp: CycleInputs, cfg: Config, actions: Sequence[Action],
                     now: float) -> Reports:
    """The peers' reports plus this factory's own (computed, not read back), if
    ``inp.own`` is given; else the reports as gathered (tests, the simulator)."""
    if inp.own is None:
        return inp.reports
    factory = cfg.settings.factory_hostname
    reports = dict(inp.reports)             # a C-level copy: 500 peers in a big space
    reports.pop(factory, None)
    reports[factory] = own_report(inp, cfg, actions, now)
    return reports


def creation_totals(inp: CycleInputs, cfg: Config) -> Dict[str, Totals]:
    """The space's per-machinetype totals, ``inp.reports`` (this factory's own last)
    walked once; or, if the gather step summed the peers' reports as it decoded them
    (``peer_columns``, given with ``own``), those sums followed by the own report: the
    same additions in the same order, without walking the peers' bodies again."""
    if inp.peer_columns is None or inp.own is None:
        return cycle_totals(cfg, inp.reports)
    factory = cfg.settings.factory_hostname
    return inp.peer_columns.cycle_totals(cfg, {factory: inp.reports[factory]})


def plan_creation(inp: CycleInputs, cap: _Capacity, now: float, rng: Rng,
                  result: Plan) -> None:
    """The creation half of :func:`plan`: up to ``max_creations_per_cycle`` Create actions
    appended to ``result``; if none could be made for lack of room, at most one
    preemption round. Uses ``inp.creation_config`` (or ``inp.config``)."""
    cfg = inp.creation_config or inp.config
    inp = replace(inp, config=cfg, reports=creation_reports(inp, cfg, result.actions, now))
    planned: Dict[str, Dict[str, Any]] = {}
    totals = creation_totals(inp, cfg)
    created = 0
    for _ in range(max(0, cfg.settings.max_creations_per_cycle)):
        create = _create_one(inp, cap, planned, totals, int(now), rng, result)
        if create is None:
            break
        result.actions.append(create)
        created += 1
    if created == 0 and result.room_bound:
        _preempt(inp, cap, now, result)


def _preempt(inp: CycleInputs, cap: _Capacity, now: float, result: Plan) -> None:
    """One preemption round (vac.core.preemption) appended to ``result``."""
    room = Room(cap.max_processors - cap.running_processors, bool(cap.free_ordinals))
    actions, notes = plan_preemption(inp.config, cap.outcomes, result.standings, inp.reports,
                                     room, now)
    result.notes.extend(notes)
    result.actions.extend(actions)


def plan(inp: CycleInputs, now: float, rng: Rng) -> Plan:
    """The whole cycle's decision, returned whole: lifecycle actions, counts, then (if
    ``inp.creating``) at most ``max_creations_per_cycle`` creations or a preemption
    round, with vetoes and ranking explained in the Plan."""
    result, cap = plan_lifecycle(inp, now)
    result.capacity_superslots = dict(cap.superslots)
    if inp.creating:
        plan_creation(inp, cap, now, rng, result)
    return result
