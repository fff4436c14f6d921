"""The VM models (cernvm3, cernvm4, vm-raw) as transient libvirt domains (SPEC §3.4.1).

A thin backend over vac.services.vm (disks, domain XML, destroy with ACPI grace) and the
cycle's libvirt connection: behaviour and domain XML are those of vac.services.vm.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import List, Optional

from vac.core import naming
from vac.errors import HypervisorError
from vac.machinemodels import LIBVIRT
from vac.model import DomainState, MachineInfo
from vac.services import configdrive, vm
from vac.services.backends.base import (BackendContext, BackendUnavailable, MachineRequest,
                                        Usage)
from vac.services.hostops import HostOps


class LibvirtBackend:
    """VMs of this factory on the cycle's libvirt connection."""

    name = LIBVIRT

    def __init__(self, ctx: BackendContext, host: Optional[HostOps] = None):
        self.ctx = ctx
        self.host = host

    def _hv(self):
        if self.ctx.hv is None:
            raise BackendUnavailable(self.ctx.hv_problem or "no libvirt connection")
        return self.ctx.hv

    def inventory(self) -> List[MachineInfo]:
        """Domains named like this factory's slots, with libvirt's state and CPU time."""
        factory = self.ctx.cfg.settings.factory_hostname
        try:
            domains = self._hv().list_domains()
        except HypervisorError as e:
            raise BackendUnavailable(f"libvirt: {e}") from e
        return [MachineInfo(d.name, d.uuid, d.state, d.cpu_seconds, None, self.name)
                for d in domains if naming.ordinal_from_name(factory, d.name) is not None]

    def create(self, request: MachineRequest) -> MachineInfo:
        """A new UUIDv4 (the job_id), the config drive if wanted, then the domain."""
        cfg, paths = self.ctx.cfg, self.ctx.paths
        machine_uuid = str(uuidlib.uuid4())
        request.identify(machine_uuid)
        mt = request.machinetype
        iso = configdrive.build_config_drive(cfg, paths, mt, machine_name=request.machine_name,
                                             machine_dir=request.machine_dir) \
            if mt.config_drive else None
        vm.create_vm(self._hv(), cfg, paths, vm.VmRequest(
            machine_name=request.machine_name, ordinal=request.ordinal, machinetype=mt,
            processors=request.processors, uuid=machine_uuid, machine_dir=request.machine_dir,
            config_drive_iso=iso, host_processors=self.ctx.processor_count), host=self.host)
        return MachineInfo(request.machine_name, machine_uuid, DomainState.RUNNING, 0.0,
                           None, self.name)

    def destroy(self, machine_name: str, *, grace_seconds: float, wait: bool = True) -> None:
        """ACPI shutdown, up to ``grace_seconds`` (if ``wait``), destroy, remove the LV.
        A name that is not one of this factory's slots is left alone."""
        if naming.ordinal_from_name(self.ctx.cfg.settings.factory_hostname,
                                    machine_name) is None:
            return
        vm.destroy_vm(self._hv(), self.ctx.cfg, self.ctx.paths, machine_name,
                      grace_seconds=grace_seconds, wait=wait, host=self.host)

    def usage(self, machine_name: str) -> Optional[Usage]:
        """The domain's CPU time (libvirt: nanoseconds -> seconds); None if it is gone."""
        info = self._hv().domain(machine_name)
        return None if info is None else Usage(info.cpu_seconds)
