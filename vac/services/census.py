"""Space census (SPEC §11.1 step 1): hourly factory_status of every factory of the space.

Each reply is saved as JSON in ``space-census/FACTORY``. Files younger than one day are
counted (the space's size for the GOCDB update period); files older than two days are
deleted; capacity totals (step 3) come from space-catalogue.json and fresh census
files. Ages use file mtimes (= ctimes for these atomically written files, and
settable in tests). GOCDB updating (§11.1 steps 2 and 4-6) is not implemented.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Callable, Dict, Iterator, Optional, Tuple

from vac.adapters.atomicfile import file_mtime, touch, write_atomic
from vac.constants import (CENSUS_COUNT_SECONDS, CENSUS_EXPIRE_SECONDS,
                           CENSUS_INTERVAL_SECONDS)
from vac.core.configtypes import Config
from vac.errors import VacError
from vac.paths import Paths
from vac.services import peers

log = logging.getLogger(__name__)




def due(paths: Paths, now: float) -> bool:
    """The census marker is missing or older than an hour."""
    marker = file_mtime(paths.census_updated)
    return marker is None or now - marker >= CENSUS_INTERVAL_SECONDS


def save_replies(paths: Paths, replies) -> int:
    """Write each factory's reply to ``space-census/FACTORY``; returns files written."""
    os.makedirs(paths.space_census, mode=0o755, exist_ok=True)
    written = 0
    for factory, reply in replies.items():
        if "/" in factory or factory.startswith("."):
            log.warning("Not saving census reply of oddly named factory %r", factory)
            continue
        write_atomic(os.path.join(paths.space_census, factory),
                     json.dumps(reply, sort_keys=True) + "\n")
        written += 1
    return written


def census_files(paths: Paths) -> Iterator[Tuple[str, str, float]]:
    """(factory, path, mtime) of each saved census file (writers' temp files skipped)."""
    try:
        names = sorted(os.listdir(paths.space_census))
    except OSError:
        return
    for name in names:
        path = os.path.join(paths.space_census, name)
        mtime = file_mtime(path)
        if mtime is not None and not name.startswith(".tmp-"):
            yield name, path, mtime


def expire(paths: Paths, now: float) -> int:
    """Delete census files older than two days; returns the count younger than one day."""
    fresh = 0
    for name, path, mtime in census_files(paths):
        if now - mtime > CENSUS_EXPIRE_SECONDS:
            try:
                os.unlink(path)
                log.info("Removed expired space census file for factory %s", name)
            except OSError as e:
                log.warning("Cannot remove census file %s: %s", path, e)
        elif now - mtime < CENSUS_COUNT_SECONDS:
            fresh += 1
    return fresh


CAPACITY_KEYS = ("max_processors", "max_machines", "max_hs06")


def _load_json(path: str) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError) as e:
        log.warning("Ignoring unreadable %s: %s", path, e)
        return None
    return value if isinstance(value, dict) else None


def space_capacity(paths: Paths, now: float) -> Dict[str, Dict[str, float]]:
    """factory -> {max_processors, max_machines, max_hs06} (SPEC §11.1 step 3): from
    space-catalogue.json first, then census files younger than a day for the rest."""
    totals: Dict[str, Dict[str, float]] = {}
    catalogue = _load_json(paths.space_catalogue) if os.path.exists(
        paths.space_catalogue) else None
    for factory, entry in (catalogue or {}).items():
        if isinstance(entry, dict):
            totals[factory] = {k: float(entry.get(k) or 0) for k in CAPACITY_KEYS}
    for name, path, mtime in census_files(paths):
        if name in totals or now - mtime >= CENSUS_COUNT_SECONDS:
            continue
        reply = _load_json(path)
        if reply is not None:
            totals[name] = {k: float(reply.get(k) or 0) if isinstance(
                reply.get(k), (int, float)) else 0.0 for k in CAPACITY_KEYS}
    return totals


def maybe_update(cfg: Config, paths: Paths, now: float,
                 query: Callable[..., peers.QueryResult] = peers.query_factories
                 ) -> Optional[int]:
    """Hourly census; returns the number of factories counted, or None if not due."""
    if not due(paths, now):
        return None
    try:
        touch(paths.census_updated)     # first, so a failing census is not retried at once
        result = query(cfg, client_name="vacd-factory", paths=paths)
        save_replies(paths, result.replies)
        for factory in result.not_answered:
            log.info("No census reply from factory %s", factory)
    except VacError as e:
        log.error("Space census failed: %s", e)
    count = expire(paths, now)
    log.info("Space census: %d factories replied within a day (GOCDB update not "
             "implemented)", count)
    return count
