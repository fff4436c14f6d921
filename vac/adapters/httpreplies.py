"""Sending the HTTP server's replies: the write half of vac.adapters.httpserver's
connection state machine (one non-blocking send from a worker, the rest from the event
loop; then close, linger or read the next request on a kept-alive connection).

:class:`ReplyWriter` is mixed into :class:`vac.adapters.httpserver.VacHTTPServer` and
uses its ``server_name_header``, ``limits``, ``_access`` (the access log batch),
``_conns``, ``_done`` (replies handed back by workers), ``_wake``, ``_watch``,
``_close`` and ``_advance``.
"""

from __future__ import annotations

import selectors
import socket
import time

from vac.adapters import httpwire
from vac.adapters.httpbody import BodyReader
from vac.adapters.httpconns import LINGER, LINGER_SECONDS, READ, WRITE, Conn
from vac.adapters.httpwire import Head, HttpError

_MORE = getattr(socket, "MSG_MORE", 0)   # one segment for a last reply and its FIN


class ReplyWriter:
    """The reply-sending methods of the server (see the module's docstring)."""

    def _reply(self, conn: Conn, head: Head, body: BodyReader, reply,
               in_loop: bool) -> None:
        """Send ``reply`` (None: 500) with one non-blocking send; the event loop sends the
        rest (at once if ``in_loop``, else once woken)."""
        if reply is None:
            status, ctype, payload, close, extra = 500, "text/plain", b"", True, ()
        else:
            status, ctype, payload = reply.status, reply.content_type, reply.body
            extra, close = getattr(reply, "headers", ()), not head.keep_alive
        close = close or not body.consumed
        out = httpwire.reply_bytes(status, ctype, payload, self.server_name_header, close,
                                   send_body=head.method != "HEAD", extra=extra)
        try:        # closing after it: MSG_MORE holds the reply to leave with the FIN
            sent = conn.sock.send(out, _MORE if close else 0)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent, close = len(out), True
        # logged (by the event loop) once the reply is on its way
        self._access.add(conn.source, head.requestline, status)
        if close and sent == len(out) and body.consumed:
            if in_loop:
                self._close(conn)
            elif self._conns.forget(conn):    # done: no need to wake the event loop
                conn.sock.close()
        elif in_loop:
            self._start_reply(conn, out[sent:], close, not body.consumed)
        else:
            self._done.append((conn, out[sent:], close, not body.consumed))
            self._wake()

    # --- replies ----------------------------------------------------------------------
    def _take_done(self) -> None:
        while self._done:
            conn, rest, close, linger = self._done.popleft()
            if conn in self._conns:
                self._start_reply(conn, rest, close, linger)

    def _reply_error(self, conn: Conn, e: HttpError) -> None:
        self._access.add(conn.source, e.requestline, e.status)
        out = httpwire.reply_bytes(e.status, "text/plain", b"", self.server_name_header,
                                   close=True)
        self._start_reply(conn, out, True, linger=True)

    def _start_reply(self, conn: Conn, out: bytes, close: bool, linger: bool = False) -> None:
        """Send ``out``; then close (after lingering if the client may still be sending a
        body, so that it reads the reply instead of a reset) or read the next request."""
        conn.state, conn.out, conn.close_after = WRITE, memoryview(out), close
        conn.linger = linger
        conn.deadline = time.monotonic() + self.limits.transfer_seconds(len(out))
        self._write(conn)

    def _send_now(self, conn: Conn, data: bytes) -> None:
        try:
            conn.sock.send(data)
        except OSError:
            pass

    def _write(self, conn: Conn) -> None:
        try:
            while conn.out:
                conn.out = conn.out[conn.sock.send(conn.out):]
        except (BlockingIOError, InterruptedError):
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except OSError:
            self._close(conn)
            return
        if conn.close_after and conn.linger:
            self._linger(conn)
            return
        if conn.close_after:
            self._close(conn)
            return
        conn.state = READ
        conn.deadline = time.monotonic() + self.limits.head_seconds
        self._watch(conn, selectors.EVENT_READ)
        if conn.buf:
            self._advance(conn)

    def _linger(self, conn: Conn) -> None:
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state, conn.deadline = LINGER, time.monotonic() + LINGER_SECONDS
        conn.buf.clear()
        self._watch(conn, selectors.EVENT_READ)
