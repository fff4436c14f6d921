"""The ``docker`` machine model: OCI containers run by rootful podman (SPEC §3.4.2).

Layout inside the container, as the original's: the machine directory's ``joboutputs``
read-write at ``/var/spool/joboutputs``; ``user_data`` read-only at ``/user_data``;
``machinefeatures`` and ``jobfeatures`` read-only at ``/etc/machinefeatures`` and
``/etc/jobfeatures``; each ``tmp_binds`` path a private directory of the machine
directory; ``/cvmfs/REPO`` read-only for each of ``cvmfs_repositories``; the machine's LV
(if a volume group is usable) formatted and mounted on the machine directory's ``mnt/``
and bound at ``/mnt``. The command is ``container_command``; the hostname the machine's
FQDN; CPU and memory limits from its processors and ``mb_per_processor``; the container
ID is the machine's UUID (its job_id).

Network (vac.core.containernet): the container gets its own network namespace on the
podman network ``vac``, a CNI network on vac's NAT bridge ``virbr1`` with the slot's own
address and MAC, libvirt's dnsmasq for DNS and no ``NET_RAW``. It reaches the outside
world through the same NAT and the factory's metadata and MJF/JOBOUTPUTS services at
169.254.169.254/253 exactly as a VM of that slot does. The backend writes the network's
configuration (idempotently) before its first creation of a cycle, as the factory
checks libvirt's NAT network. ``network=None`` (tests only) gives ``--network none``.

Images: ``root_image = docker://REF`` (``REF@sha256:...`` pins the digest); an image
already present is used as it is, so each image is pulled at most once per cycle and
then cached by podman's own storage.

CPU time: ``podman stats`` while the container runs; once it has stopped, the whole CPU
time its own cgroup parent kept (vac.adapters.cgroupacct, with podman's ``cgroupfs``
cgroup manager), so the APEL record also has the CPU used after the last heartbeat.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import List, Optional, Sequence

from vac.adapters import cgroupacct
from vac.adapters.podman import FACTORY_LABEL, Container, Podman, PodmanError
from vac.constants import NAT_BRIDGE
from vac.core import containernet, naming
from vac.core.configtypes import Machinetype
from vac.core.mjf import memory_bytes
from vac.errors import CommandError, ImageError, VacError
from vac.machinemodels import PODMAN
from vac.model import DomainState, MachineInfo
from vac.services import machinevolumes
from vac.services.backends.base import BackendContext, BackendUnavailable, MachineRequest, Usage
from vac.services.hostops import HostOps, default_host

log = logging.getLogger(__name__)

NETWORK = containernet.NETWORK_NAME
STATES = {"running": DomainState.RUNNING, "paused": DomainState.PAUSED,
          "created": DomainState.RUNNING, "configured": DomainState.RUNNING,
          "stopping": DomainState.SHUTDOWN}


def image_ref(mt: Machinetype) -> str:
    """``REF`` of ``root_image = docker://REF``; ImageError for anything else."""
    image = mt.root_image or ""
    if not image.startswith("docker://") or len(image) <= len("docker://"):
        raise ImageError(f"machinetype {mt.name}: root_image {image!r} must be docker://REF "
                         "for machine_model = docker")
    return image[len("docker://"):]


def _bind_sources(machine_dir: str) -> None:
    """``podman create`` needs every bind source: ``user_data`` is written by
    ``identify`` once the container ID is known, replacing this empty file before the
    container starts."""
    with open(os.path.join(machine_dir, "user_data"), "ab"):
        pass


class PodmanBackend:
    """Containers of this factory, labelled ``vac.factory=FACTORY``."""

    name = PODMAN

    def __init__(self, ctx: BackendContext, podman: Optional[Podman] = None,
                 host: Optional[HostOps] = None, network: Optional[str] = NETWORK):
        self.ctx, self.network = ctx, network
        self.podman = podman or Podman()
        self.host = host
        self.factory = ctx.cfg.settings.factory_hostname
        self._pulled: set = set()
        self._network_ready = False
        try:
            manager = self.podman.check()
        except PodmanError as e:
            raise BackendUnavailable(str(e)) from e
        self.own_cgroup = manager == "cgroupfs"     # see vac.adapters.cgroupacct

    def _host(self) -> HostOps:
        if self.host is None:
            self.host = default_host(self.ctx.paths)
        return self.host

    def _mine(self) -> List[Container]:
        try:
            found = self.podman.containers(self.factory)
        except CommandError as e:
            raise BackendUnavailable(f"podman: {e}") from e
        return [c for c in found if naming.ordinal_from_name(self.factory, c.name) is not None]

    def inventory(self) -> List[MachineInfo]:
        """This factory's containers; a stopped one is SHUTOFF (its command has ended),
        with the whole CPU time its cgroup parent kept."""
        result = []
        mine = self._mine()
        self._remove_stale_cgroups({c.name for c in mine})
        for c in mine:
            state = STATES.get(c.state, DomainState.SHUTOFF)
            stats = self.podman.stats(c.name) if state.is_active else None
            cpu, mem = (stats[0] / 1e9, stats[1]) if stats else (0.0, None)
            if not state.is_active:
                cpu = self._final_cpu_seconds(c.name)
                if c.exited_at >= int(self.ctx.now):
                    # it exited after this cycle began reading the machine directories,
                    # which may miss its last PUTs (a container exits at once after its
                    # shutdown message): stopped, and finalised, from the next cycle on
                    state = DomainState.RUNNING
            result.append(MachineInfo(c.name, c.id, state, cpu, mem, self.name))
        return result

    def _remove_stale_cgroups(self, containers: set) -> None:
        """Cgroup parents of this factory's machines whose container is gone (one that
        was still busy when its container was removed)."""
        if not self.own_cgroup:
            return
        for name in cgroupacct.machine_names():
            if name not in containers and \
                    naming.ordinal_from_name(self.factory, name) is not None:
                cgroupacct.remove(cgroupacct.parent_of(name))

    def _final_cpu_seconds(self, machine_name: str) -> float:
        """CPU seconds of a stopped container from its own cgroup parent (0.0: unknown)."""
        if not self.own_cgroup:
            return 0.0
        ns = cgroupacct.cpu_ns(cgroupacct.parent_of(machine_name))
        return 0.0 if ns is None else ns / 1e9

    def create(self, request: MachineRequest) -> MachineInfo:
        """Pull (once per cycle at most), ``podman create``, identify, start."""
        mt, name = request.machinetype, request.machine_name
        ref = image_ref(mt)
        if any(c.name == name for c in self.podman.containers(self.factory)):
            raise VacError(f"cannot create {name}: a container of that name exists")
        self._ensure_image(ref)
        self._ensure_network()
        _bind_sources(request.machine_dir)
        with contextlib.ExitStack() as undo:
            mounts = self._volume(request, undo)
            options = self.options(request, mounts)
            try:
                cid = self.podman.create(options, ref, ["/bin/sh", "-c", mt.container_command])
                undo.callback(self.podman.remove, name)
                request.identify(cid)
                self.podman.start(name)
            except CommandError as e:
                raise VacError(f"cannot start container {name}: {e}") from e
            undo.pop_all()
        self._isolate_port()
        return MachineInfo(name, cid, DomainState.RUNNING, 0.0, None, self.name)

    def _ensure_image(self, ref: str) -> None:
        if ref in self._pulled or self.podman.has_image(ref):
            return
        try:
            self.podman.pull(ref)
        except CommandError as e:
            raise ImageError(f"cannot pull docker://{ref}: {e}") from e
        self._pulled.add(ref)

    def _ensure_network(self) -> None:
        """vac's podman network on the NAT bridge, checked once per cycle."""
        if self.network is None or self._network_ready:
            return
        try:
            if self.podman.ensure_network(self.network,
                                          containernet.cni_conflist_text(self.network)):
                log.info("podman network %s written (on %s)", self.network,
                         NAT_BRIDGE)
        except (PodmanError, CommandError) as e:
            raise VacError(f"podman network {self.network}: {e}") from e
        self._network_ready = True

    def _isolate_port(self) -> None:
        """Isolate the new container's bridge port now, as libvirt does a VM's (the CNI
        bridge plugin cannot): containers never reach other machines (no guest_to_guest)."""
        if self.network is None or self.ctx.hv is None:
            return
        from vac.services import guestfw
        guestfw.ensure_port_isolation(self.ctx.hv, self.ctx.cfg, self._host(), expected=True)

    def _volume(self, request: MachineRequest, undo: contextlib.ExitStack) -> List[str]:
        """The LV formatted and mounted on ``mnt/`` if a volume group is usable."""
        cfg, host = self.ctx.cfg, self._host()
        try:
            vg = host.lvm.usable_volume_group(cfg.settings.volume_group)
        except VacError as e:
            log.warning("%s: no logical volume: %s", request.machine_name, e)
            return []
        if vg is None:
            return []
        device = machinevolumes.make_lv(
            cfg, host, vg, undo, name=request.machine_name, machinetype=request.machinetype,
            processors=request.processors, host_processors=self.ctx.processor_count)
        mnt = os.path.join(request.machine_dir, "mnt")
        machinevolumes.mount_lv(host, device, mnt, undo)
        return ["--volume", f"{mnt}:/mnt:rw"]

    def options(self, request: MachineRequest, extra: Sequence[str] = ()) -> List[str]:
        """``podman create`` options of ``request`` (see the module docstring)."""
        mt, d, name = request.machinetype, request.machine_dir, request.machine_name
        mem = memory_bytes(self.ctx.cfg.settings, request.processors)
        opts = ["--name", name, "--label", f"{FACTORY_LABEL}={self.factory}",
                "--hostname", name, "--cpus", str(request.processors),
                "--memory", str(mem), "--memory-swap", str(mem),
                "--volume", f"{d}/joboutputs:/var/spool/joboutputs:rw",
                "--volume", f"{d}/user_data:/user_data:ro",
                "--volume", f"{d}/machinefeatures:/etc/machinefeatures:ro",
                "--volume", f"{d}/jobfeatures:/etc/jobfeatures:ro"]
        if self.own_cgroup:
            opts += ["--cgroup-parent", cgroupacct.parent_of(name)]
        if self.network:
            opts += containernet.run_options(request.ordinal, self.network)
        else:
            opts += ["--network", "none", "--cap-drop", "NET_RAW"]
        for i, path in enumerate(mt.tmp_binds):
            private = os.path.join(d, "tmp_binds", str(i))
            os.makedirs(private, mode=0o1777, exist_ok=True)
            opts += ["--volume", f"{private}:{path}:rw"]
        for repo in mt.cvmfs_repositories:
            opts += ["--volume", f"/cvmfs/{repo}:/cvmfs/{repo}:ro"]
        return opts + list(extra)

    def destroy(self, machine_name: str, *, grace_seconds: float, wait: bool = True) -> None:
        """SIGTERM, up to ``grace_seconds`` (if ``wait``), remove, unmount and remove the
        LV. A name that is not one of this factory's slots is left alone."""
        if naming.ordinal_from_name(self.factory, machine_name) is None:
            return
        try:
            if wait and grace_seconds > 0:
                self.podman.stop(machine_name, grace_seconds)
            self.podman.remove(machine_name)
        except CommandError as e:
            log.warning("%s: destroy failed: %s", machine_name, e)
        else:
            if self.own_cgroup:
                cgroupacct.remove(cgroupacct.parent_of(machine_name), wait_seconds=2.0)
        mnt = self._mount_point(machine_name)
        if mnt or self.ctx.cfg.settings.volume_group:
            machinevolumes.remove_lv(self.ctx.cfg, self._host(), machine_name, mnt)

    def _mount_point(self, machine_name: str) -> Optional[str]:
        """``mnt/`` of the machine directory of ``machine_name`` if something is mounted."""
        from vac.adapters import statefs
        ordinal = naming.ordinal_from_name(self.factory, machine_name)
        slot = statefs.read_slot(self.ctx.paths, self.factory, ordinal) \
            if ordinal is not None else None
        mnt = os.path.join(slot.machine_dir, "mnt") if slot and slot.machine_dir else None
        return mnt if mnt and os.path.ismount(mnt) else None

    def usage(self, machine_name: str) -> Optional[Usage]:
        """CPU seconds and memory bytes of a container (a stopped one: its whole CPU time,
        no memory); None if it is gone."""
        found = [c for c in self._mine() if c.name == machine_name]
        if not found:
            return None
        if not STATES.get(found[0].state, DomainState.SHUTOFF).is_active:
            return Usage(self._final_cpu_seconds(machine_name))
        stats = self.podman.stats(machine_name)
        return Usage(stats[0] / 1e9, stats[1]) if stats else Usage(0.0)
