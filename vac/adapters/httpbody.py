"""Request bodies for vac.adapters.httpserver: read at most once, from memory (bodies the
event loop already holds) or from the socket under a whole-body deadline (large uploads).

:class:`BodyError` tells the two kinds of failure apart: ``errno`` is None when the
client is at fault (body cut short, too slow), else the storage error's errno (ENOSPC,
EDQUOT, EIO...), so a service can answer 507 when the disk is full and the guest may retry.
"""

from __future__ import annotations

import errno as errnos
import os
import socket
import time
from typing import Optional

from vac.adapters.atomicfile import atomic_writer, replace_file
from vac.adapters.httpwire import CONTINUE
from vac.adapters.recycledfile import recycle_file

MAX_MEMORY_BODY = 1024 * 1024    # bytes read into memory by BodyReader.read()
CHUNK = 64 * 1024
_NO_PREALLOCATION = (errnos.EOPNOTSUPP, errnos.EINVAL, errnos.ENOSYS)


class BodyError(Exception):
    """The request body could not be read (``errno`` None) or stored (``errno`` set)."""

    def __init__(self, message: str, errno: Optional[int] = None):
        super().__init__(message)
        self.errno = errno

    @property
    def no_space(self) -> bool:
        """The file system (or a disk quota) is full: worth a retry later."""
        return self.errno in (errnos.ENOSPC, errnos.EDQUOT)


class MemorySource:
    """A body the event loop has already read whole."""

    __slots__ = ("_view", "_pos")

    def __init__(self, data: bytes):
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int) -> bytes:
        whole = self._view.obj
        if self._pos == 0 and size >= len(whole) and type(whole) is bytes:
            self._pos = len(whole)
            return whole                                    # all of it, uncopied
        chunk = self._view[self._pos:self._pos + size]
        self._pos += len(chunk)
        return bytes(chunk)


class SocketSource:
    """A body still arriving on a blocking socket: ``prefix`` (what the event loop had
    already read) first, then recv() until ``deadline`` (time.monotonic()). Sends
    ``100 Continue`` before the first recv if the client asked for it."""

    def __init__(self, sock: socket.socket, prefix: bytes, deadline: float,
                 send_continue: bool):
        self._sock, self._prefix = sock, prefix
        self._deadline, self._send_continue = deadline, send_continue

    def read(self, size: int) -> bytes:
        if self._prefix:
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            return chunk
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("body not complete within its deadline")
        self._sock.settimeout(remaining)
        if self._send_continue:
            self._send_continue = False
            self._sock.sendall(CONTINUE)
        return self._sock.recv(size)


class BodyReader:
    """The request body (exactly Content-Length bytes), read at most once."""

    __slots__ = ("_source", "length", "consumed")

    def __init__(self, source, length: Optional[int]):
        self._source = source
        self.length = length
        self.consumed = not length

    def _chunks(self):
        remaining = self.length or 0
        self.consumed = True
        while remaining > 0:
            try:
                data = self._source.read(min(CHUNK, remaining))
            except OSError as e:          # reset, timeout: the client's side
                raise BodyError(f"reading the body failed: {e}") from e
            if not data:
                raise BodyError(f"body ended {remaining} bytes early")
            remaining -= len(data)
            yield data

    def read(self, max_bytes: int = MAX_MEMORY_BODY) -> bytes:
        if (self.length or 0) > max_bytes:
            raise BodyError(f"body of {self.length} bytes exceeds {max_bytes}")
        return b"".join(self._chunks())

    def save_atomic(self, path: str, mode: int = 0o644, preallocate: bool = False,
                    replaces: Optional[int] = None) -> int:
        """Stream the body into ``path`` (temp file + rename; the temp file never stays);
        returns bytes written. ``preallocate``: reserve the whole length on disk first, so
        a full file system fails before any of the body is read. A body already in
        memory is written with one write(), without a file object (still preallocated:
        without it ext4 writes the delayed blocks out in rename(), auto_da_alloc, which
        cost as much CPU as fallocate() saved). ``replaces``: the size of the file at
        ``path`` (None: there is none, and a new file is made faster the ordinary way);
        such a body then replaces it through the directory's spare inode where it can
        (vac.adapters.recycledfile: a third of the CPU)."""
        written = 0
        try:
            if isinstance(self._source, MemorySource):
                data = self.read(self.length or 0)
                if replaces is not None and recycle_file(path, data, mode, replaces):
                    return len(data)
                replace_file(path, data, mode=mode, fsync=False,
                             prepare=_preallocate if preallocate and data else None)
                return len(data)
            with atomic_writer(path, mode=mode, fsync=False) as f:
                if preallocate and self.length:
                    _preallocate(f.fileno(), self.length)
                for data in self._chunks():
                    f.write(data)
                    written += len(data)
                f.flush()
        except (BodyError, OSError) as e:
            raise BodyError(f"cannot store body in {path}: {e}", e.errno) from e
        return written


def _preallocate(fd: int, length: int) -> None:
    try:
        os.posix_fallocate(fd, 0, length)
    except OSError as e:
        if e.errno not in _NO_PREALLOCATION:
            raise
