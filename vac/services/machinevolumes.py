"""A machine's logical volume (SPEC §3.5): sized, created and removed for any model.

VMs use it as a root or scratch disk; containers get it formatted and mounted on the
machine directory's ``mnt/`` (SPEC §3.4.2). Removal unmounts it first where a
container's LV is still mounted, then removes it; both are idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Optional

from vac.adapters.lvm import VolumeGroup
from vac.core import disksize, status
from vac.core.configtypes import Config, Machinetype
from vac.errors import CommandError, StorageError
from vac.services.hostops import HostOps

log = logging.getLogger(__name__)


def make_lv(cfg: Config, host: HostOps, vg: VolumeGroup, undo: contextlib.ExitStack, *,
            name: str, machinetype: Machinetype, processors: int,
            host_processors: int) -> str:
    """Create the LV ``name`` for ``processors`` processors; returns its device path.

    Removing it again is pushed onto ``undo``. Sizes in bytes, rounded down to extents.
    """
    host.lvm.remove_lv(vg.name, name)                 # leftover of an earlier machine
    lvs = host.lvm.list_lvs(vg.name)
    factory = cfg.settings.factory_hostname
    vac_bytes, other_bytes = disksize.split_usage(factory, lvs)
    log.info("Volume group %s has %d bytes used by Vac and %d bytes by others, out of %d "
             "bytes in total. The extent size is %d bytes.", vg.name, vac_bytes, other_bytes,
             vg.total_bytes, vg.extent_bytes)
    gb = disksize.gb_per_processor(machinetype.disk_gb_per_processor,
                                   cfg.settings.disk_gb_per_processor)
    try:
        size = disksize.lv_size_bytes(
            processors=processors, gb=gb, vg_total_bytes=vg.total_bytes,
            extent_bytes=vg.extent_bytes, non_vac_bytes=other_bytes,
            total_processors=status.total_processors(cfg, host_processors))
    except ValueError as e:
        raise StorageError(f"cannot size logical volume {vg.name}/{name}: {e}") from e
    path = host.lvm.create_lv(vg.name, name, size)
    undo.callback(host.lvm.remove_lv, vg.name, name, True)
    return path


def mount_lv(host: HostOps, device: str, mount_point: str, undo: contextlib.ExitStack) -> None:
    """Format ``device`` ext4 and mount it on ``mount_point`` (SPEC §3.4.2)."""
    os.makedirs(mount_point, mode=0o755, exist_ok=True)
    try:
        host.run(["mke2fs", "-q", "-F", "-t", "ext4", device], timeout=300)
        host.run(["mount", device, mount_point], timeout=60)
    except CommandError as e:
        raise StorageError(f"cannot format and mount {device} on {mount_point}: {e}") from e
    undo.callback(unmount, host, mount_point)


def unmount(host: HostOps, mount_point: str) -> bool:
    """Unmount ``mount_point`` if something is mounted there; True if it was."""
    if not os.path.ismount(mount_point):
        return False
    try:
        host.run(["umount", mount_point], timeout=60)
    except CommandError as e:
        log.warning("cannot unmount %s: %s", mount_point, e)
        return False
    return True


def remove_lv(cfg: Config, host: HostOps, name: str,
              mount_point: Optional[str] = None) -> None:
    """Unmount ``mount_point`` (if given and mounted), then remove the LV ``name``."""
    if mount_point:
        unmount(host, mount_point)
    try:
        vg = host.lvm.usable_volume_group(cfg.settings.volume_group)
    except StorageError as e:
        log.warning("%s: not removing logical volume: %s", name, e)
        return
    if vg is not None:
        host.lvm.remove_lv(vg.name, name, quiet=True)
