"""Reading secret files (private keys, the VacQuery space key): refused unless private.

Kept apart from vac.adapters.credentials so that reading the space key does not load
the ``cryptography`` package into every vacd role (issue 15 row 6).
"""

from __future__ import annotations

import os
import stat

from vac.errors import CredentialError

MAX_SECRET_BYTES = 1024 * 1024


def read_secret(path: str, forbidden_mode: int = stat.S_IRGRP | stat.S_IROTH) -> bytes:
    """Content of a private key file, refused if its mode has any ``forbidden_mode`` bit
    (default: readable by group or others) or it is not a regular file."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise CredentialError(f"cannot read {path}: {e.strerror}") from e
    if not stat.S_ISREG(st.st_mode):
        raise CredentialError(f"{path} is not a regular file")
    if st.st_mode & forbidden_mode:
        what = ("readable" if st.st_mode & forbidden_mode & (stat.S_IRGRP | stat.S_IROTH)
                else "writable or executable")
        raise CredentialError(f"{path} is {what} by group or others "
                              f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
    return read_bounded(path)


def read_bounded(path: str) -> bytes:
    """At most MAX_SECRET_BYTES of ``path``; CredentialError naming it if unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_SECRET_BYTES)
    except OSError as e:
        raise CredentialError(f"cannot read {path}: {e.strerror}") from e
