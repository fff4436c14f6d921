"""The SPEC §4.3 iptables-save pattern check."""

from __future__ import annotations

import os

from vac.core import iptables

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "iptables-save-libvirt.txt")


def read_fixture() -> str:
    with open(DATA, encoding="utf-8") as f:
        return f.read()


def test_libvirt_rules_pass():
    assert iptables.missing_rules(read_fixture()) == []


def test_missing_checksum_rule_warns():
    text = "\n".join(l for l in read_fixture().splitlines() if "CHECKSUM" not in l)
    warnings = iptables.missing_rules(text)
    assert len(warnings) == 1
    assert warnings[0].startswith('Failed to match "virbr1.*CHECKSUM" in output of iptables-save')
    assert warnings[0].endswith("Have the NAT rules been removed?")


def test_empty_output_misses_all_seven():
    assert len(iptables.missing_rules("")) == 7


def test_other_bridge():
    text = read_fixture().replace("virbr1", "br9")
    assert iptables.missing_rules(text, bridge="br9") == []
    assert len(iptables.missing_rules(text)) == 5
