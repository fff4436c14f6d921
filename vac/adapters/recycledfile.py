"""Small atomic file replacements that recycle one spare inode per directory.

``replace_file`` (vac.adapters.atomicfile) makes a new inode for every write and frees
the replaced one in rename(): on ext4 that is most of the cost of replacing a small file
(a guest's JOBOUTPUTS heartbeat, every few minutes from every machine). Here the new
content is written over a directory's spare file, ``.spare`` (blocks already allocated:
nothing to allocate or free), which then swaps names with the file it replaces, in one
atomic renameat2(RENAME_EXCHANGE): a reader opens the old or the new content, as with
rename(). The replaced inode becomes the spare for a later write. Measured on a journalled
ext4, one 1 kB replacement: 105-118 us of CPU with a new inode, 35 us recycled
(bench/results/httpd.txt has what it does to a burst of PUTs).

- Unlike rename(), the replaced content is written over later: a reader that still has
  the old file open then sees it change. A spare is therefore written over only once it
  has rested SPARE_REST_NS (0.1 s) since it was replaced; a faster rewrite of the same
  directory takes the ordinary path. The factory reads a machine's joboutputs/ files
  (``shutdown_message``) with one read() of microseconds.
- The spare is at most SPARE_MAX_BYTES: a larger file is replaced the ordinary way (the
  caller gives its size: the JOBOUTPUTS ledger's), and a larger spare (a file replaced
  behind the ledger's back, in a container's shared directory) is removed. It is not
  a name a guest can PUT (hidden names are refused, vac.core.mjfhttp.valid_name), skipped
  by the JOBOUTPUTS ledger's scan and removed when a machine is finalised
  (vac.adapters.atomicfile.remove_temporaries).
- Nothing is fsynced, as JOBOUTPUTS files never were: after a host crash a file may hold
  an earlier version.
- The spare is opened without following links, without blocking, and used only if it is
  a regular file with one link, so a spare made by a guest that shares the directory (a
  container's bind mount) can only make the write take the ordinary path.
- One lock serialises recycled writes in the process (the directory's spare is shared by
  all the names in it); the mjf role is the only writer of a running machine's
  joboutputs/.
"""

from __future__ import annotations

import ctypes        # loaded in every vacd role already (vac.vacd.rolechild)
import errno
import os
import stat
import sys
import threading
import time
from typing import Callable, Optional, Set, Tuple

from vac.adapters.atomicfile import SPARE_NAME

SPARE_MAX_BYTES = 65536        # a replaced file larger than this is not kept as a spare
SPARE_REST_NS = 100_000_000    # a spare is written over only this long after it was replaced
_SPARE = b"/" + SPARE_NAME.encode()
RENAME_EXCHANGE = 2            # linux/fs.h
_AT_FDCWD = -100
_OPEN_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_UNUSABLE = (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EEXIST, errno.EACCES,
             errno.EPERM, errno.ETXTBSY, errno.EWOULDBLOCK)
_NO_EXCHANGE = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)

_lock = threading.Lock()
_devices_without_exchange: Set[int] = set()
_FS = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())   # os.fsencode's


def _bind_renameat2() -> Optional[Callable[..., int]]:
    """libc's renameat2(), or None if the C library has none."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_uint)
        function.restype = ctypes.c_int
    return function


_renameat2 = _bind_renameat2()


def exchange(a: bytes, b: bytes) -> None:
    """Swap the names ``a`` and ``b`` atomically; OSError (ENOSYS without renameat2)."""
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", os.fsdecode(a))
    if _renameat2(_AT_FDCWD, a, _AT_FDCWD, b, RENAME_EXCHANGE):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), os.fsdecode(a), None, os.fsdecode(b))


def _open_spare(spare: bytes, mode: int) -> Optional[Tuple[int, int]]:
    """(write descriptor, bytes) of the directory's spare, made if missing; None if the spare
    cannot be used (not a regular file of one link, larger than SPARE_MAX_BYTES, on a file
    system that cannot exchange names, or replaced less than SPARE_REST_NS ago). OSError
    (e.g. ENOSPC) if a missing spare cannot be made."""
    created = False
    try:
        fd = os.open(spare, _OPEN_FLAGS)
    except FileNotFoundError:
        fd, created = os.open(spare, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, mode), True
    except OSError as e:
        if e.errno in _UNUSABLE:
            return None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size > SPARE_MAX_BYTES \
            or st.st_dev in _devices_without_exchange \
            or not created and time.time_ns() - st.st_ctime_ns < SPARE_REST_NS:
        os.close(fd)
        if created or stat.S_ISREG(st.st_mode) and st.st_size > SPARE_MAX_BYTES:
            os.unlink(spare)            # (a larger one: a file replaced behind the ledger)
        return None
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)
    return fd, st.st_size


def _write_over(fd: int, size: int, data: bytes) -> None:
    """Write ``data`` from the start of ``fd`` (``size`` bytes) and cut what it had beyond."""
    view, offset = memoryview(data), 0
    while offset < len(data):
        offset += os.pwrite(fd, view[offset:], offset)
    if size > len(data):
        os.ftruncate(fd, len(data))


def recycle_file(path: str, data: bytes, mode: int = 0o644, replaced_bytes: int = 0) -> bool:
    """Replace ``path`` by a file of ``mode`` holding ``data``, through its directory's
    spare (see the module's docstring); ``replaced_bytes``: the size of the file it
    replaces (0: none), which becomes the spare. False if that cannot be done (empty
    ``data``, whose write would not update the mtime; a replaced file larger than
    SPARE_MAX_BYTES; an unusable spare; a file system without RENAME_EXCHANGE): then
    ``path`` is unchanged and the caller writes it the ordinary way. OSError on failure
    (``path`` unchanged)."""
    if not data or replaced_bytes > SPARE_MAX_BYTES:
        return False
    target = path.encode(*_FS)
    head, slash, _name = target.rpartition(b"/")
    spare = (head or slash or b".") + _SPARE
    with _lock:
        opened = _open_spare(spare, mode)
        if opened is None:
            return False
        fd, size = opened
        try:
            try:
                _write_over(fd, size, data)
            finally:
                os.close(fd)
        except OSError:
            try:
                os.unlink(spare)        # garbage now: its room back (ENOSPC)
            except OSError:
                pass
            raise
        _swap_in(spare, target)
    return True


def _swap_in(spare: bytes, path: bytes) -> None:
    """Give ``spare``'s inode the name ``path``; what ``path`` named becomes the spare."""
    try:
        exchange(spare, path)
    except FileNotFoundError:           # no ``path`` yet: the spare is used up
        os.rename(spare, path)
    except OSError as e:
        if e.errno not in _NO_EXCHANGE:
            raise
        _devices_without_exchange.add(os.lstat(spare).st_dev)
        os.rename(spare, path)
