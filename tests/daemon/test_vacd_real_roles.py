"""vacd with the real roles (not stand-ins) in a --root tree: the factory on libvirt's
test:/// driver, responder and HTTP services on free loopback ports. All four write their
heartbeats, check-vacd says OK, and SIGTERM stops everything cleanly."""

from __future__ import annotations

import os
import socket

import pytest

from tests.daemon.vacdproc import Vacd, log_text, make_root, wait_for
from vac import nagios

pytest.importorskip("libvirt")

ROLES = ("factory", "responder", "metadata", "mjf")
PROCESSES = ("factory", "metadata", "mjf")     # the responder is a thread of vacd-factory


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conf() -> str:
    return f"""[settings]
vac_space = vac01.example.com
factory_hostname = factory1.example.com
factories = factory1.example.com
total_processors = 2
libvirt_uri = test:///default
fix_networking = false
check_iptables = false
manage_iptables = false
cycle_seconds = 2
vacquery_port = {free_port(socket.SOCK_DGRAM)}
responder_bind_address = 127.0.0.1
metadata_bind_address = 127.0.0.1
metadata_port = {free_port(socket.SOCK_STREAM)}
mjf_bind_address = 127.0.0.1
mjf_port = {free_port(socket.SOCK_STREAM)}
"""


def test_real_roles_run_and_stop(paths, capsys):
    make_root(paths, conf())
    vacd = Vacd(paths, registry="vac.vacd.rolechild:ROLE_REGISTRY")
    try:
        vacd.wait_roles(PROCESSES)
        for role in ROLES:
            wait_for(lambda: os.path.exists(paths.heartbeat(role)), timeout=30,
                     what=f"{role} heartbeat\n{log_text(paths, role)}")
        wait_for(lambda: "End cycle" in log_text(paths, "factory"), timeout=30,
                 what="one factory cycle")
        assert nagios.main(["--root", paths.root]) == nagios.OK
        # metrics_address is not set: no metrics role, no counter files
        assert "vacd-metrics" not in vacd.children()
        assert not os.path.exists(paths.metrics_dir)
        assert capsys.readouterr().out.startswith("VACD OK - Factory + responder ok")
    finally:
        code = vacd.stop()
    assert code == 0
    sup = log_text(paths, "supervisor")
    assert "restarting" not in sup, sup
    for role in ROLES:
        assert f"vacd-{role} stopped" in log_text(paths, role)
