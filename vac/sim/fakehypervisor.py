"""An in-memory hypervisor with the interface of :class:`vac.adapters.hypervisor.Hypervisor`.

For the factory simulator and fault injection in unit tests; it passes the same contract
tests as the libvirt adapter (tests/contract). Transient domains vanish when shut down or
destroyed, as libvirt's do. ``fail`` maps a method name to an exception to raise once.
"""

from __future__ import annotations

import contextlib
import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from typing import Dict, FrozenSet, Iterator, List, Optional

from vac.errors import HypervisorError
from vac.model import DomainInfo, DomainState


@dataclass(frozen=True)
class FakeNetworkInfo:
    """Same fields as vac.adapters.hypervisor.NetworkInfo."""

    name: str
    xml: str
    active: bool
    persistent: bool
    autostart: bool


@dataclass
class _Domain:
    info: DomainInfo
    xml: str
    persistent: bool


def _parse(xml: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError as e:
        raise HypervisorError(f"cannot {what}: XML error: {e}") from e


class FakeHypervisor:
    """Domains and networks held in dictionaries; CPU time advances with :meth:`tick`."""

    def __init__(self, uri: str = "fake:///"):
        self.uri = uri
        self.domains: Dict[str, _Domain] = {}
        self.networks: Dict[str, FakeNetworkInfo] = {}
        self.fail: Dict[str, Exception] = {}
        self.nwfilters = {"clean-traffic"}
        self.domain_types = {"test"}
        self.calls: List[str] = []
        self.closed = False

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        exc = self.fail.pop(method, None)
        if exc is not None:
            raise exc

    # --- domains --------------------------------------------------------
    def list_domains(self) -> List[DomainInfo]:
        self._enter("list_domains")
        return [d.info for d in self.domains.values()]

    def domain(self, name: str) -> Optional[DomainInfo]:
        self._enter("domain")
        dom = self.domains.get(name)
        return None if dom is None else dom.info

    def domain_xml(self, name: str) -> Optional[str]:
        self._enter("domain_xml")
        dom = self.domains.get(name)
        return None if dom is None else dom.xml

    def guest_domain_types(self, arch: str = "x86_64") -> FrozenSet[str]:
        self._enter("guest_domain_types")
        return frozenset(self.domain_types) if arch == "x86_64" else frozenset()

    def create_domain(self, xml: str) -> DomainInfo:
        self._enter("create_domain")
        info = self._new(xml, DomainState.RUNNING, "create domain")
        self.domains[info.name] = _Domain(info, xml, persistent=False)
        return info

    def define_domain(self, xml: str) -> str:
        self._enter("define_domain")
        info = self._new(xml, DomainState.SHUTOFF, "define domain")
        self.domains[info.name] = _Domain(info, xml, persistent=True)
        return info.name

    def _new(self, xml: str, state: DomainState, what: str) -> DomainInfo:
        root = _parse(xml, what)
        name = root.findtext("name")
        if root.tag != "domain" or not name:
            raise HypervisorError(f"cannot {what}: missing domain name")
        if name in self.domains and self.domains[name].info.state.is_active:
            raise HypervisorError(f"cannot {what}: domain '{name}' already exists")
        uuid = root.findtext("uuid") or str(uuidlib.uuid4())
        return DomainInfo(name=name, uuid=uuid, state=state, cpu_seconds=0.0)

    def shutdown_domain(self, name: str) -> bool:
        """The guest reacts to ACPI at once (as with libvirt's test driver)."""
        self._enter("shutdown_domain")
        return self._stop(name)

    def destroy_domain(self, name: str) -> bool:
        self._enter("destroy_domain")
        return self._stop(name)

    def undefine_domain(self, name: str) -> bool:
        self._enter("undefine_domain")
        dom = self.domains.get(name)
        if dom is None or not dom.persistent:
            return False
        if dom.info.state.is_active:
            dom.persistent = False
        else:
            del self.domains[name]
        return True

    def _stop(self, name: str) -> bool:
        dom = self.domains.get(name)
        if dom is None or not dom.info.state.is_active:
            return False
        if dom.persistent:
            dom.info = replace(dom.info, state=DomainState.SHUTOFF)
        else:
            del self.domains[name]
        return True

    # --- simulation helpers ---------------------------------------------
    def tick(self, seconds: float) -> None:
        """Every running domain uses ``seconds`` more CPU seconds (one busy vCPU)."""
        for dom in self.domains.values():
            if dom.info.state.is_active:
                dom.info = replace(dom.info, cpu_seconds=dom.info.cpu_seconds + seconds)

    def power_off(self, name: str) -> None:
        """The guest powers itself off (on_poweroff=destroy)."""
        self._stop(name)

    def has_nwfilter(self, name: str) -> bool:
        self._enter("has_nwfilter")
        return name in self.nwfilters

    # --- networks -------------------------------------------------------
    def network(self, name: str) -> Optional[FakeNetworkInfo]:
        self._enter("network")
        return self.networks.get(name)

    def define_network(self, xml: str) -> None:
        self._enter("define_network")
        name = _parse(xml, "define network").findtext("name")
        if not name:
            raise HypervisorError("cannot define network: missing name")
        old = self.networks.get(name)
        self.networks[name] = FakeNetworkInfo(name, xml, bool(old and old.active), True,
                                              bool(old and old.autostart))

    def _need(self, name: str) -> FakeNetworkInfo:
        net = self.networks.get(name)
        if net is None:
            raise HypervisorError(f"network {name} does not exist")
        return net

    def start_network(self, name: str) -> None:
        self._enter("start_network")
        net = self._need(name)
        if net.active:
            raise HypervisorError(f"cannot start network {name}: network is already active")
        self.networks[name] = replace(net, active=True)

    def set_network_autostart(self, name: str) -> None:
        self._enter("set_network_autostart")
        self.networks[name] = replace(self._need(name), autostart=True)

    def add_dhcp_host(self, name: str, host_xml: str) -> None:
        self._enter("add_dhcp_host")
        net = self._need(name)
        root = _parse(net.xml, "update network")
        dhcp = root.find("./ip/dhcp")
        if dhcp is None:
            raise HypervisorError(f"cannot add DHCP host to network {name}: no dhcp section")
        dhcp.append(_parse(host_xml, "update network"))
        self.networks[name] = replace(net, xml=ET.tostring(root, encoding="unicode"))

    def destroy_network(self, name: str) -> bool:
        self._enter("destroy_network")
        net = self.networks.get(name)
        if net is None or not net.active:
            return False
        if net.persistent:
            self.networks[name] = replace(net, active=False)
        else:
            del self.networks[name]
        return True

    def undefine_network(self, name: str) -> bool:
        self._enter("undefine_network")
        net = self.networks.get(name)
        if net is None or not net.persistent:
            return False
        if net.active:
            self.networks[name] = replace(net, persistent=False, autostart=False)
        else:
            del self.networks[name]
        return True

    def close(self) -> None:
        self.closed = True


@contextlib.contextmanager
def connect(fake: FakeHypervisor) -> Iterator[FakeHypervisor]:
    """Stand-in for vac.adapters.hypervisor.connect() that yields ``fake``."""
    yield fake
