"""The HTTP/1.x server of the metadata and MJF services: one event loop, a few workers.

Guests are untrusted and known only by their source address. With a thread per connection
and a per-read timeout, a few guests holding half-sent requests used up every thread and
denied the services to all other guests. Here:

- One event-loop thread (``selectors``, epoll) accepts connections and reads request
  heads, and bodies of at most ``memory_body`` (64 KiB), without blocking. A client that
  is still sending costs only its socket and buffer, never a thread.
- Only a complete request goes to a small pool of ``workers`` threads that run the
  ``app(request) -> reply`` callback (every decision is the app's; a reply has
  ``status``, ``content_type``, ``body`` and optionally ``headers``, (name, value) pairs). They never wait for
  a client: a reply is sent with one non-blocking send, the rest by the event loop.
  Before that, an optional ``quick(request) -> reply or None`` runs in the event loop
  itself: it answers what it holds in memory, or stores a body the loop already holds
  with a few local file-system calls (never waiting for a client or another host),
  saving two thread hand-offs and their GIL transfers per request (under a burst of
  PUTs they cost more CPU than the PUT itself); None sends the request on to the workers.
- The listening socket defers accept() until a connection's first data has arrived
  (TCP_DEFER_ACCEPT, or after a second anyway): its request is read at once, and a
  connection that sends nothing costs the server nothing meanwhile.
- A larger body (a JOBOUTPUTS file) is streamed by a thread of its own, started once the
  head is complete, so the app can refuse or reserve space before any of it is read; at
  most ``uploads_per_source`` (2) at once per source (more are 503), and room for 2 per
  slot in all.
- Per source address at most ``per_source`` connections are open (more are closed at
  once), and at most ``max_connections`` in all; the role sizes that total as slots x
  per_source, so every slot always has room and one source cannot exhaust the capacity.
- Whole-request deadlines, not per read: the head must be complete ``head_seconds``
  after the connection opened (or after the previous reply on a kept-alive one); a body
  and a reply each get ``body_seconds`` plus their length at ``min_rate``. Past its
  deadline the connection is dropped, however slowly the client keeps trickling.

Kept from the threading server it replaces: the 2 KiB request line (414), header limits
(431), the Host allow-list (400), no chunked bodies (411), an unparsable Content-Length
is 400, an exception in the app is 500, and the original's access log line.
Binding: when the address does not exist yet (the factory has not made the NAT network),
the socket is bound with IP_FREEBIND and serves as soon as the address appears.
"""

from __future__ import annotations

import logging
import queue
import _socket
import selectors
import socket
import threading
import time
from collections import deque
from typing import Callable, Collection, Mapping, NamedTuple, Optional

from vac.adapters import httpwire
from vac.adapters.accesslog import AccessLog
from vac.adapters.httpbody import (BodyError, BodyReader, MemorySource,  # noqa: F401
                                   SocketSource)
from vac.adapters.httpconns import (BUSY, LINGER, READ, WRITE, Conn,
                                    ConnTable, DropLog, Limits, fit_descriptor_limit,
                                    listen_socket)
from vac.adapters.httpreplies import ReplyWriter
from vac.adapters.httpwire import Head, HttpError

log = logging.getLogger(__name__)

SWEEP_SECONDS = 0.25            # how often deadlines are checked
_LISTEN, _WAKE = object(), object()


class HttpRequest(NamedTuple):
    """One request for the app (a NamedTuple: one is made per request, at half the cost
    of a frozen dataclass)."""

    method: str
    path: str
    client_ip: str
    headers: Mapping[str, str]
    content_length: Optional[int]
    body: BodyReader
    note: Callable[[str], None] = log.info     # an INFO log line, written with the access log


class VacHTTPServer(ReplyWriter):
    """The server: ``serve_forever()`` in one thread, ``shutdown()`` and
    ``server_close()`` from another, as socketserver's servers."""

    def __init__(self, address, app: Callable[[HttpRequest], object], server_name: str,
                 allowed_hosts: Collection[str] = (), limits: Optional[Limits] = None,
                 quick: Optional[Callable[[HttpRequest], object]] = None):
        self.app, self.quick = app, quick
        self.server_name_header = server_name
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.limits = fit_descriptor_limit(limits or Limits())
        self.socket, self.address_pending = listen_socket(*address)
        self.server_address = self.socket.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._sel.register(self.socket, selectors.EVENT_READ, _LISTEN)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._conns = ConnTable(self.limits)
        self._drops = DropLog()
        self._access = AccessLog(log)
        self._wake_pending = False
        self._done: deque = deque()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._stop, self._serving = False, False
        self._run_lock, self._stopped = threading.Lock(), threading.Event()
        self._workers = [threading.Thread(target=self._work, daemon=True,
                                          name=f"http-worker-{n}")
                         for n in range(self.limits.workers)]
        for worker in self._workers:
            worker.start()

    # --- the event loop -------------------------------------------------------------
    def serve_forever(self, poll_interval: float = SWEEP_SECONDS) -> None:
        with self._run_lock:
            if self._stop:
                return
            self._serving = True
        next_sweep = 0.0
        try:
            while not self._stop:
                for key, _mask in self._sel.select(min(poll_interval, SWEEP_SECONDS)):
                    if key.data is _LISTEN:
                        self._accept()
                    elif key.data is _WAKE:
                        self._drain_wake()
                    else:
                        self._on_ready(key.data)
                self._take_done()
                self._access.flush()
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + SWEEP_SECONDS
        finally:
            self._access.flush()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serve_forever() and wait until it has returned."""
        with self._run_lock:
            self._stop, serving = True, self._serving
        self._wake()
        if serving:
            self._stopped.wait()

    def server_close(self) -> None:
        for conn in self._conns.all():
            self._close(conn)
        for _ in self._workers:
            self._jobs.put(None)
        for s in (self.socket, self._wake_r, self._wake_w):
            s.close()
        self._sel.close()

    def _wake(self) -> None:
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._wake_w.send(b"\0")
        except OSError:       # buffer full (a wake-up is pending anyway) or closed
            pass

    def _drain_wake(self) -> None:
        self._wake_pending = False          # before _take_done() empties self._done
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _accept(self) -> None:
        family = self.socket.family
        for _ in range(64):
            try:        # _accept(): socket.accept() less its per-call family/type lookups
                fd, addr = self.socket._accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._drops.note("*", f"accept failed: {e}")
                return
            # the C socket type: socket.socket's Python __init__ and close() layers
            # cost 3 calls per connection, and the server uses none of what they add
            sock = _socket.socket(family, socket.SOCK_STREAM, 0, fd)
            conn = Conn(sock, addr[0], time.monotonic() + self.limits.head_seconds)
            if not self._conns.admit(conn):
                sock.close()
                self._drops.note(conn.source, "too many concurrent connections")
                continue
            sock.setblocking(False)
            self._on_ready(conn)            # the request has often arrived already
            if conn.state == READ and conn in self._conns:
                self._watch(conn, selectors.EVENT_READ)

    def _watch(self, conn: Conn, events: int) -> None:
        if conn.events == events:
            return
        if not events:
            self._sel.unregister(conn.sock)
        elif not conn.events:
            self._sel.register(conn.sock, events, conn)
        else:
            self._sel.modify(conn.sock, events, conn)
        conn.events = events

    def _close(self, conn: Conn) -> None:
        if conn.events:
            self._watch(conn, 0)
        if self._conns.forget(conn):
            conn.sock.close()

    def _sweep(self, now: float) -> None:
        for conn in self._conns.late(now):
            if conn.state != LINGER:
                self._drops.note(conn.source, "request or reply not complete in time")
            self._close(conn)

    def _on_ready(self, conn: Conn) -> None:
        if conn.state == WRITE:
            self._write(conn)
            return
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
        elif conn.state != LINGER:          # lingering: what still comes is dropped
            conn.buf += data
            self._advance(conn)

    # --- requests ---------------------------------------------------------------------
    def _advance(self, conn: Conn) -> None:
        """Parse what ``conn`` has received; dispatch a complete request."""
        if conn.head is None:
            try:
                end = httpwire.find_head_end(conn.buf, conn.scanned)
                if end < 0:
                    conn.scanned = len(conn.buf)
                    return
                head = httpwire.parse_head(conn.buf[:end])
                del conn.buf[:end]
                conn.scanned = 0
                length = self._check_head(conn, head)
            except HttpError as e:
                self._reply_error(conn, e)
                return
            if (length or 0) > self.limits.memory_body:
                self._stream(conn, head, length)
                return
            conn.head, conn.length = head, length
            conn.deadline = time.monotonic() + self.limits.transfer_seconds(length or 0)
            if length and len(conn.buf) < length and head.expects_continue:
                self._send_now(conn, httpwire.CONTINUE)
        length = conn.length or 0
        if len(conn.buf) < length:
            return
        body = bytes(conn.buf[:length])
        del conn.buf[:length]
        head, conn.head = conn.head, None
        reader = BodyReader(MemorySource(body), conn.length)
        if self.quick is not None and not conn.buf and self._serve_quick(conn, head, reader):
            return                  # (not with pipelined requests: no recursion through them)
        self._watch(conn, 0)
        conn.state = BUSY
        self._jobs.put((conn, head, reader))

    def _check_head(self, conn: Conn, head: Head) -> Optional[int]:
        """Content-Length of an acceptable request head; HttpError otherwise."""
        if "transfer-encoding" in head.fields:
            raise HttpError(411, "chunked bodies are not accepted", head.requestline)
        host = head.fields.get("host")
        if self.allowed_hosts and host is not None \
                and host.strip().lower() not in self.allowed_hosts:
            log.warning("%s refused Host %r", conn.source, host)
            raise HttpError(400, "Host not allowed", head.requestline)
        return head.content_length()

    def _stream(self, conn: Conn, head: Head, length: int) -> None:
        """Hand a request with a large body to a thread of its own (503 if its source
        has ``uploads_per_source`` already, or no thread can be had)."""
        if not self._conns.start_upload(conn.source):
            self._drops.note(conn.source, "too many uploads at once")
            self._reply_error(conn, HttpError(503, "too many uploads", head.requestline))
            return
        self._watch(conn, 0)
        conn.state = BUSY
        prefix = bytes(conn.buf[:length])
        del conn.buf[:length]
        conn.sock.setblocking(True)
        deadline = time.monotonic() + self.limits.transfer_seconds(length)
        source = SocketSource(conn.sock, prefix, deadline, head.expects_continue)
        try:
            threading.Thread(target=self._upload, daemon=True, name="http-upload",
                             args=(conn, head, BodyReader(source, length))).start()
        except RuntimeError as e:           # cannot start a thread: out of resources
            self._conns.end_upload(conn.source)
            self._drops.note(conn.source, f"no upload thread: {e}")
            conn.sock.setblocking(False)
            conn.state = READ
            self._reply_error(conn, HttpError(503, "no upload thread", head.requestline))

    def _upload(self, conn: Conn, head: Head, body: BodyReader) -> None:
        try:
            self._serve_one(conn, head, body, blocking=True)
        finally:
            self._conns.end_upload(conn.source)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._serve_one(*job)

    def _request(self, conn: Conn, head: Head, body: BodyReader) -> HttpRequest:
        return HttpRequest(head.method, head.path, conn.source, head.headers, body.length,
                           body, self._access.note)

    def _serve_quick(self, conn: Conn, head: Head, body: BodyReader) -> bool:
        """Answer in the event loop if ``quick`` can; False: it is for the workers."""
        try:
            reply = self.quick(HttpRequest(head.method, head.path, conn.source, head.headers,
                                           body.length, body, self._access.note))
        except Exception:  # request boundary: the workers' app answers it instead
            log.exception("%s %s %r: quick answer failed", conn.source, head.method,
                          head.path[:200])
            return False
        if reply is None:
            return False
        self._reply(conn, head, body, reply, in_loop=True)
        return True

    def _serve_one(self, conn: Conn, head: Head, body: BodyReader,
                   blocking: bool = False) -> None:
        """Run the app for one request (worker or upload thread) and start the reply."""
        request = self._request(conn, head, body)
        try:
            reply = self.app(request)
        except Exception:  # request boundary: never let one request kill the server
            log.exception("%s %s %r failed", conn.source, head.method, head.path[:200])
            reply = None
        if blocking:
            conn.sock.setblocking(False)
        self._reply(conn, head, body, reply, in_loop=False)


def make_server(host: str, port: int, app: Callable[[HttpRequest], object], server_name: str,
                allowed_hosts: Collection[str] = (), limits: Optional[Limits] = None,
                quick: Optional[Callable[[HttpRequest], object]] = None) -> VacHTTPServer:
    """Bind (IP_FREEBIND if the address does not exist yet) and return the server."""
    return VacHTTPServer((host, port), app, server_name, allowed_hosts, limits, quick)


def serve_in_thread(server: VacHTTPServer, name: str) -> threading.Thread:
    """Run ``server.serve_forever`` in a daemon thread (stop with ``server.shutdown()``)."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return thread
