"""The demo's container machinetype ``cont`` (``machine_model = docker``, run by podman).

Its image is built offline, as tests/contract/podmankit.py does: the host's static
busybox with every applet and the test guest's ``vac-put`` (tools/guest), imported with
``podman import`` (no registry). The root filesystem tarball is cached under
``$TESTENV_DIR/images/`` and the image is tagged by the content of busybox and vac-put,
so a second run reuses podman's copy (or the cached tarball) and a change makes a new one.

The payload is the same kind of vacuum payload as the VMs': it reads MJF from
``/etc/machinefeatures`` and ``/etc/jobfeatures`` and over HTTP from 169.254.169.253
(the factory knows the container by its slot address on vac's bridge), PUTs heartbeats
and a ``200 Success`` shutdown message to JOBOUTPUTS, and exits.

Without a usable podman (or busybox) the demo runs its VM machinetypes only and says why.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from typing import Dict, Optional, Sequence, Tuple

from vac.adapters import cgroupacct, runner
from vac.adapters.podman import FACTORY_LABEL, Podman, PodmanError
from vac.errors import CommandError

NAME = "cont"
SHARE, FIZZLE, BACKOFF = 1, 10, 60
FQAN = "/demo/Role=container/Capability=NULL"
IMAGE_REPO = "localhost/vac-busybox-guest"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAC_PUT = os.path.join(REPO, "tools", "guest", "vac-put")
STEPS, STEP_SECONDS = 4, 5              # the container runs about 20 s
BASE_DIRS = ("bin", "etc", "tmp", "usr/bin", "var/spool")

SECTION_EXTRA = "machine_model = docker\n"

USER_DATA = r"""#!/bin/sh
# vac demo: a container (machine_model = docker) that reads MJF from files and over
# HTTP, heartbeats and ends with 200, as a vacuum payload would.
# Made for ##user_data_machine_hostname## (job ##user_data_uuid##)
# by ##user_data_manager_version##.
mjf=http://169.254.169.253
put() { vac-put "$mjf/joboutputs/$1" "/tmp/$1"; }
{
  echo "from /etc/machinefeatures: hs06=$(cat ##user_data_machinefeatures_url##/hs06)" \
       "allocated_cpu=$(cat ##user_data_jobfeatures_url##/allocated_cpu)"
  echo "over HTTP: hs06=$(wget -q -O - $mjf/machinefeatures/hs06)" \
       "allocated_cpu=$(wget -q -O - $mjf/jobfeatures/allocated_cpu)"
} > /tmp/mjf
put mjf
i=1
while [ $i -le @STEPS@ ]; do
  echo "$(date +%s) container step $i/@STEPS@" > /tmp/heartbeat
  put heartbeat
  n=0; while [ $n -lt 150000 ]; do n=$((n + 1)); done    # some real work (~0.5 s CPU)
  sleep @STEP@
  i=$((i + 1))
done
echo "200 Success" > /tmp/shutdown_message
put shutdown_message
"""


def user_data() -> str:
    return USER_DATA.replace("@STEPS@", str(STEPS)).replace("@STEP@", str(STEP_SECONDS))


def unavailable() -> Optional[str]:
    """Why the demo cannot run containers here, or None if it can."""
    if shutil.which("busybox") is None:
        return "busybox is not installed (the container image is built from it)"
    try:
        Podman().check()
    except PodmanError as e:
        return str(e)
    return None


def image_tag(extra: Optional[Dict[str, str]] = None) -> str:
    """``IMAGE_REPO:HASH``, HASH from the busybox binary and the ``extra`` files (image
    path -> host path; default: vac-put as /usr/bin/vac-put)."""
    files = extra if extra is not None else {"/usr/bin/vac-put": VAC_PUT}
    digest = hashlib.sha256()
    for path in [*sorted(files.values()), shutil.which("busybox") or ""]:
        with open(path, "rb") as f:
            digest.update(f.read())
    return f"{IMAGE_REPO}:{digest.hexdigest()[:12]}"


def write_rootfs(tar_path: str, applets: Sequence[str], extra: Dict[str, str]) -> None:
    """A root filesystem tarball: busybox, a symlink per applet, ``extra`` files."""
    with tarfile.open(tar_path, "w") as t:
        for d in BASE_DIRS:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            t.addfile(info)
        t.add(shutil.which("busybox") or "busybox", "bin/busybox")
        for cmd in applets:
            if cmd in ("busybox", "[[") or "/" in cmd:
                continue
            info = tarfile.TarInfo(f"bin/{cmd}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(info)
        for dest, src in sorted(extra.items()):
            info = t.gettarinfo(src, dest.lstrip("/"))
            info.mode = 0o755
            with open(src, "rb") as f:
                t.addfile(info, f)


def all_applets() -> list:
    return runner.run(["busybox", "--list"], timeout=30).stdout.split()


def ensure_image(tag: str, applets: Sequence[str], extra: Dict[str, str],
                 cache_dir: Optional[str] = None) -> str:
    """``tag`` in podman's storage: kept if there, else imported from the tarball cached
    in ``cache_dir`` (written first if absent; no cache: a scratch tarball)."""
    if runner.run(["podman", "image", "exists", tag], check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory() as tmp:
        tar = os.path.join(tmp, "rootfs.tar")
        if cache_dir:
            os.makedirs(cache_dir, exist_ok=True)
            tar = os.path.join(cache_dir, tag.replace("/", "_").replace(":", "_") + ".tar")
        if not os.path.exists(tar):
            write_rootfs(tar + ".part", applets, extra)
            os.replace(tar + ".part", tar)
        runner.run(["podman", "import", "-q", tar, tag], timeout=300)
    return tag


def demo_image(testenv_dir: str) -> str:
    """The demo's guest image (busybox, every applet, vac-put), cached under
    ``testenv_dir/images``. CommandError/OSError if it cannot be built."""
    extra = {"/usr/bin/vac-put": VAC_PUT}
    return ensure_image(image_tag(extra), all_applets(), extra,
                        os.path.join(testenv_dir, "images"))


def choose_image(testenv_dir: str, wanted: bool) -> Tuple[Optional[str], Optional[str]]:
    """(the demo's image, built or reused, None) or (None, why the demo runs without
    containers)."""
    why = unavailable() if wanted else "--no-containers"
    if why is None:
        try:
            return demo_image(testenv_dir), None
        except (CommandError, OSError) as e:
            why = f"cannot build the container image: {e}"
    return None, why


def remove_containers(factory: str) -> int:
    """Remove every container of ``factory`` (vacd's label) and its cgroup parent; how
    many there were."""
    try:
        names = runner.run(["podman", "ps", "-a", "--format", "{{.Names}}", "--filter",
                            f"label={FACTORY_LABEL}={factory}"], timeout=60).stdout.split()
    except CommandError:
        return 0
    for name in names:
        runner.run(["podman", "rm", "-f", "-t", "0", name], timeout=60, check=False)
        cgroupacct.remove(cgroupacct.parent_of(name))
    return len(names)
