"""What every machine backend offers the factory (one implementation per kind of machine).

A backend runs the machines of the models that vac.machinemodels maps to it. The factory
makes one instance per cycle with a :class:`BackendContext` and asks it:

* :meth:`MachineBackend.inventory`: this factory's machines, with state and usage. A
  backend that cannot be asked at all (podman missing, libvirt unreachable) raises
  :class:`BackendUnavailable` with one clear line: its machinetypes are disabled for
  the cycle and its slots are left alone (never taken for shut down);
* :meth:`MachineBackend.create`: a running machine from a :class:`MachineRequest`, or
  nothing at all (everything it made is undone before its error is raised);
* :meth:`MachineBackend.destroy`: stop a machine, waiting up to ``grace_seconds`` for
  it to stop by itself, then remove it and its logical volume (idempotent);
* :meth:`MachineBackend.usage`: CPU seconds and memory of one machine, for accounting.

The same contract tests (tests/contract/test_backend_contract.py) run against every
backend and against the fake (vac.sim.fakebackend).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Protocol

from vac.core.configtypes import Config, Machinetype
from vac.errors import VacError
from vac.model import MachineInfo
from vac.paths import Paths


class BackendUnavailable(VacError):
    """The backend cannot be asked at all this cycle (one line: what is wrong, the fix)."""


@dataclass(frozen=True)
class Usage:
    """What a machine has used: CPU seconds so far, memory now (bytes; None: unknown)."""

    cpu_seconds: float
    memory_bytes: Optional[int] = None


# identify(uuid): write the machine's job_id and user_data once its UUID is known
Identify = Callable[[str], None]


@dataclass(frozen=True)
class MachineRequest:
    """One machine to create in slot ``ordinal`` (its name, address and MAC follow from
    it, vac.core.naming); ``machine_dir`` already holds the MJF files. The backend
    chooses the UUID (job_id) and calls ``identify`` with it before the machine starts,
    so the user_data can name it (bug B5)."""

    machine_name: str
    ordinal: int
    machinetype: Machinetype
    processors: int
    machine_dir: str
    shutdown_time: int
    identify: Identify


class Hypervisor(Protocol):
    """The libvirt connection the cycle opened (vac.adapters.hypervisor.Hypervisor)."""

    def list_domains(self) -> list: ...


@dataclass(frozen=True)
class BackendContext:
    """What a backend may use in one cycle: the configuration, ``now`` (Unix time), the
    host's processor count as gathered once this cycle, and the cycle's libvirt
    connection ``hv`` (None if it could not be opened: ``hv_problem`` says why)."""

    cfg: Config
    paths: Paths
    now: float
    processor_count: int
    hv: Optional[Hypervisor] = None
    hv_problem: Optional[str] = None


class MachineBackend(Protocol):
    """The interface of every backend (see the module docstring)."""

    name: str            # "module:Class" as in vac.machinemodels

    def inventory(self) -> List[MachineInfo]: ...

    def create(self, request: MachineRequest) -> MachineInfo: ...

    def destroy(self, machine_name: str, *, grace_seconds: float, wait: bool = True
                ) -> None: ...

    def usage(self, machine_name: str) -> Optional[Usage]: ...
