"""VacQuery client against fake responders that drop datagrams or send bad replies."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from vac.core import vacquery as vq
from vac.services import peers
from tests.core.test_vacquery import machine_body, machinetype_body, factory_body
from tests.services.respondertools import SPACE, LiveResponder, add_machine, make_cfg

F1, F2, F3 = "f1.example.com", "f2.example.com", "f3.example.com"


class Fake:
    """A UDP responder whose answers are decided by ``behave(request, nth) -> [reply]``."""

    def __init__(self, name, behave):
        self.name, self.behave = name, behave
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.address = self.sock.getsockname()
        self.requests = []
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            request = json.loads(data)
            self.requests.append(request)
            for reply in self.behave(self, request, len(self.requests)):
                self.sock.sendto(reply if isinstance(reply, bytes) else vq.encode(reply), peer)

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def reply(fake, request, mtype, body, **override):
    msg = vq.response(mtype, body, space=SPACE, factory=fake.name, cookie_hex=request["cookie"],
                      version="04.00.00", time_sent=1, site="example.com")
    msg.update(override)
    return msg


def machines(n, fake, request, skip=()):
    out = []
    for i in range(n):
        if i not in skip:
            body = dict(machine_body(), num_machines=n, machine=f"{fake.name}-{i}")
            out.append(reply(fake, request, vq.MACHINE_STATUS, body))
    return out


@pytest.fixture
def fakes():
    made = []

    def make(name, behave):
        fake = Fake(name, behave)
        made.append(fake)
        return fake
    yield make
    for fake in made:
        fake.close()


def resolver_for(*fakes_):
    table = {f.name: f.address for f in fakes_}
    return table.get


def test_all_answer_finishes_without_waiting(fakes):
    a = fakes(F1, lambda f, r, n: machines(3, f, r))
    b = fakes(F2, lambda f, r, n: machines(2, f, r))
    start = time.monotonic()
    result = peers.query_machines(make_cfg(F1, [F1, F2]), timeout=10,
                                  resolver=resolver_for(a, b))
    assert time.monotonic() - start < 1.0
    assert result.complete and result.missing == []
    assert sorted(result[F1]) == [f"{F1}-0", f"{F1}-1", f"{F1}-2"] and len(result[F2]) == 2
    assert a.requests[0]["message_type"] == "machines_query"
    assert a.requests[0]["vac_version"].endswith("vac-command")


def test_retry_only_incomplete_factories(fakes):
    dropper = fakes(F1, lambda f, r, n: machines(3, f, r, skip={1} if n == 1 else ()))
    silent_once = fakes(F2, lambda f, r, n: [] if n == 1 else machines(1, f, r))
    good = fakes(F3, lambda f, r, n: machines(2, f, r))
    result = peers.query_machines(make_cfg(F1, [F1, F2, F3]), timeout=1.0,
                                  resolver=resolver_for(dropper, silent_once, good))
    assert result.complete
    assert len(dropper.requests) == 2 and len(silent_once.requests) == 2
    assert len(good.requests) == 1
    assert len({r["cookie"] for r in dropper.requests}) == 1    # one salt per batch


def test_bad_replies_ignored_and_dead_factory_named(fakes):
    def evil(f, r, n):
        good = reply(f, r, vq.FACTORY_STATUS, factory_body())
        return [dict(good, cookie="0" * 64), dict(good, space="other.space"),
                dict(good, message_type="machine_status"), b"not json", b"[]",
                dict(good, factory="f3.example.com")]
    bad = fakes(F1, evil)
    fine = fakes(F2, lambda f, r, n: [reply(f, r, vq.FACTORY_STATUS, factory_body())])
    cfg = make_cfg(F1, [F1, F2, "f3"], udp_timeout_seconds=0.5)
    table = {F1: bad.address, F2: fine.address, F3: ("127.0.0.1", 9)}
    start = time.monotonic()
    result = peers.query_factories(cfg, resolver=table.get)
    assert time.monotonic() - start < 1.5
    assert list(result) == [F2] and result.missing == [F1, F3]
    assert result[F2]["factory"] == F2 and not result.complete


def test_incomplete_factory_reported(fakes):
    partial = fakes(F1, lambda f, r, n: machines(4, f, r, skip={3}))
    result = peers.query_machines(make_cfg(F1, [F1]), timeout=0.5,
                                  resolver=resolver_for(partial))
    assert result.incomplete == [F1] and result.not_answered == [F1]
    assert len(result[F1]) == 3 and 2 <= len(partial.requests) <= 6


def test_machinetypes_mapping_shape(fakes):
    def two(f, r, n):
        return [reply(f, r, vq.MACHINETYPE_STATUS,
                      dict(machinetype_body(), num_machinetypes=2, machinetype=mt))
                for mt in ("atlas", "lhcb")]
    fake = fakes(F1, two)
    result = peers.query_machinetypes(make_cfg(F1, [F1]), resolver=resolver_for(fake))
    assert result[F1]["lhcb"]["running_hs06"] == 20.0
    assert dict(result)[F1].keys() == {"atlas", "lhcb"}
    assert fake.requests[0]["vac_version"].endswith("vacd-factory")
    assert "method" not in fake.requests[0]


def test_each_kept_reply_is_seen_once_with_its_factorys_place(fakes):
    def twice(f, r, n):
        once = [reply(f, r, vq.MACHINETYPE_STATUS,
                      dict(machinetype_body(), num_machinetypes=2, machinetype=mt))
                for mt in ("atlas", "lhcb")]
        return once + once                    # duplicates are not seen again
    a, b = fakes(F2, twice), fakes(F3, twice)
    seen = []
    result = peers.query_machinetypes(
        make_cfg(F1, [F3, F2]), resolver=resolver_for(a, b),
        on_reply=lambda position, key, body: seen.append((position, key, body["factory"])))
    assert list(result) == [F3, F2]
    assert sorted(seen) == [(0, "atlas", F3), (0, "lhcb", F3), (1, "atlas", F2),
                            (1, "lhcb", F2)]


def test_space_override_and_names_canonicalised(fakes):
    seen = []

    def resolver(name):
        seen.append(name)
        return fake.address
    fake = fakes(F1, lambda f, r, n: [reply(f, r, vq.FACTORY_STATUS, factory_body(),
                                            space=r["space"])])
    cfg = make_cfg(F1, [F1])
    result = peers.query_factories(cfg, factories=["f1", "."], space="vac02.example.com",
                                   resolver=resolver, timeout=0.5)
    assert seen == [F1] and result.complete
    assert fake.requests[0]["space"] == "vac02.example.com"


def test_against_live_responder(paths):
    add_machine(paths, F1, 0, "lhcb", int(time.time()) - 10)
    with LiveResponder(paths, make_cfg(F1)) as live:
        result = peers.query_machinetypes(make_cfg(F1, [F1]),
                                          resolver=lambda name: live.address)
    assert result.complete and result[F1]["lhcb"]["running_machines"] == 1


def test_a_stalled_client_reads_queued_replies_before_giving_anybody_up(fakes, monkeypatch):
    """The client is not scheduled for 1.8 s right after sending (longer than the 1.5 s
    silence limit): the replies that queued meanwhile count, nobody is given up."""
    from vac.adapters import udp
    a = fakes(F1, lambda f, r, n: machines(2, f, r))
    b = fakes(F2, lambda f, r, n: machines(3, f, r))
    real_send = udp.send_to_many
    calls = []

    def send_then_stall(sock, datagrams):
        failures = real_send(sock, datagrams)
        calls.append(len(datagrams))
        if len(calls) == 1:
            time.sleep(1.8)
        return failures
    monkeypatch.setattr(udp, "send_to_many", send_then_stall)
    result = peers.query_machines(make_cfg(F1, [F1, F2]), timeout=10,
                                  resolver=resolver_for(a, b))
    assert result.complete and len(result[F2]) == 3
    assert len(a.requests) == 1 and len(b.requests) == 1     # nobody asked twice
