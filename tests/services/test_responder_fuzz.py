"""Fuzz the LIVE responder: >= 100,000 random and mutated datagrams, valid queries still
answered between every batch, the serving thread never dies. Seeded, so reproducible."""

from __future__ import annotations

import json
import random
import socket
import time

from hypothesis import given, settings, strategies as st

from vac.adapters import statefs
from vac.core import vacquery as vq
from tests.services.respondertools import SPACE, LiveResponder, add_machine, make_cfg

F = "factory1.example.com"
TOTAL = 100_000
BATCH = 100
VALID = vq.request_dict(vq.MACHINES_QUERY, SPACE, "c" * 64, "04.00.00", "vac-command")

JUNK_VALUES = [None, True, 0, -1, 2 ** 70, 1e308, "", "x" * 900, [], {}, [[[]]],
               {"a": {"b": None}}, "\u0000", "\ud800", "machines", SPACE, "é" * 50]


def random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(6 if depth < 4 else 3)
    if kind == 0:
        return rng.choice(JUNK_VALUES)
    if kind == 1:
        return rng.randint(-10 ** 6, 10 ** 6)
    if kind == 2:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(12)))
    if kind == 3:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(random_json(rng, 5)) if rng.random() < 0.5 else rng.choice(list(VALID)):
            random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def structured(rng: random.Random) -> bytes:
    msg = dict(VALID)
    for key in rng.sample(list(msg), rng.randrange(len(msg) + 1)):
        choice = rng.randrange(3)
        if choice == 0:
            del msg[key]
        elif choice == 1:
            msg[key] = random_json(rng)
        else:
            msg[key] = rng.choice(list(vq.REQUEST_TYPES) + list(vq.LEGACY_METHODS) + ["x"])
    if rng.random() < 0.3:
        msg["method"] = rng.choice(list(vq.LEGACY_METHODS) + ["scan", 5, None])
    try:
        return json.dumps(msg).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return b"{" + bytes(rng.randrange(256) for _ in range(20))


def byte_mutation(rng: random.Random) -> bytes:
    data = bytearray(vq.encode(VALID))
    for _ in range(rng.randrange(1, 8)):
        op = rng.randrange(4)
        pos = rng.randrange(len(data) or 1)
        if op == 0 and data:
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and data:
            del data[pos]
        else:
            data = data[:pos]
    return bytes(data)


def random_bytes(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 2, 10, 100, 1023, 1024, 1025, 1500, rng.randrange(2048)])
    return bytes(rng.randrange(256) for _ in range(size))


def pathological(rng: random.Random) -> bytes:
    return rng.choice([b"[" * 1000, b'{"a":' * 300, b"1e999999", b"NaN", b'"' + b"\\" * 99,
                       b'{"space":"' + SPACE.encode() + b'","cookie":"\\ud800"}',
                       json.dumps(dict(VALID, space=SPACE + " ")).encode()])


GENERATORS = (structured, byte_mutation, random_bytes, pathological)


def datagram(rng: random.Random) -> bytes:
    return rng.choice(GENERATORS)(rng)


def wait_processed(live: LiveResponder, count: int, stall: float = 0.5) -> None:
    """Until the responder has read ``count`` datagrams or read nothing for ``stall`` s
    (a datagram the kernel dropped is never read)."""
    last, last_change = -1, time.monotonic()
    while live.responder.stats.received < count:
        assert live.thread.is_alive(), "responder thread died"
        received = live.responder.stats.received
        if received != last:
            last, last_change = received, time.monotonic()
        elif time.monotonic() - last_change > stall:
            return
        time.sleep(0.0002)


def valid_query_answered(live: LiveResponder, sock: socket.socket) -> bool:
    while True:                                         # drop replies to fuzz datagrams
        try:
            sock.recv(65535)
        except BlockingIOError:
            break
    cookie = "%064x" % random.getrandbits(256)
    sock.sendto(vq.encode(dict(VALID, cookie=cookie, message_type="factory_query")),
                live.address)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            reply = json.loads(sock.recv(65535))
        except BlockingIOError:
            time.sleep(0.001)
            continue
        if reply.get("cookie") == cookie:
            return True
    return False


def test_live_responder_survives_100k_datagrams(paths):
    statefs.ensure_state_dirs(paths)
    statefs.write_counts(paths, 1, 2, 1, 2, 1.0)
    add_machine(paths, F, 0, "lhcb", int(time.time()) - 100)
    rng = random.Random(20261121)
    with LiveResponder(paths, make_cfg(F), snapshot_seconds=1.0) as live, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sent = queries = 0
        while sent < TOTAL:
            for _ in range(BATCH):
                try:
                    sock.sendto(datagram(rng), live.address)
                except BlockingIOError:
                    continue
                except OSError:
                    pass                                    # e.g. EMSGSIZE: count it sent
                sent += 1
            wait_processed(live, sent + queries)
            if sent % (BATCH * 40) == 0:
                assert valid_query_answered(live, sock), f"no answer after {sent}"
                queries += 1
        assert valid_query_answered(live, sock)
        stats = live.responder.stats
        assert live.thread.is_alive()
    assert sent >= TOTAL and stats.received >= 0.99 * TOTAL and stats.errors == 0
    assert stats.malformed > TOTAL // 2 and stats.answered > 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200))
def test_parse_request_never_raises_on_bytes(data):
    request, error = vq.parse_request(data)
    assert (request is None) != (error is None)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=20))
def test_parse_request_never_raises_on_json(value):
    data = json.dumps(value).encode()
    request, error = vq.parse_request(data)
    assert (request is None) != (error is None)
    reply, problem = vq.parse_response(data)
    assert (reply is None) != (problem is None)
