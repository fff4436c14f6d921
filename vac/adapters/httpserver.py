"""A small threading HTTP/1.0 and 1.1 server for the metadata and MJF services.

Mechanism only: bounded request line (2 KiB), header lines (http.client limits: 100
lines of at most 64 KiB), body (streamed, never buffered beyond ``max_memory_body``),
per-socket timeout, a cap on concurrent connections, an optional Host allow-list, and
an ``app(request) -> reply`` callback that makes every decision. Malformed requests get
4xx from http.server and never reach the app; an exception in the app becomes 500.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Collection, Dict, Mapping, Optional

from vac.adapters.atomicfile import atomic_writer

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 2048          # bytes
MAX_MEMORY_BODY = 1024 * 1024    # bytes read into memory by BodyReader.read()
CHUNK = 64 * 1024
_METHOD_RE = re.compile(r"^[A-Z]{1,16}$")


class BodyError(Exception):
    """The request body could not be read or stored."""


class BodyReader:
    """The request body (exactly Content-Length bytes), read at most once."""

    def __init__(self, rfile, length: Optional[int]):
        self._rfile = rfile
        self.length = length
        self.consumed = not length

    def _chunks(self):
        remaining = self.length or 0
        self.consumed = True
        while remaining > 0:
            data = self._rfile.read(min(CHUNK, remaining))
            if not data:
                raise BodyError(f"body ended {remaining} bytes early")
            remaining -= len(data)
            yield data

    def read(self, max_bytes: int = MAX_MEMORY_BODY) -> bytes:
        if (self.length or 0) > max_bytes:
            raise BodyError(f"body of {self.length} bytes exceeds {max_bytes}")
        return b"".join(self._chunks())

    def save_atomic(self, path: str, mode: int = 0o644) -> int:
        """Stream the body into ``path`` (temp file + rename); returns bytes written."""
        written = 0
        try:
            with atomic_writer(path, mode=mode, fsync=False) as f:
                for data in self._chunks():
                    f.write(data)
                    written += len(data)
        except (OSError, BodyError, socket.timeout) as e:
            raise BodyError(f"cannot store body in {path}: {e}") from e
        return written


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    client_ip: str
    headers: Mapping[str, str]
    content_length: Optional[int]
    body: BodyReader


class VacHandler(BaseHTTPRequestHandler):
    """Maps each parsed request to ``server.app``; everything else is http.server's."""

    protocol_version = "HTTP/1.1"
    error_message_format = ""
    error_content_type = "text/plain"
    timeout = 10.0

    def version_string(self) -> str:
        return self.server.server_name_header

    def log_message(self, fmt, *args) -> None:
        """Access log as the original: client, PID, parent PID, [date], request summary."""
        log.info("%s %d %d [%s] %s", self.client_address[0], os.getpid(), os.getppid(),
                 self.log_date_time_string(), fmt % args)

    def parse_request(self) -> bool:
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
            self.send_error(414)
            return False
        if not super().parse_request():
            return False
        if not _METHOD_RE.match(self.command):
            self.send_error(400)
            return False
        return True

    def _content_length(self) -> Optional[int]:
        value = self.headers.get("Content-Length")
        if value is None or not value.strip().isdigit():
            return None
        return int(value)

    def _host_allowed(self) -> bool:
        allowed = self.server.allowed_hosts
        host = self.headers.get("Host")
        return not allowed or host is None or host.strip().lower() in allowed

    def _dispatch(self) -> None:
        if "Transfer-Encoding" in self.headers:
            self.send_error(411)        # chunked bodies are not accepted
            return
        if not self._host_allowed():
            log.warning("%s refused Host %r", self.client_address[0], self.headers["Host"])
            self.send_error(400)
            return
        length = self._content_length()
        if length is None and "Content-Length" in self.headers:
            self.send_error(400)        # unparsable length: the body cannot be skipped
            return
        request = HttpRequest(self.command, self.path, self.client_address[0],
                              dict(self.headers.items()), length, BodyReader(self.rfile, length))
        try:
            reply = self.server.app(request)
        except Exception:  # request boundary: never let one request kill the server
            log.exception("%s %s %r failed", self.client_address[0], self.command,
                          self.path[:200])
            self.close_connection = True
            self.send_error(500)
            return
        if not request.body.consumed:
            self.close_connection = True
        self._send(reply.status, reply.content_type, reply.body)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def __getattr__(self, name: str):
        if name.startswith("do_"):
            return self._dispatch      # every method reaches the app, which decides
        raise AttributeError(name)


class VacHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with connection caps (in total and per source address), a Host
    allow-list and an app callback. Connections over a cap are closed at once, so one
    client can neither exhaust the threads nor stall the accept loop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, app: Callable[[HttpRequest], object], server_name: str,
                 allowed_hosts: Collection[str] = (), max_connections: int = 128,
                 max_per_source: int = 16):
        self.app = app
        self.server_name_header = server_name
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.max_connections, self.max_per_source = max_connections, max_per_source
        self._lock = threading.Lock()
        self._open: Dict[str, int] = {}
        super().__init__(address, VacHandler)

    def _admit(self, source: str) -> bool:
        with self._lock:
            if sum(self._open.values()) >= self.max_connections \
                    or self._open.get(source, 0) >= self.max_per_source:
                return False
            self._open[source] = self._open.get(source, 0) + 1
            return True

    def _release(self, source: str) -> None:
        with self._lock:
            left = self._open.get(source, 1) - 1
            if left > 0:
                self._open[source] = left
            else:
                self._open.pop(source, None)

    def process_request(self, request, client_address) -> None:
        if not self._admit(client_address[0]):
            log.warning("%s dropped: too many concurrent connections", client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._release(client_address[0])
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(client_address[0])

    def handle_error(self, request, client_address) -> None:
        log.debug("%s connection error", client_address[0], exc_info=True)


def make_server(host: str, port: int, app: Callable[[HttpRequest], object], server_name: str,
                allowed_hosts: Collection[str] = ()) -> VacHTTPServer:
    """Bind (raises OSError if the address does not exist yet) and return the server."""
    return VacHTTPServer((host, port), app, server_name, allowed_hosts)


def serve_in_thread(server: VacHTTPServer, name: str) -> threading.Thread:
    """Run ``server.serve_forever`` in a daemon thread (stop with ``server.shutdown()``)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name=name, daemon=True)
    thread.start()
    return thread
