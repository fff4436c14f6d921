"""Stand-in role functions for vacd's integration tests (``vacd --role-registry``).

They honour the role contract (loop until ``control.should_stop()``, heartbeat file,
reload via ``control.take_reload()``) without libvirt, ports or configuration. The
factory stand-in starts one long-running "machine": a process in its own session, as a
libvirt guest is a child of libvirtd, not of vacd.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

from vac.adapters.atomicfile import touch, write_atomic
from vac.paths import Paths
from vac.rolecontrol import RoleControl

HEARTBEAT_SECONDS = 0.2


def _loop(role: str, paths: Paths, control: RoleControl) -> None:
    os.makedirs(paths.state_dir, exist_ok=True)
    reloads = 0
    while not control.should_stop():
        touch(paths.heartbeat(role), f"{int(time.time())}\n")
        if control.take_reload():
            reloads += 1
            write_atomic(paths.state(f"{role}-reloads"), f"{reloads}\n")
        control.wait(HEARTBEAT_SECONDS)


def _start_machine(paths: Paths) -> None:
    """Start a stand-in machine once per root: a sleeping process in a new session."""
    pidfile = paths.state("standin-machine.pid")
    if os.path.exists(pidfile):
        return
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                            start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    write_atomic(pidfile, f"{proc.pid}\n")


def factory(paths: Paths, control: RoleControl) -> None:
    os.makedirs(paths.state_dir, exist_ok=True)
    _start_machine(paths)
    _loop("factory", paths, control)


def responder(paths: Paths, control: RoleControl) -> None:
    _loop("responder", paths, control)


def metadata(paths: Paths, control: RoleControl) -> None:
    _loop("metadata", paths, control)


def mjf(paths: Paths, control: RoleControl) -> None:
    _loop("mjf", paths, control)


def guest_factory(paths: Paths, control: RoleControl) -> None:
    """Create one real libvirt guest (transient domain, a child of libvirtd as vac's
    machines are) from ``standin-guest.json`` = {"uri": ..., "xml": ...}, then loop."""
    from vac.adapters import hypervisor
    with open(paths.state("standin-guest.json"), encoding="utf-8") as f:
        spec = json.load(f)
    with hypervisor.connect(spec["uri"]) as hv:
        info = hv.create_domain(spec["xml"])
    write_atomic(paths.state("standin-guest.created"), f"{info.name}\n")
    _loop("factory", paths, control)


def crash(paths: Paths, control: RoleControl) -> None:
    raise RuntimeError("stand-in role crashed on purpose")


def once(paths: Paths) -> None:
    """Stand-in for vac.services.factory.run_cycle (``vacd --once``)."""
    logging.getLogger(__name__).info("stand-in cycle ran")
    write_atomic(paths.state("standin-once"), "1\n")


def crash_once(paths: Paths) -> None:
    raise RuntimeError("stand-in cycle crashed on purpose")


REGISTRY = {
    "factory": "tests.daemon.standin_roles:factory",
    "responder": "tests.daemon.standin_roles:responder",
    "metadata": "tests.daemon.standin_roles:metadata",
    "mjf": "tests.daemon.standin_roles:mjf",
    "once": "tests.daemon.standin_roles:once",
}

REAL_GUEST = dict(REGISTRY, factory="tests.daemon.standin_roles:guest_factory")

# the responder's module does not exist: vacd must log it and retry, not crash
MISSING = dict(REGISTRY, responder="tests.daemon.no_such_module:run_role",
               metadata="tests.daemon.standin_roles:crash",
               once="tests.daemon.standin_roles:crash_once")
