"""``vac selftest``: can this host run vac? (the successor of the original quick start,
``virsh create testkvm.xml``).

The checks run in this order, each giving PASS or FAIL with the fix to apply: the
configuration, libvirt reachable, KVM or TCG usable (and which ``domain_type`` will be
used), the volume group and its free space, the NAT network (made as vacd would make it
when absent), the FQDN host name, the iptables NAT rules, the metadata address, and last
one tiny test machine (128 MiB, one processor) that is created, seen running and
destroyed. The test machine boots ``image`` (an ISO; the test guest in the demo) or, with
no image, only its firmware, which still proves qemu, the domain type and the network
attachment. Effects go through the adapters (libvirt only in vac.adapters.hypervisor).
"""

from __future__ import annotations

import os
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, List, Optional, Tuple

from vac.adapters import host as hostfacts
from vac.adapters import hypervisor
from vac.constants import GB, METADATA_ADDRESS, NAT_NETWORK_NAME
from vac.core import domxml, iptables
from vac.core.configtypes import Config, Settings
from vac.errors import ConfigError, VacError
from vac.model import DomainState
from vac.paths import Paths
from vac.services import vmnet
from vac.services.configload import load_config
from vac.services.hostops import HostOps, default_host

RUNNING_WAIT_SECONDS = 30.0     # for the test machine to be seen running
WATCH_SECONDS = 2.0             # it must stay running this long
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Check:
    """One line of the self-test."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"
        return text + (f" -- fix: {self.fix}" if not self.ok and self.fix else "")


@dataclass
class Seams:
    """The effects of a self-test; None means the real thing (tests inject doubles)."""

    host: Optional[HostOps] = None
    connect: Callable[[str], ContextManager[Any]] = hypervisor.connect
    choose_domain_type: Callable[[], Tuple[str, str]] = hostfacts.choose_domain_type
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    checks: List[Check] = field(default_factory=list)


def run_selftest(paths: Paths, image: Optional[str] = None,
                 seams: Optional[Seams] = None) -> List[Check]:
    """Every check, in order; the host is fit for vac only if all pass."""
    s = seams or Seams()
    host = s.host or default_host(paths)
    cfg = _configuration(paths, s.checks)
    try:
        with s.connect(cfg.settings.libvirt_uri) as hv:
            count = len(hv.list_domains())
            s.checks.append(Check("libvirt", True, f"reachable at {hv.uri} ({count} domains)"))
            _with_libvirt(hv, cfg, paths, host, image, s)
    except VacError as e:
        s.checks.append(Check("libvirt", False, str(e), "start libvirtd (systemctl enable "
                              "--now libvirtd) or set libvirt_uri in [settings]"))
        _host_checks(cfg, host, s.checks)
        s.checks.append(Check("test machine", False, "not tried: libvirt is not reachable",
                              "make libvirt reachable first"))
    return s.checks


def _with_libvirt(hv, cfg: Config, paths: Paths, host: HostOps, image: Optional[str],
                  s: Seams) -> None:
    s.checks.append(_virtualisation(hv, cfg.settings, s.choose_domain_type))
    s.checks.append(_volume_group(cfg.settings, host))
    network = _network(hv, cfg, paths, host)
    s.checks.append(network)
    _host_checks(cfg, host, s.checks)
    s.checks.append(_test_machine(hv, cfg, paths, host, image, s))


def _host_checks(cfg: Config, host: HostOps, checks: List[Check]) -> None:
    checks.append(_fqdn(cfg.settings))
    checks.append(_iptables(host))
    checks.append(_metadata_address(host))


def _configuration(paths: Paths, checks: List[Check]) -> Config:
    """The configuration to test with (its valid parts if it has problems)."""
    try:
        cfg = load_config(paths, pipes="none")
    except ConfigError as e:
        checks.append(Check("configuration", False, f"{len(e.problems)} problem(s), the "
                            f"first: {e.problems[0]}", "correct the files; 'vac config "
                            "--check' lists every problem"))
        return e.fallback or Config(settings=Settings(vac_space=""))
    if cfg.disabled:
        checks.append(Check("configuration", False, f"machinetype(s) disabled: "
                            f"{cfg.problems[0]}", "'vac config --check' lists every problem"))
    else:
        checks.append(Check("configuration", True, f"valid, {len(cfg.machinetypes)} "
                            "machinetype(s)"))
    return cfg


def _virtualisation(hv, settings: Settings,
                    choose: Callable[[], Tuple[str, str]]) -> Check:
    configured = settings.domain_type
    usable, why = choose()
    offered = hv.guest_domain_types("x86_64")
    if configured not in offered:
        return Check("virtualisation", False, f"libvirt cannot run domain_type = {configured}"
                     f" guests (it offers: {', '.join(sorted(offered)) or 'none'})",
                     "install qemu (qemu-kvm on EL9, qemu-system-x86 on Debian) and "
                     "restart libvirtd")
    if configured == "kvm" and usable != "kvm":
        return Check("virtualisation", False, f"domain_type = kvm but KVM cannot run guests "
                     f"here: {why}", "set domain_type = qemu in [settings] (TCG emulation, "
                     "slower) or enable KVM (VT-x/AMD-V in the firmware, kvm_intel/kvm_amd)")
    faster = " (KVM is usable: domain_type = kvm is faster)" \
        if configured == "qemu" and usable == "kvm" else ""
    return Check("virtualisation", True, f"domain_type = {configured} will be used; "
                 f"this host: {why}{faster}")


def _volume_group(settings: Settings, host: HostOps) -> Check:
    try:
        vg = host.lvm.usable_volume_group(settings.volume_group)
        used = sum(size for _name, size in host.lvm.list_lvs(vg.name)) if vg else 0
    except VacError as e:
        return Check("volume group", False, str(e), "create it (vgcreate NAME DEVICE) or "
                     "correct volume_group in [settings]")
    if vg is None:
        return Check("volume group", True, "none: machines get file-backed disks in the "
                     "state directory (create vac_volume_group for logical volumes)")
    free, need = vg.total_bytes - used, (settings.disk_gb_per_processor or 1) * GB
    detail = f"{vg.name}: {free / GB:.1f} GB of {vg.total_bytes / GB:.1f} GB free"
    if free < need:
        return Check("volume group", False, f"{detail}, less than the {need / GB:.0f} GB one "
                     "processor needs", f"remove unused logical volumes or vgextend {vg.name}")
    return Check("volume group", True, detail)


def _network(hv, cfg: Config, paths: Paths, host: HostOps) -> Check:
    present = hv.network(NAT_NETWORK_NAME) is not None
    if vmnet.ensure_network(hv, cfg, paths, host=host):
        return Check("NAT network", True, f"{NAT_NETWORK_NAME} on {host.net.bridge} is "
                     f"active{'' if present else ' (created now, as vacd would)'}")
    return Check("NAT network", False, f"{NAT_NETWORK_NAME} cannot be made active "
                 "(libvirtd's log says why)", vmnet.START_HINT.strip("()"))


def _fqdn(settings: Settings) -> Check:
    name = settings.factory_hostname
    if "." in name:
        return Check("host name", True, f"{name} is fully qualified")
    return Check("host name", False, f"{name!r} is not a fully qualified domain name",
                 "hostnamectl set-hostname NAME.DOMAIN, or factory_hostname in [settings]")


def _iptables(host: HostOps) -> Check:
    try:
        missing = iptables.missing_rules(host.net.iptables_save(), host.net.bridge)
    except VacError as e:
        return Check("iptables", False, f"iptables-save failed: {e}", "install iptables")
    if missing:
        return Check("iptables", False, f"{len(missing)} NAT rule(s) for {host.net.bridge} "
                     f"missing: {missing[0]}", f"restart the network (virsh net-destroy "
                     f"{NAT_NETWORK_NAME}; virsh net-start {NAT_NETWORK_NAME}); make sure "
                     "no firewall service flushes libvirt's rules")
    return Check("iptables", True, f"the NAT rules for {host.net.bridge} are present")


def _metadata_address(host: HostOps) -> Check:
    try:
        added = host.net.ensure_metadata_address()
    except VacError as e:
        return Check("metadata address", False, f"{METADATA_ADDRESS} cannot be put on "
                     f"{host.net.bridge}: {e}", "start the NAT network first; then ip addr "
                     f"add {METADATA_ADDRESS}/16 dev {host.net.bridge}")
    return Check("metadata address", True, f"{METADATA_ADDRESS} on {host.net.bridge}"
                 + (" (added now, as vacd would)" if added else ""))


def _test_machine(hv, cfg: Config, paths: Paths, host: HostOps, image: Optional[str],
                  s: Seams) -> Check:
    name = f"vac-selftest-{os.getpid()}"
    if image is not None and not os.path.isfile(image):
        return Check("test machine", False, f"image {image} does not exist",
                     "give --image the path of a bootable ISO")
    os.makedirs(paths.tmp, exist_ok=True)
    console = os.path.join(paths.tmp, f"{name}.console")
    kvm = cfg.settings.domain_type == "kvm"
    spec = domxml.selftest_domain_spec(cfg.settings.domain_type, name=name,
                                       uuid=str(uuidlib.uuid4()), image=image,
                                       console_log=console,
                                       emulator=host.find_emulator() if kvm else None)
    booted = f"booting {image}" if image else "firmware only, no --image"
    try:
        hv.create_domain(domxml.domain_xml(spec))
        try:
            seen = _watch(hv, name, s)
        finally:
            hv.destroy_domain(name)
        gone = hv.domain(name) is None
    except VacError as e:
        return Check("test machine", False, f"{name}: {e}", f"see {console} and libvirtd's "
                     "log (journalctl -u libvirtd)")
    if seen is not None:
        return Check("test machine", False, f"{name} ({booted}): {seen}",
                     f"see {console} and libvirtd's log")
    if not gone:
        return Check("test machine", False, f"{name} is still there after destroy",
                     f"virsh destroy {name}")
    return Check("test machine", True, f"{name} ({booted}) ran for {WATCH_SECONDS:.0f} s "
                 "and was destroyed")


def _watch(hv, name: str, s: Seams) -> Optional[str]:
    """None if ``name`` is seen running for WATCH_SECONDS, else what went wrong."""
    deadline = s.monotonic() + RUNNING_WAIT_SECONDS
    running_since: Optional[float] = None
    while s.monotonic() < deadline:
        info = hv.domain(name)
        if info is None:
            return "it stopped by itself"
        if info.state == DomainState.RUNNING:
            running_since = running_since or s.monotonic()
            if s.monotonic() - running_since >= WATCH_SECONDS:
                return None
        else:
            running_since = None
        s.sleep(POLL_SECONDS)
    return f"not seen running for {WATCH_SECONDS:.0f} s within {RUNNING_WAIT_SECONDS:.0f} s"
