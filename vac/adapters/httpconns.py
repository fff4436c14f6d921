"""Connections of vac.adapters.httpserver: limits, the listening socket, and the table
that admits a connection only while its source and the server have room (thread-safe:
the event loop admits, a worker may count a finished connection out).
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Set

from vac.adapters.httpwire import Head

log = logging.getLogger("vac.adapters.httpserver")

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)     # Linux <netinet/in.h>
BACKLOG = 1024
FD_HEADROOM = 256               # descriptors beyond the connections (files, logs, pipes)
LOG_EVERY_SECONDS = 60.0        # at most one "dropped" line per source and reason
LINGER_SECONDS = 2.0            # reading what a client still sends after its final reply
# Conn.state: the event loop reads; the app runs; replying; discarding after the reply
READ, BUSY, WRITE, LINGER = 1, 2, 3, 4


@dataclass(frozen=True)
class Limits:
    """Connection limits and deadlines (counts, seconds, bytes, bytes/s)."""

    per_source: int = 8
    max_connections: int = 2048
    head_seconds: float = 10.0
    body_seconds: float = 10.0
    min_rate: float = 1024 * 1024
    memory_body: int = 64 * 1024
    uploads_per_source: int = 2
    workers: int = 4

    def transfer_seconds(self, nbytes: int) -> float:
        return self.body_seconds + nbytes / self.min_rate


class Conn:
    """One client connection; touched only by the event loop, except while BUSY."""

    __slots__ = ("sock", "source", "buf", "scanned", "head", "length", "state", "deadline",
                 "out", "close_after", "linger", "events")

    def __init__(self, sock: socket.socket, source: str, deadline: float):
        self.sock, self.source, self.deadline = sock, source, deadline
        self.buf, self.scanned, self.state, self.events = bytearray(), 0, READ, 0
        self.head: Optional[Head] = None
        self.length: Optional[int] = None
        self.out, self.close_after, self.linger = memoryview(b""), False, False


class ConnTable:
    """Open connections and streamed uploads, counted per source address."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.max_uploads = (limits.max_connections // limits.per_source
                            * limits.uploads_per_source)
        self._lock = threading.Lock()
        self._conns: Set[Conn] = set()
        self._per_source: Dict[str, int] = {}
        self._uploads: Dict[str, int] = {}

    def __contains__(self, conn: Conn) -> bool:
        return conn in self._conns

    def admit(self, conn: Conn) -> bool:
        """Count ``conn`` in, unless the total or its source's share is used up."""
        with self._lock:        # (_add() inline: once per connection)
            count = self._per_source.get(conn.source, 0)
            if len(self._conns) >= self.limits.max_connections \
                    or count >= self.limits.per_source:
                return False
            self._conns.add(conn)
            self._per_source[conn.source] = count + 1
            return True

    def forget(self, conn: Conn) -> bool:
        """Count ``conn`` out; False if it already was."""
        with self._lock:
            if conn not in self._conns:
                return False
            self._conns.discard(conn)
            left = self._per_source.get(conn.source, 0) - 1
            if left > 0:
                self._per_source[conn.source] = left
            else:
                self._per_source.pop(conn.source, None)
            return True

    def all(self) -> List[Conn]:
        with self._lock:
            return list(self._conns)

    def late(self, now: float) -> List[Conn]:
        """Connections past their deadline (not those an app is busy with)."""
        with self._lock:
            return [c for c in self._conns if c.state != BUSY and now > c.deadline]

    def start_upload(self, source: str) -> bool:
        """Count an upload of ``source`` in, unless it (or the server) has no room."""
        with self._lock:
            if self._uploads.get(source, 0) >= self.limits.uploads_per_source \
                    or sum(self._uploads.values()) >= self.max_uploads:
                return False
            _add(self._uploads, source, 1)
            return True

    def end_upload(self, source: str) -> None:
        with self._lock:
            _add(self._uploads, source, -1)


def _add(counts: Dict[str, int], key: str, delta: int) -> None:
    left = counts.get(key, 0) + delta
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


class DropLog:
    """Logs dropped connections at most once a minute per source and reason."""

    def __init__(self) -> None:
        self._last: Dict[tuple, float] = {}

    def note(self, source: str, why: str) -> None:
        now = time.monotonic()
        if now - self._last.get((source, why), -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
            if len(self._last) > 4096:
                self._last.clear()
            self._last[(source, why)] = now
            log.warning("%s dropped: %s", source, why)


TCP_DEFER_ACCEPT = getattr(socket, "TCP_DEFER_ACCEPT", 9)
# a connection is handed to accept() once its first data has arrived (or after this long
# anyway): its request is then read at once, without registering it with epoll first
DEFER_ACCEPT_SECONDS = 1


def listen_socket(host: str, port: int):
    """(listening non-blocking socket, True if bound with IP_FREEBIND because ``host``
    does not exist yet: it is served as soon as it appears)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    freebind = False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno != errno.EADDRNOTAVAIL:
                raise
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            sock.bind((host, port))
            freebind = True
        sock.setsockopt(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock, freebind


def fit_descriptor_limit(limits: Limits) -> Limits:
    """Raise RLIMIT_NOFILE for ``max_connections``; lower the total if the hard limit is
    too low (logged)."""
    need = limits.max_connections + FD_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return limits
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        target = soft
    if target >= need:
        return limits
    fitted = max(limits.per_source, target - FD_HEADROOM)
    log.warning("open files limited to %d: at most %d HTTP connections instead of %d",
                target, fitted, limits.max_connections)
    return replace(limits, max_connections=fitted)
