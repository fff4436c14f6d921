"""A test factory host: the real responder role plus real factory cycles (test helper).

    python -m tests.integration.factoryhost --root DIR --cycles N --processors P \
        [--pause S] [--start-at UNIXTIME] [--libvirt-uri URI]

Runs ``vac.services.responder`` in a thread (configuration from DIR, port 995) and
``vac.services.factory.run_cycle`` N times against one libvirt connection, kept open so
domains persist between cycles: the test driver (``test:///default``, the default) or
the real libvirtd (e.g. ``qemu:///system``). Machines are bare domains (BareDomains below: no
images, disks or NAT network) and never end, so the slots fill up in the order the
planner chooses: test-driver domains, or on a real libvirtd real TCG qemu processes with
32 MiB and no boot device (SeaBIOS idles). Afterwards the responder keeps answering until
SIGTERM (domains on a real libvirtd are left for the test's clean-up to destroy).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
import uuid as uuidlib

from vac.adapters import hypervisor
from vac.constants import GB, MIB
from vac.machinemodels import LIBVIRT
from vac.model import DomainState, HostFacts, MachineInfo
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import factory, responder
from vac.services.backends.base import MachineRequest
from vac.services.backends.libvirt import LibvirtBackend

TEST_DOMAIN = ("<domain type='test'><name>{name}</name><uuid>{uuid}</uuid>"
               "<memory unit='MiB'>64</memory><vcpu>{vcpus}</vcpu>"
               "<os><type>hvm</type></os></domain>")


QEMU_DOMAIN = ("<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>"
               "<memory unit='MiB'>32</memory><vcpu>{vcpus}</vcpu>"
               "<os><type arch='x86_64'>hvm</type></os>"
               "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
               "<memballoon model='none'/></devices></domain>")


class BareDomains(LibvirtBackend):
    """The VM backend with bare domains for machines (``xml`` is the template): the
    real inventory and lifecycle through libvirt, no disks or images."""

    xml = TEST_DOMAIN

    def create(self, request: MachineRequest) -> MachineInfo:
        machine_uuid = str(uuidlib.uuid4())
        request.identify(machine_uuid)
        self._hv().create_domain(self.xml.format(name=request.machine_name, uuid=machine_uuid,
                                                 vcpus=request.processors))
        return MachineInfo(request.machine_name, machine_uuid, DomainState.RUNNING,
                           backend=self.name)

    def destroy(self, machine_name: str, *, grace_seconds: float, wait: bool = True) -> None:
        if self._hv().domain(machine_name) is not None:
            self._hv().destroy_domain(machine_name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="factoryhost")
    parser.add_argument("--root", required=True)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--processors", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.45)
    parser.add_argument("--start-at", type=float, default=0.0,
                        help="Unix time of the first cycle (staggers the factories)")
    parser.add_argument("--libvirt-uri", default="test:///default")
    parser.add_argument("--stats-seconds", type=float, default=responder.STATS_SECONDS,
                        help="period of the responder's counters log line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s")
    paths = Paths.from_root(args.root)
    control = RoleControl()
    signal.signal(signal.SIGTERM, lambda *_: control.request_stop())
    answering = responder.Responder(paths, snapshot_seconds=0.0,    # no stale reports
                                    stats_seconds=args.stats_seconds)
    thread = threading.Thread(target=answering.serve, args=(control,), daemon=True)
    thread.start()
    facts = HostFacts(args.processors, 0.0, 0.0, 64 * 1024 * MIB, 32 * 1024 * MIB, 100 * GB)
    start = args.start_at or time.time()
    real = not args.libvirt_uri.startswith("test:")
    BareDomains.xml = QEMU_DOMAIN if real else TEST_DOMAIN
    with hypervisor.connect(args.libvirt_uri) as hv:
        for cycle in range(args.cycles):
            # cycles at fixed wall-clock times, so staggered factories take turns
            if control.wait(start + cycle * args.pause - time.time()):
                break
            factory.run_cycle(paths, hv_factory=lambda: contextlib.nullcontext(hv),
                              facts=facts, backends={LIBVIRT: BareDomains},
                              network=lambda *a, **k: True, vacd_start=time.time() - 86400)
        print("factoryhost: cycles done", file=sys.stderr, flush=True)
        while not control.should_stop():
            control.wait(0.5)
    thread.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
