"""A container's whole CPU time, read from its own cgroup parent (the ``docker`` model).

``podman stats`` answers only while a container runs, and podman removes the container's
cgroup as soon as its command exits, so the CPU it used after the factory's last look
would be lost. With podman's ``cgroupfs`` cgroup manager, vac therefore gives each
container its own parent cgroup, ``/vac_machines/MACHINE-NAME`` (``podman create
--cgroup-parent``): the kernel charges a child's CPU time to every ancestor, and the
parent keeps it after the container's own cgroup is gone. The parent also holds
conmon's cgroup (``conmon``), whose CPU time is the factory's and is subtracted.

This module owns ``/sys/fs/cgroup/*/vac_machines`` (cgroup v1: one tree per controller;
v2: one tree). Times are nanoseconds.
"""

from __future__ import annotations

import logging
import os
import time
from typing import List, Optional

log = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
PARENT_DIR = "vac_machines"
CONMON = "conmon"


def parent_of(machine_name: str) -> str:
    """The cgroup parent (cgroupfs path) of ``machine_name``'s container."""
    return f"/{PARENT_DIR}/{machine_name}"


def _usage_ns(cgroup_dir: str) -> Optional[int]:
    """CPU nanoseconds charged to ``cgroup_dir`` and its descendants (v1 cpuacct.usage or
    v2 cpu.stat usage_usec); None if it does not exist."""
    try:
        with open(os.path.join(cgroup_dir, "cpuacct.usage")) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return None
    try:
        with open(os.path.join(cgroup_dir, "cpu.stat")) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) * 1000
    except (OSError, ValueError):
        return None
    return None


def _cpu_dir(parent: str, root: str) -> str:
    """Where ``parent``'s CPU accounting is: the v1 ``cpuacct`` tree, else the v2 one."""
    v1 = os.path.join(root, "cpuacct")
    base = v1 if os.path.isdir(v1) and not os.path.exists(
        os.path.join(root, "cgroup.controllers")) else root
    return os.path.join(base, parent.lstrip("/"))


def cpu_ns(parent: str, root: str = CGROUP_ROOT) -> Optional[int]:
    """CPU nanoseconds of the container(s) below ``parent``, conmon's excluded; None if
    the parent cgroup does not exist."""
    where = _cpu_dir(parent, root)
    total = _usage_ns(where)
    if total is None:
        return None
    return max(0, total - (_usage_ns(os.path.join(where, CONMON)) or 0))


def _trees(root: str) -> List[str]:
    """Every cgroup hierarchy below ``root`` (v2: ``root`` itself)."""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return [root]
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [os.path.join(root, n) for n in names
            if os.path.isdir(os.path.join(root, n)) and not os.path.islink(os.path.join(root, n))]


def remove(parent: str, root: str = CGROUP_ROOT, wait_seconds: float = 0.0) -> bool:
    """Remove ``parent`` and its empty children in every hierarchy (after ``podman rm``),
    trying for up to ``wait_seconds`` (conmon may take a moment to go). False if one is
    still busy: the caller tries again later (:func:`machine_names` finds it)."""
    deadline = time.monotonic() + wait_seconds
    while not _remove_once(parent, root):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _remove_once(parent: str, root: str) -> bool:
    done = True
    for tree in _trees(root):
        top = os.path.join(tree, parent.lstrip("/"))
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError as e:
                log.debug("cgroup %s not removed yet: %s", dirpath, e)
                done = False
    return done


def machine_names(root: str = CGROUP_ROOT) -> List[str]:
    """Machine names that have a cgroup parent (in the CPU accounting hierarchy)."""
    top = _cpu_dir(PARENT_DIR, root)
    try:
        return sorted(n for n in os.listdir(top) if os.path.isdir(os.path.join(top, n)))
    except OSError:
        return []
