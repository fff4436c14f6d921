"""What a machine's contextualisation reads from its machine directory: ``jobfeatures/job_id``
(its UUID), the rendered ``user_data``, ``root_public_key`` and the machine token (with the
marker that JOBOUTPUTS PUTs must carry it).

The factory writes these at creation (vac.services.executor, through
vac.adapters.statefs.write_machine_file and :func:`write_machine_token` here); the metadata
and MJF services and the config drive read them only through this module.
"""

from __future__ import annotations

import os
from typing import Optional

from vac.adapters.atomicfile import read_text, write_atomic


MACHINE_TOKEN = "machine_token"                       # 0600: only root and the machine
TOKEN_REQUIRED = "joboutputs_require_token"            # empty marker: PUTs need the token


def write_machine_token(machine_dir: str, token: str, required_for_joboutputs: bool) -> None:
    """The machine's secret (mode 0600) and, if JOBOUTPUTS PUTs must carry it, the marker
    (decided at creation, so a later configuration change does not affect the machine)."""
    write_atomic(os.path.join(machine_dir, MACHINE_TOKEN), token, mode=0o600)
    if required_for_joboutputs:
        write_atomic(os.path.join(machine_dir, TOKEN_REQUIRED), "")


def read_machine_token(machine_dir: str) -> Optional[str]:
    """The machine's secret, or None if it has none (made before tokens) or it is unreadable."""
    text = read_text(os.path.join(machine_dir, MACHINE_TOKEN))
    return None if text is None else (text.strip() or None)


def _read_bytes(path: str, limit: int) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def read_job_id(machine_dir: str, limit: int = 64 * 1024) -> str:
    """``jobfeatures/job_id`` (the machine's UUID), stripped; '' if absent."""
    raw = _read_bytes(os.path.join(machine_dir, "jobfeatures", "job_id"), limit)
    return (raw or b"").decode(errors="replace").strip()


def read_user_data(machine_dir: str, limit: int) -> Optional[bytes]:
    """The machine's rendered ``user_data`` (at most ``limit`` bytes); None if absent."""
    return _read_bytes(os.path.join(machine_dir, "user_data"), limit)


def read_public_key(machine_dir: str, limit: int) -> Optional[str]:
    """``root_public_key``, stripped; None if absent or empty."""
    raw = _read_bytes(os.path.join(machine_dir, "root_public_key"), limit)
    return (raw or b"").decode(errors="replace").strip() or None


def joboutputs_token_required(machine_dir: str) -> bool:
    return os.path.exists(os.path.join(machine_dir, TOKEN_REQUIRED))
