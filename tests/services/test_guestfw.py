"""The guest firewall and bridge port isolation, checked and repaired every cycle.

First with recorded commands (decisions, logging, creation vetoed when the rules cannot
be installed), then for real: iptables-restore/-save and ``bridge`` in a scratch network
namespace, with libvirt's rules loaded first and then disturbed as libvirt or an
administrator would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess

import pytest

from tests.adapters.recording import RecordingRunner
from vac.adapters.netlink import NetLink
from vac.adapters.runner import run as real_run
from vac.core import iptables
from vac.core.configtypes import Config, Settings
from vac.errors import CommandError
from vac.services import guestfw
from vac.services.hostops import HostOps
from vac.sim.fakehypervisor import FakeHypervisor

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
FACTORY = "f1.example.com"


def read(name: str) -> str:
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


def cfg(**settings) -> Config:
    return Config(settings=Settings(vac_space="s.example.com", factory_hostname=FACTORY,
                                    **settings))


def host(run, prefix=()) -> HostOps:
    return HostOps(lvm=None, net=NetLink(run=run, prefix=prefix), images=None, run=run)


def domain(name: str, dev: str, isolated: str = None) -> str:
    port = f"<port isolated='{isolated}'/>" if isolated else ""
    return (f"<domain><name>{name}</name><devices><interface type='network'>"
            f"<source network='vac_169.254.0.0'/><target dev='{dev}'/>{port}"
            f"</interface></devices></domain>")


# --- recorded commands -------------------------------------------------------------------

def test_missing_rules_are_installed_with_one_restore(caplog):
    caplog.set_level(logging.INFO)
    runner = RecordingRunner({"iptables-save": read("iptables-save-libvirt.txt")})
    assert guestfw.ensure_guest_firewall(cfg(), host(runner))
    assert runner.commands() == ["iptables-save", "iptables-restore"]
    assert runner.calls[1] == ["iptables-restore", "-w", "10", "--noflush"]
    assert runner.inputs[1] == iptables.restore_script(iptables.guest_firewall(cfg().settings),
                                                       read("iptables-save-libvirt.txt"))
    assert "chain VAC_INP is missing" in caplog.text
    assert "guest firewall in place on virbr1" in caplog.text


def test_rules_in_place_are_left_alone(caplog):
    runner = RecordingRunner({"iptables-save": read("iptables-save-vac.txt")})
    assert guestfw.ensure_guest_firewall(cfg(host_tcp_ports_for_machines=(3128,)),
                                         host(runner))
    assert runner.commands() == ["iptables-save"]
    assert caplog.text == ""


def test_no_creation_while_the_rules_cannot_be_installed(caplog):
    runner = RecordingRunner({"iptables-save": "",
                              "iptables-restore": CommandError(["iptables-restore"], 1,
                                                               "Permission denied")})
    assert not guestfw.ensure_guest_firewall(cfg(), host(runner))
    assert "cannot install the rules" in caplog.text and "no machines are created" in caplog.text


def test_site_managed_rules_are_only_warned_about(caplog):
    runner = RecordingRunner({"iptables-save": read("iptables-save-libvirt.txt")})
    assert guestfw.ensure_guest_firewall(cfg(manage_iptables=False), host(runner))
    assert runner.commands() == ["iptables-save"]
    assert caplog.text.count("manage_iptables = false") == 4
    runner = RecordingRunner({"iptables-save": ""})
    caplog.clear()
    assert guestfw.ensure_guest_firewall(cfg(manage_iptables=False, check_iptables=False),
                                         host(runner))
    assert caplog.text == ""


def test_ports_isolated_unless_their_machine_is_guest_to_guest(caplog):
    hv = FakeHypervisor()
    hv.create_domain(domain("f1-00.example.com", "vnet0", "yes"))
    hv.create_domain(domain("f1-01.example.com", "vnet1", "no"))      # guest_to_guest
    hv.create_domain(domain("f1-02.example.com", "vnet2"))            # made before isolation
    hv.create_domain(domain("other-vm", "vnet9", "no"))               # not this factory's
    links = [{"ifname": dev, "linkinfo": {"info_slave_data": {"isolated": on}}}
             for dev, on in (("vnet0", False), ("vnet1", True), ("vnet2", False),
                             ("vnet9", False), ("vnet7", True))]
    runner = RecordingRunner({"ip": json.dumps(links)})
    guestfw.ensure_port_isolation(hv, cfg(), host(runner))
    assert [c for c in runner.calls if c[0] == "bridge"] == [
        ["bridge", "link", "set", "dev", dev, "isolated", on]
        for dev, on in (("vnet0", "on"), ("vnet1", "off"), ("vnet2", "on"), ("vnet9", "on"))]
    assert "bridge port vnet0 of virbr1 is not isolated - isolating it" in caplog.text


# --- for real, in a scratch network namespace ---------------------------------------------

@contextlib.contextmanager
def scratch_netns():
    if os.geteuid() != 0 or not shutil.which("iptables-restore") or not shutil.which("bridge"):
        pytest.skip("needs root, iptables and iproute2")
    ns = f"vacfw-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def in_ns(ns: str, *argv: str, stdin: str = None) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], input=stdin, text=True,
                          capture_output=True, check=True).stdout


def test_real_iptables_install_check_and_repair(caplog):
    caplog.set_level(logging.INFO)
    with scratch_netns() as ns:
        in_ns(ns, "iptables-restore", stdin=read("iptables-save-libvirt.txt"))   # libvirt's
        h = host(real_run, prefix=("ip", "netns", "exec", ns))
        fw = iptables.guest_firewall(cfg().settings)
        assert guestfw.ensure_guest_firewall(cfg(), h)
        saved = in_ns(ns, "iptables-save")
        assert iptables.firewall_problems(fw, saved) == []
        assert iptables.missing_rules(saved) == []                  # libvirt's rules kept
        caplog.clear()
        assert guestfw.ensure_guest_firewall(cfg(), h)              # the next cycle: no-op
        assert "installing" not in caplog.text
        # libvirt restarts its network (its jumps go first) and somebody drops a rule
        in_ns(ns, "iptables", "-I", "INPUT", "1", "-j", "LIBVIRT_INP")
        in_ns(ns, "iptables", "-D", "VAC_INP", "-i", "virbr1", "-j", "DROP")
        assert guestfw.ensure_guest_firewall(cfg(), h)
        saved = in_ns(ns, "iptables-save")
        assert iptables.firewall_problems(fw, saved) == []
        assert saved.count("-A INPUT -j VAC_INP") == 1
        assert "INPUT does not jump to VAC_INP first" in caplog.text


def test_real_bridge_ports_isolated_and_opened():
    with scratch_netns() as ns:
        in_ns(ns, "ip", "link", "add", "virbr1", "type", "bridge")
        for i in range(2):
            in_ns(ns, "ip", "link", "add", f"vnet{i}", "type", "veth", "peer", "name", f"p{i}")
            in_ns(ns, "ip", "link", "set", f"vnet{i}", "master", "virbr1")
        in_ns(ns, "bridge", "link", "set", "dev", "vnet1", "isolated", "on")
        hv = FakeHypervisor()
        hv.create_domain(domain("f1-00.example.com", "vnet0", "yes"))
        hv.create_domain(domain("f1-01.example.com", "vnet1", "no"))
        h = host(real_run, prefix=("ip", "netns", "exec", ns))
        guestfw.ensure_port_isolation(hv, cfg(), h)
        assert h.net.bridge_ports() == {"vnet0": True, "vnet1": False}
