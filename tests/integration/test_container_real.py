"""A real ``docker`` machinetype container made by a real vacd, end to end (issue 14).

The real vacd (factory, responder, metadata, MJF roles) runs in the test network namespace
with one slot and one ``machine_model = docker`` machinetype whose image is the host's
busybox with the test guest's ``vac-put`` (tests/contract/podmankit.py: no registry). The
factory writes vac's podman network on the NAT bridge, makes the machine's LV and mounts
it on ``mnt/``, and runs the container with the slot's address. The payload reads MJF both
from ``/etc/machinefeatures`` and ``/etc/jobfeatures`` and over HTTP from 169.254.169.253
(which knows it by its slot address), fetches its user_data from the metadata service,
burns some CPU, PUTs heartbeats (the machinetype's ``heartbeat_file`` is enforced) and
``200 Success`` with its machine token (JOBOUTPUTS refuses a PUT without it), burns
CPU for 3 s more and exits. While it runs, ``vac machines`` (the real responder) lists it;
afterwards the factory finalises it and writes exactly one APEL record, whose job id is
the container ID and whose CPU time is the container's whole CPU time, the last 3 s
after the factory's last sample included (its cgroup parent, vac.adapters.cgroupacct).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from typing import List

import pytest

from tests.contract.podmankit import guest_image
from tests.integration.vacdroot import vacd_logs, write_root
from tests.realenv import read_console as _read
from vac.adapters.atomicfile import write_atomic
from vac.adapters.podman import CNI_CONFIG_DIR
from vac.core import containernet
from vac.paths import Paths
from vacdemo import demoenv
from vacdemo.demowatch import apel_archive_file, record_field

pytestmark = pytest.mark.integration

FACTORY = "factory.containers.vac.test"
MACHINE = "factory-00.containers.vac.test"
MACHINETYPE = "dc"
DONE_SECONDS = 120
CONF = """[settings]
vac_space = containers.vac.test
factory_hostname = {factory}
factories = {factory}
domain_type = qemu
libvirt_uri = {uri}
volume_group = {vg}
overload_per_processor = 1000
mb_per_processor = 256
disk_gb_per_processor = 1
hs06_per_processor = 10.0
gocdb_sitename = CONTAINER-TEST
cycle_seconds = 3
max_creations_per_cycle = 1
shutdown_grace_seconds = 5
udp_timeout_seconds = 2
version_logger = 0

[machinetype {mt}]
target_share = 1
machine_model = docker
root_image = docker://{image}
user_data = payload.user_data
heartbeat_file = heartbeat
heartbeat_seconds = 30
max_wallclock_seconds = 600
fizzle_seconds = 0
backoff_seconds = 0
accounting_fqan = /containers/Role=NULL/Capability=NULL
joboutputs_require_token = true
"""
PAYLOAD = r"""#!/bin/sh
# vac container test payload for ##user_data_machine_hostname## (job ##user_data_uuid##)
mjf=http://169.254.169.253
export VAC_PUT_AUTH="Bearer ##user_data_machine_token##"
{
  echo "file_hs06=$(cat ##user_data_machinefeatures_url##/hs06)"
  echo "file_job_id=$(cat ##user_data_jobfeatures_url##/job_id)"
  echo "http_hs06=$(wget -q -O - $mjf/machinefeatures/hs06)"
  echo "http_job_id=$(wget -q -O - $mjf/jobfeatures/job_id)"
  echo "metadata_user_data=$(wget -q -O - http://169.254.169.254/latest/user-data | head -n 2 | tail -n 1)"
  echo "hostname=$(hostname)"
  echo "ip=$(ip -4 -o addr show eth0 | awk '{print $4}')"
  echo "mnt=$(grep -c ' /mnt ' /proc/mounts)"
  echo "token_matches=$([ "$(wget -q -O - http://169.254.169.254/vac/machine_token)" = "${VAC_PUT_AUTH#Bearer }" ] && echo yes)"
  echo "tokenless_put=$(echo x | VAC_PUT_AUTH= vac-put $mjf/joboutputs/tokenless)"
} > /tmp/mjf
vac-put $mjf/joboutputs/mjf /tmp/mjf
i=0
while [ $i -lt 600000 ]; do i=$((i + 1)); done
for n in 1 2 3 4; do
  echo "$(date +%s) beat $n" > /tmp/heartbeat
  vac-put $mjf/joboutputs/heartbeat /tmp/heartbeat
  sleep 2
done
echo "200 Success" > /tmp/shutdown_message
vac-put $mjf/joboutputs/shutdown_message /tmp/shutdown_message
# burn CPU for 3 s right before exiting: after the factory's last look at the container
end=$(($(date +%s) + 3))
while [ "$(date +%s)" -lt $end ]; do i=0; while [ $i -lt 20000 ]; do i=$((i + 1)); done; done
times > /var/spool/joboutputs/times
"""


def write_factory(root: str, real_env, image: str) -> Paths:
    conf = CONF.format(factory=FACTORY, uri=real_env.libvirt_uri, vg=real_env.volume_group,
                       mt=MACHINETYPE, image=image)
    return write_root(root, conf, MACHINETYPE,
                      {"payload.user_data": lambda path: write_atomic(path, PAYLOAD)})


def remove_containers() -> None:
    ids = subprocess.run(["podman", "ps", "-a", "-q", "--filter",
                          f"label=vac.factory={FACTORY}"], capture_output=True, text=True)
    for cid in ids.stdout.split():
        subprocess.run(["podman", "rm", "-f", "-t", "0", cid], capture_output=True)


@pytest.fixture
def factory(real_env, tmp_path):
    """A running vacd with the docker machinetype; containers, LVs and the factory's
    hosts line in the namespace are removed afterwards."""
    image = guest_image()
    remove_containers()
    paths = write_factory(str(tmp_path / "root"), real_env, image)
    env = demoenv.DemoEnv(testenv_dir=real_env.testenv_dir, netns=real_env.netns,
                          libvirt_uri=real_env.libvirt_uri,
                          volume_group=real_env.volume_group, shim_bin=real_env.shim_bin)
    made_hosts = demoenv.add_hosts_line(FACTORY, real_env.netns)
    made_network = demoenv.reset_network(env)
    state = dict(env.as_dict(), factory=FACTORY, slots=1, made_network=made_network)
    pid = demoenv.start_vacd(paths.root, env, containers=True)

    def clean():
        demoenv.stop_vacd(pid, 45.0)
        remove_containers()
        problems = demoenv.clean_machines(paths, state, lambda _text: None)
        demoenv.remove_hosts_line(real_env.netns, made_hosts)
        conflist = os.path.join(CNI_CONFIG_DIR, containernet.NETWORK_NAME + ".conflist")
        if os.path.exists(conflist):
            os.unlink(conflist)
        assert not problems, problems
    real_env.add_cleanup(clean)
    return paths, pid


def machine_dirs(paths: Paths) -> List[str]:
    return sorted(glob.glob(os.path.join(paths.machines_dir, f"*_{MACHINETYPE}_*")))


def vac_machines(real_env, paths: Paths) -> list:
    vac = os.path.join(os.path.dirname(sys.executable), "vac")
    res = real_env.run([vac, "--root", paths.root, "--json", "machines"], timeout=60,
                       netns=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def bridge_ports(real_env) -> dict:
    """{port of virbr1: isolated?} in the namespace."""
    res = real_env.run(["bridge", "-d", "-j", "link", "show"], timeout=30, netns=True,
                       check=False)
    return {p["ifname"]: bool(p.get("isolated")) for p in json.loads(res.stdout or "[]")
            if p.get("master") == "virbr1"}


def diagnostics(real_env, paths: Paths) -> str:
    parts = []
    for mdir in machine_dirs(paths):
        parts.append(f"==== {mdir}: {sorted(os.listdir(mdir))}")
        for rel in ("joboutputs/mjf", "joboutputs/shutdown_message", "user_data"):
            parts.append(f"-- {rel}: {_read(os.path.join(mdir, rel))[:2000]}")
    parts.extend(vacd_logs(paths, 50))
    parts.append(real_env.diagnostics())
    return "\n".join(parts)


def run_until_accounted(real_env, paths: Paths, pid: int) -> tuple:
    """Poll until the machine has its APEL record and is finished; drain after its
    creation so that it stays the only one; ask ``vac machines`` while it runs."""
    deadline = time.monotonic() + DONE_SECONDS
    listed, drained, ports = [], False, {}
    while True:
        dirs = machine_dirs(paths)
        if dirs and not drained:
            write_atomic(paths.run_vac_conf, "[settings]\ndraining = true\n")
            drained = True
        if dirs and not listed and os.path.exists(os.path.join(dirs[0], "started")) \
                and not os.path.exists(os.path.join(dirs[0], "finished")):
            # the responder answers from a snapshot a few seconds old: ask until it shows
            listed = [r for r in vac_machines(real_env, paths) if r.get("machine") == MACHINE]
            ports = ports or bridge_ports(real_env)
        if dirs and apel_archive_file(paths, dirs[0]) and \
                os.path.exists(os.path.join(dirs[0], "finished")):
            return dirs[0], listed, ports
        assert demoenv.reap(pid) is None, "vacd exited"
        assert time.monotonic() < deadline, f"not accounted within {DONE_SECONDS} s"
        time.sleep(0.5)


def test_docker_machine_made_by_vacd_runs_reads_mjf_and_is_accounted(real_env, factory):
    paths, pid = factory
    try:
        mdir, listed, ports = run_until_accounted(real_env, paths, pid)
        check_machine(paths, mdir, listed)
        # the container's veth port is isolated, as libvirt isolates a VM's
        assert ports and all(ports.values()), ports
    except (AssertionError, OSError, ValueError, KeyError) as e:
        pytest.fail(f"{e}\n{diagnostics(real_env, paths)}", pytrace=False)


def key_values(path: str) -> dict:
    return dict(line.split("=", 1) for line in _read(path).splitlines() if "=" in line)


def check_machine(paths: Paths, mdir: str, listed) -> None:
    j = lambda *p: os.path.join(mdir, *p)  # noqa: E731 - local path helper
    job_id = _read(j("jobfeatures", "job_id")).strip()
    assert len(job_id) == 64 and int(job_id, 16) >= 0, job_id        # the container ID
    assert listed and listed[0].get("uuid") == job_id and \
        listed[0].get("machinetype") == MACHINETYPE, listed
    mjf = key_values(j("joboutputs", "mjf"))
    assert mjf["file_hs06"] == mjf["http_hs06"] == "10.0", mjf
    assert mjf["file_job_id"] == mjf["http_job_id"] == job_id, mjf
    assert mjf["metadata_user_data"].endswith(f"for {MACHINE} (job {job_id})"), mjf
    assert mjf["hostname"] == MACHINE and mjf["ip"] == "169.254.169.0/16", mjf
    assert mjf["mnt"] == "1", mjf                                  # the LV on /mnt
    # JOBOUTPUTS wants the machine's token from containers too (joboutputs_require_token)
    assert mjf["token_matches"] == "yes", mjf
    assert mjf["tokenless_put"].split()[1:2] == ["401"], mjf
    assert not os.path.exists(j("joboutputs", "tokenless"))
    assert " beat 4" in _read(j("joboutputs", "heartbeat"))
    assert _read(j("joboutputs", "shutdown_message")).strip() == "200 Success"
    records = glob.glob(os.path.join(paths.apel_archive, "*", "*"))
    archive = apel_archive_file(paths, mdir)
    assert archive and records == [archive], records
    record = _read(archive)
    assert record_field(record, "LocalJobId") == job_id, record
    cpu = int(record_field(record, "CpuDuration"))
    wall = int(record_field(record, "WallDuration"))
    assert 1 <= cpu <= wall, record                 # the busy loops, measured by the kernel
    # the record has the container's whole CPU time, the burn after the last sample too
    own = payload_cpu_seconds(_read(j("joboutputs", "times")))
    assert own >= 1.0 and cpu >= int(own), (own, record)


def payload_cpu_seconds(times: str) -> float:
    """User + system seconds of the shell and its children from busy box ``times``
    (``0m1.230s 0m0.010s`` per line)."""
    total = 0.0
    for word in times.split():
        minutes, _, seconds = word.rstrip("s").partition("m")
        total += int(minutes) * 60 + float(seconds)
    return total
