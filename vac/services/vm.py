"""Creating and destroying VM machines (SPEC §3.4.1, §3.5, §3.6, §3.9) and the NAT network.

API for the factory: :func:`ensure_network`, :func:`create_vm`, :func:`destroy_vm`.
``create_vm`` either leaves a running transient domain or nothing at all: every LV,
disk file and overlay it made is removed again before its error is raised.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Optional

from vac.adapters import host as host_facts
from vac.adapters import images
from vac.adapters.images import is_remote
from vac.core import disksize, domxml, naming
from vac.core.configtypes import Config, Machinetype
from vac.errors import CommandError, HypervisorError, ImageError, StorageError, VacError
from vac.model import DomainState
from vac.paths import Paths
from vac.services.hostops import HostOps, default_host
from vac.services.machinevolumes import make_lv, remove_lv
from vac.services.vmnet import ensure_network

log = logging.getLogger(__name__)

__all__ = ["VmRequest", "ensure_network", "create_vm", "destroy_vm", "resolve_image",
           "remove_leftover_disks"]
POLL_SECONDS = 0.5
DISK_PREFIX = "root.disk."      # temporary root disks/overlays in paths.tmp
LEFTOVER_SECONDS = 300          # older ones were left by a create that was killed
NWFILTER = "clean-traffic"


@dataclass(frozen=True)
class VmRequest:
    """One VM to create in slot ``ordinal``; ``uuid`` is the job_id (UUIDv4)."""

    machine_name: str
    ordinal: int
    machinetype: Machinetype
    processors: int
    uuid: str
    machine_dir: str
    config_drive_iso: Optional[str] = None
    host_processors: Optional[int] = None     # the cycle's /proc/cpuinfo count


def resolve_image(mt: Machinetype, paths: Paths, host: HostOps) -> str:
    """Local path of the root image: cached URL, absolute path, or machinetype file (B4)."""
    image = mt.root_image
    if not image:
        raise ImageError(f"machinetype {mt.name} has no root_image")
    if is_remote(image):
        path = host.images.get(image)
    elif os.path.isabs(image):
        path = paths.under_root(image)
    else:
        base = paths.under_root(mt.machinetype_path) if mt.machinetype_path \
            else paths.machinetype_dir(mt.name)       # a system path: below --root
        path = os.path.join(base, "files", image)
    if not os.path.isfile(path):
        raise ImageError(f"root_image {image} of machinetype {mt.name}: {path} does not exist")
    if mt.image_signing_dn:
        _check_signature(path, mt.image_signing_dn, paths)
    return path


def _check_signature(path: str, pattern: str, paths: Paths) -> None:
    result = images.verify_cernvm_signature(path, paths.grid_security_certificates)
    if not result.verified:
        raise ImageError(result.error or f"Failed to verify signature/cert for {path}")
    if not re.search(pattern, result.dn or ""):
        raise ImageError(f"Signing DN {result.dn} does not match image_signing_dn = {pattern}")
    log.info("Verified image signed by %s", result.dn)


def create_vm(hv, cfg: Config, paths: Paths, request: VmRequest, *,
              host: Optional[HostOps] = None) -> None:
    """Create the disks and start the transient domain of ``request``.

    Raises a VacError with one clear line; nothing it made is left behind.
    """
    host = host or default_host(paths)
    name = request.machine_name
    with contextlib.ExitStack() as undo:
        try:
            _create(hv, cfg, paths, request, host, undo)
        except (OSError, ValueError) as e:
            raise StorageError(f"cannot create VM {name}: {e}") from e
        undo.pop_all()     # success: keep everything (the caller logs failures)


def _create(hv, cfg: Config, paths: Paths, request: VmRequest, host: HostOps,
            undo: contextlib.ExitStack) -> None:
    mt = request.machinetype
    model = mt.machine_model
    try:
        profile = domxml.vm_profile(model)
    except ValueError as e:
        raise VacError(str(e)) from e
    name = request.machine_name
    log.info("%s: Using IP=%s MAC=%s", name, naming.machine_ip(request.ordinal),
             naming.machine_mac(request.ordinal))
    image = resolve_image(mt, paths, host)
    vg = host.lvm.usable_volume_group(cfg.settings.volume_group)
    processors = request.host_processors or host_facts.processor_count(paths)
    lv = make_lv(cfg, host, vg, undo, name=name, machinetype=mt,
                 processors=request.processors, host_processors=processors) if vg else None
    temp_files = []
    if profile.disk_image:
        root = _make_overlay(image, paths, host, undo)
        temp_files.append(root)
        disks = domxml.machine_disks(model, root_disk=root, root_is_block=False, image=image,
                                     root_device=mt.root_device,
                                     scratch_device=mt.scratch_device, scratch_lv=lv,
                                     config_drive_iso=request.config_drive_iso)
    else:
        root = lv or _make_sparse_file(cfg, request, paths, undo)
        if lv is None:
            temp_files.append(root)
        disks = domxml.machine_disks(model, root_disk=root, root_is_block=lv is not None,
                                     image=image, root_device=mt.root_device,
                                     config_drive_iso=request.config_drive_iso)
    xml = _domain_xml(hv, cfg, request, host, disks)
    try:
        hv.create_domain(xml)
    except HypervisorError as e:
        raise HypervisorError(f"Exception ({e}) when trying to create VM domain for {name}") \
            from e
    undo.callback(_destroy_quietly, hv, name)     # for any step added after this one
    log.info("%s: VM domain created (%s, %d processors)", name, model, request.processors)
    _unlink_quietly(temp_files)      # qemu holds them open; space freed when the VM ends


def _nwfilter(hv, name: str) -> Optional[str]:
    """clean-traffic if libvirt has it; else None with a warning (the VM is not filtered)."""
    if hv.has_nwfilter(NWFILTER):
        return NWFILTER
    log.warning("%s: libvirt has no nwfilter %s (install libvirt-daemon-config-nwfilter): "
                "creating the VM without IP/MAC/ARP anti-spoofing", name, NWFILTER)
    return None


def _domain_xml(hv, cfg: Config, request: VmRequest, host: HostOps, disks) -> str:
    domain_type = cfg.settings.domain_type
    emulator = None
    if domain_type == "kvm":
        emulator = host.find_emulator()
        if emulator is None:
            raise HypervisorError("no qemu-kvm emulator found (tried "
                                  + ", ".join(host.emulators) + ")")
    spec = domxml.vm_domain_spec(
        request.machinetype.machine_model, domain_type, name=request.machine_name,
        uuid=request.uuid, ordinal=request.ordinal, processors=request.processors,
        mb_per_processor=cfg.settings.mb_per_processor,
        console_log=os.path.join(request.machine_dir, "console.log"), disks=disks,
        emulator=emulator, nwfilter=_nwfilter(hv, request.machine_name),
        guest_to_guest=request.machinetype.guest_to_guest)
    return domxml.domain_xml(spec)


def _make_sparse_file(cfg: Config, request: VmRequest, paths: Paths,
                      undo: contextlib.ExitStack) -> str:
    gb = disksize.gb_per_processor(request.machinetype.disk_gb_per_processor,
                                   cfg.settings.disk_gb_per_processor)
    size = disksize.file_disk_bytes(processors=request.processors, gb=gb)
    os.makedirs(paths.tmp, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=DISK_PREFIX, dir=paths.tmp)
    undo.callback(_unlink_quietly, [path])
    with os.fdopen(fd, "wb") as f:
        f.truncate(size)
    return path


def _make_overlay(image: str, paths: Paths, host: HostOps, undo: contextlib.ExitStack) -> str:
    """qcow2 overlay backed by ``image`` with its format given explicitly (bug B25)."""
    os.makedirs(paths.tmp, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=DISK_PREFIX, dir=paths.tmp)
    os.close(fd)
    undo.callback(_unlink_quietly, [path])
    try:
        info = host.run(["qemu-img", "info", "--output=json", image], timeout=60)
        fmt = json.loads(info.stdout).get("format", "raw")
        host.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", image, path],
                 timeout=60)
    except (CommandError, ValueError) as e:
        raise StorageError(f"cannot create qcow2 overlay on {image}: {e}") from e
    return path


def remove_leftover_disks(paths: Paths, now: float) -> int:
    """Remove root disks and overlays a killed create left in ``paths.tmp``; returns count.

    A successful create unlinks them as soon as qemu has them open, so one older than
    ``LEFTOVER_SECONDS`` (file mtime, Unix seconds vs ``now``) belongs to no machine.
    """
    try:
        names = [n for n in os.listdir(paths.tmp) if n.startswith(DISK_PREFIX)]
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        path = os.path.join(paths.tmp, name)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_mtime < now - LEFTOVER_SECONDS:
                os.unlink(path)
                log.info("Removed %s, left by an interrupted machine creation", path)
                removed += 1
    return removed


def _unlink_quietly(files) -> None:
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _destroy_quietly(hv, name: str) -> None:
    try:
        hv.destroy_domain(name)
        hv.undefine_domain(name)
    except VacError as e:
        log.warning("%s: cannot remove half-made domain: %s", name, e)


def destroy_vm(hv, cfg: Config, paths: Paths, machine_name: str, *, grace_seconds: float,
               wait: bool = True, host: Optional[HostOps] = None) -> None:
    """ACPI shutdown, up to ``grace_seconds`` for the guest to stop, hard destroy, remove LV.

    Idempotent: an absent domain or LV is fine. Raises HypervisorError only if libvirt
    cannot be asked at all.
    """
    host = host or default_host(paths)
    info = hv.domain(machine_name)
    if info is None:
        log.info("VM %s has already gone", machine_name)
    elif info.state is DomainState.SHUTDOWN:      # powering off by itself: no ACPI press
        if wait:
            _wait_for_stop(hv, machine_name, grace_seconds, host)
    elif hv.shutdown_domain(machine_name) and wait:
        _wait_for_stop(hv, machine_name, grace_seconds, host)
    try:
        if hv.destroy_domain(machine_name):
            log.info("%s: VM destroyed", machine_name)
    except HypervisorError as e:
        log.warning("%s: destroy failed: %s", machine_name, e)
    remove_lv(cfg, host, machine_name)


def _wait_for_stop(hv, name: str, grace_seconds: float, host: HostOps) -> None:
    deadline = host.monotonic() + grace_seconds
    while host.monotonic() < deadline:
        info = hv.domain(name)
        if info is None or not (info.state.is_active or info.state is DomainState.SHUTDOWN):
            return
        host.sleep(POLL_SECONDS)
