"""The bounded HTTP server adapter on its own: app errors, HEAD, keep-alive, limits."""

from __future__ import annotations

import http.client
import socket
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
