"""A real vacd with its real roles and metrics_address set: the metrics role runs beside
the four others and binds only there; VacQuery counts made by the real responder survive
that responder's process (vacd-factory, which runs it in a thread) being killed (vacd
restarts it and counts the restart of both roles); the scrape of
this live vacd passes `promtool check metrics` and has every metric the dashboard and
the alerting rules use; a vacd restart starts the counters again from 0."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
from typing import Optional

import pytest

from tests.daemon.test_vacd_real_roles import conf as real_roles_conf
from tests.daemon.test_vacd_real_roles import free_port
from tests.daemon.vacdproc import Vacd, log_text, make_root, wait_for
from tests.services.test_metrics_role import check_exposition
from vac.adapters import prometheus
from vac.core import vacquery as vq

pytest.importorskip("libvirt")

PROCESSES = ("factory", "metadata", "mjf", "metrics")    # the responder is in vacd-factory
SPACE = "vac01.example.com"
# draining: machinetypes are ranked (scores, back-off) but nothing is created
MACHINETYPE = """draining = true

[machinetype lhcb]
target_share = 1
root_image = https://images.example.com/lhcb.iso
"""


def get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200, (resp.status, body)
        return body
    finally:
        conn.close()


def value(text: str, name: str, **labels) -> float:
    hits = [v for n, lab, v in prometheus.parse_exposition(text) if n == name and lab == labels]
    return hits[0] if hits else -1.0


def ask(port: int, times: int) -> None:
    """``times`` factory_query requests (one reply datagram each), each answered before
    the next is sent, to the real responder; before them one from a source outside
    ``factories`` (refused, reason source), after them a malformed one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as outsider:
        outsider.bind(("127.0.0.2", 0))
        outsider.sendto(vq.encode(vq.request_dict(vq.FACTORY_QUERY, SPACE, "o", "x")),
                        ("127.0.0.1", port))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for i in range(times):
            sock.sendto(vq.encode(vq.request_dict(vq.FACTORY_QUERY, SPACE, f"c{i}", "x")),
                        ("127.0.0.1", port))
            assert vq.decode_response(sock.recvfrom(65535)[0])["cookie"] == f"c{i}"
        sock.sendto(b"{not json", ("127.0.0.1", port))


def wait_answering(port: int) -> None:
    """Until the responder answers a machinetypes_query (counted under that type)."""
    def answered() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1)
            sock.sendto(vq.encode(vq.request_dict(vq.MACHINETYPES_QUERY, SPACE, "p", "x")),
                        ("127.0.0.1", port))
            try:
                return bool(sock.recvfrom(65535))
            except OSError:
                return False
    wait_for(answered, timeout=30, what="the responder to answer")


def vacquery_port(paths) -> int:
    with open(paths.etc_vac_conf, encoding="utf-8") as f:
        return int(next(line.split("=")[1] for line in f if line.startswith("vacquery_port")))


@pytest.fixture
def metrics_vacd(paths):
    port = free_port(socket.SOCK_STREAM)
    make_root(paths, real_roles_conf() + f"metrics_address = 127.0.0.1:{port}\n"
              + MACHINETYPE)
    vacd = Vacd(paths, registry="vac.vacd.rolechild:ROLE_REGISTRY")
    try:
        kids = vacd.wait_roles(PROCESSES)
        wait_for(lambda: "End cycle" in log_text(paths, "factory"), timeout=30,
                 what="one factory cycle")
        wait_for(lambda: _scrapes(port), timeout=20, what="the metrics role to serve")
        yield vacd, port, kids
    finally:
        assert vacd.stop() == 0


def _scrapes(port: int) -> bool:
    try:
        get(port, "/metrics")
        return True
    except OSError:
        return False


def check_live_scrape(port: int) -> None:
    """promtool accepts it; it has every metric the dashboard and the rules use."""
    text = get(port, "/metrics")
    check_exposition(text)
    assert value(text, "vac_slots") == 2 and value(text, "vac_config_valid") == 1
    assert value(text, "vac_vetoes_active", reason="draining") == 1
    assert value(text, "vac_vetoes_total", reason="draining") >= 1
    assert value(text, "vac_machinetype_backoff", machinetype="lhcb") == 0
    assert value(text, "vac_peers", state="answering") + \
        value(text, "vac_peers", state="silent") == 1
    status = json.loads(get(port, "/status.json"))
    assert len(status["machines"]) == 2 and status["plan"]["factory"] == "factory1.example.com"
    assert status["last_cycle"]["duration_seconds"] >= 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=5).close()


def _scrape_with(port: int, name: str, expected: float, **labels: str) -> Optional[str]:
    """The scrape if ``name{labels}`` has reached ``expected``, else None."""
    text = get(port, "/metrics")
    return text if value(text, name, **labels) >= expected else None


def test_counts_survive_a_role_restart_and_restart_with_vacd(metrics_vacd, paths):
    vacd, port, kids = metrics_vacd
    check_live_scrape(port)
    query_port = vacquery_port(paths)
    wait_answering(query_port)
    ask(query_port, 3)
    # the malformed datagram is sent last and not answered: wait until it is counted
    text = wait_for(lambda: _scrape_with(port, "vac_vacquery_refused_total", 1,
                                         reason="malformed"),
                    timeout=10, what="the malformed datagram to be counted")
    assert value(text, "vac_vacquery_requests_total", type="factory_query") == 3
    assert value(text, "vac_vacquery_refused_total", reason="malformed") == 1
    assert value(text, "vac_vacquery_refused_total", reason="source") == 1
    assert value(text, "vac_vacquery_refused_total", reason="forged") == 0   # seeded
    assert value(text, "vac_role_restarts_total", role="responder") == 0

    os.kill(kids["vacd-factory"], signal.SIGKILL)
    wait_for(lambda: vacd.children().get("vacd-factory") not in (None,
                                                                kids["vacd-factory"]),
             timeout=30, what="vacd to restart the factory and its responder")
    wait_answering(query_port)
    ask(query_port, 2)
    text = get(port, "/metrics")
    assert value(text, "vac_vacquery_requests_total", type="factory_query") == 5
    assert value(text, "vac_role_restarts_total", role="responder") == 1
    assert value(text, "vac_role_restarts_total", role="factory") == 1
    assert value(text, "vac_cycle_duration_seconds_count") >= 1
    assert value(text, "vac_last_cycle_timestamp_seconds") > 0
    assert "restarting" in log_text(paths, "supervisor")

    assert vacd.stop() == 0
    again = Vacd(paths, registry="vac.vacd.rolechild:ROLE_REGISTRY")
    try:
        again.wait_roles(PROCESSES)
        wait_for(lambda: _scrapes(port), timeout=20, what="the metrics role to serve again")
        text = get(port, "/metrics")
        assert value(text, "vac_vacquery_requests_total", type="factory_query") == 0
        assert value(text, "vac_role_restarts_total", role="responder") == 0
    finally:
        assert again.stop() == 0
