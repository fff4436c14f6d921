"""A container's whole CPU time from its own cgroup parent (cgroup v1 and v2 layouts in a
scratch tree; the real kernel is used by tests/integration/test_container_real.py)."""

from __future__ import annotations

import os

from vac.adapters import cgroupacct

PARENT = cgroupacct.parent_of("factory-00.example.org")


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_v1_usage_without_conmon_and_removal_in_every_controller(tmp_path):
    root = str(tmp_path)
    for controller in ("cpuacct", "memory", "pids"):
        os.makedirs(os.path.join(root, controller, PARENT.lstrip("/"), "conmon"))
    base = os.path.join(root, "cpuacct", PARENT.lstrip("/"))
    _write(os.path.join(base, "cpuacct.usage"), "3500000000\n")
    _write(os.path.join(base, "conmon", "cpuacct.usage"), "500000000\n")
    assert cgroupacct.cpu_ns(PARENT, root) == 3_000_000_000
    assert cgroupacct.machine_names(root) == ["factory-00.example.org"]
    for f in ("cpuacct.usage", "conmon/cpuacct.usage"):     # not removable on a real tree
        os.unlink(os.path.join(base, f))
    assert cgroupacct.remove(PARENT, root) is True
    assert cgroupacct.machine_names(root) == []
    for controller in ("cpuacct", "memory", "pids"):
        assert os.listdir(os.path.join(root, controller, "vac_machines")) == []
    assert cgroupacct.cpu_ns(PARENT, root) is None


def test_v2_usage_usec(tmp_path):
    root = str(tmp_path)
    _write(os.path.join(root, "cgroup.controllers"), "cpu memory\n")
    base = os.path.join(root, PARENT.lstrip("/"))
    _write(os.path.join(base, "cpu.stat"), "usage_usec 2500000\nuser_usec 2000000\n")
    _write(os.path.join(base, "conmon", "cpu.stat"), "usage_usec 100000\n")
    assert cgroupacct.cpu_ns(PARENT, root) == 2_400_000_000
