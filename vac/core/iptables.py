"""iptables on the factory (SPEC §4.3): the NAT check and vac's guest firewall. Pure.

* The NAT check (bug B8: run it, warnings only): the patterns of the original are searched
  (regular expressions) in the text ``iptables-save`` printed.
* The guest firewall: two chains of the filter table that vac owns. ``VAC_INP`` (jumped
  to first from INPUT) lets machines on the bridge reach only DHCP, DNS and MJF on
  169.254.169.253, metadata on 169.254.169.254 and ``host_tcp_ports_for_machines``, and
  drops everything else they send to the factory itself: the VacQuery responder (UDP 995)
  and every other service on any of the factory's addresses. ``VAC_FWD`` (jumped to first
  from FORWARD) drops machine-to-machine traffic routed through the factory; switched
  traffic between machines is stopped by bridge port isolation (see domxml), which
  ``-m physdev --physdev-is-bridged`` leaves alone. Traffic to the outside world (NAT)
  is not touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from vac.constants import FACTORY_ADDRESS, METADATA_ADDRESS, NAT_BRIDGE

INPUT_CHAIN = "VAC_INP"
FORWARD_CHAIN = "VAC_FWD"
_JUMPS = (("INPUT", INPUT_CHAIN), ("FORWARD", FORWARD_CHAIN))
_ANY_ADDRESS = ("", "0.0.0.0")


def expected_patterns(bridge: str = NAT_BRIDGE) -> List[Tuple[str, ...]]:
    """Each entry is satisfied if any of its regular expressions matches."""
    b = re.escape(bridge)
    return [
        (r"169\.254\.0\.0.*tcp.*MASQUERADE",),
        (r"169\.254\.0\.0.*udp.*MASQUERADE",),
        (b + r".*udp.*ACCEPT",),
        (b + r".*tcp.*ACCEPT",),
        (r"169\.254\.0\.0.*" + b + r".*ACCEPT", b + r".*169\.254\.0\.0.*ACCEPT"),
        (b + r".*" + b + r".*ACCEPT",),
        (b + r".*CHECKSUM",),
    ]


def missing_rules(iptables_save: str, bridge: str = NAT_BRIDGE) -> List[str]:
    """One warning per expected rule with no match in ``iptables_save``."""
    warnings = []
    for alternatives in expected_patterns(bridge):
        if not any(re.search(p, iptables_save) for p in alternatives):
            shown = " or ".join(f'"{p}"' for p in alternatives)
            warnings.append(f"Failed to match {shown} in output of iptables-save. "
                            "Have the NAT rules been removed?")
    return warnings


# --- the guest firewall ------------------------------------------------------------------

@dataclass(frozen=True)
class GuestFirewall:
    """What machines on ``bridge`` may reach on the factory: (address, TCP port) pairs."""

    bridge: str = NAT_BRIDGE
    mjf: Tuple[str, int] = (FACTORY_ADDRESS, 80)
    metadata: Tuple[str, int] = (METADATA_ADDRESS, 80)
    extra_tcp_ports: Tuple[int, ...] = ()       # on FACTORY_ADDRESS (e.g. a local Squid)


def guest_firewall(settings, bridge: str = NAT_BRIDGE) -> GuestFirewall:
    """The firewall for a factory's ``[settings]``; a service bound to all addresses is
    reached by machines at its standard address (169.254.169.253 or .254)."""
    def target(address: str, standard: str) -> str:
        return standard if address in _ANY_ADDRESS else address
    return GuestFirewall(
        bridge=bridge,
        mjf=(target(settings.mjf_bind_address, FACTORY_ADDRESS), settings.mjf_port),
        metadata=(target(settings.metadata_bind_address, METADATA_ADDRESS),
                  settings.metadata_port),
        extra_tcp_ports=tuple(settings.host_tcp_ports_for_machines))


def chain_rules(fw: GuestFirewall) -> Dict[str, List[str]]:
    """{chain: rules} as ``iptables-save`` (1.8, nf_tables or legacy) prints them."""
    b = fw.bridge

    def tcp_to(address: str, port: int) -> str:
        return f"-d {address}/32 -i {b} -p tcp -m tcp --dport {port} -j ACCEPT"
    allowed = [(FACTORY_ADDRESS, 53)] + [fw.metadata, fw.mjf] + \
        [(FACTORY_ADDRESS, p) for p in fw.extra_tcp_ports]
    seen: List[Tuple[str, int]] = []
    for pair in allowed:
        if pair not in seen:
            seen.append(pair)
    inp = [f"-i {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
           f"-i {b} -p udp -m udp --dport 67 -j ACCEPT",
           f"-d {FACTORY_ADDRESS}/32 -i {b} -p udp -m udp --dport 53 -j ACCEPT"]
    inp += [tcp_to(address, port) for address, port in seen]
    inp.append(f"-i {b} -j DROP")
    fwd = [f"-i {b} -o {b} -m physdev ! --physdev-is-bridged -j DROP"]
    return {INPUT_CHAIN: inp, FORWARD_CHAIN: fwd}


def filter_chains(iptables_save: str) -> Dict[str, List[str]]:
    """{chain: its rules without ``-A CHAIN``} of the filter table (declared chains too)."""
    chains: Dict[str, List[str]] = {}
    table = None
    for line in iptables_save.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
        elif table != "filter":
            continue
        elif line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            _, chain, *rest = line.split(None, 2)
            chains.setdefault(chain, []).append(rest[0] if rest else "")
    return chains


def canonical(rule: str) -> Tuple[Tuple[str, ...], ...]:
    """A rule as sorted option groups, so that spellings of one rule compare equal
    (implicit ``-m tcp``/``-m udp`` dropped, ``/32`` added to single addresses)."""
    tokens = rule.split()
    kept: List[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == "-m" and i + 1 < len(tokens) and tokens[i + 1] in ("tcp", "udp"):
            i += 2
            continue
        kept.append(tokens[i])
        i += 1
    groups: List[List[str]] = []
    for token in kept:
        starts = token.startswith("-") and not (groups and groups[-1] == ["!"])
        if starts or token == "!" or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    for group in groups:
        if group[-2:-1] and group[-2] in ("-s", "-d") and "/" not in group[-1]:
            group[-1] += "/32"
    return tuple(sorted(tuple(g) for g in groups))


def _same(actual: Sequence[str], wanted: Sequence[str]) -> bool:
    return [canonical(r) for r in actual] == [canonical(r) for r in wanted]


def firewall_problems(fw: GuestFirewall, iptables_save: str) -> List[str]:
    """What differs from the guest firewall in ``iptables_save`` (empty: all in place)."""
    chains = filter_chains(iptables_save)
    problems = []
    for chain, rules in chain_rules(fw).items():
        if chain not in chains:
            problems.append(f"chain {chain} is missing")
        elif not _same(chains[chain], rules):
            problems.append(f"chain {chain} differs from vac's rules")
    for builtin, chain in _JUMPS:
        rules = chains.get(builtin, [])
        if not rules or canonical(rules[0]) != canonical(f"-j {chain}"):
            problems.append(f"{builtin} does not jump to {chain} first")
    return problems


def restore_script(fw: GuestFirewall, iptables_save: str) -> Optional[str]:
    """Input for ``iptables-restore --noflush`` that puts the guest firewall in place
    (chains refilled, one jump to each at the top), or None if nothing is missing."""
    if not firewall_problems(fw, iptables_save):
        return None
    chains = filter_chains(iptables_save)
    lines = ["*filter"] + [f":{chain} - [0:0]" for chain in chain_rules(fw)]
    for chain, rules in chain_rules(fw).items():
        lines += [f"-A {chain} {rule}" for rule in rules]
    for builtin, chain in _JUMPS:
        jump = canonical(f"-j {chain}")
        copies = sum(1 for rule in chains.get(builtin, []) if canonical(rule) == jump)
        lines += [f"-D {builtin} -j {chain}"] * copies + [f"-I {builtin} 1 -j {chain}"]
    return "\n".join(lines + ["COMMIT"]) + "\n"


def site_rules(fw: GuestFirewall) -> str:
    """The guest firewall as an iptables-restore fragment for sites that keep their own
    rules (``manage_iptables = false``): goes into the ``*filter`` table."""
    lines = [f":{chain} - [0:0]" for chain in chain_rules(fw)]
    lines += [f"-I {builtin} 1 -j {chain}" for builtin, chain in _JUMPS]
    for chain, rules in chain_rules(fw).items():
        lines += [f"-A {chain} {rule}" for rule in rules]
    return "\n".join(lines) + "\n"


def isolation_changes(ports: Dict[str, bool], wanted: Dict[str, bool]) -> List[Tuple[str, bool]]:
    """(bridge port, isolated) to set so that every port is isolated unless ``wanted``
    (from the machines' domain XML) says otherwise; ``ports`` maps port -> isolated now."""
    return [(dev, wanted.get(dev, True)) for dev, isolated in sorted(ports.items())
            if wanted.get(dev, True) != isolated]
