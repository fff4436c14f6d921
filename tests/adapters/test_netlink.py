"""Bridge address, iptables-save and fix_networking commands (SPEC §4.1 step 6, §4.4)."""

from __future__ import annotations

from tests.adapters.recording import RecordingRunner
from vac.adapters.netlink import NetLink, is_stale_dnsmasq
from vac.errors import CommandError

SHOWN = "7: virbr1    inet 169.254.169.253/16 brd 169.254.255.255 scope global virbr1\n"


def test_metadata_address_added_once():
    runner = RecordingRunner({"ip": SHOWN})
    assert NetLink(run=runner).ensure_metadata_address() is True
    assert runner.calls == [["ip", "-o", "-4", "addr", "show", "dev", "virbr1"],
                            ["ip", "addr", "add", "169.254.169.254/16", "dev", "virbr1"]]
    runner = RecordingRunner({"ip": SHOWN + SHOWN.replace(".253/", ".254/")})
    assert NetLink(run=runner).ensure_metadata_address() is False
    assert len(runner.calls) == 1


def test_netns_prefix_on_every_command():
    runner = RecordingRunner({"ip": lambda argv: "*nat\n" if "iptables-save" in argv else SHOWN})
    net = NetLink(run=runner, prefix=("ip", "netns", "exec", "vacns"))
    assert net.iptables_save() == "*nat\n"
    assert runner.calls[0] == ["ip", "netns", "exec", "vacns", "iptables-save"]


def test_fix_networking_ignores_errors(monkeypatch):
    # never kill the real vac network's dnsmasq: concurrent real-guest tests need its DHCP
    monkeypatch.setattr("vac.adapters.netlink.stale_dnsmasq_pids", lambda: [])
    runner = RecordingRunner({"ip": CommandError(["ip"], 1, "Cannot find device")})
    NetLink(run=runner).fix_networking()
    assert runner.calls == [["ip", "link", "set", "virbr1", "down"],
                            ["ip", "link", "delete", "virbr1"]]


def test_stale_dnsmasq_recognised():
    assert is_stale_dnsmasq(["/usr/sbin/dnsmasq", "--listen-address", "169.254.169.253"])
    assert is_stale_dnsmasq(["dnsmasq",
                             "--conf-file=/var/lib/libvirt/dnsmasq/vac_169.254.0.0.conf"])
    assert not is_stale_dnsmasq(["dnsmasq", "--conf-file=/var/lib/libvirt/dnsmasq/default.conf"])
    assert not is_stale_dnsmasq(["sleep", "--listen-address", "169.254.169.253"])
    assert not is_stale_dnsmasq([])
