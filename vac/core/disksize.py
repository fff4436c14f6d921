"""Disk sizes for VM root/scratch disks (SPEC §3.5, bug B24). Pure; sizes in bytes.

GB values are 10^9 bytes. LV sizes are rounded down to a whole number of extents.
"""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

from vac.constants import DEFAULT_FILE_DISK_GB_PER_PROCESSOR, GB
from vac.core import naming


def gb_per_processor(machinetype_gb: Optional[int], global_gb: Optional[int]) -> Optional[int]:
    """The machinetype value if set and (no global value or it is <= the global); else global.

    None or 0 means "share of the volume group" for LVs.
    """
    if machinetype_gb is not None and (not global_gb or machinetype_gb <= global_gb):
        return machinetype_gb
    return global_gb


def is_vac_lv(factory: str, lv_name: str) -> bool:
    """True if ``lv_name`` is one of this factory's slot names."""
    return naming.ordinal_from_name(factory, lv_name) is not None


def split_usage(factory: str, lvs: Iterable[Tuple[str, int]]) -> Tuple[int, int]:
    """(bytes used by vac LVs, bytes used by other LVs)."""
    vac = other = 0
    for name, size in lvs:
        if is_vac_lv(factory, name):
            vac += size
        else:
            other += size
    return vac, other


def lv_size_bytes(*, processors: int, gb: Optional[int], vg_total_bytes: int,
                  extent_bytes: int, non_vac_bytes: int, total_processors: int) -> int:
    """Size of a new LV: ``gb`` x P x 10^9, or P/total of the VG space not used by others.

    Rounded down to a multiple of ``extent_bytes``; raises ValueError if that is zero.
    """
    if extent_bytes <= 0:
        raise ValueError("volume group extent size must be positive")
    if gb:
        wanted = gb * processors * GB
    else:
        if total_processors <= 0:
            raise ValueError("total_processors must be positive to share the volume group")
        wanted = processors * (vg_total_bytes - non_vac_bytes) // total_processors
    size = (wanted // extent_bytes) * extent_bytes
    if size <= 0:
        raise ValueError(f"computed logical volume size {wanted} bytes is less than one extent")
    return size


def file_disk_bytes(*, processors: int, gb: Optional[int]) -> int:
    """Sparse file size for a root disk without a volume group (default 40 GB per processor)."""
    return (gb or DEFAULT_FILE_DISK_GB_PER_PROCESSOR) * processors * GB
