"""Atomic file writes: temp file in the same directory, fsync, rename (SPEC App. A.1)."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from typing import BinaryIO, Callable, Iterator, List, Optional, Tuple, Union

from vac.errors import StateError

TEMP_PREFIX = ".tmp-"      # name prefix of the temporary files of atomic writes
SPARE_NAME = ".spare"      # a directory's recycled inode (vac.adapters.recycledfile)


_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


@functools.lru_cache(maxsize=None)
def process_umask() -> Optional[int]:
    """This process's umask (from /proc/self/status, read once: vacd sets it when it
    starts, vac.vacd.daemon, and never changes it later), or None if unknown."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            return next((int(line.split()[1], 8) for line in f
                         if line.startswith("Umask:")), None)
    return None


def make_temp(directory: str, prefix: str = TEMP_PREFIX, mode: int = 0o600) -> Tuple[int, str]:
    """(fd, path) of a new, empty file of ``mode`` (less the umask; 0600 as
    ``tempfile.mkstemp`` makes it) in ``directory``; that module is not used because it
    loads shutil, random, bz2 and lzma (about 1 MiB) into every vacd role that writes a
    heartbeat."""
    for _attempt in range(100):
        path = f"{directory}/{prefix}{os.urandom(6).hex()}"
        try:
            return os.open(path, _TEMP_FLAGS, mode), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", directory)


@contextlib.contextmanager
def atomic_writer(path: str, mode: int = 0o644, tmp_dir: Optional[str] = None,
                  fsync: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` (with ``mode``) when the block succeeds.

    The file is a temporary one in ``tmp_dir`` (default: ``path``'s directory; must be on
    the same filesystem), renamed over ``path`` at the end, so readers see the old or the
    new content, never a mix. On any exception the temporary file is removed and the
    exception (e.g. OSError) propagates unchanged: callers wrap it in their error type.
    """
    fd, tmp = make_temp(tmp_dir or os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def replace_file(path: str, data: bytes, mode: int = 0o644, tmp_dir: Optional[str] = None,
                 fsync: bool = True,
                 prepare: Optional[Callable[[int, int], None]] = None) -> None:
    """Replace ``path`` by a file holding ``data``, as :func:`atomic_writer` does, with
    plain system calls (no file object: open, write, [fchmod,] [fsync,] close, rename: a
    guest's small JOBOUTPUTS file costs no more; the file is made with ``mode`` at once,
    without fchmod, when the umask leaves that mode whole). ``prepare(fd, length)``
    runs on the empty temporary file first (e.g. to preallocate). OSError on failure,
    and then no temporary file is left."""
    umask = process_umask()
    at_once = umask is not None and mode & 0o777 == mode and not mode & umask
    if not tmp_dir:             # os.path.dirname(path) or ".", less its three calls
        head, slash, _name = path.rpartition("/")
        tmp_dir = head or slash or "."
    fd, tmp = make_temp(tmp_dir, mode=mode if at_once else 0o600)
    try:
        try:
            if prepare is not None:
                prepare(fd, len(data))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if not at_once:
                os.fchmod(fd, mode)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)        # (some file systems report a failed write only here)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str, data: Union[str, bytes], mode: int = 0o644,
                 tmp_dir: Optional[str] = None, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`); StateError on failure."""
    try:
        with atomic_writer(path, mode=mode, tmp_dir=tmp_dir, fsync=fsync) as f:
            f.write(data.encode() if isinstance(data, str) else data)
    except OSError as e:
        raise StateError(f"cannot write {path}: {e}") from e


def read_text(path: str, default: Optional[str] = None) -> Optional[str]:
    """Content of ``path``, or ``default`` if it does not exist or cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def file_ctime(path: str) -> Optional[float]:
    """ctime of ``path`` in Unix seconds, or None if it does not exist."""
    try:
        return os.stat(path).st_ctime
    except OSError:
        return None


def file_mtime(path: str) -> Optional[float]:
    """mtime of ``path`` in Unix seconds, or None if it does not exist."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def touch(path: str, content: Optional[str] = None, tmp_dir: Optional[str] = None) -> None:
    """Refresh ``path``'s ctime/mtime, atomically rewriting it with ``content`` if given."""
    write_atomic(path, content if content is not None else "", tmp_dir=tmp_dir, fsync=False)


def remove_temporaries(directory: str, recursive: bool = False,
                       older_than: Optional[float] = None) -> List[str]:
    """Remove the temporary files that atomic writes killed mid-way left in ``directory``
    (and below it with ``recursive``); only those last modified before ``older_than``
    (Unix seconds) if given. Returns the removed paths; a missing directory is fine.
    A directory's spare (SPARE_NAME, no leftover of anything) is removed too, unreported.

    Only for directories whose writers are known to be idle (e.g. the factory's own,
    between cycles, or a finalised machine's).
    """
    removed: List[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if recursive and entry.is_dir(follow_symlinks=False):
            removed += remove_temporaries(entry.path, True, older_than)
        elif entry.name == SPARE_NAME:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        elif entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                if older_than is None or entry.stat(follow_symlinks=False).st_mtime < older_than:
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return removed
