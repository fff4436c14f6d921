"""The podman backend under the backend contract: real rootful podman, a busybox image
imported from the host's busybox (no registry pull), no network, no volume group."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid as uuidlib
from typing import Dict, Optional

import pytest

from tests.services.test_vm import cfg as vm_cfg
from vac.core.configtypes import Machinetype
from vac.services.backends.base import BackendContext

IMAGE = "localhost/vac-busybox:test"


class NoVolumes:
    """HostOps stand-in: no usable volume group (the LV path is tested elsewhere)."""

    class lvm:                                          # noqa: N801 (attribute namespace)
        @staticmethod
        def usable_volume_group(_name):
            return None


GUEST_TOOLS = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "guest")


def busybox_image(tag: str = IMAGE, all_applets: bool = False,
                  extra: Optional[Dict[str, str]] = None) -> str:
    """Import a busybox image once (cached in podman's storage): the host's static busybox
    with a few applets (or all of them), plus ``extra`` files (image path -> host path,
    made executable). No registry pull."""
    if shutil.which("podman") is None or shutil.which("busybox") is None:
        pytest.skip("podman or busybox is not installed (tools/install-deps.sh)")
    if subprocess.run(["podman", "image", "exists", tag]).returncode == 0:
        return tag
    applets = ["sh", "sleep", "cat", "wget", "echo", "hostname"]
    if all_applets:
        applets = subprocess.run(["busybox", "--list"], check=True, capture_output=True,
                                 text=True).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        tar = os.path.join(tmp, "rootfs.tar")
        with tarfile.open(tar, "w") as t:
            for d in ("bin", "etc", "tmp", "usr/bin", "var/spool"):
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
                t.addfile(info)
            t.add(shutil.which("busybox"), "bin/busybox")
            for cmd in applets:
                if cmd in ("busybox", "[[") or "/" in cmd:
                    continue
                info = tarfile.TarInfo(f"bin/{cmd}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                t.addfile(info)
            for dest, src in sorted((extra or {}).items()):
                info = t.gettarinfo(src, dest.lstrip("/"))
                info.mode = 0o755
                with open(src, "rb") as f:
                    t.addfile(info, f)
        subprocess.run(["podman", "import", "-q", tar, tag], check=True,
                       capture_output=True)
    return tag


def guest_image() -> str:
    """Busybox with every applet and the test guest's ``vac-put`` (tools/guest): a
    container that can GET with wget and PUT to JOBOUTPUTS like the test VMs. Tagged by
    the content of vac-put and the busybox binary, so a change makes a new image."""
    vac_put = os.path.join(GUEST_TOOLS, "vac-put")
    digest = hashlib.sha256()
    for path in (vac_put, shutil.which("busybox") or ""):
        with open(path, "rb") as f:
            digest.update(f.read())
    return busybox_image(f"localhost/vac-busybox-guest:{digest.hexdigest()[:12]}",
                         all_applets=True, extra={"/usr/bin/vac-put": vac_put})


def podman_subject(request, paths, subject_class):
    from vac.services.backends.podman import PodmanBackend
    image = busybox_image()
    factory = f"c{uuidlib.uuid4().hex[:6]}.example.com"    # never another run's containers
    config = vm_cfg(factory_hostname=factory)
    ctx = BackendContext(config, paths, 0.0, 8)
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
