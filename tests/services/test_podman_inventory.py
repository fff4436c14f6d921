"""The podman backend's inventory, on a stub podman: a container that exited after the
cycle began (its last PUTs may be missing from the cycle's read of the files) still
counts as running for that cycle; one that exited before is stopped."""

from __future__ import annotations

from tests.services.test_vm import cfg as vm_cfg
from vac.adapters.podman import Container
from vac.model import DomainState
from vac.services.backends.base import BackendContext
from vac.services.backends.podman import PodmanBackend

FACTORY = "factory.example.com"
NOW = 1_800_000_000


class StubPodman:
    def __init__(self, containers):
        self.listed = containers

    def check(self):
        return "systemd"          # no cgroup parents: no /sys/fs/cgroup reads

    def containers(self, _factory):
        return self.listed

    def stats(self, _name):
        return (2_000_000_000, 1024)


def test_a_container_that_exited_during_the_cycle_counts_as_running_until_the_next(paths):
    early = Container("a" * 64, "factory-00.example.com", "exited", 0, NOW - 1)
    late = Container("b" * 64, "factory-01.example.com", "exited", 0, NOW)
    running = Container("c" * 64, "factory-02.example.com", "running", 0, 0)
    ctx = BackendContext(vm_cfg(factory_hostname=FACTORY), paths, NOW + 0.5, 8)
    be = PodmanBackend(ctx, podman=StubPodman([early, late, running]))
    states = {m.name: m.state for m in be.inventory()}
    assert states == {"factory-00.example.com": DomainState.SHUTOFF,
                      "factory-01.example.com": DomainState.RUNNING,
                      "factory-02.example.com": DomainState.RUNNING}
