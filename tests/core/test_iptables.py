"""The SPEC §4.3 iptables-save pattern check."""

from __future__ import annotations

import os

from vac.core import iptables
from vac.core.configtypes import Settings

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


# --- the guest firewall ------------------------------------------------------------------

VAC_SAVE = os.path.join(os.path.dirname(__file__), "..", "data", "iptables-save-vac.txt")


def vac_fixture() -> str:
    """A real iptables-save (1.8.9, nf_tables) after vac installed its chains next to
    libvirt's, with host_tcp_ports_for_machines = 3128."""
    with open(VAC_SAVE, encoding="utf-8") as f:
        return f.read()


FW = iptables.guest_firewall(Settings(vac_space="s.example.com",
                                      host_tcp_ports_for_machines=(3128,)))


def test_rules_in_place_in_a_real_save():
    assert iptables.firewall_problems(FW, vac_fixture()) == []
    assert iptables.restore_script(FW, vac_fixture()) is None
    assert iptables.missing_rules(vac_fixture()) == []    # libvirt's rules still there


def test_machines_may_reach_only_dhcp_dns_metadata_mjf_and_listed_ports():
    rules = iptables.chain_rules(FW)[iptables.INPUT_CHAIN]
    accepted = [r for r in rules if r.endswith("-j ACCEPT")]
    assert any("--ctstate RELATED,ESTABLISHED" in r for r in accepted)
    assert any("-p udp -m udp --dport 67" in r for r in accepted)
    assert {("169.254.169.253/32", "udp", "53"), ("169.254.169.253/32", "tcp", "53"),
            ("169.254.169.254/32", "tcp", "80"), ("169.254.169.253/32", "tcp", "80"),
            ("169.254.169.253/32", "tcp", "3128")} == \
        {(r.split()[1], r.split()[5], r.split()[9]) for r in accepted if r.startswith("-d ")}
    assert rules[-1] == "-i virbr1 -j DROP"              # UDP 995 and everything else
    assert not any("995" in r for r in rules)


def test_bind_addresses_and_ports_follow_the_settings():
    fw = iptables.guest_firewall(Settings(vac_space="s.example.com", mjf_bind_address="0.0.0.0",
                                          mjf_port=8080, metadata_port=8081), bridge="br9")
    rules = iptables.chain_rules(fw)[iptables.INPUT_CHAIN]
    assert "-d 169.254.169.253/32 -i br9 -p tcp -m tcp --dport 8080 -j ACCEPT" in rules
    assert "-d 169.254.169.254/32 -i br9 -p tcp -m tcp --dport 8081 -j ACCEPT" in rules
    assert iptables.chain_rules(fw)[iptables.FORWARD_CHAIN] == \
        ["-i br9 -o br9 -m physdev ! --physdev-is-bridged -j DROP"]


def test_nothing_in_place_gives_the_whole_script():
    script = iptables.restore_script(FW, read_fixture())
    assert script.startswith("*filter\n:VAC_INP - [0:0]\n:VAC_FWD - [0:0]\n")
    assert script.endswith("-I INPUT 1 -j VAC_INP\n-I FORWARD 1 -j VAC_FWD\nCOMMIT\n")
    assert "-D " not in script
    assert len(iptables.firewall_problems(FW, read_fixture())) == 4


def test_a_removed_rule_and_a_jump_pushed_down_are_repaired():
    text = vac_fixture().replace("-A VAC_INP -i virbr1 -j DROP\n", "")
    text = text.replace("-A INPUT -j VAC_INP\n-A INPUT -j LIBVIRT_INP\n",
                        "-A INPUT -j LIBVIRT_INP\n-A INPUT -j VAC_INP\n-A INPUT -j VAC_INP\n")
    assert iptables.firewall_problems(FW, text) == [
        "chain VAC_INP differs from vac's rules", "INPUT does not jump to VAC_INP first"]
    script = iptables.restore_script(FW, text)
    assert script.count("-D INPUT -j VAC_INP\n") == 2           # both old jumps go
    assert script.count("-D FORWARD -j VAC_FWD\n") == 1
    assert "-A VAC_INP -i virbr1 -j DROP\n" in script


def test_other_spellings_of_the_same_rule_match():
    assert iptables.canonical("-d 169.254.169.254 -i virbr1 -p tcp --dport 80 -j ACCEPT") == \
        iptables.canonical("-i virbr1 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j ACCEPT")
    assert iptables.canonical("-i b -m physdev ! --physdev-is-bridged -j DROP") != \
        iptables.canonical("-i b -m physdev --physdev-is-bridged -j DROP")


def test_site_rules_are_a_complete_filter_fragment():
    text = iptables.site_rules(FW)
    assert text.splitlines()[:4] == [":VAC_INP - [0:0]", ":VAC_FWD - [0:0]",
                                     "-I INPUT 1 -j VAC_INP", "-I FORWARD 1 -j VAC_FWD"]
    saved = "*filter\n" + text.replace("-I INPUT 1 ", "-A INPUT ") \
        .replace("-I FORWARD 1 ", "-A FORWARD ") + "COMMIT\n"
    assert iptables.firewall_problems(FW, saved) == []


def test_every_port_isolated_unless_its_machine_is_guest_to_guest():
    ports = {"vnet0": False, "vnet1": True, "vnet2": False, "vnet3": True}
    wanted = {"vnet1": False, "vnet2": False}                   # guest_to_guest machines
    assert iptables.isolation_changes(ports, wanted) == [("vnet0", True), ("vnet1", False)]
