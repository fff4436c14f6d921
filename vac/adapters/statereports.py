"""The factory's reports in the state directory: role heartbeats, the last creation
error, the configuration report (``config-error``, ``machinetypes-disabled``), the last
cycle (``last-cycle.json``), the decayed share usage (``share-usage``) and the digest of
this factory's subspace (``subspace-digest``).

The factory (and, for its heartbeat, each role) is the only writer; check-vacd, the
metrics role and the vac CLI read them. Every write is atomic (vac.adapters.atomicfile).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Mapping, Optional, Sequence, Tuple

from vac.adapters.atomicfile import read_text, write_atomic
from vac.paths import Paths

SHARE_USAGE_FILE = "share-usage"        # in the state directory (vac.core.usage)
SUBSPACE_DIGEST_FILE = "subspace-digest"    # ditto (vac.core.subspaces.digest_state)


def write_role_heartbeat(paths: Paths, role: str, now: float) -> None:
    """``ROLE-heartbeat``: Unix time + newline (readers use its ctime)."""
    os.makedirs(paths.state_dir, mode=0o755, exist_ok=True)
    write_atomic(paths.heartbeat(role), f"{int(now)}\n", fsync=False)


def write_factory_error(paths: Paths, text: str) -> None:
    """The last machine-creation (or configuration) error, read by check-vacd."""
    write_atomic(paths.factory_error, text.rstrip("\n") + "\n")


def write_config_report(paths: Paths, invalid: Sequence[str],
                        disabled: Mapping[str, Sequence[str]]) -> None:
    """``config-error`` while the configuration is invalid and ``machinetypes-disabled``
    while machinetypes are disabled; each is removed when there is nothing to say.

    The first line is the summary check-vacd and ``systemctl status vacd`` show (naming
    the first problem); every problem follows on its own line. Unchanged files are not
    rewritten.
    """
    problems = [p for name in disabled for p in disabled[name]]
    reports = ((paths.config_error, invalid, "invalid configuration, no machines are "
                "created: {first}{more}"),
               (paths.machinetypes_disabled, problems,
                f"{len(disabled)} machinetype(s) disabled ({', '.join(disabled)}): "
                "{first}{more}"))
    for path, lines, summary in reports:
        if not lines:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
        text = summary.format(first=lines[0], more=more) + "\n" + \
            "".join(f"{line}\n" for line in lines)
        if read_text(path) != text:
            write_atomic(path, text)


def read_config_report(paths: Paths) -> Tuple[Optional[str], Optional[str]]:
    """First lines of ``config-error`` and ``machinetypes-disabled`` (None if absent)."""
    def first(path: str) -> Optional[str]:
        text = read_text(path)
        return None if text is None else (text.splitlines() or [""])[0]
    return first(paths.config_error), first(paths.machinetypes_disabled)


def write_cycle_report(paths: Paths, report: Mapping[str, object]) -> None:
    """``last-cycle.json``: what the last factory cycle did (factory only)."""
    write_atomic(paths.last_cycle, json.dumps(report, sort_keys=True) + "\n", fsync=False)


def read_cycle_report(paths: Paths) -> Optional[dict]:
    """``last-cycle.json`` as a dict, or None if it is missing or not a JSON object."""
    try:
        report = json.loads(read_text(paths.last_cycle) or "null")
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def config_problem_count(paths: Paths) -> int:
    """Problems listed in ``config-error`` (0 while the configuration is valid)."""
    text = read_text(paths.config_error)
    return 0 if text is None else max(1, len(text.splitlines()) - 1)


def clear_factory_error(paths: Paths) -> None:
    try:
        os.unlink(paths.factory_error)
    except FileNotFoundError:
        pass


def read_share_usage(paths: Paths) -> Optional[str]:
    """Text of ``share-usage`` (vac.core.usage's JSON), or None if absent."""
    return read_text(paths.state(SHARE_USAGE_FILE))


def write_share_usage(paths: Paths, text: str) -> None:
    """Replace ``share-usage`` atomically (the factory is its only writer)."""
    write_atomic(paths.state(SHARE_USAGE_FILE), text)


def read_subspace_digest(paths: Paths) -> Optional[str]:
    """Text of ``subspace-digest`` (JSON, vac.core.subspaces), or None if absent."""
    return read_text(paths.state(SUBSPACE_DIGEST_FILE))


def write_subspace_digest(paths: Paths, text: str) -> None:
    """Replace ``subspace-digest`` atomically (the factory is its only writer)."""
    write_atomic(paths.state(SUBSPACE_DIGEST_FILE), text)
