"""The gauges of /metrics, computed at scrape time from what the state directory says
(pure: the metrics role reads the files, the clock and the configuration).

Machines, slots, processors and HS06 come from the slot snapshots and the
machinetype_status bodies the responder would send (vac.core.status), so they equal what
``vac machines`` and ``vac machinetypes`` show. Scores, back-off, vetoes and peers come
from the last factory cycle's report (``last-cycle.json``); back-off is judged against
the scrape time, so it ends on time even between cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from vac.constants import STATE_RUNNING, STATE_STARTING
from vac.core.configtypes import Config
from vac.core.metrics import (MACHINE_STATES, PEER_STATES, SLOT_STATES, VETO_REASONS,
                              veto_reason)
from vac.core.slotstate import machine_state, slot_hs06, slot_processors
from vac.model import SlotRecord

Labels = Dict[str, str]
Samples = Dict[str, List[Tuple[Labels, float]]]
_STATE_NAMES = {STATE_STARTING: "starting", STATE_RUNNING: "running"}


@dataclass(frozen=True)
class StateInputs:
    """What a scrape reads; times are Unix seconds."""

    cfg: Config
    slots: Sequence[SlotRecord]
    machinetype_bodies: Sequence[Mapping[str, Any]]
    cycle: Optional[Mapping[str, Any]]       # last-cycle.json, None if absent
    now: float
    version: str
    processors_max: int
    apel_pending: int = 0
    apel_outgoing: int = 0
    config_problems: int = 0                 # lines of config-error (0: valid)
    factory_error: bool = False
    heartbeats: Mapping[str, Optional[float]] = field(default_factory=dict)


def _add(out: Samples, name: str, value: float, **labels: str) -> None:
    out.setdefault(name, []).append((dict(labels), float(value)))


def slot_samples(inp: StateInputs, out: Samples) -> None:
    """Slots by state, machines by machinetype and state, factory processors and HS06."""
    states = {s: 0 for s in SLOT_STATES}
    machines: Dict[Tuple[str, str], int] = {(mt, st): 0 for mt in inp.cfg.machinetypes
                                            for st in MACHINE_STATES}
    processors, hs06 = 0, 0.0
    for slot in inp.slots:
        state = _STATE_NAMES.get(machine_state(slot))
        if state is None:
            states["free"] += 1
            continue
        states[state] += 1
        key = (slot.machinetype or "", state)
        machines[key] = machines.get(key, 0) + 1
        processors += slot_processors(slot)
        hs06 += slot_hs06(slot)
    _add(out, "slots", len(inp.slots))
    _add(out, "slots_free", states["free"])
    for state, count in states.items():
        _add(out, "slots_by_state", count, state=state)
    for (mt, state), count in sorted(machines.items()):
        _add(out, "machines", count, machinetype=mt, state=state)
    _add(out, "processors_running", processors)
    _add(out, "processors_max", inp.processors_max)
    _add(out, "hs06_running", round(hs06, 2))


def machinetype_samples(inp: StateInputs, out: Samples) -> None:
    """Per configured machinetype: processors, HS06, before-fizzle, target share."""
    for body in inp.machinetype_bodies:
        mt = str(body.get("machinetype"))
        _add(out, "machinetype_processors", body.get("running_processors") or 0,
             machinetype=mt)
        _add(out, "machinetype_hs06", body.get("running_hs06") or 0.0, machinetype=mt)
        _add(out, "machinetype_before_fizzle", body.get("num_before_fizzle") or 0,
             machinetype=mt)
    for name, mt in sorted(inp.cfg.machinetypes.items()):
        _add(out, "machinetype_target_share", mt.target_share, machinetype=name)


def backing_off(standing: Mapping[str, Any], now: float) -> bool:
    """The planner's back-off rule (vac.core.shares) at ``now``."""
    last_abort = float(standing.get("last_abort") or 0.0)
    return last_abort > 0 and now <= float(standing.get("restart_time") or 0.0)


def cycle_samples(inp: StateInputs, out: Samples) -> None:
    """Scores, back-off, vetoes and peers of the last cycle's report."""
    cycle = inp.cycle or {}
    if "end" in cycle:
        _add(out, "last_cycle_timestamp_seconds", cycle["end"])
        _add(out, "last_cycle_duration_seconds", cycle.get("duration_seconds") or 0.0)
    plan = cycle.get("plan") or {}
    for standing in plan.get("standings") or ():
        mt = str(standing.get("machinetype"))
        off = backing_off(standing, inp.now)
        _add(out, "machinetype_score", standing.get("score") or 0.0, machinetype=mt)
        _add(out, "machinetype_backoff", 1 if off else 0, machinetype=mt)
        _add(out, "machinetype_backoff_end_timestamp_seconds",
             standing.get("restart_time") or 0.0 if off else 0.0, machinetype=mt)
        _add(out, "machinetype_last_abort_timestamp_seconds",
             standing.get("last_abort") or 0.0, machinetype=mt)
    active = {veto_reason(v) for v in plan.get("vetoes") or ()}
    for reason in VETO_REASONS:
        _add(out, "vetoes_active", 1 if reason in active else 0, reason=reason)
    peers = cycle.get("peers")
    if isinstance(peers, Mapping):
        for state in PEER_STATES:
            _add(out, "peers", len(peers.get(state) or ()), state=state)


def health_samples(inp: StateInputs, out: Samples) -> None:
    """Configuration, factory error, APEL backlog, role heartbeats, version."""
    s = inp.cfg.settings
    _add(out, "info", 1, version=inp.version, factory=s.factory_hostname,
         space=s.vac_space or "")
    _add(out, "config_valid", 0 if inp.config_problems else 1)
    _add(out, "config_problems", inp.config_problems)
    _add(out, "machinetypes_disabled", len(inp.cfg.disabled))
    _add(out, "factory_error", 1 if inp.factory_error else 0)
    _add(out, "apel_records_pending", inp.apel_pending)
    _add(out, "apel_outgoing_messages", inp.apel_outgoing)
    for role, beat in sorted(inp.heartbeats.items()):
        if beat is not None:
            _add(out, "role_heartbeat_timestamp_seconds", beat, role=role)


def state_samples(inp: StateInputs) -> Samples:
    """Every gauge: metric name (catalogue key) -> [(labels, value)]."""
    out: Samples = {}
    for part in (health_samples, slot_samples, machinetype_samples, cycle_samples):
        part(inp, out)
    return out
