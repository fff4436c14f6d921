"""Vacuum pipe documents through the cache /var/lib/vac/pipescache/PREFIX.pipe (SPEC §10.2).

Only the factory refreshes (``refresh=True``): when the cached copy is older than its
``cache_seconds`` (or absent, or cache_seconds is 0) the pipe URL is fetched, checked and
saved atomically. Fix of B20: when that refresh fails the stale cached copy is used and
the log says so; machinetypes are only lost when no copy was ever cached.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Dict, Optional, Tuple

from vac.adapters.atomicfile import write_atomic
from vac.core.pipes import cache_seconds, parse_pipe_json
from vac.errors import FetchError, StateError
from vac.paths import Paths

log = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS = 30.0
MAX_PIPE_BYTES = 10 * 1024 * 1024  # a pipe document is a few kB; refuse anything huge


def load_pipe(paths: Paths, prefix: str, url: str, *, refresh: bool,
              now: Optional[float] = None,
              fetch: Optional[Callable[..., Any]] = None) -> Optional[Dict[str, Any]]:
    """The pipe document of ``[vacuum_pipe PREFIX]``, or None if none is available.

    ``now`` is Unix seconds (default: the clock); ``fetch`` has the signature of
    vac.adapters.fetch.fetch, which is the default, imported only when a pipe is
    refreshed (vacd's parent and the HTTP roles never load http.client and ssl).
    """
    cache_file = paths.pipe_cache_file(prefix)
    cached, mtime = _read_cache(cache_file)
    if not refresh or not url.lower().startswith(("http://", "https://")):
        return cached
    now = time.time() if now is None else now
    if cached is not None and mtime is not None:
        lifetime = cache_seconds(cached)
        if lifetime > 0 and now - mtime < lifetime:
            return cached
    if fetch is None:
        from vac.adapters.fetch import fetch
    try:
        fresh = _fetch(paths, url, cache_file, mtime if cached is not None else None, fetch)
    except (FetchError, StateError, ValueError) as e:
        if cached is None:
            log.error("Cannot read vacuum_pipe_url (%s: %s) - no machinetypes created!", url, e)
            return None
        log.warning("Refreshing vacuum pipe %s failed (%s) - keep using the stale cached copy"
                    " %s saved %d seconds ago", url, e, cache_file, int(now - (mtime or now)))
        return cached
    return fresh if fresh is not None else cached


def _read_cache(cache_file: str) -> Tuple[Optional[Dict[str, Any]], Optional[float]]:
    """(document, mtime in Unix seconds) of the cache file, or (None, None)."""
    try:
        with open(cache_file, "rb") as f:
            data = f.read()
        mtime = os.stat(cache_file).st_mtime
    except FileNotFoundError:
        return None, None
    except OSError as e:
        log.warning("Unable to read vacuum pipe file %s (%s)", cache_file, e)
        return None, None
    try:
        return parse_pipe_json(data), mtime
    except ValueError as e:
        log.warning("Unable to read and parse vacuum pipe file %s (%s)", cache_file, e)
        return None, None


def _fetch(paths: Paths, url: str, cache_file: str, if_modified_since: Optional[float],
           fetch: Callable[..., Any]) -> Optional[Dict[str, Any]]:
    """Fetch and save the pipe; None when the server says the cached copy is current."""
    ca_dir = paths.grid_security_certificates
    log.info("Fetching %s", url)
    result = fetch(url, timeout=FETCH_TIMEOUT_SECONDS,
                   ca_dir=ca_dir if os.path.isdir(ca_dir) else None,
                   if_modified_since=if_modified_since, max_bytes=MAX_PIPE_BYTES)
    if result.status == 304:
        os.utime(cache_file)
        log.info("Vacuum pipe %s not modified; cached copy %s kept", url, cache_file)
        return None
    document = parse_pipe_json(result.body or b"")
    os.makedirs(os.path.dirname(cache_file), exist_ok=True)
    write_atomic(cache_file, result.body or b"", mode=0o644)
    log.info("Saved %s as %s", url, cache_file)
    return document
