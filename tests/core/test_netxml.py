"""NAT network XML: name, bridge, address, forward dev, DHCP host for every slot."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import libvirt
import pytest

from vac.core import netxml

NODE_XML = os.path.join(os.path.dirname(__file__), "..", "data", "libvirt", "node.xml")
libvirt.registerErrorHandler(lambda _c, _e: None, None)


@pytest.mark.golden
def test_golden_three_slots_with_forward_dev(golden):
    xml = netxml.network_xml("f1.example.com", 3, forward_dev="eth0")
    golden.check(xml, "netxml/three-slots-eth0.xml")


def test_elements_and_hosts_beyond_99():
    root = ET.fromstring(netxml.network_xml("f1.example.com", 300))
    assert root.findtext("name") == "vac_169.254.0.0"
    assert root.find("forward").get("mode") == "nat"
    assert root.find("forward").get("dev") is None
    assert root.find("bridge").get("name") == "virbr1"
    ip = root.find("ip")
    assert (ip.get("address"), ip.get("netmask")) == ("169.254.169.253", "255.255.0.0")
    hosts = ip.findall("dhcp/host")
    assert len(hosts) == 300
    assert ip.find("dhcp/range") is None
    assert hosts[7].attrib == {"mac": "56:4D:A9:FE:A9:07", "name": "f1-07.example.com",
                               "ip": "169.254.169.7"}
    assert hosts[123].get("name") == "f1-123.example.com"
    assert len({h.get("ip") for h in hosts}) == 300
    assert "169.254.169.253" not in {h.get("ip") for h in hosts}


def test_accepted_by_libvirt_test_driver():
    conn = libvirt.open(f"test://{os.path.abspath(NODE_XML)}")
    try:
        net = conn.networkDefineXML(netxml.network_xml("f1.example.com", 260, "eth0"))
        assert netxml.has_factory_address(net.XMLDesc(0))
        assert netxml.missing_dhcp_hosts(net.XMLDesc(0), "f1.example.com", 260) == []
    finally:
        conn.close()


def test_has_factory_address():
    good = netxml.network_xml("f1.example.com", 1)
    assert netxml.has_factory_address(good)
    assert not netxml.has_factory_address(good.replace("169.254.169.253", "169.254.1.1"))
    assert not netxml.has_factory_address("<network><name>x</name></network>")
    assert not netxml.has_factory_address("not xml")


def test_missing_dhcp_hosts_case_insensitive():
    xml = netxml.network_xml("f1.example.com", 2).replace("56:4D:A9:FE:A9:00",
                                                          "56:4d:a9:fe:a9:00")
    missing = netxml.missing_dhcp_hosts(xml, "f1.example.com", 4)
    assert [m[2] for m in missing] == ["169.254.169.2", "169.254.169.3"]
    assert netxml.host_element_xml(missing[0]) == \
        '<host mac="56:4D:A9:FE:A9:02" name="f1-02.example.com" ip="169.254.169.2" />'
