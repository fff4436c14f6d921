"""Facts about the host this factory runs on: host name, processor count, memory, free
space, and whether KVM can run guests here."""

from __future__ import annotations

import os
import re
from typing import Tuple

from vac.model import HostFacts
from vac.paths import Paths

_PROCESSOR_LINE = re.compile(r"^processor\t:", re.MULTILINE)
_REAL_CPUINFO = "/proc/cpuinfo"


def hostname() -> str:
    """The kernel node name (``uname -n``), as the original used it."""
    return os.uname().nodename


def count_processors(cpuinfo_text: str) -> int:
    """Lines starting with ``processor`` + tab + colon in /proc/cpuinfo text (SPEC §1.7)."""
    return len(_PROCESSOR_LINE.findall(cpuinfo_text))


def processor_count(paths: Paths) -> int:
    """Processors of the host: <root>/proc/cpuinfo if present, else the real /proc/cpuinfo.

    A test root can hold a fake cpuinfo; falls back to os.cpu_count() if no cpuinfo
    has processor lines (e.g. a non-x86 format).
    """
    for path in (paths.under_root(_REAL_CPUINFO), _REAL_CPUINFO):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                count = count_processors(f.read())
        except OSError:
            continue
        if count:
            return count
    return os.cpu_count() or 1


def _free_bytes(path: str) -> int:
    """Bytes available to non-root users in the filesystem holding ``path`` (or a parent)."""
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    try:
        st = os.statvfs(path or "/")
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def choose_domain_type(dev_kvm: str = "/dev/kvm", cpuinfo: str = "/proc/cpuinfo",
                       sys_module: str = "/sys/module") -> Tuple[str, str]:
    """(``kvm`` or ``qemu``, why): kvm only when KVM can really run guests here."""
    if not os.path.exists(dev_kvm):
        return "qemu", f"qemu (TCG): {dev_kvm} does not exist"
    if os.path.isdir(os.path.join(sys_module, "kvm_pvm")):
        return "qemu", (f"qemu (TCG): {dev_kvm} is kvm_pvm (software nested "
                        "virtualisation) and cannot run stock guests")
    try:
        with open(cpuinfo) as f:
            flags = set()
            for line in f:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
    except OSError:
        flags = set()
    if not flags & {"vmx", "svm"}:
        return "qemu", "qemu (TCG): the CPU has no vmx/svm flag"
    return "kvm", f"kvm: {dev_kvm} exists and the CPU has hardware virtualisation"


def host_facts(paths: Paths) -> HostFacts:
    """Processors, load averages, memory (bytes) and free bytes in the state directory."""
    import psutil
    try:
        loads = os.getloadavg()
    except OSError:
        loads = (0.0, 0.0, 0.0)
    mem = psutil.virtual_memory()
    return HostFacts(processor_count=processor_count(paths), load_average=max(loads),
                     load_average_15=loads[2], mem_total_bytes=int(mem.total),
                     mem_available_bytes=int(mem.available),
                     state_free_bytes=_free_bytes(paths.state_dir))
