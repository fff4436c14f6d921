"""Keep machines away from the factory's services and from each other (SPEC §4.3).

Checked and repaired every factory cycle, after the NAT network is up:

* the iptables chains VAC_INP / VAC_FWD (vac.core.iptables): installed with
  ``iptables-restore --noflush`` when something differs, if ``manage_iptables``;
  otherwise missing rules are only warned about (``check_iptables``);
* bridge port isolation: every port of the NAT bridge is isolated except those of
  machines created with ``guest_to_guest`` (their domain XML says ``isolated='no'``).
"""

from __future__ import annotations

import logging
from typing import Dict

from vac.core import domxml, iptables, naming
from vac.core.configtypes import Config
from vac.errors import VacError
from vac.services.hostops import HostOps

log = logging.getLogger(__name__)


def ensure_guest_firewall(cfg: Config, host: HostOps) -> bool:
    """Put vac's guest firewall in place; False if it is vac's to manage and it cannot be
    put in place (then no machine is created: it could reach the responder)."""
    settings = cfg.settings
    manage = settings.manage_iptables
    if not manage and not settings.check_iptables:
        return True
    fw = iptables.guest_firewall(settings, host.net.bridge)
    try:
        save = host.net.iptables_save()
    except VacError as e:
        if manage:
            log.error("guest firewall: cannot read the iptables rules: %s - no machines are "
                      "created until it is in place", e)
        else:
            log.warning("guest firewall not checked: %s", e)
        return not manage
    problems = iptables.firewall_problems(fw, save)
    if not problems:
        log.debug("guest firewall in place on %s", fw.bridge)
        return True
    if not manage:
        for problem in problems:
            log.warning("guest firewall: %s (manage_iptables = false: the site's own "
                        "rules must do this; see vac iptables-rules)", problem)
        return True
    fresh = not set(iptables.chain_rules(fw)) & set(iptables.filter_chains(save))
    (log.info if fresh else log.warning)("guest firewall: %s - installing vac's rules",
                                         "; ".join(problems))
    try:
        host.net.iptables_restore(iptables.restore_script(fw, save) or "")
    except VacError as e:
        log.error("guest firewall: cannot install the rules: %s - no machines are created "
                  "until it is in place", e)
        return False
    log.info("guest firewall in place on %s (chains %s, %s)", fw.bridge,
             iptables.INPUT_CHAIN, iptables.FORWARD_CHAIN)
    return True


def wanted_isolation(hv, cfg: Config) -> Dict[str, bool]:
    """{bridge port: isolated?} from the domain XML of this factory's machines."""
    factory = cfg.settings.factory_hostname
    wanted: Dict[str, bool] = {}
    for domain in hv.list_domains():
        if naming.ordinal_from_name(factory, domain.name) is None:
            continue
        for device, isolated in domxml.interface_ports(hv.domain_xml(domain.name) or ""):
            wanted[device] = isolated
    return wanted


def ensure_port_isolation(hv, cfg: Config, host: HostOps, expected: bool = False) -> None:
    """Isolate every bridge port that should be (warnings only: new machines get their
    isolation from their domain XML anyway). ``expected``: a container's new veth port
    is why (the podman backend, right after a start): logged as information."""
    try:
        changes = iptables.isolation_changes(host.net.bridge_ports(),
                                             wanted_isolation(hv, cfg))
        for device, isolated in changes:
            (log.info if expected else log.warning)(
                "bridge port %s of %s is %s - %s it", device, host.net.bridge,
                "not isolated" if isolated else "isolated",
                "isolating" if isolated else "opening (guest_to_guest)")
            host.net.set_port_isolated(device, isolated)
    except VacError as e:
        log.warning("bridge port isolation not checked: %s", e)
