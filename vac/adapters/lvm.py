"""LVM volume group and logical volumes through the LVM commands (SPEC §3.5).

Every command runs through :mod:`vac.adapters.runner` with ``LVM_SUPPRESS_FD_WARNINGS=1``;
only stdout is parsed (stderr carries warnings on hosts with metadata-only LVM).
Sizes are bytes.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from vac.adapters import runner
from vac.errors import CommandError, StorageError

log = logging.getLogger(__name__)

LVM_ENV = {"LVM_SUPPRESS_FD_WARNINGS": "1"}
LVM_TIMEOUT = 120.0
DEFAULT_VOLUME_GROUP = "vac_volume_group"


@dataclass(frozen=True)
class VolumeGroup:
    name: str
    total_bytes: int
    extent_bytes: int


class Lvm:
    """LVM operations; ``run`` is :func:`vac.adapters.runner.run` or a test double."""

    def __init__(self, run: Callable[..., runner.Result] = runner.run, dev_dir: str = "/dev",
                 mounts_file: str = "/proc/mounts",
                 is_block: Optional[Callable[[str], bool]] = None):
        self._run = run
        self._is_block = is_block or _is_block_device
        self.dev_dir = dev_dir
        self.mounts_file = mounts_file

    def _lvm(self, argv: List[str], check: bool = True) -> runner.Result:
        return self._run(argv, timeout=LVM_TIMEOUT, check=check, env=LVM_ENV)

    def volume_group(self, name: str) -> Optional[VolumeGroup]:
        """Size and extent size of VG ``name``, or None if ``vgs`` prints nothing for it."""
        res = self._lvm(["vgs", "--noheadings", "--options", "vg_size,extent_size",
                         "--units", "b", "--nosuffix", name], check=False)
        for line in res.stdout.splitlines():
            fields = line.split()
            if len(fields) == 2 and all(f.isdigit() for f in fields):
                return VolumeGroup(name, int(fields[0]), int(fields[1]))
        return None

    def usable_volume_group(self, configured: Optional[str]) -> Optional[VolumeGroup]:
        """The configured VG (missing -> StorageError) or the default VG if it exists."""
        if configured:
            vg = self.volume_group(configured)
            if vg is None:
                raise StorageError(f"volume_group {configured} does not exist "
                                   "(vgs prints nothing for it)")
            return vg
        return self.volume_group(DEFAULT_VOLUME_GROUP)

    def list_lvs(self, vg: str) -> List[Tuple[str, int]]:
        """(LV name, size in bytes) for every LV of ``vg``."""
        try:
            res = self._lvm(["lvs", "--noheadings", "--units", "B", "--nosuffix",
                             "--options", "lv_name,lv_size", vg])
        except CommandError as e:
            raise StorageError(f"cannot list logical volumes of {vg}: {e}") from e
        lvs = []
        for line in res.stdout.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[1].isdigit():
                lvs.append((fields[0], int(fields[1])))
        return lvs

    def lv_path(self, vg: str, name: str) -> str:
        return os.path.join(self.dev_dir, vg, name)

    def create_lv(self, vg: str, name: str, size_bytes: int) -> str:
        """Create LV ``name`` of ``size_bytes``; returns its block device path."""
        try:
            self._lvm(["lvcreate", "--yes", "--name", name, "-L", f"{size_bytes}B", vg])
        except CommandError as e:
            raise StorageError(f"cannot create logical volume {vg}/{name}: {e}") from e
        path = self.lv_path(vg, name)
        if not self._is_block(path):
            self.remove_lv(vg, name, quiet=True)
            raise StorageError(f"logical volume {vg}/{name} was created but {path} "
                               "is not a block device")
        log.info("%s: created logical volume %s/%s of %d bytes", name, vg, name, size_bytes)
        return path

    def remove_lv(self, vg: str, name: str, quiet: bool = False) -> bool:
        """Remove LV ``name`` if it exists (killing users and unmounting it first if mounted).

        Returns True if an LV was removed. Errors raise StorageError unless ``quiet``.
        """
        path = self.lv_path(vg, name)
        exists = os.path.lexists(path)
        if not exists and name not in (lv for lv, _size in self.list_lvs_quiet(vg)):
            return False
        if exists and self._is_mounted(path):
            # only a mounted LV: fuser --mount on an unmounted node means the /dev filesystem
            self._run(["fuser", "--kill", "--mount", path], timeout=30, check=False)
            self._run(["umount", path], timeout=60, check=False)
        log.info("%s: removing logical volume %s/%s", name, vg, name)
        try:
            self._lvm(["lvremove", "-f", f"{vg}/{name}"])
        except CommandError as e:
            if quiet:
                log.warning("%s: cannot remove logical volume: %s", name, e)
                return False
            raise StorageError(f"cannot remove logical volume {vg}/{name}: {e}") from e
        return True

    def list_lvs_quiet(self, vg: str) -> List[Tuple[str, int]]:
        try:
            return self.list_lvs(vg)
        except StorageError:
            return []

    def _is_mounted(self, path: str) -> bool:
        real = os.path.realpath(path)
        try:
            with open(self.mounts_file, encoding="utf-8") as f:
                sources = {line.split()[0] for line in f if line.strip()}
        except OSError:
            return False
        return path in sources or real in sources


def _is_block_device(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False
