"""The libvirt adapter: the only module in vac that imports ``libvirt``.

States and error codes are translated here (SPEC §3.4.1, §3.9, §4.1); callers see
:class:`vac.model.DomainInfo`, :class:`NetworkInfo` and :class:`vac.errors.HypervisorError`.
CPU times are seconds. Domains are created transient, networks persistent.
"""

from __future__ import annotations

import contextlib
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import FrozenSet, Iterator, List, Optional

import libvirt

from vac.errors import HypervisorError
from vac.model import DomainInfo, DomainState

log = logging.getLogger(__name__)

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: DomainState.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainState.PMSUSPENDED,
}
_ABSENT = (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_NETWORK)
_NOT_RUNNING = (libvirt.VIR_ERR_OPERATION_INVALID,)


def _silence(_ctx: object, _err: object) -> None:
    """libvirt's default handler prints every error to stderr, even handled ones."""


libvirt.registerErrorHandler(_silence, None)


@dataclass(frozen=True)
class NetworkInfo:
    """A libvirt network as seen now."""

    name: str
    xml: str
    active: bool
    persistent: bool
    autostart: bool


def _message(e: "libvirt.libvirtError") -> str:
    text = (e.get_error_message() or str(e) or "libvirt error").strip()
    return text.splitlines()[0] if text else "libvirt error"


class Hypervisor:
    """One open libvirt connection; use :func:`connect` to get one."""

    def __init__(self, conn: "libvirt.virConnect", uri: str):
        self._conn = conn
        self.uri = uri

    # --- domains --------------------------------------------------------
    def list_domains(self) -> List[DomainInfo]:
        """Every domain the hypervisor knows (active and defined)."""
        try:
            doms = self._conn.listAllDomains(0)
        except libvirt.libvirtError as e:
            raise HypervisorError(f"cannot list domains on {self.uri}: {_message(e)}") from e
        result = []
        for dom in doms:
            info = self._info(dom)
            if info is not None:
                result.append(info)
        return result

    def domain(self, name: str) -> Optional[DomainInfo]:
        """The domain called ``name``, or None if it does not exist."""
        dom = self._lookup(name)
        return None if dom is None else self._info(dom)

    def domain_xml(self, name: str) -> Optional[str]:
        dom = self._lookup(name)
        if dom is None:
            return None
        return self._call(dom.XMLDesc, 0, what=f"read XML of domain {name}")

    def guest_domain_types(self, arch: str = "x86_64") -> FrozenSet[str]:
        """Domain types (kvm, qemu, ...) libvirt can run ``arch`` guests with."""
        caps = self._call(self._conn.getCapabilities, what=f"read capabilities of {self.uri}")
        try:
            root = ET.fromstring(caps)
        except ET.ParseError as e:
            raise HypervisorError(f"cannot parse the capabilities of {self.uri}: {e}") from e
        return frozenset(d.get("type", "") for guest in root.iter("guest")
                         for a in guest.iter("arch") if a.get("name") == arch
                         for d in a.iter("domain"))

    def create_domain(self, xml: str) -> DomainInfo:
        """Create and start a transient domain from ``xml``."""
        try:
            dom = self._conn.createXML(xml, 0)
        except libvirt.libvirtError as e:
            raise HypervisorError(f"cannot create domain on {self.uri}: {_message(e)}") from e
        info = self._info(dom)
        if info is None:
            raise HypervisorError("domain vanished immediately after creation")
        return info

    def define_domain(self, xml: str) -> str:
        """Define a persistent (inactive) domain; returns its name."""
        dom = self._call(self._conn.defineXML, xml, what="define domain")
        return dom.name()

    def shutdown_domain(self, name: str) -> bool:
        """Request an ACPI shutdown; False if the domain is absent or not running."""
        return self._domain_op(name, "shutdown")

    def destroy_domain(self, name: str) -> bool:
        """Hard power-off; False if the domain is absent or already off."""
        return self._domain_op(name, "destroy")

    def undefine_domain(self, name: str) -> bool:
        """Remove a persistent definition; False if absent."""
        return self._domain_op(name, "undefine")

    def has_nwfilter(self, name: str) -> bool:
        """True if the network filter ``name`` (e.g. clean-traffic) is defined.

        False as well when the driver has no network filters at all (e.g. test:///).
        """
        try:
            self._conn.nwfilterLookupByName(name)
            return True
        except libvirt.libvirtError as e:
            if e.get_error_code() in (libvirt.VIR_ERR_NO_NWFILTER, libvirt.VIR_ERR_NO_SUPPORT):
                return False
            raise HypervisorError(f"cannot look up nwfilter {name}: {_message(e)}") from e

    # --- networks -------------------------------------------------------
    def network(self, name: str) -> Optional[NetworkInfo]:
        """The network called ``name`` with its XML and flags, or None if absent."""
        net = self._lookup_network(name)
        if net is None:
            return None
        what = f"inspect network {name}"
        return NetworkInfo(name=name, xml=self._call(net.XMLDesc, 0, what=what),
                           active=bool(self._call(net.isActive, what=what)),
                           persistent=bool(self._call(net.isPersistent, what=what)),
                           autostart=bool(self._call(net.autostart, what=what)))

    def define_network(self, xml: str) -> None:
        """Persistently define a network (not started)."""
        self._call(self._conn.networkDefineXML, xml, what="define network")

    def start_network(self, name: str) -> None:
        self._call(self._need_network(name).create, what=f"start network {name}")

    def set_network_autostart(self, name: str) -> None:
        self._call(self._need_network(name).setAutostart, 1, what=f"autostart network {name}")

    def add_dhcp_host(self, name: str, host_xml: str) -> None:
        """Add one ``<host>`` entry to the network's DHCP section, live and persistent."""
        net = self._need_network(name)
        flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
        if net.isActive():
            flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
        self._call(net.update, libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                   libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, host_xml, flags,
                   what=f"add DHCP host to network {name}")

    def destroy_network(self, name: str) -> bool:
        """Stop the network; False if absent or inactive."""
        net = self._lookup_network(name)
        if net is None or not net.isActive():
            return False
        self._call(net.destroy, what=f"destroy network {name}")
        return True

    def undefine_network(self, name: str) -> bool:
        net = self._lookup_network(name)
        if net is None:
            return False
        try:
            net.undefine()
        except libvirt.libvirtError as e:
            if e.get_error_code() in _ABSENT or e.get_error_code() in _NOT_RUNNING:
                return False
            raise HypervisorError(f"cannot undefine network {name}: {_message(e)}") from e
        return True

    def close(self) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.close()

    # --- helpers --------------------------------------------------------
    def _call(self, fn, *args, what: str):
        try:
            return fn(*args)
        except libvirt.libvirtError as e:
            raise HypervisorError(f"cannot {what}: {_message(e)}") from e

    def _find(self, fn, name: str, kind: str):
        try:
            return fn(name)
        except libvirt.libvirtError as e:
            if e.get_error_code() in _ABSENT:
                return None
            raise HypervisorError(f"cannot look up {kind} {name}: {_message(e)}") from e

    def _lookup(self, name: str):
        return self._find(self._conn.lookupByName, name, "domain")

    def _lookup_network(self, name: str):
        return self._find(self._conn.networkLookupByName, name, "network")

    def _need_network(self, name: str):
        net = self._lookup_network(name)
        if net is None:
            raise HypervisorError(f"network {name} does not exist")
        return net

    def _domain_op(self, name: str, op: str) -> bool:
        dom = self._lookup(name)
        if dom is None:
            return False
        try:
            getattr(dom, op)()
        except libvirt.libvirtError as e:
            code = e.get_error_code()
            if code in _ABSENT or code in _NOT_RUNNING:
                return False
            raise HypervisorError(f"cannot {op} domain {name}: {_message(e)}") from e
        return True

    def _info(self, dom) -> Optional[DomainInfo]:
        try:
            state, _maxmem, _mem, _vcpus, cpu_ns = dom.info()
            return DomainInfo(name=dom.name(), uuid=dom.UUIDString(),
                              state=_STATES.get(state, DomainState.NOSTATE),
                              cpu_seconds=cpu_ns / 1e9)
        except libvirt.libvirtError as e:
            if e.get_error_code() in _ABSENT:
                return None          # a transient domain that went away meanwhile
            raise HypervisorError(f"cannot read domain info: {_message(e)}") from e


@contextlib.contextmanager
def connect(uri: str) -> Iterator[Hypervisor]:
    """Open ``uri`` (never the libvirt default) for the duration of a ``with`` block."""
    if not uri:
        raise HypervisorError("no libvirt URI configured")
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as e:
        raise HypervisorError(f"Failed to open libvirt connection to {uri}: {_message(e)}") from e
    hv = Hypervisor(conn, uri)
    try:
        yield hv
    finally:
        hv.close()
