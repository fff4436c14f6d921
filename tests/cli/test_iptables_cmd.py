"""``vac iptables-rules [--check]``: the guest firewall for sites that keep their own rules."""

from __future__ import annotations

import os

from vac.adapters.netlink import NetLink
from vac.cli import main
from vac.core import iptables

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
CONF = """[settings]
vac_space = vac01.example.com
factory_hostname = factory1.example.com
host_tcp_ports_for_machines = 3128
manage_iptables = false
"""


def write_conf(root) -> None:
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc", "vac.conf"), "w") as f:
        f.write(CONF)


def test_prints_the_rules_of_this_factory(tmp_path, capsys):
    write_conf(tmp_path)
    assert main(["--root", str(tmp_path), "iptables-rules"]) == 0
    out = capsys.readouterr().out
    assert "-I INPUT 1 -j VAC_INP" in out
    assert "-A VAC_INP -d 169.254.169.253/32 -i virbr1 -p tcp -m tcp --dport 3128 -j ACCEPT" \
        in out
    assert "-A VAC_INP -i virbr1 -j DROP" in out


def test_check_compares_with_iptables_save(tmp_path, capsys, monkeypatch):
    write_conf(tmp_path)
    with open(os.path.join(DATA, "iptables-save-vac.txt")) as f:
        saved = f.read()
    monkeypatch.setattr(NetLink, "iptables_save", lambda self: saved)
    assert main(["--root", str(tmp_path), "iptables-rules", "--check"]) == 0
    assert "guest firewall in place on virbr1" in capsys.readouterr().out
    monkeypatch.setattr(NetLink, "iptables_save",
                        lambda self: saved.replace("-A FORWARD -j VAC_FWD\n", ""))
    assert main(["--root", str(tmp_path), "iptables-rules", "--check"]) == 1
    assert capsys.readouterr().out == f"FORWARD does not jump to {iptables.FORWARD_CHAIN} first\n"
