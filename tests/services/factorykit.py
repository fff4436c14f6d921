"""Test doubles and fixtures for factory cycles: a fake vm service over FakeHypervisor,
a rooted configuration with a fake /proc/cpuinfo, and fixed host facts."""

from __future__ import annotations

import contextlib
import os
from typing import Optional

from vac.constants import GB, MIB
from vac.errors import VacError
from vac.model import HostFacts
from vac.machinemodels import LIBVIRT
from vac.sim.fakebackend import FakeBackend
from vac.sim.fakehypervisor import FakeHypervisor

FACTORY = "f1.example.com"

BASE_CONF = """[settings]
vac_space = vac01.example.com
factory_hostname = f1.example.com
shutdown_grace_seconds = 0
{settings}

[machinetype lhcb]
target_share = 1
root_image = /images/test.iso
backoff_seconds = 1000
fizzle_seconds = 600
{machinetype}
"""


def write_root(paths, processors: int = 2, settings: str = "", machinetype: str = "",
               text: Optional[str] = None) -> None:
    """etc/vac.conf and proc/cpuinfo below the test root."""
    os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
    with open(paths.etc_vac_conf, "w") as f:
        f.write(text if text is not None else
                BASE_CONF.format(settings=settings, machinetype=machinetype))
    cpuinfo = paths.under_root("/proc/cpuinfo")
    os.makedirs(os.path.dirname(cpuinfo), exist_ok=True)
    with open(cpuinfo, "w") as f:
        f.write("".join(f"processor\t: {i}\nmodel name\t: test\n\n" for i in range(processors)))


def facts(processors: int = 2) -> HostFacts:
    return HostFacts(processors, 0.0, 0.0, 64 * 1024 * MIB, 32 * 1024 * MIB, 100 * GB)


class Rig:
    """A rooted factory with a FakeHypervisor (libvirt connection and NAT network) and a
    FakeBackend standing in for the VM backend; ``cycle()`` runs one cycle."""

    def __init__(self, paths, **conf):
        self.paths = paths
        self.hv = FakeHypervisor()
        self.vm = FakeBackend(FACTORY)
        self.network_ok = True
        self.volumes = []
        write_root(paths, **conf)

    def load_config(self):
        from vac.services.configload import load_config
        return load_config(self.paths, pipes="cache")

    def cycle(self, **kw):
        from vac.services import factory
        kw.setdefault("facts", facts())
        kw.setdefault("volumes", lambda cfg, paths: list(self.volumes))
        kw.setdefault("network", lambda *a, **k: self.network_ok)
        kw.setdefault("reports", lambda cfg: {})
        kw.setdefault("hv_factory", lambda: contextlib.nullcontext(self.hv))
        return factory.run_cycle(self.paths, backends={LIBVIRT: self.vm}, **kw)


class Boom(VacError):
    pass
