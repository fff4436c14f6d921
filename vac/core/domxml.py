"""libvirt domain XML for the VM machine models (SPEC §3.4.1), built with ElementTree.

:func:`domain_xml` only serialises a :class:`DomainSpec`; the choices (which disks, which
boot device, KVM-only parts) are made by :func:`machine_disks` and :func:`vm_domain_spec`
from their arguments. Memory is MiB; nothing here touches the host.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import List, Optional, Tuple

from vac.constants import NAT_NETWORK_NAME
from vac.core import naming

SYSINFO_MANUFACTURER = "OpenStack Foundation"
SYSINFO_PRODUCT = "OpenStack Nova"   # cloud-init's OpenStack datasource looks for this
CDROM_TARGET = "hdc"
CONFIG_DRIVE_TARGET = "hdd"
DOMAIN_TYPES = ("kvm", "qemu", "test")


@dataclass(frozen=True)
class VmProfile:
    """How a VM model boots: ``disk_image`` True means the root image is a disk backed
    by a qcow2 overlay (boot from ``hd``, optional scratch LV); False means the image is a
    CernVM ISO on the cdrom (boot from it, root disk = LV or sparse file)."""

    disk_image: bool

    @property
    def boot_device(self) -> str:
        return "hd" if self.disk_image else "cdrom"


# cernvm4 is cernvm3 (bug B1); the one place that tells the VM models apart
VM_PROFILES = {"cernvm3": VmProfile(disk_image=False), "cernvm4": VmProfile(disk_image=False),
               "vm-raw": VmProfile(disk_image=True)}


def vm_profile(model: str) -> VmProfile:
    """The profile of a VM model; ValueError for any other model."""
    profile = VM_PROFILES.get(model)
    if profile is None:
        raise ValueError(f"machine_model {model} is not a VM model")
    return profile


@dataclass(frozen=True)
class DiskSpec:
    """One disk device: ``block`` sources are device nodes, others are files."""

    source: str
    target: str
    device: str = "disk"        # disk | cdrom
    fmt: str = "raw"            # raw | qcow2
    block: bool = False
    readonly: bool = False


@dataclass(frozen=True)
class DomainSpec:
    """Everything that goes into one domain's XML."""

    domain_type: str
    name: str
    uuid: str
    memory_mib: int
    vcpus: int
    boot_device: str            # cdrom | hd
    disks: Tuple[DiskSpec, ...]
    mac: str
    console_log: str
    vnc_port: Optional[int]     # None: no graphics device
    network: str = NAT_NETWORK_NAME
    emulator: Optional[str] = None
    host_passthrough: bool = False
    serial_port: int = 0
    nwfilter: Optional[str] = "clean-traffic"   # None: no anti-spoofing filter
    port_isolated: bool = True      # bridge port isolation: no traffic with other isolated ports


def bus_for(target: str) -> str:
    """``virtio`` for ``vd*``-style targets, else ``ide`` (SPEC §3.4.1)."""
    return "virtio" if "vd" in target else "ide"


def machine_disks(model: str, *, root_disk: Optional[str], root_is_block: bool,
                  image: str, root_device: str = "vda", scratch_device: str = "vdb",
                  scratch_lv: Optional[str] = None,
                  config_drive_iso: Optional[str] = None) -> Tuple[DiskSpec, ...]:
    """The disks of a VM of ``model`` (cernvm4 is cernvm3, bug B1).

    cernvm3: ``root_disk`` (LV or sparse file) on ``root_device`` plus the ISO ``image`` as
    read-only cdrom hdc. vm-raw: ``root_disk`` is the qcow2 overlay on ``root_device``
    (backed by ``image``) plus the optional scratch LV on ``scratch_device`` (bug B3).
    """
    profile = vm_profile(model)
    if root_disk is None:
        raise ValueError("a root disk is required")
    if profile.disk_image:
        disks = [DiskSpec(root_disk, root_device, fmt="qcow2")]
        if scratch_lv:
            disks.append(DiskSpec(scratch_lv, scratch_device, block=True))
    else:
        disks = [DiskSpec(root_disk, root_device, block=root_is_block),
                 DiskSpec(image, CDROM_TARGET, device="cdrom", readonly=True)]
    if config_drive_iso:
        disks.append(DiskSpec(config_drive_iso, CONFIG_DRIVE_TARGET, device="cdrom",
                              readonly=True))
    return tuple(disks)


def vm_domain_spec(model: str, domain_type: str, *, name: str, uuid: str, ordinal: int,
                   processors: int, mb_per_processor: int, console_log: str,
                   disks: Tuple[DiskSpec, ...], emulator: Optional[str] = None,
                   nwfilter: Optional[str] = "clean-traffic",
                   guest_to_guest: bool = False) -> DomainSpec:
    """The DomainSpec of a VM slot; ``domain_type`` qemu drops host-passthrough and emulator;
    its bridge port is isolated from the other machines' unless ``guest_to_guest``."""
    if domain_type not in DOMAIN_TYPES:
        raise ValueError(f"domain_type must be one of {', '.join(DOMAIN_TYPES)}")
    kvm = domain_type == "kvm"
    return DomainSpec(
        domain_type=domain_type, name=name, uuid=uuid,
        memory_mib=mb_per_processor * processors, vcpus=processors,
        boot_device=vm_profile(model).boot_device,
        disks=disks, mac=naming.machine_mac(ordinal), console_log=console_log,
        vnc_port=naming.vnc_port(ordinal), emulator=emulator if kvm else None,
        host_passthrough=kvm, nwfilter=nwfilter, port_isolated=not guest_to_guest)


SELFTEST_MEMORY_MIB = 128
SELFTEST_MAC = "56:4D:00:00:00:01"        # outside the 56:4D:A9:FE slot MACs: no DHCP lease


def selftest_domain_spec(domain_type: str, *, name: str, uuid: str, image: Optional[str],
                         console_log: str, emulator: Optional[str] = None) -> DomainSpec:
    """``vac selftest``'s tiny machine: one processor, 128 MiB, the ISO ``image`` as its
    cdrom (None: no disk at all, the firmware runs and waits), on the NAT network, and no
    graphics (a VNC port could collide with a slot's fixed one)."""
    if domain_type not in DOMAIN_TYPES:
        raise ValueError(f"domain_type must be one of {', '.join(DOMAIN_TYPES)}")
    disks = () if image is None else (DiskSpec(image, CDROM_TARGET, device="cdrom",
                                               readonly=True),)
    kvm = domain_type == "kvm"
    return DomainSpec(domain_type=domain_type, name=name, uuid=uuid,
                      memory_mib=SELFTEST_MEMORY_MIB, vcpus=1, boot_device="cdrom",
                      disks=disks, mac=SELFTEST_MAC, console_log=console_log,
                      vnc_port=None, emulator=emulator if kvm else None,
                      host_passthrough=kvm, nwfilter=None)


def domain_xml(spec: DomainSpec) -> str:
    """Serialise ``spec`` as an indented libvirt ``<domain>`` document."""
    dom = ET.Element("domain", type=spec.domain_type)
    _text(dom, "name", spec.name)
    _text(dom, "uuid", spec.uuid)
    _text(dom, "memory", str(spec.memory_mib), unit="MiB")
    _text(dom, "currentMemory", str(spec.memory_mib), unit="MiB")
    _text(dom, "vcpu", str(spec.vcpus))
    dom.append(_sysinfo(spec.uuid))
    dom.append(_os(spec.boot_device))
    pm = ET.SubElement(dom, "pm")
    ET.SubElement(pm, "suspend-to-disk", enabled="no")
    ET.SubElement(pm, "suspend-to-mem", enabled="no")
    if spec.host_passthrough:
        ET.SubElement(dom, "cpu", mode="host-passthrough")
    features = ET.SubElement(dom, "features")
    for feature in ("acpi", "apic", "pae"):
        ET.SubElement(features, feature)
    ET.SubElement(dom, "clock", offset="utc")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _text(dom, event, "destroy")
    dom.append(_devices(spec))
    ET.indent(dom, space="  ")
    return ET.tostring(dom, encoding="unicode") + "\n"


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    el.text = text
    return el


def _sysinfo(uuid: str) -> ET.Element:
    sysinfo = ET.Element("sysinfo", type="smbios")
    system = ET.SubElement(sysinfo, "system")
    for key, value in (("manufacturer", SYSINFO_MANUFACTURER), ("product", SYSINFO_PRODUCT),
                       ("serial", uuid), ("uuid", uuid), ("family", "Virtual Machine")):
        _text(system, "entry", value, name=key)
    return sysinfo


def _os(boot_device: str) -> ET.Element:
    os_el = ET.Element("os")
    _text(os_el, "type", "hvm", arch="x86_64", machine="pc")
    ET.SubElement(os_el, "boot", dev=boot_device)
    ET.SubElement(os_el, "bios", useserial="yes")
    ET.SubElement(os_el, "smbios", mode="sysinfo")
    return os_el


def _devices(spec: DomainSpec) -> ET.Element:
    devices = ET.Element("devices")
    if spec.emulator:
        _text(devices, "emulator", spec.emulator)
    for disk in spec.disks:
        devices.append(_disk(disk))
    devices.append(_interface(spec.network, spec.mac, spec.nwfilter, spec.port_isolated))
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=spec.console_log)
    ET.SubElement(serial, "target", port=str(spec.serial_port))
    if spec.vnc_port is not None:
        ET.SubElement(devices, "graphics", type="vnc", port=str(spec.vnc_port),
                      keymap="en-gb", listen="127.0.0.1")
    video = ET.SubElement(devices, "video")
    ET.SubElement(video, "model", type="vga", vram="9216", heads="1")
    _pci(video, slot=2)
    return devices


def _disk(disk: DiskSpec) -> ET.Element:
    el = ET.Element("disk", type="block" if disk.block else "file", device=disk.device)
    ET.SubElement(el, "driver", name="qemu", type=disk.fmt, cache="unsafe",
                  error_policy="report")
    ET.SubElement(el, "source", **({"dev": disk.source} if disk.block else {"file": disk.source}))
    ET.SubElement(el, "target", dev=disk.target, bus=bus_for(disk.target))
    if disk.readonly:
        ET.SubElement(el, "readonly")
    return el


def _interface(network: str, mac: str, nwfilter: Optional[str],
               port_isolated: bool) -> ET.Element:
    el = ET.Element("interface", type="network")
    ET.SubElement(el, "source", network=network)
    ET.SubElement(el, "mac", address=mac)
    ET.SubElement(el, "model", type="virtio")
    _pci(el, slot=3)
    if nwfilter:
        ET.SubElement(el, "filterref", filter=nwfilter)
    ET.SubElement(el, "port", isolated="yes" if port_isolated else "no")
    return el


def interface_ports(xml: str, network: str = NAT_NETWORK_NAME) -> List[Tuple[str, bool]]:
    """(host device, isolation wanted) of each interface on ``network`` in a running
    domain's XML; an interface without ``<port isolated=..>`` (made before vac isolated
    machines) is to be isolated. Unparsable XML gives []."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return []
    ports = []
    for iface in root.iter("interface"):
        source, target = iface.find("source"), iface.find("target")
        if source is None or source.get("network") != network or target is None \
                or not target.get("dev"):
            continue
        port = iface.find("port")
        ports.append((target.get("dev"), port is None or port.get("isolated") != "no"))
    return ports


def _pci(parent: ET.Element, slot: int) -> None:
    ET.SubElement(parent, "address", type="pci", domain="0x0000", bus="0x00",
                  slot=f"0x{slot:02x}", function="0x0")
