"""An in-memory machine backend with the interface of vac.services.backends.base.

For the scheduling simulator and for unit tests of the factory cycle (fault injection);
it passes the same contract tests as the libvirt and podman backends
(tests/contract/test_backend_contract.py). Machines are transient: they vanish when they
stop, as libvirt's transient domains and removed containers do. CPU time advances with
:meth:`tick`; :meth:`power_off` is a machine ending by itself. ``fail`` maps a method
name to an exception raised once; ``unavailable`` makes every inventory fail.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import replace
from typing import Dict, List, Optional

from vac.core import naming
from vac.errors import VacError
from vac.machinemodels import LIBVIRT
from vac.model import DomainState, MachineInfo
from vac.services.backends.base import (BackendContext, BackendUnavailable, MachineRequest,
                                        Usage)


class FakeBackend:
    """Machines of one factory held in a dictionary (one instance may serve many cycles:
    pass it to the cycle through a maker that returns it)."""

    def __init__(self, factory: str = "", name: str = LIBVIRT,
                 memory_bytes_per_processor: int = 0):
        self.factory = factory
        self.name = name
        self.machines: Dict[str, MachineInfo] = {}
        self.processors: Dict[str, int] = {}
        self.fail: Dict[str, Exception] = {}
        self.unavailable: Optional[str] = None
        self.created: List[MachineRequest] = []
        self.destroyed: List[str] = []
        self.memory_bytes_per_processor = memory_bytes_per_processor

    def __call__(self, ctx: BackendContext) -> "FakeBackend":
        """A backend maker for the factory cycle: this very instance, for any cycle."""
        self.factory = ctx.cfg.settings.factory_hostname
        return self

    def _enter(self, method: str) -> None:
        exc = self.fail.pop(method, None)
        if exc is not None:
            raise exc

    def inventory(self) -> List[MachineInfo]:
        self._enter("inventory")
        if self.unavailable:
            raise BackendUnavailable(self.unavailable)
        return [m for m in self.machines.values()
                if not self.factory or naming.ordinal_from_name(self.factory, m.name) is not None]

    def create(self, request: MachineRequest) -> MachineInfo:
        self._enter("create")
        name = request.machine_name
        if name in self.machines:
            raise VacError(f"cannot create {name}: a machine of that name exists")
        machine_uuid = str(uuidlib.uuid4())
        request.identify(machine_uuid)
        self._enter("start")                   # a failure after identify: nothing is left
        info = MachineInfo(name, machine_uuid, DomainState.RUNNING, 0.0,
                           self.memory_bytes_per_processor * request.processors or None,
                           self.name)
        self.machines[name] = info
        self.processors[name] = request.processors
        self.created.append(request)
        return info

    def destroy(self, machine_name: str, *, grace_seconds: float, wait: bool = True) -> None:
        self._enter("destroy")
        if self.factory and naming.ordinal_from_name(self.factory, machine_name) is None:
            return                                  # not this factory's: left alone
        self.machines.pop(machine_name, None)
        self.destroyed.append(machine_name)

    def usage(self, machine_name: str) -> Optional[Usage]:
        info = self.machines.get(machine_name)
        return None if info is None else Usage(info.cpu_seconds, info.memory_bytes)

    # --- simulation helpers ---------------------------------------------------------
    def add(self, name: str, machine_uuid: str, state: DomainState = DomainState.RUNNING,
            cpu_seconds: float = 0.0) -> MachineInfo:
        """A machine that exists without having been created here (zombies, restarts)."""
        info = MachineInfo(name, machine_uuid, state, cpu_seconds, None, self.name)
        self.machines[name] = info
        return info

    def tick(self, seconds: float) -> None:
        """Every running machine uses ``seconds`` more CPU seconds (one busy processor)."""
        for name, info in self.machines.items():
            if info.state.is_active:
                self.machines[name] = replace(info, cpu_seconds=info.cpu_seconds + seconds)

    def set_state(self, name: str, state: DomainState) -> None:
        self.machines[name] = replace(self.machines[name], state=state)

    def power_off(self, name: str) -> None:
        """The machine ends by itself (a VM powers off, a container's command exits)."""
        self.machines.pop(name, None)
