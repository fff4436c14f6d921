"""The gather step of a factory cycle: everything the planner needs, read once.

Host facts once (one read of /proc/cpuinfo), the slots once, each needed backend's
inventory once (vac.services.backends), the machine directories, the volume group's
logical volumes, ``finishes/`` and the share usage once, and the peers' reports as typed
values (this factory's own report is computed by the planner, not asked of its own
responder). Nothing gathered here is read again later in the cycle.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from vac.adapters import statefs
from vac.core import apel, planner, usage
from vac.core.configtypes import Config
from vac.core.reportcolumns import ReportColumns
from vac.core.slotstate import MachineDirInfo
from vac.errors import VacError
from vac.machinemodels import short_name
from vac.model import DomainState, HostFacts, MachineInfo, SlotRecord
from vac.paths import Paths
from vac.services import accounting, peers
from vac.services.backends import BackendMaker, CycleBackends, needed_backends, open_backends
from vac.services.backends.base import BackendContext

log = logging.getLogger(__name__)

VolumeLister = Callable[[Config, Paths], List[str]]
Reports = Dict[str, Dict[str, dict]]


def read_slots(cfg: Config, paths: Paths, facts: HostFacts) -> List[SlotRecord]:
    """Slot snapshots; an unfinished machine made by an older vac (no accounting.json)
    gets its accounting inputs from today's configuration."""
    hb_files = {name: mt.heartbeat_file for name, mt in cfg.machinetypes.items()}
    slots = statefs.read_slots(paths, cfg.settings.factory_hostname, facts.processor_count,
                               hb_files)
    return [dataclasses.replace(s, accounting=apel.inputs_from_config(cfg, s))
            if s.machine_dir and s.accounting is None and s.finished_time is None else s
            for s in slots]


def volume_names(cfg: Config, paths: Paths) -> List[str]:
    """Names of the logical volumes in the usable volume group ([] if none or unknown)."""
    from vac.adapters.lvm import Lvm
    lvm = Lvm()
    try:
        vg = lvm.usable_volume_group(cfg.settings.volume_group)
    except VacError as e:
        log.warning("not checking logical volumes: %s", e)
        return []
    return [name for name, _size in lvm.list_lvs_quiet(vg.name)] if vg else []


def peer_reports(cfg: Config, paths: Optional[Paths] = None,
                 now: Optional[float] = None) -> Reports:
    """machinetype_status reports of the other factories of the space that answer (this
    factory's own responder is not asked: the planner computes its report); ``paths``
    finds the space key, if one is configured. With ``subspace_min_factories`` set, the
    space is polled by subspaces (vac.services.spacepoll; the reports then include the
    sums of whole subspaces, and the digest of this factory's own one is published
    below ``paths``)."""
    return summed_peer_reports(cfg, paths, now)[0]


def summed_peer_reports(cfg: Config, paths: Optional[Paths] = None,
                        now: Optional[float] = None
                        ) -> Tuple[Reports, Optional[ReportColumns]]:
    """:func:`peer_reports`, and the same bodies summed as each one is decoded (the
    planner then never walks them; None if the query failed or the space was polled by
    subspaces, whose reports the planner walks itself)."""
    own = cfg.settings.factory_hostname
    others = [f for f in cfg.settings.factories if f != own]
    if not others:
        return {}, ReportColumns()
    columns = ReportColumns()

    def add(position: int, key: str, reply: Dict[str, Any]) -> None:
        if reply["factory"] != own:
            columns.add(position, key, reply)
    try:
        if cfg.settings.subspace_min_factories > 0:
            from vac.services import spacepoll      # not loaded by roles that never poll
            return spacepoll.poll_space(cfg, time.time() if now is None else now,
                                        paths).reports, None
        return {f: dict(r) for f, r in peers.query_machinetypes(
            cfg, client_name="vacd-factory", factories=others, paths=paths,
            on_reply=add).items() if f != own}, columns
    except Exception:  # peers are optional (SPEC §6.5): a broken query must not stop us
        log.exception("VacQuery of the space failed; using this factory's own report only")
        return {}, None


def own_facts(cfg: Config, paths: Paths, now: float) -> planner.OwnFacts:
    """``finishes/MT`` of each machinetype and the decayed share usage, read once."""
    finishes = {}
    for name in cfg.machinetypes:
        record = statefs.read_finished(paths, name)
        if record is not None:
            finishes[name] = record
    half_life = cfg.settings.share_half_life_seconds
    decayed = usage.current(accounting.share_usage(paths), now, half_life) \
        if half_life > 0 else {}
    return planner.OwnFacts(finishes, decayed)


def machines_from_files(slots: List[SlotRecord]) -> List[MachineInfo]:
    """Assumed machines when the backends cannot be asked (``vac plan`` only)."""
    from vac.core.slotstate import slot_backend
    return [MachineInfo(s.name, s.uuid or "", DomainState.RUNNING, s.cpu_seconds or 0.0,
                        None, slot_backend(s) or "")
            for s in slots if s.is_used and s.started_time and s.finished_time is None]


def open_cycle_backends(ctx: BackendContext, slots: List[SlotRecord],
                        makers: Optional[Mapping[str, BackendMaker]] = None) -> CycleBackends:
    """The backends of the configured models and of the used slots, each asked once."""
    backends = open_backends(ctx, needed_backends(ctx.cfg, slots), makers)
    for name, problem in sorted(backends.problems.items()):
        log.error("%s unavailable: %s (its machinetypes are not created and its machines "
                  "are left alone this cycle)", short_name(name), problem)
    return backends


def cycle_inputs(cfg: Config, creation: Optional[Config], paths: Paths, now: float,
                 facts: HostFacts, vacd_start: float, slots: List[SlotRecord],
                 backends: CycleBackends, *, volumes: Optional[VolumeLister] = None,
                 reports: Optional[Callable[[Config], Reports]] = None
                 ) -> planner.CycleInputs:
    """The planner's inputs: the gathered slots and machines, the machine directories,
    the volumes and (when creating) the peers' reports and this factory's own facts."""
    dirs = [MachineDirInfo(*entry) for entry in statefs.machine_dir_ages(paths)]
    inputs = planner.CycleInputs(
        cfg, slots, backends.machines, facts, {}, vacd_start, dirs,
        volumes=(volumes or volume_names)(cfg, paths), unseen=frozenset(backends.problems),
        creating=creation is not None, creation_config=creation)
    if creation is not None:
        gathered, columns = ((reports(creation), None) if reports is not None
                             else summed_peer_reports(creation, paths, now))
        inputs = dataclasses.replace(inputs, reports=gathered, peer_columns=columns,
                                     own=own_facts(creation, paths, now))
    return inputs
