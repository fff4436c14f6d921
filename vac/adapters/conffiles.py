"""Read the vac.conf sources in merge order: etc/vac.d/*.conf (sorted), etc/vac.conf, var/run/vac.conf."""

from __future__ import annotations

import os
import stat
from typing import List, Optional, Tuple

from vac.errors import ConfigError
from vac.paths import Paths


def config_file_names(paths: Paths) -> List[str]:
    """Configuration paths in reading order (SPEC §1.1).

    Every ``*.conf`` entry of etc/vac.d (sorted; dot files left out, as the shell glob
    ``*.conf`` does, so an editor's ``.#x.conf`` lock is no configuration), then
    etc/vac.conf and var/run/vac.conf if they exist. Entries are listed whatever their
    type: ``read_config_sources`` rejects what is not a regular file.
    """
    names: List[str] = []
    try:
        entries = sorted(os.listdir(paths.etc_vac_d), key=os.fsencode)
    except FileNotFoundError:
        entries = []
    except OSError as e:
        raise ConfigError(f"{paths.etc_vac_d}: cannot list directory ({e.strerror})") from e
    for entry in entries:
        if entry.endswith(".conf") and not entry.startswith("."):
            names.append(os.path.join(paths.etc_vac_d, entry))
    for path in (paths.etc_vac_conf, paths.run_vac_conf):
        if os.path.lexists(path):       # a dangling symbolic link is reported, not skipped
            names.append(path)
    return names


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def _file_kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _open_nonblocking(path: str, flags: int) -> int:
    """os.open with O_NONBLOCK: a named pipe swapped in after the check cannot block us."""
    return os.open(path, flags | os.O_NONBLOCK)


def read_config_file(path: str) -> Optional[str]:
    """The text of one configuration file; None if it vanished since it was listed.

    Raises ConfigError naming ``path`` if it is not a regular file (a directory, a named
    pipe, a socket, a device, a dangling or looping symbolic link), cannot be read, or
    is not valid UTF-8 (with the line of the first bad byte). Nothing is skipped or
    replaced silently. A named pipe is never opened (opening it would block).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ConfigError(f"{path}: dangling symbolic link to {os.readlink(path)}") \
                from None
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read file ({e.strerror})") from e
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path}: {_file_kind(st.st_mode)}, not a configuration file")
    try:
        with open(path, "rb", opener=_open_nonblocking) as f:
            data = f.read()
    except FileNotFoundError:
        return None                     # removed between listing and reading
    except OSError as e:
        raise ConfigError(f"{path}: cannot read file ({e.strerror})") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x} "
                          f"at offset {e.start})") from None


def read_config_sources(paths: Paths) -> List[Tuple[str, str]]:
    """``(file name, text)`` of every configuration file, in reading order.

    Raises ConfigError with one problem per file that is not a readable, UTF-8, regular
    file (see ``read_config_file``).
    """
    sources: List[Tuple[str, str]] = []
    problems: List[str] = []
    for path in config_file_names(paths):
        try:
            text = read_config_file(path)
        except ConfigError as e:
            problems += [str(p) for p in e.problems]
            continue
        if text is not None:
            sources.append((path, text))
    if problems:
        raise ConfigError(problems)
    return sources


def config_signature(paths: Paths) -> Tuple[Tuple[str, Optional[int], Optional[int]], ...]:
    """(path, mtime in ns, size) of every file a configuration read depends on.

    Covers the configuration files (including /var/run/vac.conf) and the cached vacuum
    pipes; a reader (responder, HTTP servers) reloads only when this value changes.
    """
    files = [paths.etc_vac_conf, paths.run_vac_conf] + config_file_names(paths)
    try:
        files += [os.path.join(paths.pipescache, name)
                  for name in sorted(os.listdir(paths.pipescache)) if name.endswith(".pipe")]
    except OSError:
        pass
    signature = []
    for path in sorted(set(files)):
        try:
            st = os.stat(path)
            signature.append((path, st.st_mtime_ns, st.st_size))
        except OSError:
            signature.append((path, None, None))
    return tuple(signature)
