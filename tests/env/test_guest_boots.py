"""The test guest really boots in the real test environment, the way vac runs a cernvm3 VM.

A transient NAT network shaped like vac's, an LV from the shim as vda, the guest ISO as the
cdrom it boots from, user_data served on 169.254.169.254 and PUTs accepted on 169.254.169.253
by small servers inside the netns. libvirt-python is used directly here: this checks the
environment and the guest, not vac's adapter.
"""

from __future__ import annotations

import time
from typing import Optional
from xml.sax.saxutils import escape

import pytest

from tests.realenv import console_tail, read_console as read, wait_for

libvirt = pytest.importorskip("libvirt")

pytestmark = pytest.mark.integration

NET_NAME = "vac_169.254.0.0"
MAC = "56:4D:A9:FE:A9:00"
GUEST_IP = "169.254.169.0"
GUEST_HOSTNAME = "vactest00"
DOMAIN = "vactest-guest"
LV_MIB = 64
BOOT_TIMEOUT = 120  # seconds; a TCG boot takes about 7 s, the first after install about 11 s

NETWORK_XML = f"""<network>
  <name>{NET_NAME}</name>
  <forward mode='nat'/>
  <bridge name='virbr1' stp='off' delay='0'/>
  <ip address='169.254.169.253' netmask='255.255.0.0'>
    <dhcp><host mac='{MAC}' name='{GUEST_HOSTNAME}' ip='{GUEST_IP}'/></dhcp>
  </ip>
</network>"""

USER_DATA = """#!/bin/sh
echo "VACTEST user_data hello from $(hostname)"
hs06=$(wget -q -O - "$MACHINEFEATURES/hs06")
echo "host=$(hostname) ip=$(cat /run/vactest.ip) hs06=$hs06" > /tmp/result.txt
vac-put "$JOBOUTPUTS/result.txt" /tmp/result.txt | sed 's/^/VACTEST put: /'
"""

SLEEPY_USER_DATA = """#!/bin/sh
echo "VACTEST user_data sleeping"
sleep 600
"""


def domain_xml(name: str, console: str, iso: str = "", disk: str = "",
               overlay: str = "") -> str:
    """A TCG domain like vac's: cernvm3 (boot the ISO on hdc, LV as vda) when iso is given,
    vm-raw (boot the qcow2 overlay as vda) when overlay is given."""
    if overlay:
        boot_dev = "hd"
        disks = f"""<disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{escape(overlay)}'/><target dev='vda' bus='virtio'/>
    </disk>"""
    else:
        boot_dev = "cdrom"
        disks = f"""<disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source dev='{escape(disk)}'/><target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='{escape(iso)}'/><target dev='hdc' bus='ide'/><readonly/>
    </disk>"""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='{boot_dev}'/></os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    {disks}
    <interface type='network'>
      <source network='{NET_NAME}'/><mac address='{MAC}'/><model type='virtio'/>
    </interface>
    <serial type='file'><source path='{escape(console)}'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


def domain_gone(conn, name: str) -> bool:
    try:
        conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return True
        raise
    return False


@pytest.fixture
def guest_site(real_env, tmp_path):
    """libvirt connection, vac-like NAT network, .254 metadata and .253 factory servers."""
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    conn = libvirt.open(real_env.libvirt_uri)
    real_env.add_cleanup(conn.close)
    if not domain_gone(conn, DOMAIN):  # leftovers of an earlier, interrupted test
        conn.lookupByName(DOMAIN).destroy()
    real_env.remove_lv("vactest00")
    for net in conn.listAllNetworks():
        if net.name() == NET_NAME:
            if net.isActive():
                net.destroy()
            if net.isPersistent():
                net.undefine()
    net = conn.networkCreateXML(NETWORK_XML)
    real_env.add_cleanup(net.destroy)
    real_env.add_address("169.254.169.254/16", "virbr1")
    site = {"conn": conn, "net": net, "tmp": tmp_path}
    for name in ("metadata", "factory", "puts"):
        site[name] = tmp_path / name
        site[name].mkdir()
    (site["factory"] / "machinefeatures").mkdir()
    (site["factory"] / "machinefeatures" / "hs06").write_text("42\n")
    site["metadata_log"] = str(tmp_path / "metadata.log")
    site["factory_log"] = str(tmp_path / "factory.log")
    real_env.serve_http("169.254.169.254", 80, str(site["metadata"]), log=site["metadata_log"])
    real_env.serve_http("169.254.169.253", 80, str(site["factory"]),
                        put_dir=str(site["puts"]), log=site["factory_log"])
    return site


def boot(real_env, site, user_data: Optional[str], model: str = "cernvm3"):
    """Serve user_data, make the root disk and start the domain. Returns (domain, console, t0).
    cernvm3: an LV from the shim plus the guest ISO; vm-raw: a qcow2 overlay on the guest disk."""
    latest = site["metadata"] / "latest"
    latest.mkdir(exist_ok=True)
    if user_data is not None:  # None: the metadata server answers 404
        (latest / "user-data").write_text(user_data)
    console = str(site["tmp"] / "console.log")
    if model == "vm-raw":
        base = real_env.guest_disk_qcow2
        if not base:
            pytest.skip("no guest disk image (xorriso missing when tools/testenv.sh install ran)")
        overlay = str(site["tmp"] / "overlay.qcow2")
        real_env.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base,
                      overlay])
        xml = domain_xml(DOMAIN, console, overlay=overlay)
    else:
        disk = real_env.create_lv("vactest00", LV_MIB)
        xml = domain_xml(DOMAIN, console, iso=real_env.guest_iso, disk=disk)
    conn = site["conn"]
    t0 = time.monotonic()
    dom = conn.createXML(xml, 0)
    real_env.add_cleanup(lambda: None if domain_gone(conn, DOMAIN) else dom.destroy())
    return dom, console, t0


@pytest.mark.parametrize("model", ["cernvm3", "vm-raw"])
def test_guest_boots_gets_lease_runs_user_data_and_powers_off(real_env, guest_site, capsys,
                                                              model):
    conn = guest_site["conn"]
    dom, console, t0 = boot(real_env, guest_site, USER_DATA, model)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    t_running = time.monotonic() - t0
    try:
        wait_for(lambda: read(console), BOOT_TIMEOUT, what="first console output")
        t_console = time.monotonic() - t0
        wait_for(lambda: domain_gone(conn, DOMAIN), BOOT_TIMEOUT, interval=0.1,
                 what="the guest to power off")
        t_gone = time.monotonic() - t0
        log = read(console)
        assert f"VACTEST lease ip={GUEST_IP} " in log
        assert f"hostname={GUEST_HOSTNAME}" in log
        assert f"VACTEST hostname={GUEST_HOSTNAME} " in log
        if model == "cernvm3":
            assert f"VACTEST vda sectors={LV_MIB * 2048}" in log
        else:
            assert "VACTEST vda sectors=" in log
        assert "VACTEST user_data fetched" in log
        assert f"VACTEST user_data hello from {GUEST_HOSTNAME}" in log
        assert "VACTEST put: HTTP/1.0 201" in log
        assert "VACTEST user_data exit=0" in log
        assert "VACTEST done" in log
        result = (guest_site["puts"] / "joboutputs" / "result.txt").read_text()
        assert result == f"host={GUEST_HOSTNAME} ip={GUEST_IP} hs06=42\n"
        assert f'"client": "{GUEST_IP}", "method": "GET", "path": "/latest/user-data"' \
            in read(guest_site["metadata_log"])
        leases = guest_site["net"].DHCPLeases()
        assert any(lease["ipaddr"] == GUEST_IP and lease["mac"].lower() == MAC.lower()
                   for lease in leases), leases
    except (AssertionError, TimeoutError) as exc:
        pytest.fail(f"{exc}\n{console_tail(console)}\n{real_env.diagnostics()}", pytrace=False)
    with capsys.disabled():
        print(f"\n[guest timing {model}] create->running {t_running:.2f} s, ->first console "
              f"{t_console:.2f} s, ->power-off (domain gone) {t_gone:.2f} s")


def test_guest_reports_acpi_shutdown_and_powers_off(real_env, guest_site):
    conn = guest_site["conn"]
    dom, console, t0 = boot(real_env, guest_site, SLEEPY_USER_DATA)
    try:
        wait_for(lambda: "VACTEST user_data sleeping" in read(console), BOOT_TIMEOUT,
                 what="user_data to start")
        assert "VACTEST acpi watching /dev/input/event" in read(console)
        dom.shutdown()  # ACPI power button, as vac does before destroying
        wait_for(lambda: domain_gone(conn, DOMAIN), 60, interval=0.1,
                 what="the guest to power off after the ACPI shutdown")
        message = guest_site["puts"] / "joboutputs" / "shutdown_message"
        assert message.read_text() == "100 VM received ACPI shutdown signal from hypervisor\n"
    except (AssertionError, TimeoutError, OSError) as exc:
        pytest.fail(f"{exc}\n{console_tail(console)}\n{real_env.diagnostics()}", pytrace=False)


def test_guest_without_user_data_powers_off_at_once(real_env, guest_site):
    conn = guest_site["conn"]
    dom, console, t0 = boot(real_env, guest_site, None)
    try:
        wait_for(lambda: domain_gone(conn, DOMAIN), BOOT_TIMEOUT, interval=0.1,
                 what="the guest to power off")
        log = read(console)
        assert "VACTEST user_data absent (404)" in log
        assert "VACTEST done" in log
    except (AssertionError, TimeoutError) as exc:
        pytest.fail(f"{exc}\n{console_tail(console)}\n{real_env.diagnostics()}", pytrace=False)
