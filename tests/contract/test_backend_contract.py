"""One contract for every machine backend (vac.services.backends.base.MachineBackend).

Runs against the fake (vac.sim.fakebackend), the libvirt backend (over the contract-tested
FakeHypervisor with recorded host commands: its real-qemu behaviour is covered by
tests/integration) and the podman backend with real rootful podman and a busybox image
built locally (integration: needs podman; no registry pulls).
"""

from __future__ import annotations

import os
import uuid as uuidlib
from typing import Callable, List

import pytest

from tests.adapters.recording import RecordingRunner
from tests.services.test_vm import answers, cfg as vm_cfg, env  # noqa: F401  (fixture)
from vac.core import naming
from vac.core.configtypes import Config, Machinetype
from vac.errors import VacError
from vac.model import DomainState
from vac.services.backends.base import BackendContext, MachineRequest
from vac.services.backends.libvirt import LibvirtBackend
from vac.sim.fakebackend import FakeBackend
from vac.sim.fakehypervisor import FakeHypervisor

FACTORY = "f1.example.com"


def factory_of(subject) -> str:
    return subject.cfg.settings.factory_hostname


class Subject:
    """A backend under test, how to make a request for it, and what it identified."""

    def __init__(self, backend, config: Config, machinetype: Machinetype, paths):
        self.backend, self.cfg, self.mt, self.paths = backend, config, machinetype, paths
        self.identified: List[str] = []
        self.cleanups: List[Callable[[], None]] = []
        self.add_foreign: Callable[[str], None] = lambda name: None
        self.still_there: Callable[[str], bool] = lambda name: True
        self.prepare: Callable[[MachineRequest], MachineRequest] = lambda r: r

    def request(self, ordinal: int, processors: int = 1) -> MachineRequest:
        name = naming.machine_name(self.cfg.settings.factory_hostname, ordinal)
        machine_dir = self.paths.machine_dir(1_700_000_000 + ordinal, self.mt.name, name)
        os.makedirs(machine_dir, exist_ok=True)
        return self.prepare(MachineRequest(
            machine_name=name, ordinal=ordinal, machinetype=self.mt, processors=processors,
            machine_dir=machine_dir, shutdown_time=2_000_000_000,
            identify=self.identified.append))

    def names(self) -> List[str]:
        return [m.name for m in self.backend.inventory()]


def _fake(request, paths) -> Subject:
    be = FakeBackend(FACTORY)
    s = Subject(be, vm_cfg(), Machinetype(name="lhcb", machine_model="cernvm3"), paths)
    s.add_foreign = lambda name: be.add(name, str(uuidlib.uuid4())) and None
    s.still_there = lambda name: name in be.machines
    return s


def _libvirt(request, paths) -> Subject:
    e = request.getfixturevalue("env")
    config = vm_cfg()
    hv = FakeHypervisor()
    ctx = BackendContext(config, paths, 1_700_000_000.0, 8, hv)
    be = LibvirtBackend(ctx, host=e["make"](RecordingRunner(answers())))
    mt = Machinetype(name="lhcb", machine_model="cernvm3", root_image="/srv/images/cernvm.iso")
    s = Subject(be, config, mt, paths)
    s.add_foreign = lambda name: hv.create_domain(
        f"<domain type='qemu'><name>{name}</name><uuid>{uuidlib.uuid4()}</uuid></domain>")
    s.still_there = lambda name: hv.domain(name) is not None
    return s


def _podman(request, paths) -> Subject:
    from tests.contract.podmankit import podman_subject
    return podman_subject(request, paths, Subject)


@pytest.fixture(params=["fake", "libvirt",
                        pytest.param("podman", marks=pytest.mark.integration)])
def subject(request, paths):
    s = {"fake": _fake, "libvirt": _libvirt, "podman": _podman}[request.param](request, paths)
    yield s
    for name in s.names():
        s.backend.destroy(name, grace_seconds=0, wait=False)
    for cleanup in s.cleanups:
        cleanup()


def test_create_identifies_then_lists_the_running_machine(subject):
    info = subject.backend.create(subject.request(3))
    assert subject.identified == [info.uuid], "identify is called with the UUID, once"
    assert info.state is DomainState.RUNNING and info.backend == subject.backend.name
    listed = {m.name: m for m in subject.backend.inventory()}
    assert listed[info.name].uuid == info.uuid
    assert listed[info.name].state.is_active
    assert listed[info.name].backend == subject.backend.name


def test_usage_reports_cpu_seconds_until_destroyed(subject):
    info = subject.backend.create(subject.request(4))
    usage = subject.backend.usage(info.name)
    assert usage is not None and usage.cpu_seconds >= 0.0
    subject.backend.destroy(info.name, grace_seconds=0, wait=False)
    assert info.name not in subject.names()
    assert subject.backend.usage(info.name) is None


def test_destroy_is_idempotent_and_leaves_others(subject):
    a = subject.backend.create(subject.request(5))
    b = subject.backend.create(subject.request(6))
    subject.backend.destroy(a.name, grace_seconds=1, wait=True)
    subject.backend.destroy(a.name, grace_seconds=0, wait=False)      # already gone: no error
    assert subject.names() == [b.name]


def test_a_second_machine_of_the_same_name_is_refused(subject):
    first = subject.backend.create(subject.request(7))
    with pytest.raises(VacError):
        subject.backend.create(subject.request(7))
    assert [m.uuid for m in subject.backend.inventory() if m.name == first.name] == [first.uuid]


def test_machines_of_other_factories_are_not_listed(subject):
    mine = subject.backend.create(subject.request(8))
    foreign = naming.machine_name("f2" + factory_of(subject), 8)
    subject.add_foreign(foreign)
    assert subject.names() == [mine.name]
    subject.backend.destroy(foreign, grace_seconds=0, wait=False)   # not ours: left alone
    assert subject.still_there(foreign)


def test_uuid_is_fresh_per_machine(subject):
    a = subject.backend.create(subject.request(9))
    subject.backend.destroy(a.name, grace_seconds=0, wait=False)
    b = subject.backend.create(subject.request(9))
    assert a.uuid != b.uuid and subject.identified == [a.uuid, b.uuid]
