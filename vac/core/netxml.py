"""libvirt XML of the private NAT network ``vac_169.254.0.0`` (SPEC §4.1) and checks on it.

Pure: builds the network document with a static DHCP host entry for every slot ordinal
and inspects an existing network's XML (address, missing host entries).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import List, Optional, Tuple

from vac.constants import FACTORY_ADDRESS, NAT_BRIDGE, NAT_NETMASK, NAT_NETWORK_NAME
from vac.core import naming

DhcpHost = Tuple[str, str, str]     # (mac, name, ip)


def dhcp_hosts(factory: str, slot_count: int) -> List[DhcpHost]:
    """(MAC, machine FQDN, IP) for ordinals 0 .. ``slot_count`` - 1."""
    return [(naming.machine_mac(i), naming.machine_name(factory, i), naming.machine_ip(i))
            for i in range(slot_count)]


def host_element_xml(host: DhcpHost) -> str:
    """One ``<host mac=.. name=.. ip=../>`` element, as network.update() wants it."""
    mac, name, ip = host
    return ET.tostring(ET.Element("host", mac=mac, name=name, ip=ip), encoding="unicode")


def network_xml(factory: str, slot_count: int, forward_dev: Optional[str] = None,
                name: str = NAT_NETWORK_NAME, bridge: str = NAT_BRIDGE) -> str:
    """The persistent NAT network definition; ``forward_dev`` sets ``<forward dev=..>``."""
    net = ET.Element("network")
    ET.SubElement(net, "name").text = name
    forward = ET.SubElement(net, "forward", mode="nat")
    if forward_dev:
        forward.set("dev", forward_dev)
    ET.SubElement(net, "bridge", name=bridge, stp="off", delay="0")
    ip = ET.SubElement(net, "ip", address=FACTORY_ADDRESS, netmask=NAT_NETMASK)
    dhcp = ET.SubElement(ip, "dhcp")
    for mac, host_name, host_ip in dhcp_hosts(factory, slot_count):
        ET.SubElement(dhcp, "host", mac=mac, name=host_name, ip=host_ip)
    ET.indent(net, space="  ")
    return ET.tostring(net, encoding="unicode") + "\n"


def _parse(xml: str) -> Optional[ET.Element]:
    try:
        return ET.fromstring(xml)
    except ET.ParseError:
        return None


def has_factory_address(xml: str) -> bool:
    """True if the network XML has an ``<ip>`` element with address 169.254.169.253."""
    root = _parse(xml)
    if root is None:
        return False
    return any(ip.get("address") == FACTORY_ADDRESS for ip in root.iter("ip"))


def missing_dhcp_hosts(xml: str, factory: str, slot_count: int) -> List[DhcpHost]:
    """The wanted host entries whose MAC is not yet in the network XML's DHCP section."""
    root = _parse(xml)
    present = set()
    if root is not None:
        present = {(h.get("mac") or "").upper() for h in root.iter("host")}
    return [h for h in dhcp_hosts(factory, slot_count) if h[0].upper() not in present]
