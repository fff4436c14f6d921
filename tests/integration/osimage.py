"""The Debian OS test image of tools/osimage.sh for the tests (test glue, not installed).

``tools/testenv.sh install`` builds it into ``$TESTENV_DIR/images`` and describes it in
``debian12.json``: the BIOS-bootable qcow2 disk (a ``vm-raw`` root image), the root
filesystem tar, and the podman image made from that tar. The ``os_image`` fixture reads
that file; without it the test is skipped, or fails under ``VAC_REQUIRE_TESTENV=1``.

Also here: the payload user_data both machine models run, rendered with vac's own
templating, and the podman command line of a docker-style machine (SPEC §3.4.2).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional

import pytest

from tests.realenv import _unavailable, testenv_dir
from vac.core.userdata import UserDataContext, render_user_data

PAYLOAD = os.path.join(os.path.dirname(__file__), "..", "data", "osimage", "payload.user_data")
INFO_FILE = os.path.join("images", "debian12.json")


@dataclass(frozen=True)
class OsImage:
    """What debian12.json says about the built image."""

    disk_qcow2: str
    rootfs_tar: str
    podman_image: str
    kernel_version: str
    stamp: str
    build_seconds: float


def load_os_image() -> OsImage:
    """The image described by $TESTENV_DIR/images/debian12.json (skip/fail if absent)."""
    path = os.path.join(testenv_dir(), INFO_FILE)
    if os.geteuid() != 0:
        _unavailable("the tests do not run as root")
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        _unavailable(f"no Debian OS image ({path}: {e}); run 'bash tools/testenv.sh install'")
    image = OsImage(**{k: info[k] for k in OsImage.__dataclass_fields__})
    if not os.path.isfile(image.disk_qcow2):
        _unavailable(f"{image.disk_qcow2} is missing; run 'bash tools/testenv.sh install'")
    return image


@pytest.fixture
def os_image() -> OsImage:
    return load_os_image()


def payload_template() -> bytes:
    with open(PAYLOAD, "rb") as f:
        return f.read()


def render_payload(model: str, machine: str, machinetype: str, *, heartbeats: int,
                   heartbeat_seconds: int) -> bytes:
    """The payload as vac renders it for a machine of ``model`` (vm-raw or docker)."""
    ctx = UserDataContext(
        space="osimage.vac.test", machinetype=machinetype, machine_hostname=machine,
        manager_version="Vac test", manager_hostname="factory.osimage.vac.test",
        machine_model=model, options={"heartbeats": str(heartbeats),
                                      "heartbeat_seconds": str(heartbeat_seconds)})
    return render_user_data(payload_template(), ctx)


def read_key_values(path: str) -> Dict[str, str]:
    """``key=value`` lines of a file the payload PUT (e.g. joboutputs/mjf)."""
    values = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                values[key] = value
    return values


def docker_run_argv(image: str, machine: str, machine_dir: str, *, processors: int,
                    mb_per_processor: int, network: str = "none", ip: Optional[str] = None,
                    mac: Optional[str] = None, command: Optional[List[str]] = None) -> List[str]:
    """``podman run`` for a docker-style machine as SPEC §3.4.2 describes it: user_data,
    machinefeatures and jobfeatures read-only, joboutputs read-write, CPU shares and memory
    reservation by processors, name = hostname = machine FQDN, /user_data the command.
    NET_RAW is dropped so a container cannot forge ARP/IP on the vac bridge."""
    j = lambda *p: os.path.join(machine_dir, *p)  # noqa: E731 - local path helper
    argv = ["podman", "run", "--rm", "--name", machine, "--hostname", machine,
            "--network", network, "--cap-drop", "NET_RAW",
            "--cpu-shares", str(processors * 1024),
            "--memory-reservation", str(processors * mb_per_processor * 1024 * 1024),
            "-v", f"{j('user_data')}:/user_data:ro",
            "-v", f"{j('machinefeatures')}:/etc/machinefeatures:ro",
            "-v", f"{j('jobfeatures')}:/etc/jobfeatures:ro",
            "-v", f"{j('joboutputs')}:/var/spool/joboutputs"]
    if ip:
        argv += ["--ip", ip]
    if mac:
        argv += ["--mac-address", mac]
    return argv + [image] + (command or ["/user_data"])


def run(argv: List[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
