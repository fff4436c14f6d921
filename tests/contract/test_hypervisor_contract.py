"""One contract for every hypervisor: FakeHypervisor, libvirt's test driver and real qemu.

The qemu:///system case needs the real test environment (integration, ``real_env``);
it uses a network and bridge of its own so it never touches vac's NAT network.
"""

from __future__ import annotations

import contextlib
import uuid as uuidlib
import xml.etree.ElementTree as ET

import pytest

from vac.adapters import hypervisor
from vac.errors import HypervisorError
from vac.model import DomainState
from vac.sim.fakehypervisor import FakeHypervisor

NET = "vac_contract_net"
NET_XML = f"""<network><name>{NET}</name><forward mode='nat'/>
  <bridge name='virbr9' stp='off' delay='0'/>
  <ip address='10.254.9.1' netmask='255.255.255.0'><dhcp>
    <host mac='56:4D:0A:FE:09:02' name='c-02' ip='10.254.9.2'/></dhcp></ip></network>"""
HOST_XML = "<host mac='56:4D:0A:FE:09:03' name='c-03' ip='10.254.9.3'/>"


def domain_xml(domain_type: str, name: str, uuid: str) -> str:
    """A minimal diskless domain (SeaBIOS finds nothing to boot and waits)."""
    return f"""<domain type='{domain_type}'><name>{name}</name><uuid>{uuid}</uuid>
  <memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices><memballoon model='none'/></devices></domain>"""


class Backend:
    def __init__(self, hv, domain_type: str):
        self.hv = hv
        self.domain_type = domain_type
        self.names = []

    def new_domain(self):
        name = f"contract-{uuidlib.uuid4().hex[:8]}"
        uuid = str(uuidlib.uuid4())
        self.names.append(name)
        return name, uuid, domain_xml(self.domain_type, name, uuid)

    def cleanup(self):
        for name in self.names:
            with contextlib.suppress(HypervisorError):
                self.hv.destroy_domain(name)
        with contextlib.suppress(HypervisorError):
            self.hv.destroy_network(NET)
            self.hv.undefine_network(NET)


@pytest.fixture(params=["fake", "testdriver",
                        pytest.param("qemu", marks=pytest.mark.integration)])
def backend(request):
    if request.param == "fake":
        be = Backend(FakeHypervisor(), "test")
        yield be
        be.cleanup()
        return
    uri = "test:///default" if request.param == "testdriver" else \
        request.getfixturevalue("real_env").libvirt_uri
    with hypervisor.connect(uri) as hv:
        be = Backend(hv, "test" if request.param == "testdriver" else "qemu")
        be.cleanup()
        try:
            yield be
        finally:
            be.cleanup()


def test_create_list_destroy_transient_domain(backend):
    hv = backend.hv
    name, uuid, xml = backend.new_domain()
    info = hv.create_domain(xml)
    assert (info.name, info.uuid, info.state) == (name, uuid, DomainState.RUNNING)
    listed = {d.name: d for d in hv.list_domains()}
    assert listed[name].uuid == uuid and listed[name].state.is_active
    assert listed[name].cpu_seconds >= 0.0
    assert hv.domain(name).uuid == uuid
    assert ET.fromstring(hv.domain_xml(name)).findtext("name") == name
    assert hv.destroy_domain(name) is True
    assert hv.domain(name) is None            # transient: gone once off
    assert hv.destroy_domain(name) is False


def test_absent_domain_operations_are_harmless(backend):
    hv = backend.hv
    assert hv.domain("no-such-domain") is None
    assert hv.domain_xml("no-such-domain") is None
    assert hv.shutdown_domain("no-such-domain") is False
    assert hv.destroy_domain("no-such-domain") is False
    assert hv.undefine_domain("no-such-domain") is False


def test_shutdown_request_then_destroy(backend):
    hv = backend.hv
    name, _uuid, xml = backend.new_domain()
    hv.create_domain(xml)
    assert hv.shutdown_domain(name) is True
    hv.destroy_domain(name)
    assert hv.domain(name) is None


def test_duplicate_and_bad_xml_raise_hypervisor_error(backend):
    hv = backend.hv
    name, _uuid, xml = backend.new_domain()
    hv.create_domain(xml)
    with pytest.raises(HypervisorError):
        hv.create_domain(xml)
    with pytest.raises(HypervisorError):
        hv.create_domain("<domain")
    hv.destroy_domain(name)


def test_network_lifecycle(backend):
    hv = backend.hv
    assert hv.network(NET) is None
    hv.define_network(NET_XML)
    net = hv.network(NET)
    assert (net.persistent, net.active, net.autostart) == (True, False, False)
    hv.start_network(NET)
    hv.set_network_autostart(NET)
    net = hv.network(NET)
    assert (net.active, net.autostart) == (True, True)
    hv.add_dhcp_host(NET, HOST_XML)
    macs = {h.get("mac").upper() for h in ET.fromstring(hv.network(NET).xml).iter("host")}
    assert macs == {"56:4D:0A:FE:09:02", "56:4D:0A:FE:09:03"}
    with pytest.raises(HypervisorError):
        hv.start_network(NET)                 # already active
    assert hv.destroy_network(NET) is True
    assert hv.network(NET).active is False
    assert hv.destroy_network(NET) is False
    assert hv.undefine_network(NET) is True
    assert hv.network(NET) is None
    assert hv.undefine_network(NET) is False


def test_missing_network_operations_raise(backend):
    with pytest.raises(HypervisorError):
        backend.hv.start_network("no-such-network")
    assert backend.hv.destroy_network("no-such-network") is False


def test_unreachable_daemon_is_one_clear_line():
    with pytest.raises(HypervisorError) as info:
        with hypervisor.connect("qemu+unix:///system?socket=/nonexistent/libvirt-sock"):
            pass
    message = str(info.value)
    assert message.startswith("Failed to open libvirt connection to qemu+unix:///system")
    assert "\n" not in message


def test_empty_uri_refused():
    with pytest.raises(HypervisorError):
        with hypervisor.connect(""):
            pass


def test_persistent_domain_define_undefine(backend):
    hv = backend.hv
    name, uuid, xml = backend.new_domain()
    assert hv.define_domain(xml) == name
    info = hv.domain(name)
    assert (info.uuid, info.state) == (uuid, DomainState.SHUTOFF)
    assert hv.destroy_domain(name) is False          # defined but not running
    assert hv.undefine_domain(name) is True
    assert hv.domain(name) is None


def test_unknown_nwfilter_is_absent(backend):
    assert backend.hv.has_nwfilter("no-such-filter") is False


def test_guest_domain_types_name_the_backend_domain_type(backend):
    arch = "i686" if backend.hv.uri.startswith("test:") else "x86_64"   # the test driver's
    types = backend.hv.guest_domain_types(arch)
    assert isinstance(types, frozenset) and backend.domain_type in types
    assert backend.hv.guest_domain_types("no-such-arch") == frozenset()
