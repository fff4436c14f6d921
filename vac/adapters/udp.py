"""UDP sockets for VacQuery and VacMon: big buffers, send-to-many, bounded receives.

No protocol knowledge here: bytes in, bytes out. Times are seconds on the monotonic clock.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

from vac.constants import UDP_BUFFER_BYTES

log = logging.getLogger(__name__)

Address = Tuple[str, int]
NET_CORE = "/proc/sys/net/core"


def raise_buffer_limits(wanted: int = UDP_BUFFER_BYTES, net_core: str = NET_CORE) -> None:
    """Raise net.core.rmem_max/wmem_max to ``wanted`` bytes if lower (root only)."""
    if os.geteuid() != 0:
        return
    for name in ("rmem_max", "wmem_max"):
        path = os.path.join(net_core, name)
        try:
            with open(path) as f:
                current = int(f.read().split()[0])
            if current < wanted:
                with open(path, "w") as f:
                    f.write(f"{wanted}\n")
        except (OSError, ValueError, IndexError) as e:
            log.warning("cannot raise %s to %d: %s", path, wanted, e)


def open_socket(bind_address: str = "", port: int = 0, buffer_bytes: int = UDP_BUFFER_BYTES,
                raise_limits: bool = False) -> socket.socket:
    """A non-blocking IPv4 UDP socket bound to (bind_address, port) with big buffers.

    ``raise_limits`` lets the kernel limits be raised first (only honoured for root).
    Raises OSError if the socket cannot be bound.
    """
    if raise_limits:
        raise_buffer_limits(buffer_bytes)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
            except OSError as e:
                log.warning("cannot set UDP buffer size %d: %s", buffer_bytes, e)
        sock.bind((bind_address, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def buffer_sizes(sock: socket.socket) -> Tuple[int, int]:
    """(receive, send) buffer sizes in bytes as the kernel reports them."""
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))


def send(sock: socket.socket, data: bytes, address: Address) -> Optional[str]:
    """Send one datagram; returns an error text instead of raising."""
    try:
        sock.sendto(data, address)
        return None
    except BlockingIOError:
        if wait_writable(sock, 1.0):
            try:
                sock.sendto(data, address)
                return None
            except OSError as e:
                return str(e)
        return "send buffer full"
    except OSError as e:
        return str(e)


def send_to_many(sock: socket.socket, datagrams: Iterable[Tuple[bytes, Address]]
                 ) -> List[Tuple[Address, str]]:
    """Send every (data, address); returns the (address, error) pairs that failed."""
    failures = []
    for data, address in datagrams:
        error = send(sock, data, address)
        if error:
            failures.append((address, error))
    return failures


def wait_writable(sock: socket.socket, seconds: float) -> bool:
    _, writable, _ = select.select([], [sock], [], max(0.0, seconds))
    return bool(writable)


def receive(sock: socket.socket, deadline: float, bufsize: int = 65535
            ) -> Optional[Tuple[bytes, Address]]:
    """One datagram, waiting until the monotonic ``deadline`` at most; None on timeout."""
    while True:
        try:
            data, address = sock.recvfrom(bufsize)
            return data, address[:2]
        except (BlockingIOError, InterruptedError):
            pass
        except ConnectionRefusedError:
            continue        # ICMP port unreachable from an earlier send: not a datagram
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([sock], [], [], remaining)
        if not readable and deadline - time.monotonic() <= 0:
            return None


Handler = Callable[[bytes, Any], Sequence[bytes]]


def wait_readable(sock: socket.socket, seconds: float) -> bool:
    """True once a datagram is waiting, False after ``seconds`` without one."""
    readable, _, _ = select.select([sock], [], [], max(0.0, seconds))
    return bool(readable)


def drain(sock: socket.socket, handle: Handler, bufsize: int, limit: int = 256
          ) -> Tuple[int, List[Tuple[Address, str]]]:
    """Answer the datagrams already waiting on a non-blocking ``sock`` (at most ``limit``).

    ``handle(data, address)`` returns the datagrams to send back to ``address`` (the full
    socket address). All waiting datagrams are read first, then all are answered, then
    all replies are sent: a send wakes the asking process, which on a busy host may
    preempt this one, so sends are kept out of the compute loop. Returns (datagrams
    read, (address, error) of failed sends).
    """
    recvfrom, sendto = sock.recvfrom, sock.sendto
    batch = []
    while len(batch) < limit:
        try:
            batch.append(recvfrom(bufsize))
        except (BlockingIOError, InterruptedError):
            break
        except ConnectionRefusedError:
            continue        # ICMP error of an earlier send, not a datagram
    answers = [(handle(data, address), address) for data, address in batch]
    failures: List[Tuple[Address, str]] = []
    for replies, address in answers:
        for reply in replies:
            try:
                sendto(reply, address)
            except OSError:
                error = send(sock, reply, address)     # waits for buffer space once
                if error:
                    failures.append((address[:2], error))
    return len(batch), failures
