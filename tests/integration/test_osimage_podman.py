"""The Debian OS image as a local podman image: groundwork for the ``docker`` machine model.

vac has no docker model yet; these tests run ``podman`` the way SPEC §3.4.2 describes a
docker machine, with the root filesystem tools/osimage.sh built and imported:

* the same payload user_data the vm-raw test boots, rendered by vac's templating for the
  docker model (MJF/JOBOUTPUTS as paths), runs as ``/user_data`` with machinefeatures and
  jobfeatures bind-mounted read-only and joboutputs read-write; it reads MJF and leaves
  heartbeats and ``200 Success``;
* a container attached to vac's own NAT bridge (virbr1, in the test network namespace)
  through a CNI network, with its slot's address and MAC, reaches an HTTP server on the
  factory address 169.254.169.253:80 and is seen there with its slot address (how vac's
  MJF/metadata services identify machines). Its traffic enters the factory through virbr1
  like a VM's, so rules on ``-i virbr1`` apply to it as well.

Podman runs with the host's containers.conf drop-in from tools/testenv.sh (runc, no
default ulimits: see FEASIBILITY.md §8). Marked ``osimage``.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.integration.osimage import (docker_run_argv, os_image, read_key_values,  # noqa: F401
                                       render_payload, run)
from tests.integration.vmsite import open_site
from vac.core import containernet, mjf, naming
from vac.core.configtypes import Settings

pytestmark = [pytest.mark.integration, pytest.mark.osimage]

MACHINE = "factory-07.osimage.vac.test"
ORDINAL = 7
CNI_DIR = "/etc/cni/net.d"
NETWORK = "vac-test-bridge"


def make_machine_dir(base, settings: Settings, processors: int = 1) -> str:
    """machinefeatures/, jobfeatures/ (vac's values), joboutputs/ and user_data."""
    mdir = str(base / "machine")
    now = int(time.time())
    files = {"machinefeatures": mjf.machinefeatures(settings, processors, now + 3600),
             "jobfeatures": dict(mjf.jobfeatures(settings, processors, now + 3600, now),
                                 job_id="podman-smoke-job")}
    for sub, values in files.items():
        os.makedirs(os.path.join(mdir, sub))
        for key, value in values.items():
            with open(os.path.join(mdir, sub, key), "w") as f:
                f.write(value)
    os.makedirs(os.path.join(mdir, "joboutputs"))
    user_data = os.path.join(mdir, "user_data")
    with open(user_data, "wb") as f:
        f.write(render_payload("docker", MACHINE, "debian", heartbeats=2, heartbeat_seconds=1))
    os.chmod(user_data, 0o755)                       # SPEC §3.4.2: executable
    return mdir


def test_podman_image_runs_the_payload_with_mjf_bind_mounts(os_image, tmp_path):
    settings = Settings(vac_space="osimage.vac.test", hs06_per_processor=10.0, mb_per_processor=512)
    mdir = make_machine_dir(tmp_path, settings)
    argv = docker_run_argv(os_image.podman_image, MACHINE, mdir, processors=1,
                           mb_per_processor=settings.mb_per_processor)
    res = run(argv, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    out = os.path.join(mdir, "joboutputs")
    with open(os.path.join(out, "shutdown_message")) as f:
        assert f.read() == "200 Success\n"
    with open(os.path.join(out, "heartbeat")) as f:
        assert " beat 2/2 " in f.read()
    values = read_key_values(os.path.join(out, "mjf"))
    assert values["jobfeatures/job_id"] == "podman-smoke-job"
    assert values["jobfeatures/allocated_cpu"] == "1"
    assert values["machinefeatures/hs06"] == "10.0"
    assert values["os"].startswith("Debian GNU/Linux 12"), values
    assert "VACOS put shutdown_message: file" in res.stdout, res.stdout


@pytest.fixture
def vac_bridge_network(real_env, tmp_path):
    """vac's NAT network up in the test namespace, plus the podman network on its bridge."""
    open_site(real_env, tmp_path)
    path = os.path.join(CNI_DIR, NETWORK + ".conflist")
    os.makedirs(CNI_DIR, exist_ok=True)
    with open(path, "w") as f:
        f.write(containernet.cni_conflist_text(NETWORK))   # vac's own network, renamed
    real_env.add_cleanup(lambda: os.unlink(path))
    return NETWORK


def test_podman_container_on_the_vac_bridge_reaches_the_factory(real_env, os_image,
                                                               vac_bridge_network, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "hello").write_text("factory side\n")
    log = str(tmp_path / "http.log")
    real_env.serve_http("169.254.169.253", 80, str(www), log=log)
    ip, mac = naming.machine_ip(ORDINAL), naming.machine_mac(ORDINAL)
    script = "curl -sS --max-time 20 http://169.254.169.253/hello"
    mdir = make_machine_dir(tmp_path, Settings(vac_space="osimage.vac.test", mb_per_processor=512))
    argv = docker_run_argv(os_image.podman_image, MACHINE, mdir, processors=1,
                           mb_per_processor=512, network=vac_bridge_network, ip=ip, mac=mac,
                           command=["/bin/sh", "-c", script])
    # nsenter, not "ip netns exec": podman's own mounts (the container's netns under
    # /run/netns) must stay visible to later podman commands, which a private mount
    # namespace per "ip netns exec" would hide
    res = run(["nsenter", f"--net=/run/netns/{real_env.netns}", *argv], timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout == "factory side\n", res.stdout + res.stderr
    with open(log) as f:
        requests = [json.loads(line) for line in f]
    assert [(r["client"], r["path"], r["code"]) for r in requests] == [(ip, "/hello", 200)]
