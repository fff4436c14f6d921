"""Failures look like planned draining, with the real vacd and its real roles (issue points
4 and 5, integration).

vacd starts inside the test network namespace on an invalid configuration (the upgrade
case: the files were fine for the original, not for this build) while one machine runs
(a real TCG domain with the slot's name and job_id) and one has stopped. It must:

* start every role: the MJF server answers that machine, found only by its source address
  169.254.169.1, for GET and PUT; the metadata server too;
* keep looking after machines: the stopped one is finalised, the running one is left
  alone; nothing is created;
* make check-vacd CRITICAL naming the first problem;

and once the file is fixed, without a restart, create a real guest of the valid
machinetype while the share-only machinetype stays disabled (check-vacd WARNING).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid as uuidlib

import pytest

from tests.integration.vmsite import FACTORY, link_guest_dir, open_site
from tests.realenv import wait_for
from vac import nagios
from vac.adapters import statefs
from vac.core import domxml, naming
from vac.model import DomainState

pytestmark = pytest.mark.integration

NAMES = [naming.machine_name(FACTORY, i) for i in range(3)]
BROKEN = "udp_timeout_seconds = lots\n"
CONF = """[settings]
vac_space = space.example.com
factory_hostname = {factory}
overload_per_processor = 1000
domain_type = qemu
libvirt_uri = {uri}
volume_group = {vg}
{broken}mb_per_processor = 256
disk_gb_per_processor = 1
cycle_seconds = 2
shutdown_grace_seconds = 5
version_logger = 0

[machinetype work]
target_share = 1
root_image = {iso}
fizzle_seconds = 0
max_wallclock_seconds = 3600

[machinetype shares]
target_share = 5
"""
CLIENT = """
import http.client, json, sys
src, method, path, body = sys.argv[1:5]
c = http.client.HTTPConnection(sys.argv[5], 80, timeout=10, source_address=(src, 0))
c.request(method, path, body=body.encode() if method == "PUT" else None)
r = c.getresponse()
print(json.dumps([r.status, r.read().decode(errors="replace")]))
"""


def _write_conf(real_env, paths, broken: str) -> None:
    with open(paths.etc_vac_conf, "w") as f:
        f.write(CONF.format(factory=FACTORY, uri=real_env.libvirt_uri, broken=broken,
                            vg=real_env.volume_group, iso=real_env.guest_iso))


def _machine(paths, ordinal: int, running_domain_of=None) -> str:
    """Files of a started machine of ``work`` in slot ``ordinal``; its job_id."""
    name, job_id, created = NAMES[ordinal], str(uuidlib.uuid4()), int(time.time()) - 60
    mdir = statefs.make_machine_dir(paths, created, "work", name)
    statefs.write_slot_file(paths, name, created, "work", "cernvm3")
    statefs.write_machine_file(mdir, "jobfeatures/job_id", job_id)
    statefs.write_machine_file(mdir, "jobfeatures/shutdowntime_job", str(created + 3600))
    statefs.write_machine_file(mdir, "machinefeatures/total_cpu", "1")
    statefs.write_started(mdir, created + 5)
    if running_domain_of is not None:        # a real domain: the factory sees it running
        spec = domxml.selftest_domain_spec("qemu", name=name, uuid=job_id, image=None,
                                           console_log=os.path.join(mdir, "console.log"))
        running_domain_of.create_domain(domxml.domain_xml(spec))
    return mdir


def _http(real_env, source: str, method: str, path: str, server: str = "169.254.169.253",
          body: str = "") -> list:
    res = real_env.run([sys.executable, "-c", CLIENT, source, method, path, body, server],
                       netns=True, check=False, timeout=30)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _log(paths, role: str) -> str:
    try:
        with open(paths.log_file(role), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def _check_vacd(paths):
    return nagios.check(paths, nagios.Thresholds(), time.time())


def _cleanup(real_env, hv) -> None:
    for name in NAMES:
        hv.destroy_domain(name)
        real_env.remove_lv(name)
    real_env.run(["ip", "addr", "del", "169.254.169.1/32", "dev", "virbr1"], netns=True,
                 check=False)


def test_invalid_configuration_drains_and_fixing_it_resumes_creation(real_env, tmp_path):
    site = open_site(real_env, tmp_path)
    paths, hv = site["paths"], site["hv"]
    _cleanup(real_env, hv)
    real_env.add_cleanup(lambda: _cleanup(real_env, hv))
    os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
    _write_conf(real_env, paths, BROKEN)
    cpuinfo = paths.under_root("/proc/cpuinfo")
    os.makedirs(os.path.dirname(cpuinfo), exist_ok=True)
    with open(cpuinfo, "w") as f:
        f.write("".join(f"processor\t: {i}\n\n" for i in range(3)))
    link_guest_dir(real_env, paths)
    running = _machine(paths, 1, running_domain_of=hv)
    stopped = _machine(paths, 2)
    real_env.add_address("169.254.169.1/32")

    vacd = real_env.start_in_netns([sys.executable, "-m", "vac.vacd.daemon", "--root", paths.root,
                                    "--foreground"])
    wait_for(lambda: "mjf server listening on 169.254.169.253:80" in _log(paths, "mjf"), 30,
             what="the MJF server\n" + _log(paths, "mjf") + _log(paths, "supervisor"))
    wait_for(lambda: os.path.exists(os.path.join(stopped, "finished")), 60,
             what="the stopped machine finalised on the invalid configuration\n"
                  + _log(paths, "factory"))
    pid = vacd.pid

    # the MJF server answers the running machine, by its address only; PUT works too
    job_id = statefs.read_slot(paths, FACTORY, 1).uuid
    assert _http(real_env, "169.254.169.1", "GET", "/jobfeatures/job_id") == [200, job_id]
    assert _http(real_env, "169.254.169.1", "PUT", "/joboutputs/heartbeat", body="beat")[0] \
        == 201
    with open(os.path.join(running, "joboutputs", "heartbeat")) as f:
        assert f.read() == "beat"
    assert _http(real_env, "169.254.169.1", "GET", "/latest/meta-data/instance-id",
                 server="169.254.169.254")[0] == 200
    # check-vacd: CRITICAL, naming the first problem
    code, line = _check_vacd(paths)
    assert code == nagios.CRITICAL, line
    assert "invalid configuration, no machines are created: " in line
    assert "[settings] udp_timeout_seconds: 'lots' is not valid" in line
    # draining: nothing created, the running machine left alone, problems logged once
    assert hv.domain(NAMES[1]).state == DomainState.RUNNING
    assert statefs.read_slot(paths, FACTORY, 0).created is None
    assert _log(paths, "factory").count("udp_timeout_seconds: 'lots' is not valid") == 1

    _write_conf(real_env, paths, "")                      # fixed, no restart
    wait_for(lambda: getattr(hv.domain(NAMES[0]), "state", None) == DomainState.RUNNING, 90,
             what="a machine running once the configuration is fixed")
    slot = statefs.read_slot(paths, FACTORY, 0)
    assert slot.machinetype == "work" and hv.domain(NAMES[0]).uuid == slot.uuid
    assert vacd.pid == pid and vacd.poll() is None and "restarting" not in \
        _log(paths, "supervisor")
    assert "The configuration is valid again" in _log(paths, "factory")
    code, line = _check_vacd(paths)
    assert code == nagios.WARNING and "1 machinetype(s) disabled (shares)" in line, line
    real_env.stop_process(vacd)
    assert vacd.returncode == 0
