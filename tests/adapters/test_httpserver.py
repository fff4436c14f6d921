"""The bounded HTTP server adapter on its own: app errors, HEAD, keep-alive, limits."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass

import pytest

from vac.adapters import httpserver


@dataclass
class Reply:
    status: int
    content_type: str = "text/plain"
    body: bytes = b""


def _app(request):
    if request.path == "/boom":
        raise RuntimeError("app bug")
    if request.path == "/echo":
        return Reply(200, body=request.body.read(100))
    if request.path == "/count":
        return Reply(200, body=str(len(request.body.read())).encode())
    return Reply(200, body=f"{request.method} {request.path} {request.client_ip}".encode())


@pytest.fixture
def server():
    srv = httpserver.make_server("127.0.0.1", 0, _app, "Test server",
                                 allowed_hosts=("good.example",))
    httpserver.serve_in_thread(srv, "test-http")
    yield srv.server_address
    srv.shutdown()
    srv.server_close()


def _conn(addr):
    return http.client.HTTPConnection(*addr, timeout=5)


def test_app_exception_is_a_500_and_the_server_lives_on(server):
    c = _conn(server)
    c.request("GET", "/boom", headers={"Host": "good.example"})
    r = c.getresponse()
    assert (r.status, r.read(), r.getheader("Server")) == (500, b"", "Test server")
    c = _conn(server)
    c.request("GET", "/ok", headers={"Host": "good.example"})
    assert c.getresponse().read() == b"GET /ok 127.0.0.1"


def test_keep_alive_head_and_body(server):
    c = _conn(server)
    c.request("HEAD", "/x", headers={"Host": "good.example"})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == str(len(b"HEAD /x 127.0.0.1"))
    assert r.read() == b""
    c.request("PUT", "/echo", body=b"hello", headers={"Host": "good.example"})
    assert c.getresponse().read() == b"hello"                 # same connection
    c.request("PUT", "/ignored", body=b"x" * 5000, headers={"Host": "good.example"})
    r = c.getresponse()
    assert r.read().startswith(b"PUT") and r.getheader("Connection") == "close"


def test_host_allow_list_and_request_line_limit(server):
    c = _conn(server)
    c.request("GET", "/", headers={"Host": "evil.example"})
    assert c.getresponse().status == 400
    with socket.create_connection(server, timeout=5) as s:
        s.sendall(b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 414")
    with socket.create_connection(server, timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 150 + b"\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 431")


def test_unparsable_content_length_is_refused(server):
    with socket.create_connection(server, timeout=5) as s:
        s.sendall(b"PUT /echo HTTP/1.1\r\nHost: good.example\r\nContent-Length: 3x\r\n\r\n"
                  b"GET /smuggled HTTP/1.1\r\n\r\n")
        data = s.recv(1000)
        assert data.startswith(b"HTTP/1.1 400") and b"smuggled" not in data


def _limited(**kw):
    srv = httpserver.make_server("127.0.0.1", 0, _app, "Test server",
                                 limits=httpserver.Limits(**kw))
    httpserver.serve_in_thread(srv, "test-http")
    return srv


def _closed_after(sock: socket.socket, trickle: bytes, limit: float) -> float:
    """Send ``trickle`` one byte every 0.2 s until the server drops the connection;
    seconds until it did (fails after ``limit``)."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    for i in range(int(limit / 0.2)):
        try:
            sock.send(trickle[i % len(trickle):][:1])
            sock.recv(1000)                 # EOF, or an error reply before the close
            return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    pytest.fail(f"connection still open after {limit} s")


def test_whole_request_deadlines_drop_slow_clients():
    """A client sending one byte every 0.2 s keeps a per-read timeout happy forever; the
    head, body and upload deadlines (1 s here) drop it however it trickles."""
    srv = _limited(head_seconds=1.0, body_seconds=1.0, memory_body=100)
    try:
        def connect(first: bytes) -> socket.socket:
            s = socket.create_connection(srv.server_address, timeout=5)
            s.sendall(first)
            return s
        with connect(b"GET /x HTTP/1.1\r\nHost: good.example\r\nX-Slow: ") as head, \
                connect(b"PUT /echo HTTP/1.1\r\nContent-Length: 90\r\n\r\nab") as body, \
                connect(b"PUT /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\nab") as upload:
            assert 0.7 < _closed_after(head, b"a", 4) < 2.5
            assert _closed_after(body, b"a", 4) < 2.5
            assert _closed_after(upload, b"a", 4) < 2.5
    finally:
        srv.shutdown()
        srv.server_close()


def test_per_source_cap_leaves_room_for_many_slots():
    """40 sources x 8 connections (2.5 x the old 128-connection total) are all served
    together; a 9th connection from one source is dropped at once. (Each has sent part
    of its head: the kernel hands a connection to accept() once data has arrived.)"""
    srv = _limited()
    per = srv.limits.per_source
    socks = []
    try:
        for n in range(40):
            for _ in range(per):
                socks.append(socket.create_connection(srv.server_address, timeout=5,
                                                      source_address=(f"127.0.1.{n}", 0)))
                socks[-1].sendall(b"GET /x HTTP/1.0\r\n")
        deadline = time.monotonic() + 5
        while len(list(srv._conns.all())) < len(socks) and time.monotonic() < deadline:
            time.sleep(0.01)
        with socket.create_connection(srv.server_address, timeout=5,
                                      source_address=("127.0.1.0", 0)) as extra:
            extra.sendall(b"GET /x HTTP/1.0\r\n\r\n")
            try:
                assert extra.recv(100) == b""
            except ConnectionResetError:
                pass
        for s in socks:
            s.sendall(b"\r\n")
        replies = [s.recv(1000) for s in socks]
        assert all(r.startswith(b"HTTP/1.1 200") for r in replies), replies[:3]
    finally:
        for s in socks:
            s.close()
        srv.shutdown()
        srv.server_close()


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def test_uploads_per_source_are_capped(server):
    """Large bodies are streamed by a thread each: a third at once from one source is 503,
    another source still gets its own."""
    head = (b"PUT /count HTTP/1.1\r\nHost: good.example\r\nContent-Length: 100000\r\n"
            b"Connection: close\r\n\r\n")
    uploads = []
    try:
        for source in ("127.0.0.7", "127.0.0.7", "127.0.0.7", "127.0.0.8"):
            s = socket.create_connection(server, timeout=5, source_address=(source, 0))
            s.sendall(head + b"z" * 1000)
            uploads.append(s)
            time.sleep(0.1)
        assert _read_all(uploads[2]).startswith(b"HTTP/1.1 503")
        for s in uploads[:2] + uploads[3:]:
            s.sendall(b"z" * 99000)
            assert _read_all(s).endswith(b"\r\n\r\n100000")
    finally:
        for s in uploads:
            s.close()


def test_expect_continue_and_pipelining(server):
    """``Expect: 100-continue`` gets its interim reply only when the app reads the body;
    pipelined requests are answered in order."""
    expect = (b"Host: good.example\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n"
              b"Connection: close\r\n\r\n")
    with socket.create_connection(server, timeout=5) as s:
        s.sendall(b"PUT /count HTTP/1.1\r\n" + expect)
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"y" * 100000)
        assert _read_all(s).endswith(b"\r\n\r\n100000")
    with socket.create_connection(server, timeout=5) as s:
        s.sendall(b"PUT /not-read HTTP/1.1\r\n" + expect)
        reply = s.recv(1000)                # the app did not read the body: no 100
        assert reply.startswith(b"HTTP/1.1 200") and b"Connection: close" in reply
    with socket.create_connection(server, timeout=5) as s:
        s.sendall(b"GET /a HTTP/1.1\r\nHost: good.example\r\n\r\n"
                  b"PUT /echo HTTP/1.1\r\nHost: good.example\r\nContent-Length: 3\r\n\r\nabc"
                  b"GET /b HTTP/1.1\r\nHost: good.example\r\nConnection: close\r\n\r\n")
        data = _read_all(s)
    bodies = [part.split(b"\r\n\r\n", 1)[1][:17] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"GET /a 127.0.0.1", b"abc", b"GET /b 127.0.0.1"]


def test_missing_address_is_bound_with_freebind():
    srv = httpserver.make_server("192.0.2.77", 0, _app, "Test server")   # TEST-NET-1
    try:
        assert srv.address_pending and srv.server_address[0] == "192.0.2.77"
    finally:
        srv.server_close()
    srv = httpserver.make_server("127.0.0.1", 0, _app, "Test server")
    assert not srv.address_pending
    srv.server_close()


def test_quick_answers_in_the_event_loop_and_none_goes_to_the_app():
    """``quick`` runs in the event loop thread; what it leaves (None) reaches the app;
    pipelined requests on one connection are all answered in order (after the first they
    go to the workers, so a long pipeline cannot recurse through the loop)."""
    threads = []

    def quick(request):
        threads.append(threading.current_thread().name)
        return Reply(200, body=b"quick " + request.path.encode()) if request.path[:2] == "/q" \
            else None
    srv = httpserver.make_server("127.0.0.1", 0, _app, "Test server", quick=quick)
    httpserver.serve_in_thread(srv, "test-loop")
    try:
        c = _conn(srv.server_address)
        c.request("GET", "/q")
        assert c.getresponse().read() == b"quick /q"
        c.request("GET", "/other")
        assert c.getresponse().read() == b"GET /other 127.0.0.1"
        assert set(threads) == {"test-loop"}
        with socket.create_connection(srv.server_address, timeout=5) as s:
            s.sendall(b"".join(b"GET /q%d HTTP/1.1\r\n\r\n" % n for n in range(300))
                      + b"GET /qlast HTTP/1.1\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        bodies = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
        paths = [b"/q%d" % n for n in range(300)] + [b"/qlast"]
        assert len(bodies) == len(paths)
        assert all(body in (b"quick " + path, b"GET " + path + b" 127.0.0.1")
                   for body, path in zip(bodies, paths))
    finally:
        srv.shutdown()
        srv.server_close()


def test_silent_connections_cost_the_server_nothing_until_they_send():
    """A source that opens many connections and sends nothing (3 x its per-source cap) is
    not accepted until data arrives or the kernel's deferral ends (TCP_DEFER_ACCEPT):
    meanwhile another source is served at once, and after the deferral the silent ones
    are held only up to the per-source cap and dropped at their head deadline."""
    srv = _limited(head_seconds=2.0)
    per = srv.limits.per_source
    silent = [socket.create_connection(srv.server_address, timeout=5,
                                       source_address=("127.0.2.1", 0))
              for _ in range(3 * per)]
    try:
        start = time.monotonic()
        with socket.create_connection(srv.server_address, timeout=5,
                                      source_address=("127.0.2.2", 0)) as other:
            other.sendall(b"GET /x HTTP/1.0\r\n\r\n")
            assert other.recv(100).startswith(b"HTTP/1.1 200")
        assert time.monotonic() - start < 1.0
        assert not any(c.source == "127.0.2.1" for c in srv._conns.all())
        deadline = time.monotonic() + srv.limits.head_seconds + 10
        held = 0
        while time.monotonic() < deadline:
            held = max(held, sum(c.source == "127.0.2.1" for c in srv._conns.all()))
            if held and not any(c.source == "127.0.2.1" for c in srv._conns.all()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("silent connections were never accepted and dropped")
        assert 0 < held <= per
    finally:
        for s in silent:
            s.close()
        srv.shutdown()
        srv.server_close()
