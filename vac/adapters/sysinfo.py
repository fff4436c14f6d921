"""Host facts for factory_status (SPEC §7.4): load, memory, disks, kernel, boot time.

Units: KiB for memory and disk space (``*_kb``), inode counts, Unix seconds for times.
psutil is imported when factory_status is first asked for, not with this module.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Mapping, Optional

from vac.adapters import host
from vac.adapters.atomicfile import file_ctime
from vac.paths import Paths


def disk_avail(path: str) -> Dict[str, int]:
    """KiB available to non-root users and free inodes of the filesystem holding ``path``."""
    try:
        st = os.statvfs(path)
    except OSError:
        return {"kb": 0, "inodes": 0}
    return {"kb": st.f_bavail * st.f_frsize // 1024, "inodes": st.f_favail}


def first_line(paths: Iterable[str]) -> Optional[str]:
    """First non-empty line of the first readable file."""
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                line = f.readline().strip()
        except OSError:
            continue
        if line:
            return line
    return None


def os_issue(paths: Paths, kernel: str) -> str:
    """redhat-release(.vac), else the PRETTY_NAME of os-release, else the kernel release."""
    line = first_line([paths.under_root("/etc/redhat-release.vac"),
                       paths.under_root("/etc/redhat-release")])
    if line:
        return line
    for path in (paths.under_root("/etc/os-release"), "/etc/os-release"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for text in f:
                    if text.startswith("PRETTY_NAME="):
                        return text.split("=", 1)[1].strip().strip('"')
        except OSError:
            continue
    return kernel


def memory_kb() -> Dict[str, int]:
    """mem_total/mem_used (total - free) and swap used/free, all KiB."""
    import psutil
    vm = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return {"mem_total_kb": vm.total // 1024, "mem_used_kb": (vm.total - vm.free) // 1024,
            "swap_used_kb": swap.used // 1024, "swap_free_kb": swap.free // 1024}


def gather(paths: Paths) -> Mapping[str, Any]:
    """Everything factory_status needs about the host."""
    import psutil
    kernel = os.uname().release
    tmp = disk_avail(paths.under_root("/tmp"))
    state = disk_avail(paths.state_dir)
    facts: Dict[str, Any] = {
        "processor_count": host.processor_count(paths),
        "load_average": os.getloadavg()[2],
        "kernel_version": kernel,
        "os_issue": os_issue(paths, kernel),
        "boot_time": int(psutil.boot_time()),
        "root_disk_avail_kb": tmp["kb"], "root_disk_avail_inodes": tmp["inodes"],
        "vac_disk_avail_kb": state["kb"], "vac_disk_avail_inodes": state["inodes"],
    }
    facts.update(memory_kb())
    return facts


def heartbeat_times(paths: Paths, roles: Iterable[str]) -> Dict[str, Optional[float]]:
    """ctime of each role's heartbeat file, or None if missing."""
    return {role: file_ctime(paths.heartbeat(role)) for role in roles}
