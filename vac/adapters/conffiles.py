"""Read the vac.conf sources in merge order: etc/vac.d/*.conf (sorted), etc/vac.conf, var/run/vac.conf."""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

from vac.errors import ConfigError
from vac.paths import Paths


def config_file_names(paths: Paths) -> List[str]:
    """Existing configuration files in reading order (SPEC §1.1); missing ones are skipped."""
    names: List[str] = []
    try:
        entries = sorted(os.listdir(paths.etc_vac_d), key=os.fsencode)
    except FileNotFoundError:
        entries = []
    except OSError as e:
        raise ConfigError(f"{paths.etc_vac_d}: cannot list directory ({e.strerror})") from e
    for entry in entries:
        path = os.path.join(paths.etc_vac_d, entry)
        if entry.endswith(".conf") and os.path.isfile(path):
            names.append(path)
    for path in (paths.etc_vac_conf, paths.run_vac_conf):
        if os.path.isfile(path):
            names.append(path)
    return names


def read_config_sources(paths: Paths) -> List[Tuple[str, str]]:
    """``(file name, text)`` of every configuration file, in reading order.

    Raises ConfigError naming the file when an existing file cannot be read.
    """
    sources: List[Tuple[str, str]] = []
    for path in config_file_names(paths):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                sources.append((path, f.read()))
        except FileNotFoundError:
            continue  # removed between listing and reading
        except OSError as e:
            raise ConfigError(f"{path}: cannot read file ({e.strerror})") from e
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
