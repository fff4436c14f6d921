"""HTTP clients for bench/bench_httpd.py: a burst of requests sent at the same instant from
one selector loop (no thread per client), and slow clients that hold half-sent requests.

A request's latency is from just before its connect() to the kernel's receive timestamp
(SO_TIMESTAMPNS) of the reply's last segment: when the reply reached the guest's socket.
The time until this one client process gets round to reading it (it drives hundreds of
connections on CPUs it shares with the servers) is reported apart, as "observed".
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

Address = Tuple[str, int]


@dataclass
class Call:
    """One request on a new connection from ``source``; ``kind`` labels its statistics."""

    kind: str
    addr: Address
    source: str
    data: bytes


@dataclass
class Result:
    kind: str
    seconds: float        # from connect() to the reply's arrival (kernel timestamp)
    status: int           # 0: no HTTP response (refused, reset, timeout)
    observed: float = 0.0  # from connect() until this client had read the whole reply


@dataclass
class _State:
    call: Call
    sock: socket.socket
    t0: float                       # time.time() just before connect()
    sent: int = 0
    arrived: float = 0.0            # kernel receive time of the last segment read
    buf: bytearray = field(default_factory=bytearray)


def http_request(method: str, path: str, body: bytes = b"",
                 host: Address = ("127.0.0.1", 80)) -> bytes:
    """A whole HTTP/1.1 request with ``Connection: close``, for the server at ``host``."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host[0]}:{host[1]}\r\n"
            f"Connection: close\r\n")
    if body or method == "PUT":
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _complete(buf: bytearray) -> Optional[int]:
    """The status once ``buf`` holds a whole response with Content-Length, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if len(buf) - end - 4 < length:
        return None
    return int(head[0].split()[1])


def _status(buf: bytearray) -> int:
    parts = bytes(buf[:32]).split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _step(st: _State, events: int) -> Optional[int]:
    """Advance one connection; its status when finished (0: failed), else None."""
    try:
        if st.sent < len(st.call.data):
            if events & selectors.EVENT_WRITE:
                st.sent += st.sock.send(st.call.data[st.sent:])
            return None
        chunk, ancillary, _flags, _addr = st.sock.recvmsg(65536, _ANCILLARY)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return 0
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            st.arrived = sec + nsec / 1e9
    if not chunk:
        return _status(st.buf)
    st.buf += chunk
    return _complete(st.buf)


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_ANCILLARY = socket.CMSG_SPACE(16)


def _result(st: _State, status: int) -> Result:
    now = time.time()
    arrived = st.arrived if status and st.arrived else now
    return Result(st.call.kind, arrived - st.t0, status, now - st.t0)


def burst(calls: List[Call], timeout: float = 10.0) -> List[Result]:
    """Open every call's connection at once, then drive them all from one selector."""
    sel = selectors.DefaultSelector()
    results: List[Result] = []
    for call in calls:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((call.source, 0))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        st = _State(call, sock, time.time())
        sock.connect_ex(call.addr)
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
    deadline = time.perf_counter() + timeout
    while sel.get_map() and time.perf_counter() < deadline:
        for key, events in sel.select(0.5):
            st = key.data
            status = _step(st, events)
            if status is None:
                if st.sent >= len(st.call.data) and key.events != selectors.EVENT_READ:
                    sel.modify(st.sock, selectors.EVENT_READ, st)
                continue
            results.append(_result(st, status))
            sel.unregister(st.sock)
            st.sock.close()
    for key in list(sel.get_map().values()):
        results.append(_result(key.data, 0))
        key.fileobj.close()
    sel.close()
    return results


class SlowClients:
    """``per_source`` connections from each source to each address, each sending a request
    head one byte per ``trickle`` seconds and never finishing it (a slowloris)."""

    HEAD = b"GET /jobfeatures/job_id HTTP/1.1\r\nX-Slow: "

    def __init__(self, addrs: List[Address], sources: List[str], per_source: int,
                 trickle: float = 1.0):
        self.socks: List[socket.socket] = []
        for addr in addrs:
            for source in sources:
                for _ in range(per_source):
                    try:
                        s = socket.create_connection(addr, timeout=2,
                                                     source_address=(source, 0))
                        s.sendall(self.HEAD)
                        self.socks.append(s)
                    except OSError:
                        continue
        self.attempted = len(addrs) * len(sources) * per_source
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, args=(trickle,), daemon=True)
        self._thread.start()

    def _trickle(self, period: float) -> None:
        while not self._stop.wait(period):
            for s in self.socks:
                try:
                    s.send(b"a")
                except OSError:
                    pass

    def still_open(self) -> int:
        """How many of the slow connections the server has not closed."""
        alive = 0
        for s in self.socks:
            s.setblocking(False)
            try:
                s.recv(1, socket.MSG_PEEK)      # data (an error reply), EOF: dropped
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        return alive

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.socks:
            s.close()
