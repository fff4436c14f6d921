"""Debian's cloud-init package, UNMODIFIED, reads our metadata service (issue 6).

The crawler (tests/data/cloudinit/crawl.py) runs with the system python in a client
network namespace whose address is slot 5's (169.254.169.5), against the metadata role
bound to 169.254.169.254:80 in a server namespace. For the OpenStack datasource the
crawler runs as PID 1 of a new PID namespace with ``product_name=OpenStack Nova`` in its
environment: cloud-init's own documented container hint (``detect_openstack``), so the
package's code is used as shipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.services.ctxhelpers import (PUBKEY, make_config, make_machine, netns_pair,
                                       running_role)
from vac.services import metadata_httpd

CRAWLER = os.path.join(os.path.dirname(__file__), "..", "data", "cloudinit", "crawl.py")
SYSTEM_PYTHON = "/usr/bin/python3"
USER_DATA = b"#cloud-config\nruncmd:\n - [touch, /tmp/vac-was-here]\n"

pytestmark = pytest.mark.integration


def _cloud_init_available() -> bool:
    if not os.path.exists(SYSTEM_PYTHON) or not shutil.which("unshare"):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import cloudinit.sources.DataSourceEc2"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def cloud_init():
    if not _cloud_init_available():
        pytest.skip("Debian's cloud-init package is not installed for /usr/bin/python3")


def _crawl(cli_ns: str, kind: str, workdir: str) -> dict:
    argv = ["ip", "netns", "exec", cli_ns, "unshare", "--pid", "--fork", "--mount-proc",
            "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "product_name=OpenStack Nova",
            SYSTEM_PYTHON, CRAWLER, kind, "http://169.254.169.254", workdir]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["ec2", "openstack"])
def test_cloud_init_datasource_reads_our_metadata(cloud_init, paths, tmp_path, kind):
    make_machine(paths, 5, user_data=USER_DATA)
    make_machine(paths, 6, user_data=b"#!/bin/sh\necho not me\n")
    with netns_pair("ci") as (srv, cli):
        with running_role(metadata_httpd.run_role, paths,
                          make_config("169.254.169.254", 80), netns=srv):
            result = _crawl(cli, kind, str(tmp_path / "ci"))
    assert result["ok"] is True, result
    assert result["instance_id"] == "uuid-0005"
    assert result["local_hostname"] == "factory1-05"      # cloud-init keeps the short name
    assert result["userdata"] == USER_DATA.decode()
    assert result["public_keys"] == [PUBKEY]
    assert result["datasource"].startswith({"ec2": "DataSourceEc2",
                                            "openstack": "DataSourceOpenStack"}[kind])


def test_cloud_init_config_drive_datasource_reads_our_iso(cloud_init, paths, tmp_path):
    """The config-2 ISO of make_config_drive, unpacked where ConfigDrive looks for a seed."""
    from vac.core.configtypes import Machinetype
    from vac.services.configdrive import make_config_drive
    if not shutil.which("genisoimage") or not shutil.which("xorriso"):
        pytest.skip("genisoimage/xorriso not installed")
    iso = str(tmp_path / "config.iso")
    cfg = make_config("169.254.169.254", 80)
    make_config_drive(cfg, paths, Machinetype(name="lhcb", config_drive=True),
                      machine_name="factory1-05.example.com", uuid="uuid-0005", ordinal=5,
                      user_data=USER_DATA, dest_path=iso)
    seed = tmp_path / "ci" / "cloud" / "seed" / "config_drive"
    seed.parent.mkdir(parents=True)
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", str(seed)],
                   check=True, capture_output=True)
    proc = subprocess.run([SYSTEM_PYTHON, CRAWLER, "configdrive", "-", str(tmp_path / "ci")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True and result["datasource"].startswith("DataSourceConfigDrive")
    assert result["instance_id"] == "uuid-0005"
    assert result["local_hostname"] == "factory1-05"
    assert result["userdata"] == USER_DATA.decode()
