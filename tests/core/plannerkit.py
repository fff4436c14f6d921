"""Builders shared by the planner tests: configs, slot records, domains, host facts."""

from __future__ import annotations

from types import MappingProxyType
from typing import Dict, Optional

from vac.constants import GB, MIB
from vac.core.configtypes import Config, Machinetype, Settings
from vac.core.planner import CycleInputs
from vac.machinemodels import LIBVIRT
from vac.model import DomainState, HostFacts, MachineInfo, SlotRecord

FACTORY = "f1.example.com"
NOW = 1_700_000_000


def config(machinetypes=None, **settings) -> Config:
    settings.setdefault("vac_space", "vac01.example.com")
    settings.setdefault("factory_hostname", FACTORY)
    mts = machinetypes if machinetypes is not None else [Machinetype("lhcb", target_share=1.0)]
    return Config(settings=Settings(**settings),
                  machinetypes=MappingProxyType({m.name: m for m in mts}))


def name(ordinal: int) -> str:
    return f"f1-{ordinal:02d}.example.com"


def empty(ordinal: int) -> SlotRecord:
    return SlotRecord(ordinal=ordinal, name=name(ordinal))


def running(ordinal: int, mt: str = "lhcb", started: float = NOW - 3600,
            processors: int = 1, shutdown: Optional[int] = NOW + 80000, **kw) -> SlotRecord:
    created = int(started if started is not None else NOW - 30) - 5
    values = dict(ordinal=ordinal, name=name(ordinal), created=created,
                  machinetype=mt, machine_model="cernvm3",
                  machine_dir=f"/s/machines/{created}_{mt}_{name(ordinal)}",
                  started_time=started, heartbeat_time=NOW - 60, heartbeat_mtime=NOW - 60,
                  cpu_seconds=100.0, processors=processors, shutdown_time_job=shutdown,
                  uuid=f"uuid-{ordinal}")
    values.update(kw)
    return SlotRecord(**values)


def domain(ordinal: int, state=DomainState.RUNNING, cpu: float = 130.0,
           uuid: Optional[str] = None, backend: str = LIBVIRT) -> MachineInfo:
    return MachineInfo(name(ordinal), uuid or f"uuid-{ordinal}", state, cpu, None, backend)


def host(processors: int = 8, load: float = 0.0, mem_free_mib: Optional[int] = 64 * 1024,
         disk: int = 100 * GB) -> HostFacts:
    mem_total = 0 if mem_free_mib is None else 128 * 1024 * MIB
    return HostFacts(processors, load, load, mem_total, (mem_free_mib or 0) * MIB, disk)


def inputs(cfg: Config, slots, domains=(), host_facts: Optional[HostFacts] = None,
           reports: Optional[Dict] = None, vacd_start: float = NOW - 86400,
           machine_dirs=()) -> CycleInputs:
    return CycleInputs(cfg, list(slots), list(domains), host_facts or host(len(slots)),
                       reports or {}, vacd_start, list(machine_dirs))


def report(**per_mt) -> Dict:
    """machinetype -> status dict from keyword (running_hs06, nbf, message, time) tuples."""
    out = {}
    for mt, (hs06, nbf, message, when) in per_mt.items():
        out[mt] = {"machinetype": mt, "running_hs06": hs06, "num_before_fizzle": nbf,
                   "shutdown_message": message, "shutdown_time": when}
    return out
