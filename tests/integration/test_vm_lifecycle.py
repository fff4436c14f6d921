"""vac's own adapter and services drive real VMs (integration, real_env).

ensure_network makes the NAT network, create_vm makes the LV (or qcow2 overlay) and a
TCG domain from the test guest; the guest takes the slot's DHCP lease, fetches user_data
from 169.254.169.254, PUTs a file to 169.254.169.253 and powers off; destroy_vm removes
the LV. Failure cases leave no domain, LV or overlay behind.
"""

from __future__ import annotations

import os
import time
import uuid as uuidlib

import pytest

from tests.integration.vmsite import (BOOT_TIMEOUT, FACTORY, link_guest_dir, machinetype,
                                      make_cfg, open_site)
from tests.realenv import console_tail, read_console as read, wait_for
from vac.adapters import hypervisor
from vac.constants import NAT_NETWORK_NAME
from vac.core.configtypes import Machinetype
from vac.errors import HypervisorError, ImageError, StorageError
from vac.services import vm

pytestmark = pytest.mark.integration

ORDINAL = 5          # not 0-2: the demo factory may use those MACs on the same libvirtd
USER_DATA = """#!/bin/sh
echo "VACTEST user_data hello from $(hostname)"
echo "host=$(hostname) ip=$(cat /run/vactest.ip)" > /tmp/result.txt
vac-put "$JOBOUTPUTS/result.txt" /tmp/result.txt | sed 's/^/VACTEST put: /'
"""


@pytest.fixture
def site(real_env, tmp_path):
    """A site (vmsite.open_site) with the guest ISO below its root and the two HTTP servers."""
    site = open_site(real_env, tmp_path)
    link_guest_dir(real_env, site["paths"])
    www, puts = tmp_path / "www", tmp_path / "puts"
    (www / "latest").mkdir(parents=True)
    (www / "latest" / "user-data").write_text(USER_DATA)
    real_env.serve_http("169.254.169.254", 80, str(www), log=str(tmp_path / "md.log"))
    real_env.serve_http("169.254.169.253", 80, str(tmp_path), put_dir=str(puts))
    return dict(site, puts=puts, tmp=tmp_path)


def request(site, mt: Machinetype, ordinal: int = ORDINAL, **kw) -> vm.VmRequest:
    from vac.core import naming
    name = naming.machine_name(FACTORY, ordinal)
    machine_dir = site["paths"].machine_dir(1_700_000_000, mt.name, name)
    os.makedirs(machine_dir, exist_ok=True)
    return vm.VmRequest(machine_name=name, ordinal=ordinal, machinetype=mt, processors=1,
                        uuid=str(uuidlib.uuid4()), machine_dir=machine_dir, **kw)


def run_guest(real_env, site, mt: Machinetype, capsys) -> str:
    hv, req = site["hv"], request(site, mt)
    console = os.path.join(req.machine_dir, "console.log")
    t0 = time.monotonic()
    vm.create_vm(hv, site["cfg"], site["paths"], req, host=site["host"])
    t_running = time.monotonic() - t0
    real_env.add_cleanup(lambda: vm.destroy_vm(hv, site["cfg"], site["paths"], req.machine_name,
                                               grace_seconds=0, wait=False, host=site["host"]))
    assert hv.domain(req.machine_name).state.is_active
    try:
        wait_for(lambda: hv.domain(req.machine_name) is None, BOOT_TIMEOUT, interval=0.1,
                 what="the guest to power off")
    except TimeoutError as exc:
        others = [d.name for d in hv.list_domains() if d.name != req.machine_name]
        net = hv.network(NAT_NETWORK_NAME)
        pytest.fail(f"{exc}; other domains {others}; network active="
                    f"{net.active if net else None}\n{console_tail(console)}", pytrace=False)
    t_off = time.monotonic() - t0
    vm.destroy_vm(hv, site["cfg"], site["paths"], req.machine_name, grace_seconds=5,
                  host=site["host"])
    with capsys.disabled():
        print(f"\n[vm timing] {mt.machine_model}: create->running {t_running:.2f} s, "
              f"create->power-off {t_off:.2f} s")
    return read(console)


def test_network_is_persistent_autostarted_with_metadata_address(real_env, site):
    net = site["hv"].network(NAT_NETWORK_NAME)
    assert (net.persistent, net.active, net.autostart) == (True, True, True)
    shown = real_env.run(["ip", "-o", "-4", "addr", "show", "dev", "virbr1"], netns=True).stdout
    assert "169.254.169.253/16" in shown and "169.254.169.254/16" in shown
    hosts = read(site["paths"].etc_hosts)
    assert "169.254.169.0 vactest-00 vactest-00.example.com # added by Vac" in hosts
    assert vm.ensure_network(site["hv"], site["cfg"], site["paths"], host=site["host"])
    assert read(site["paths"].etc_hosts) == hosts


def test_cernvm3_guest_boots_on_lv_and_reports_back(real_env, site, capsys):
    log = run_guest(real_env, site, machinetype(real_env.guest_iso), capsys)
    assert "VACTEST lease ip=169.254.169.5 " in log, log
    assert "hostname=vactest-05" in log
    extent = 4 * 1024 * 1024                                  # vgcreate's default
    assert f"VACTEST vda sectors={10 ** 9 // extent * extent // 512}" in log
    assert "VACTEST put: HTTP/1.0 201" in log
    result = (site["puts"] / "joboutputs" / "result.txt").read_text()
    assert result.startswith("host=vactest-05") and "ip=169.254.169.5" in result
    assert "vactest-05.example.com" not in real_env.lv_names()


def test_vm_raw_guest_boots_from_qcow2_overlay(real_env, site, capsys):
    image = os.path.join(os.path.dirname(real_env.guest_iso), "vac-test-guest.qcow2")
    if not os.path.exists(image):
        pytest.skip("no qcow2 test guest (xorriso missing)")
    log = run_guest(real_env, site, machinetype(image, "vm-raw"), capsys)
    assert "VACTEST lease ip=169.254.169.5 " in log
    assert "VACTEST put: HTTP/1.0 201" in log
    assert os.listdir(site["paths"].tmp) == []          # overlay unlinked after start
    assert "vactest-05.example.com" not in real_env.lv_names()


def assert_nothing_left(real_env, site, name: str) -> None:
    assert site["hv"].domain(name) is None
    assert name not in real_env.lv_names()
    assert [f for f in os.listdir(site["paths"].tmp) if not f.startswith(".")] == []


def test_failure_image_url_unreachable(real_env, site):
    mt = machinetype("http://127.0.0.1:9/missing.iso")
    req = request(site, mt)
    with pytest.raises(ImageError, match=r"^Failed to fetch http://127.0.0.1:9/missing.iso \("):
        vm.create_vm(site["hv"], site["cfg"], site["paths"], req, host=site["host"])
    assert_nothing_left(real_env, site, req.machine_name)


def test_failure_signature_mismatch(real_env, site):
    mt = machinetype(real_env.guest_iso, image_signing_dn=r"/CN=cvm-sign01\.cern\.ch$")
    req = request(site, mt)
    with pytest.raises(ImageError) as info:
        vm.create_vm(site["hv"], site["cfg"], site["paths"], req, host=site["host"])
    assert "\n" not in str(info.value)
    assert_nothing_left(real_env, site, req.machine_name)


def test_failure_volume_group_missing(real_env, site):
    cfg = make_cfg(real_env, volume_group="no_such_vg")
    req = request(site, machinetype(real_env.guest_iso))
    with pytest.raises(StorageError, match="^volume_group no_such_vg does not exist"):
        vm.create_vm(site["hv"], cfg, site["paths"], req, host=site["host"])
    assert_nothing_left(real_env, site, req.machine_name)


def test_failure_lv_creation(real_env, site):
    req = request(site, machinetype(real_env.guest_iso, disk_gb_per_processor=10 ** 6))
    with pytest.raises(StorageError, match="^cannot create logical volume"):
        vm.create_vm(site["hv"], site["cfg"], site["paths"], req, host=site["host"])
    assert_nothing_left(real_env, site, req.machine_name)


def test_failure_domain_rejected_removes_lv(real_env, site):
    req = request(site, machinetype(real_env.guest_iso),
                  config_drive_iso="/nonexistent/config-drive.iso")   # qemu cannot start
    with pytest.raises(HypervisorError, match="^Exception .* when trying to create VM domain") \
            as info:
        vm.create_vm(site["hv"], site["cfg"], site["paths"], req, host=site["host"])
    assert "\n" not in str(info.value)
    assert_nothing_left(real_env, site, req.machine_name)


def test_failure_libvirtd_not_running(real_env, site):
    req = request(site, machinetype(real_env.guest_iso))
    with pytest.raises(HypervisorError, match="^Failed to open libvirt connection") as info:
        with hypervisor.connect("qemu+unix:///system?socket=/nonexistent/libvirt-sock") as hv:
            vm.create_vm(hv, site["cfg"], site["paths"], req, host=site["host"])
    assert "\n" not in str(info.value)
    assert_nothing_left(real_env, site, req.machine_name)


def test_destroy_is_idempotent(real_env, site):
    for _ in range(2):
        vm.destroy_vm(site["hv"], site["cfg"], site["paths"], "vactest-77.example.com",
                      grace_seconds=0, host=site["host"])
    assert "vactest-77.example.com" not in real_env.lv_names()
