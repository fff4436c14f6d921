"""Anti-amplification on real sockets: only factories, listed monitors and the loopback
get answers, each source within its token bucket; counters instead of per-datagram logs.

Sources are distinct loopback addresses: 127.0.0.1 is this host's own (always allowed),
127.0.0.2 a stranger, 127.0.0.3 the factory f2 (through the allow-list's resolver) and
127.0.0.64/30 a monitoring network listed in query_allowed_sources.
"""

from __future__ import annotations

import logging
import time

import pytest

from vac.core import vacquery as vq
from vac.core.querygate import RateLimiter
from vac.services.sourcegate import SourceGate
from tests.services.respondertools import LiveResponder, ask, make_cfg, running_factory

F, F2 = "factory1.example.com", "f2.example.com"
STRANGER, PEER, MONITOR = "127.0.0.2", "127.0.0.3", "127.0.0.65"


@pytest.fixture
def state(paths):
    return running_factory(paths, F, 3)


def request(mtype=vq.MACHINES_QUERY):
    return vq.request_dict(mtype, "vac01.example.com", "c" * 64, "04.00.00", "vac-command")


def live(state, table, limiter=None, **kw):
    gate = SourceGate(resolve=lambda name: table.get(name, []), refresh_seconds=0.05,
                      limiter=limiter)
    cfg = make_cfg(F, [F, F2], query_allowed_sources=("127.0.0.64/30",))
    responder = LiveResponder(state, cfg, gate=gate, **kw)
    return responder


def wait_allowed(live_responder, address):
    deadline = time.monotonic() + 5
    while not live_responder.responder.gate.policy.allows(address):
        assert time.monotonic() < deadline, live_responder.responder.gate.policy
        time.sleep(0.01)


def test_stranger_gets_nothing_factories_monitors_and_loopback_are_answered(state):
    with live(state, {F2: [PEER]}) as responder:
        wait_allowed(responder, PEER)
        for mtype, count in ((vq.MACHINES_QUERY, 3), (vq.MACHINETYPES_QUERY, 2),
                             (vq.FACTORY_QUERY, 1)):
            assert ask(responder.address, request(mtype), count, 0.3, STRANGER) == []
            for source in (PEER, MONITOR, "127.0.0.1"):
                assert len(ask(responder.address, request(mtype), count, 3, source)) == count
        stats = responder.responder.stats
    assert stats.refused["source"] == 3 and stats.answered == 9


def test_allow_list_follows_the_factories_addresses(state):
    table = {F2: [PEER]}
    with live(state, table) as responder:
        wait_allowed(responder, PEER)
        table[F2] = ["127.0.0.4"]               # f2 moved: its old address is a stranger
        wait_allowed(responder, "127.0.0.4")
        assert len(ask(responder.address, request(), 3, 3, "127.0.0.4")) == 3
        assert ask(responder.address, request(), 3, 0.3, PEER) == []


def test_rate_limit_per_source_loopback_exempt(state):
    limiter = RateLimiter(rate=1.0, burst=5.0)
    with live(state, {F2: [PEER]}, limiter=limiter) as responder:
        wait_allowed(responder, PEER)
        answered = [len(ask(responder.address, request(vq.FACTORY_QUERY), 1, 0.2, PEER))
                    for _ in range(8)]
        assert sum(answered) in (5, 6) and answered[:5] == [1] * 5      # burst, then dry
        assert len(ask(responder.address, request(vq.FACTORY_QUERY), 1, 3, MONITOR)) == 1
        assert all(len(ask(responder.address, request(vq.FACTORY_QUERY), 1, 3)) == 1
                   for _ in range(20))
        assert responder.responder.stats.refused["rate"] >= 2


def test_counters_logged_per_period_not_per_datagram(state, caplog):
    caplog.set_level(logging.INFO, logger="vac.services.responder")
    with live(state, {F2: [PEER]}, stats_seconds=0.3) as responder:
        wait_allowed(responder, PEER)
        for _ in range(5):
            ask(responder.address, request(), 3, 3, PEER)
        ask(responder.address, request(), 3, 0.2, STRANGER)
        time.sleep(0.8)
    lines = [r.getMessage() for r in caplog.records if "VacQuery in the last" in
             r.getMessage()]
    assert not [r for r in caplog.records if r.getMessage().startswith("Received")]
    assert len(lines) == 1, lines
    assert ("6 datagrams; answered 5 (machines_query 5) with 15 replies" in lines[0]
            and "refused 1 (source 1)" in lines[0] and f"answered sources {PEER}=5" in lines[0]
            and f"refused sources {STRANGER}=1" in lines[0])
