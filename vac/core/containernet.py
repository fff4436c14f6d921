"""The podman network of the ``docker`` machine model: containers on vac's own NAT bridge.

A container of slot N gets the slot's address and MAC (vac.core.naming), exactly as a
VM of that slot, on a veth port of vac's bridge ``virbr1`` (made by the libvirt NAT
network, SPEC §4). Its traffic therefore comes in on ``virbr1`` like a VM's: the same
NAT, the same rules on that interface, and the factory's metadata (169.254.169.254)
and MJF/JOBOUTPUTS (169.254.169.253) services see its slot address, by which they
identify machines. DNS is libvirt's dnsmasq on 169.254.169.253, as for VMs.

The network is a CNI configuration list (podman's ``cni`` network backend; podman 4.3
cannot name an existing bridge on ``podman network create``): the ``bridge`` plugin
with ``isGateway`` and ``ipMasq`` off (libvirt and vac already provide the gateway
address, NAT and firewall: podman must add no rules of its own, so no ``firewall`` or
``portmap`` plugin either), ``host-local`` IPAM over the slot address plan with the
``ips`` capability (``--ip``), and ``tuning`` with the ``mac`` capability
(``--mac-address``). Pure: rendering only.
"""

from __future__ import annotations

import json
from typing import Dict, List

from vac.constants import FACTORY_ADDRESS, NAT_BRIDGE
from vac.core import naming

NETWORK_NAME = "vac"
CNI_VERSION = "0.4.0"
# the slot address plan (vac.core.naming): 169.254.169.0-252, then 169.254.170.0 onwards
SLOT_RANGES = (("169.254.169.0", f"169.254.169.{naming.FIRST_BLOCK_SIZE - 1}"),
               ("169.254.170.0", "169.254.254.255"))


def cni_conflist(name: str = NETWORK_NAME, bridge: str = NAT_BRIDGE) -> Dict[str, object]:
    """The CNI configuration list of the podman network ``name`` on ``bridge``."""
    ranges: List[Dict[str, str]] = [
        {"subnet": "169.254.0.0/16", "gateway": FACTORY_ADDRESS,
         "rangeStart": start, "rangeEnd": end} for start, end in SLOT_RANGES]
    return {
        "cniVersion": CNI_VERSION, "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": False, "ipMasq": False,
             "hairpinMode": False, "capabilities": {"ips": True},
             "ipam": {"type": "host-local",
                      "routes": [{"dst": "0.0.0.0/0", "gw": FACTORY_ADDRESS}],
                      "ranges": [ranges]}},
            {"type": "tuning", "capabilities": {"mac": True}},
        ]}


def cni_conflist_text(name: str = NETWORK_NAME, bridge: str = NAT_BRIDGE) -> str:
    """:func:`cni_conflist` as the file podman reads (``/etc/cni/net.d/NAME.conflist``)."""
    return json.dumps(cni_conflist(name, bridge), indent=1, sort_keys=True) + "\n"


def run_options(ordinal: int, network: str = NETWORK_NAME) -> List[str]:
    """``podman create`` options putting slot ``ordinal``'s container on ``network``:
    its address, its MAC (lower case, as podman wants), the factory as DNS server, and
    no ``NET_RAW`` (raw sockets would let it forge ARP and take another slot's address;
    libvirt's ``clean-traffic`` filter does that job for VMs and does not apply to veth
    ports)."""
    return ["--network", network, "--ip", naming.machine_ip(ordinal),
            "--mac-address", naming.machine_mac(ordinal).lower(),
            "--dns", FACTORY_ADDRESS, "--cap-drop", "NET_RAW"]
