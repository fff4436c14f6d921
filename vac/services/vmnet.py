"""The private NAT network, checked every cycle (SPEC §4.1, §4.3, §4.4; bug B8), with
the guest firewall and bridge port isolation (vac.services.guestfw)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Optional

from vac.adapters import host as host_facts
from vac.adapters.atomicfile import read_text, write_atomic
from vac.constants import NAT_NETWORK_NAME
from vac.core import hostsfile, iptables, naming, netxml
from vac.core.configtypes import Config
from vac.errors import VacError
from vac.paths import Paths
from vac.services import guestfw

if TYPE_CHECKING:   # the host adapters (LVM, images, psutil) load only where a network is made
    from vac.services.hostops import HostOps

log = logging.getLogger(__name__)

START_HINT = ('(Do you need to install dnsmasq RPM >= 2.48-13? Old "dnsmasq --listen-address '
              '169.254.169.253" process still running? Did you disable Zeroconf? Does virbr1 '
              'already exist?)')


def slot_count(cfg: Config, paths: Paths, processors: Optional[int] = None) -> int:
    """How many slots get DHCP and /etc/hosts entries: every slot (one per host
    processor, SPEC §1.7, as counted under --root; ``processors`` if the caller has
    counted them already), at least 100 as the original."""
    if processors is None:
        processors = host_facts.processor_count(paths)
    return naming.network_slot_count(cfg.settings.total_processors, processors)


def ensure_network(hv, cfg: Config, paths: Paths, *, host: Optional[HostOps] = None,
                   processors: Optional[int] = None) -> bool:
    """Make the NAT network right; False if this cycle must not create machines."""
    if host is None:
        from vac.services.hostops import default_host
        host = default_host(paths)
    factory = cfg.settings.factory_hostname
    count = slot_count(cfg, paths, processors)
    try:
        info = hv.network(NAT_NETWORK_NAME)
        if info is not None and not netxml.has_factory_address(info.xml):
            log.warning("%s defined with wrong IP address - removing!", NAT_NETWORK_NAME)
            hv.destroy_network(NAT_NETWORK_NAME)
            hv.undefine_network(NAT_NETWORK_NAME)
            host.net.fix_networking()
            info = None
        if info is not None and not info.persistent:
            log.warning("%s is a transient network - replacing it", NAT_NETWORK_NAME)
            hv.destroy_network(NAT_NETWORK_NAME)
            info = None
        if info is None:
            log.info("No libvirt network %s defined for NAT", NAT_NETWORK_NAME)
            hv.define_network(netxml.network_xml(factory, count, cfg.settings.forward_dev))
            info = hv.network(NAT_NETWORK_NAME)
        if info is not None and info.active:
            _add_missing_hosts(hv, info.xml, factory, count)
    except VacError as e:
        log.error('Failed to define network %s due to "%s"', NAT_NETWORK_NAME, e)
        return False
    write_hosts_lines(paths, factory, count)
    ready = (_start(hv, cfg, host, info) and _autostart(hv, info)
             and _metadata_address(host) and _check_iptables(cfg, host)
             and guestfw.ensure_guest_firewall(cfg, host))
    if ready:
        guestfw.ensure_port_isolation(hv, cfg, host)
    return ready


def _add_missing_hosts(hv, xml: str, factory: str, count: int) -> None:
    for entry in netxml.missing_dhcp_hosts(xml, factory, count):
        try:
            hv.add_dhcp_host(NAT_NETWORK_NAME, netxml.host_element_xml(entry))
        except VacError as e:
            log.warning("%s: cannot add DHCP host entry: %s", entry[1], e)
            return


def write_hosts_lines(paths: Paths, factory: str, count: int) -> bool:
    """Append missing ``# added by Vac`` lines to /etc/hosts; True if it was rewritten."""
    present = read_text(paths.etc_hosts, default="") or ""
    new = hostsfile.updated_text(present, hostsfile.desired_lines(factory, count))
    if new is None:
        return False
    try:
        write_atomic(paths.etc_hosts, new)
    except VacError as e:
        log.warning("cannot update %s: %s", paths.etc_hosts, e)
        return False
    return True


def _attempt(step: Callable[[], object], failure: str, *args: object) -> bool:
    """Run one network step; on a VacError log ``failure % (*args, error)``, return False."""
    try:
        step()
        return True
    except VacError as e:
        log.error(failure, *args, e)
        return False


def _start(hv, cfg: Config, host: HostOps, info) -> bool:
    if info is not None and info.active:
        return True
    started = _attempt(lambda: hv.start_network(NAT_NETWORK_NAME),
                       "Failed to start network %s: %s " + START_HINT, NAT_NETWORK_NAME)
    if not started and cfg.settings.fix_networking:
        host.net.fix_networking()
    return started


def _autostart(hv, info) -> bool:
    if info is not None and info.autostart:
        return True
    return _attempt(lambda: hv.set_network_autostart(NAT_NETWORK_NAME),
                    "Failed to set %s to autostart: %s", NAT_NETWORK_NAME)


def _metadata_address(host: HostOps) -> bool:
    return _attempt(host.net.ensure_metadata_address,
                    "Failed to add the metadata address to %s: %s", host.net.bridge)


def _check_iptables(cfg: Config, host: HostOps) -> bool:
    """Warnings only (never vetoes the cycle)."""
    if not cfg.settings.check_iptables:
        return True
    try:
        warnings = iptables.missing_rules(host.net.iptables_save(), host.net.bridge)
    except VacError as e:
        log.warning("iptables NAT check not possible: %s", e)
        return True
    for warning in warnings:
        log.warning("%s", warning)
    if warnings:
        log.warning("iptables NAT check failed for %s", host.net.bridge)
    else:
        log.info("iptables NAT check passed for %s", host.net.bridge)
    return True
