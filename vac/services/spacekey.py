"""The VacQuery space key (``query_key_file``): read, checked, turned into a Signer.

The file must be a regular file with no group or other permission bits (mode 0600 or
0400). Its content, with surrounding white space removed, is the key; at least
MIN_KEY_BYTES bytes (``openssl rand -hex 32 > FILE`` makes a good one). Every problem
is a ConfigError naming the option and the file, so a broken key behaves like a broken
configuration: the factory stops creating, a responder keeps its previous key.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

from vac.adapters.secretfile import read_secret
from vac.core.configtypes import Config
from vac.core.vqauth import Signer
from vac.errors import ConfigError, CredentialError
from vac.paths import Paths

MIN_KEY_BYTES = 16
FORBIDDEN_MODE = 0o077


def key_path(paths: Paths, cfg: Config) -> Optional[str]:
    """Where the key file is (below ``--root``), or None without a space key."""
    name = cfg.settings.query_key_file
    return paths.under_root(name) if name else None


def load(paths: Paths, cfg: Config) -> Optional[Signer]:
    """The space key's Signer, or None if ``query_key_file`` is unset; raises ConfigError."""
    path = key_path(paths, cfg)
    if path is None:
        return None
    try:
        key = read_secret(path, forbidden_mode=FORBIDDEN_MODE).strip()
    except CredentialError as e:
        raise ConfigError(f"[settings] query_key_file: {e}") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"[settings] query_key_file: {path} holds {len(key)} bytes; the "
                          f"space key needs at least {MIN_KEY_BYTES} (e.g. openssl rand "
                          "-hex 32)")
    return Signer(key)


def signature(paths: Paths, cfg: Optional[Config]) -> Optional[Tuple[int, int, int, int]]:
    """(inode, mtime ns, size, mode) of the key file, to notice a changed key or
    permissions; None if absent."""
    path = key_path(paths, cfg) if cfg is not None else None
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode
