"""Domain XML for cernvm3/cernvm4/vm-raw: golden files and acceptance by libvirt's test driver."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import libvirt
import pytest

from vac.core import domxml

NODE_XML = os.path.join(os.path.dirname(__file__), "..", "data", "libvirt", "node.xml")
UUID = "6e1b0c46-59a0-4b8c-9b5e-5f3f0d9a2f11"
MACHINE_DIR = "/var/lib/vac/machines/1700000000_lhcb_f1-07.example.com"

libvirt.registerErrorHandler(lambda _c, _e: None, None)


def build(model: str, domain_type: str, *, lv: bool = True, config_drive: bool = False,
          scratch_device: str = "vdb", guest_to_guest: bool = False) -> str:
    if model == "vm-raw":
        disks = domxml.machine_disks(
            model, root_disk="/var/lib/vac/tmp/root.disk.abcd", root_is_block=False,
            image="/var/lib/vac/imagecache/raw.img", scratch_device=scratch_device,
            scratch_lv="/dev/vac_volume_group/f1-07.example.com" if lv else None,
            config_drive_iso="/var/lib/vac/tmp/cd.iso" if config_drive else None)
    else:
        root = "/dev/vac_volume_group/f1-07.example.com" if lv else \
            "/var/lib/vac/tmp/root.disk.wxyz"
        disks = domxml.machine_disks(
            model, root_disk=root, root_is_block=lv, image="/var/lib/vac/imagecache/cernvm.iso",
            config_drive_iso="/var/lib/vac/tmp/cd.iso" if config_drive else None)
    spec = domxml.vm_domain_spec(model, domain_type, name="f1-07.example.com", uuid=UUID,
                                 ordinal=7, processors=2, mb_per_processor=2048,
                                 console_log=MACHINE_DIR + "/console.log", disks=disks,
                                 emulator="/usr/libexec/qemu-kvm",
                                 guest_to_guest=guest_to_guest)
    return domxml.domain_xml(spec)


def accept(xml: str) -> ET.Element:
    """Define ``xml`` (type rewritten to test) on a private test-driver node; return its XML."""
    root = ET.fromstring(xml)
    root.set("type", "test")
    conn = libvirt.open(f"test://{os.path.abspath(NODE_XML)}")
    try:
        dom = conn.defineXML(ET.tostring(root, encoding="unicode"))
        return ET.fromstring(dom.XMLDesc(0))
    finally:
        conn.close()


CASES = [(m, t) for m in ("cernvm3", "cernvm4", "vm-raw") for t in ("kvm", "qemu")]


@pytest.mark.golden
@pytest.mark.parametrize("model,domain_type", CASES)
def test_golden_and_accepted_by_libvirt(golden, model, domain_type):
    xml = build(model, domain_type)
    golden.check(xml, f"domxml/{model}-{domain_type}.xml")
    defined = accept(xml)
    assert defined.findtext("name") == "f1-07.example.com"
    assert defined.findtext("uuid") == UUID


@pytest.mark.golden
@pytest.mark.parametrize("name,kwargs", [
    ("cernvm3-file-configdrive", dict(model="cernvm3", lv=False, config_drive=True)),
    ("vm-raw-noscratch", dict(model="vm-raw", lv=False)),
    ("vm-raw-scratch-sdb", dict(model="vm-raw", scratch_device="sdb")),
    ("cernvm3-guest-to-guest", dict(model="cernvm3", guest_to_guest=True)),
])
def test_variants_golden_and_accepted(golden, name, kwargs):
    xml = build(domain_type="qemu", **kwargs)
    golden.check(xml, f"domxml/{name}.xml")
    accept(xml)


def test_bridge_port_isolated_unless_guest_to_guest():
    """libvirt keeps <port isolated=..> and interface_ports reads the wish back."""
    for g2g in (False, True):
        defined = accept(build("cernvm3", "qemu", guest_to_guest=g2g))
        port = defined.find("devices/interface/port")
        assert port is not None and port.get("isolated") == ("no" if g2g else "yes")
        device = defined.find("devices/interface/target").get("dev")
        assert domxml.interface_ports(ET.tostring(defined, encoding="unicode")) == \
            [(device, not g2g)]


def test_cernvm4_is_cernvm3():
    assert build("cernvm4", "kvm") == build("cernvm3", "kvm")


def test_spec_elements_kvm():
    root = ET.fromstring(build("cernvm3", "kvm"))
    assert root.get("type") == "kvm"
    assert root.find("memory").text == "4096" and root.find("memory").get("unit") == "MiB"
    assert root.findtext("vcpu") == "2"
    assert root.find("cpu").get("mode") == "host-passthrough"
    assert [b.get("dev") for b in root.findall("os/boot")] == ["cdrom"]
    assert root.find("os/smbios").get("mode") == "sysinfo"
    entries = {e.get("name"): e.text for e in root.findall("sysinfo/system/entry")}
    assert entries["product"] == "OpenStack Nova"
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        assert root.findtext(event) == "destroy"
    dev = root.find("devices")
    assert dev.findtext("emulator") == "/usr/libexec/qemu-kvm"
    assert dev.find("interface/filterref").get("filter") == "clean-traffic"
    assert dev.find("interface/mac").get("address") == "56:4D:A9:FE:A9:07"
    assert dev.find("serial/source").get("path") == MACHINE_DIR + "/console.log"
    graphics = dev.find("graphics")
    assert (graphics.get("port"), graphics.get("listen")) == ("5907", "127.0.0.1")
    for driver in dev.findall("disk/driver"):
        assert (driver.get("cache"), driver.get("error_policy")) == ("unsafe", "report")
    cdrom = [d for d in dev.findall("disk") if d.get("device") == "cdrom"][0]
    assert cdrom.find("target").get("dev") == "hdc" and cdrom.find("readonly") is not None


def test_qemu_drops_kvm_only_parts():
    root = ET.fromstring(build("cernvm3", "qemu"))
    assert root.get("type") == "qemu"
    assert root.find("cpu") is None
    assert root.find("devices/emulator") is None


def test_vm_raw_boots_from_hd_with_qcow2_and_scratch_device():
    root = ET.fromstring(build("vm-raw", "qemu", scratch_device="vdc"))
    assert [b.get("dev") for b in root.findall("os/boot")] == ["hd"]
    disks = root.findall("devices/disk")
    assert disks[0].find("driver").get("type") == "qcow2"
    assert disks[1].find("target").get("dev") == "vdc"
    assert disks[1].get("type") == "block"


def test_bus_for_targets():
    assert domxml.bus_for("vda") == "virtio"
    assert domxml.bus_for("hdc") == "ide"
    assert domxml.bus_for("sdb") == "ide"


def test_rejects_non_vm_model_and_bad_domain_type():
    with pytest.raises(ValueError):
        domxml.machine_disks("docker", root_disk="x", root_is_block=False, image="i")
    with pytest.raises(ValueError):
        domxml.vm_domain_spec("cernvm3", "xen", name="n", uuid=UUID, ordinal=0, processors=1,
                              mb_per_processor=1, console_log="c", disks=())


@pytest.mark.golden
@pytest.mark.parametrize("name,image", [("selftest-image", "/srv/selftest.iso"),
                                        ("selftest-diskless", None)])
def test_selftest_machine_golden_and_accepted(golden, name, image):
    spec = domxml.selftest_domain_spec("qemu", name="vac-selftest-42", uuid=UUID, image=image,
                                       console_log="/var/lib/vac/tmp/vac-selftest-42.console",
                                       emulator="/usr/libexec/qemu-kvm")
    xml = domxml.domain_xml(spec)
    golden.check(xml, f"domxml/{name}.xml")
    defined = accept(xml)
    assert defined.findtext("memory") == str(128 * 1024)          # KiB
    assert [d.get("device") for d in defined.iter("disk")] == ([] if image is None else
                                                               ["cdrom"])
    assert "<emulator>" not in xml and "filterref" not in xml and "graphics" not in xml
