"""The day summaries of the APEL archive on disk: ``apel-summary/YYYYMMDD.json``.

Each is a summary of the archive day directory ``YYYYMMDD`` (vac.core.apelsummary: counts
per Site and SubmitHost, and the directory's mtime and number of entries it was made
from), a cache for ``vac apel-sync``, rewritten atomically, never fsynced (a lost or torn
summary is stale, and rebuilt). The archive itself is vac.adapters.apelspool's.
"""

from __future__ import annotations

import contextlib
import os
from typing import List, Optional

from vac.adapters.atomicfile import read_text, remove_temporaries, write_atomic
from vac.errors import StateError


def _summary_path(summary_dir: str, day: str) -> str:
    return os.path.join(summary_dir, day + ".json")


def read_day_summary(summary_dir: str, day: str) -> Optional[str]:
    """The text of the day's summary, or None if there is none (or it cannot be read)."""
    return read_text(_summary_path(summary_dir, day))


def write_day_summary(summary_dir: str, day: str, text: str) -> None:
    """Replace the day's summary atomically (no fsync: it is a cache); StateError."""
    try:
        os.makedirs(summary_dir, mode=0o755, exist_ok=True)
    except OSError as e:
        raise StateError(f"cannot create {summary_dir}: {e}") from e
    write_atomic(_summary_path(summary_dir, day), text, fsync=False)


def remove_summary_temporaries(summary_dir: str) -> List[str]:
    """Remove the temporary files of interrupted summary writes, of any age (a writer
    still running only fails to replace a cache); returns their paths."""
    return remove_temporaries(summary_dir)


def prune_day_summaries(summary_dir: str, yyyymm: str, days: List[str]) -> None:
    """Remove the month's summaries whose day is not in ``days`` (day directories that
    were removed by hand), best effort."""
    remove_summary_temporaries(summary_dir)
    try:
        names = os.listdir(summary_dir)
    except OSError:
        return
    keep = {day + ".json" for day in days}
    for name in names:
        if name.startswith(yyyymm) and name.endswith(".json") and name not in keep:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(summary_dir, name))
