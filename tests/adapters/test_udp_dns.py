"""udp (buffers, bounded receive, send-to-many) and dns (SPEC §7.8 canonical names)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from vac.adapters import dns, udp


def test_canonical_names():
    this = "factory1.example.com"
    assert dns.canonical_name(".", this) == this
    assert dns.canonical_name("factory2", this) == "factory2.example.com"
    assert dns.canonical_name("Factory3.Other.ORG.", this) == "factory3.other.org"
    assert dns.canonical_name("f4", "nodomain") == "f4"


def test_resolve_ipv4_localhost_and_failure():
    assert dns.resolve_ipv4("127.0.0.1") == "127.0.0.1"
    assert dns.resolve_ipv4("no-such-host.invalid", timeout=0.5) is None


def test_resolve_all_localhost_and_a_name_that_does_not_resolve():
    """The DNS fallback runs (dnspython imported only for it) and gives nothing back for a
    name that does not exist, rather than failing."""
    assert "127.0.0.1" in dns.resolve_all("localhost")
    assert dns.resolve_all("no-such-host.invalid", timeout=0.5) == []


def test_socket_buffers_and_bounded_receive():
    sock = udp.open_socket("127.0.0.1", 0, buffer_bytes=1 << 20)
    try:
        receive_bytes, send_bytes = udp.buffer_sizes(sock)
        assert receive_bytes >= min(1 << 20, 2 * int(open("/proc/sys/net/core/rmem_max").read()))
        start = time.monotonic()
        assert udp.receive(sock, time.monotonic() + 0.1) is None
        assert 0.09 <= time.monotonic() - start < 1.0
        address = sock.getsockname()
        failures = udp.send_to_many(sock, [(b"one", address), (b"two", address),
                                           (b"x", ("127.0.0.1", 0))])
        assert len(failures) == 1
        got = [udp.receive(sock, time.monotonic() + 1)[0] for _ in range(2)]
        assert got == [b"one", b"two"]
    finally:
        sock.close()


def test_bind_conflict_raises():
    first = udp.open_socket("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            udp.open_socket("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="raising limits needs root")
def test_raise_buffer_limits_only_when_lower(tmp_path):
    (tmp_path / "rmem_max").write_text("212992\n")
    (tmp_path / "wmem_max").write_text("33554432\n")
    udp.raise_buffer_limits(16777216, net_core=str(tmp_path))
    assert (tmp_path / "rmem_max").read_text() == "16777216\n"
    assert (tmp_path / "wmem_max").read_text() == "33554432\n"


def test_receive_skips_icmp_errors():
    sock = udp.open_socket("127.0.0.1", 0)
    try:
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()
        closed.close()
        sock.connect(dead)            # connected sockets get ECONNREFUSED on recv
        sock.send(b"ping")
        assert udp.receive(sock, time.monotonic() + 0.2) is None
    finally:
        sock.close()
