"""A one-processor vacd root for the real end-to-end tests (test glue, not installed)."""

from __future__ import annotations

import os
from typing import Callable, Dict, List

from tests.realenv import read_console
from vac.adapters.atomicfile import write_atomic
from vac.paths import Paths

ROLES = ("supervisor", "factory", "metadata", "mjf")


def write_root(root: str, conf: str, machinetype: str,
               files: Dict[str, Callable[[str], None]]) -> Paths:
    """vac.conf, a one-processor cpuinfo (one slot) and the machinetype's files: each
    ``files`` entry makes MACHINETYPE/files/NAME (given its path)."""
    paths = Paths.from_root(root)
    for path in (paths.etc_vac_conf, paths.run_vac_conf):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(paths.etc_vac_conf, conf)
    cpuinfo = paths.under_root("/proc/cpuinfo")
    os.makedirs(os.path.dirname(cpuinfo), exist_ok=True)
    write_atomic(cpuinfo, "processor\t: 0\n\n")
    directory = os.path.join(paths.machinetype_dir(machinetype), "files")
    os.makedirs(directory, exist_ok=True)
    for name, make in files.items():
        make(os.path.join(directory, name))
    return paths


def vacd_logs(paths: Paths, lines: int) -> List[str]:
    """The last ``lines`` lines of each role's log and the end of vacd's console."""
    parts = []
    for role in ROLES:
        tail = read_console(paths.log_file(role)).splitlines()[-lines:]
        parts.append(f"==== {paths.log_file(role)} (last {len(tail)} lines)")
        parts.extend(tail)
    parts.append(read_console(os.path.join(paths.log_dir, "vacd-console"))[-3000:])
    return parts
