"""Load the factory's Config: read the files, gather host facts and pipes, call core.config."""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Optional

from vac.adapters import host
from vac.adapters.conffiles import read_config_sources
from vac.core.config import parse_config
from vac.core.configtypes import Config
from vac.errors import ConfigError
from vac.paths import Paths
from vac.services import spacekey
from vac.services.pipecache import load_pipe

log = logging.getLogger(__name__)

PIPE_MODES = ("refresh", "cache", "none")


def load_config(paths: Paths, *, hostname: Optional[str] = None,
                processor_count: Optional[int] = None, pipes: str = "cache",
                fetch: Optional[Callable[..., Any]] = None) -> Config:
    """Read and validate the configuration below ``paths.root``; raise ConfigError.

    ``pipes``: "refresh" (factory: fetch expired pipes), "cache" (responder: cached
    copies only) or "none" (vac command: pipes not expanded). Volume groups are not
    checked here; the space key file (``query_key_file``) is. ``fetch``:
    vac.adapters.fetch.fetch unless given (see vac.services.pipecache.load_pipe).
    """
    if pipes not in PIPE_MODES:
        raise ValueError(f"pipes must be one of {PIPE_MODES}, not {pipes!r}")
    sources = read_config_sources(paths)
    name = hostname if hostname is not None else host.hostname()
    count = processor_count if processor_count is not None else host.processor_count(paths)
    config = parse_config(sources, hostname=name, processor_count=count)
    try:
        spacekey.load(paths, config)    # a missing or open space key is a config error
    except ConfigError as e:
        raise ConfigError(e.problems, fallback=config) from None
    if pipes == "none" or not config.vacuum_pipes:
        return config
    documents: Dict[str, dict] = {}
    for prefix, pipe in config.vacuum_pipes.items():
        document = load_pipe(paths, prefix, pipe.vacuum_pipe_url, refresh=pipes == "refresh",
                             fetch=fetch)
        if document is not None:
            documents[prefix] = document
    return parse_config(sources, hostname=name, processor_count=count,
                        pipe_documents=documents)
