"""VM and container machinetypes in one factory share the slots (SPEC §3.4, issue 14 §6);
a backend that cannot be asked disables only its own machinetypes."""

from __future__ import annotations

import contextlib

from tests.services.factorykit import FACTORY, facts, write_root
from vac.machinemodels import LIBVIRT, PODMAN
from vac.sim.fakebackend import FakeBackend
from vac.sim.fakehypervisor import FakeHypervisor

DOCKER = """
[machinetype atlas]
target_share = 1
machine_model = docker
root_image = docker://localhost/vac-busybox:test
backoff_seconds = 1000
fizzle_seconds = 600
"""


def _cycle(paths, vm, dc, hv, now):
    from vac.services import factory
    return factory.run_cycle(paths, now=now, facts=facts(3), volumes=lambda c, p: [],
                             network=lambda *a, **k: True, reports=lambda cfg: {},
                             hv_factory=lambda: contextlib.nullcontext(hv),
                             backends={LIBVIRT: vm, PODMAN: dc})


def test_vm_and_container_machinetypes_share_the_slots(paths):
    write_root(paths, processors=3, settings="max_creations_per_cycle = 3",
               machinetype=DOCKER)
    vm, dc, hv = FakeBackend(FACTORY), FakeBackend(FACTORY, name=PODMAN), FakeHypervisor()
    for i in range(3):
        _cycle(paths, vm, dc, hv, 1_700_000_000 + i)
    assert len(vm.machines) + len(dc.machines) == 3, "3 slots, 3 machines in all"
    assert vm.machines and dc.machines, "both kinds were created"
    assert {r.machinetype.machine_model for r in dc.created} == {"docker"}
    assert not set(vm.machines) & set(dc.machines), "one slot, one machine"
    result = _cycle(paths, vm, dc, hv, 1_700_000_010)
    assert result.created == 0 and any("slot" in v for v in result.plan.vetoes)


def test_podman_unavailable_disables_only_docker_machinetypes(paths, caplog):
    write_root(paths, processors=3, settings="max_creations_per_cycle = 3",
               machinetype=DOCKER)
    vm, dc, hv = FakeBackend(FACTORY), FakeBackend(FACTORY, name=PODMAN), FakeHypervisor()
    dc.unavailable = "podman cannot be used: not installed"
    for i in range(2):
        _cycle(paths, vm, dc, hv, 1_700_000_000 + i)
    assert len(vm.machines) == 3 and not dc.created
    assert "machinetype atlas is disabled" in caplog.text and "podman cannot be used" in \
        caplog.text
