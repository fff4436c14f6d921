"""The podman network of the docker model: a CNI network on vac's own NAT bridge."""

from __future__ import annotations

import ipaddress
import json

import pytest

from vac.core import containernet, naming


@pytest.mark.golden
def test_golden_cni_conflist(golden):
    golden.check(containernet.cni_conflist_text(), "containernet/vac.conflist")


def test_no_podman_made_gateway_nat_or_firewall_rules():
    """vac's libvirt network and rules own NAT and firewall: the CNI list adds none."""
    conf = containernet.cni_conflist()
    bridge = conf["plugins"][0]
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "tuning"]
    assert (bridge["bridge"], bridge["isGateway"], bridge["ipMasq"]) == ("virbr1", False, False)
    assert json.loads(containernet.cni_conflist_text()) == conf


@pytest.mark.parametrize("ordinal", [0, 1, 252, 253, 600, 20000])
def test_every_slot_address_is_in_the_ipam_ranges(ordinal):
    ip = ipaddress.ip_address(naming.machine_ip(ordinal))
    ranges = containernet.cni_conflist()["plugins"][0]["ipam"]["ranges"][0]
    assert any(ipaddress.ip_address(r["rangeStart"]) <= ip <= ipaddress.ip_address(r["rangeEnd"])
               for r in ranges)
    assert all(ipaddress.ip_address(r["gateway"]) == ipaddress.ip_address("169.254.169.253")
               for r in ranges)


def test_run_options_give_the_slot_address_mac_and_no_net_raw():
    opts = containernet.run_options(7)
    assert opts == ["--network", "vac", "--ip", "169.254.169.7",
                    "--mac-address", "56:4d:a9:fe:a9:07", "--dns", "169.254.169.253",
                    "--cap-drop", "NET_RAW"]
