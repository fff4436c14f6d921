"""Host facts: host name and processor count from <root>/proc/cpuinfo (SPEC §1.7)."""

from __future__ import annotations

import os

from vac.adapters import host

CPUINFO = "processor\t: 0\nvendor_id\t: x\n\nprocessor\t: 1\nprocessor : 2\nprocessors\t: 9\n"


def test_count_processors_counts_processor_tab_colon_lines():
    assert host.count_processors(CPUINFO) == 2
    assert host.count_processors("") == 0


def test_processor_count_uses_root_cpuinfo(paths):
    os.makedirs(os.path.join(paths.root, "proc"))
    with open(os.path.join(paths.root, "proc", "cpuinfo"), "w") as f:
        f.write(CPUINFO)
    assert host.processor_count(paths) == 2


def test_processor_count_falls_back_to_real_host(paths):
    assert host.processor_count(paths) >= 1


def test_hostname_is_uname_nodename():
    assert host.hostname() == os.uname().nodename
