"""The podman backend under the backend contract: real rootful podman, a busybox image
imported from the host's busybox (no registry pull), no network, no volume group."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid as uuidlib

import pytest

from tests.realenv import testenv_dir
from tests.services.test_vm import cfg as vm_cfg
from vac.core.configtypes import Machinetype
from vac.services.backends.base import BackendContext
from vacdemo import democontainer

IMAGE = "localhost/vac-busybox:test"


class NoVolumes:
    """HostOps stand-in: no usable volume group (the LV path is tested elsewhere)."""

    class lvm:                                          # noqa: N801 (attribute namespace)
        @staticmethod
        def usable_volume_group(_name):
            return None


def _need_podman() -> None:
    if shutil.which("podman") is None or shutil.which("busybox") is None:
        pytest.skip("podman or busybox is not installed (tools/install-deps.sh)")


def busybox_image(tag: str = IMAGE) -> str:
    """A busybox image with a few applets, imported once (cached in podman's storage);
    no registry pull (vacdemo.democontainer builds it)."""
    _need_podman()
    return democontainer.ensure_image(tag, ["sh", "sleep", "cat", "wget", "echo",
                                            "hostname"], {})


def guest_image() -> str:
    """Busybox with every applet and the test guest's ``vac-put`` (tools/guest): a
    container that can GET with wget and PUT to JOBOUTPUTS like the test VMs; the
    demo's image, tagged by content and cached under the test environment directory."""
    _need_podman()
    return democontainer.demo_image(testenv_dir())


def podman_subject(request, paths, subject_class):
    from vac.services.backends.podman import PodmanBackend
    image = busybox_image()
    factory = f"c{uuidlib.uuid4().hex[:6]}.example.com"    # never another run's containers
    config = vm_cfg(factory_hostname=factory)
    ctx = BackendContext(config, paths, time.time(), 8)
    be = PodmanBackend(ctx, host=NoVolumes(), network=None)
    mt = Machinetype(name="lhcb", machine_model="docker", root_image=f"docker://{image}",
                     container_command="sleep 300")
    s = subject_class(be, config, mt, paths)

    def add_foreign(name):
        subprocess.run(["podman", "run", "-d", "--name", name, "--network", "none",
                        "--label", f"vac.factory={factory}", image, "sleep", "300"],
                       check=True, capture_output=True)
        s.cleanups.append(lambda: subprocess.run(["podman", "rm", "-f", "-t", "0", name],
                                                 capture_output=True))

    def request_files(req):
        for sub in ("joboutputs", "machinefeatures", "jobfeatures"):
            os.makedirs(os.path.join(req.machine_dir, sub), exist_ok=True)
        with open(os.path.join(req.machine_dir, "user_data"), "w") as f:
            f.write("#!/bin/sh\n")
        return req

    s.add_foreign = add_foreign
    s.still_there = lambda name: subprocess.run(
        ["podman", "container", "exists", name]).returncode == 0
    s.prepare = request_files
    return s
