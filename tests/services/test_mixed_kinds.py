"""VM and container machinetypes in one factory share the slots (SPEC §3.4, issue 14 §6);
a backend that cannot be asked disables only its own machinetypes."""

from __future__ import annotations

import contextlib
import os
import time

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


def _cycle(paths, vm, dc, hv, now, vacd_start=None):
    from vac.services import factory
    return factory.run_cycle(paths, now=now, facts=facts(3), volumes=lambda c, p: [],
                             vacd_start=now - 1000 if vacd_start is None else vacd_start,
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


DOCKER_ONLY = """[settings]
vac_space = vac01.example.com
factory_hostname = f1.example.com
shutdown_grace_seconds = 0
total_processors = 1

[machinetype atlas]
target_share = 1
machine_model = docker
root_image = docker://localhost/vac-busybox:test
backoff_seconds = 1000
fizzle_seconds = 60
heartbeat_file = hb
heartbeat_seconds = 100
max_wallclock_seconds = 500
"""


def _one_container(paths):
    from vac.adapters import statefs
    write_root(paths, processors=1, text=DOCKER_ONLY)
    vm, dc, hv = FakeBackend(FACTORY), FakeBackend(FACTORY, name=PODMAN), FakeHypervisor()
    start = int(time.time())
    _cycle(paths, vm, dc, hv, start)
    (name,) = dc.machines
    return vm, dc, hv, start, name, statefs.read_slot(paths, FACTORY, 0).machine_dir


def test_container_without_heartbeat_is_destroyed_with_700(paths):
    """Heartbeat enforcement acts on containers through their own backend."""
    vm, dc, hv, start, name, mdir = _one_container(paths)
    _cycle(paths, vm, dc, hv, start + 200)
    assert dc.destroyed == [name] and not vm.destroyed
    with open(os.path.join(mdir, "joboutputs", "shutdown_message")) as f:
        assert f.read() == "700 Heartbeat file not created\n"


def test_container_beyond_max_wallclock_is_destroyed(paths):
    """A container that keeps its heartbeat fresh still ends at max_wallclock_seconds."""
    vm, dc, hv, start, name, mdir = _one_container(paths)
    heartbeat = os.path.join(mdir, "joboutputs", "hb")
    for now in (start + 90, start + 400):
        with open(heartbeat, "w") as f:
            f.write("beat\n")
        os.utime(heartbeat, (now, now))
        _cycle(paths, vm, dc, hv, now)
        assert not dc.destroyed, now
    now = start + 520
    os.utime(heartbeat, (now, now))
    _cycle(paths, vm, dc, hv, now)
    assert dc.destroyed == [name] and not vm.destroyed
