"""Slot identity: names, addresses, MACs and VNC ports for any number of slots."""

import pytest

from vac.core import naming


@pytest.mark.parametrize("factory,ordinal,name,ip,mac,vnc", [
    ("f1.example.com", 0, "f1-00.example.com", "169.254.169.0", "56:4D:A9:FE:A9:00", 5900),
    ("f1.example.com", 7, "f1-07.example.com", "169.254.169.7", "56:4D:A9:FE:A9:07", 5907),
    ("factory1.example.com", 99, "factory1-99.example.com", "169.254.169.99",
     "56:4D:A9:FE:A9:63", 5999),
    ("factory1.example.com", 100, "factory1-100.example.com", "169.254.169.100",
     "56:4D:A9:FE:A9:64", 6000),
    ("f1.example.com", 252, "f1-252.example.com", "169.254.169.252", "56:4D:A9:FE:A9:FC", 6152),
    ("f1.example.com", 253, "f1-253.example.com", "169.254.170.0", "56:4D:A9:FE:AA:00", 6153),
    ("f1.example.com", 600, "f1-600.example.com", "169.254.171.91", "56:4D:A9:FE:AB:5B", 6500),
])
def test_slot_identity(factory, ordinal, name, ip, mac, vnc):
    assert naming.machine_name(factory, ordinal) == name
    assert naming.machine_ip(ordinal) == ip
    assert naming.machine_mac(ordinal) == mac
    assert naming.vnc_port(ordinal) == vnc
    assert naming.ordinal_from_ip(ip) == ordinal
    assert naming.ordinal_from_name(factory, name) == ordinal


def test_factory_and_metadata_addresses_are_never_slots():
    assert naming.ordinal_from_ip("169.254.169.253") is None
    assert naming.ordinal_from_ip("169.254.169.254") is None
    assert naming.ordinal_from_ip("10.0.0.1") is None
    ips = {naming.machine_ip(n) for n in range(2000)}
    assert len(ips) == 2000
    assert not ips & {"169.254.169.253", "169.254.169.254"}


def test_bad_ordinal_and_foreign_names():
    with pytest.raises(ValueError):
        naming.machine_ip(-1)
    assert naming.ordinal_from_name("f1.example.com", "f2-01.example.com") is None
    assert naming.ordinal_from_name("f1.example.com", "f1-1.example.com") is None
    assert naming.ordinal_from_name("f1.example.com", "f1-01.other.com") is None
