"""What the long-running vacd roles share: the current configuration, reloaded when a
file it depends on changes, and the role heartbeat that never stops the role.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional, Tuple

from vac.adapters import statereports
from vac.adapters.conffiles import config_signature
from vac.core.configtypes import Config
from vac.errors import ConfigError, VacError
from vac.paths import Paths

log = logging.getLogger(__name__)

Loader = Callable[[Paths], Config]

CONFIG_CHECK_SECONDS = 5.0    # how often a role compares the config signature (files, pipes)


def cached_pipes_loader(paths: Paths) -> Config:
    """The roles' loader: the files plus cached vacuum pipes (never fetched here)."""
    from vac.services.configload import load_config
    return load_config(paths, pipes="cache")


class ConfigHolder:
    """The current Config (swapped whole on reload; None until the first load).

    On an invalid configuration the last valid one is kept; if none was read yet, the
    valid parts of the files (ConfigError.fallback) are held instead, so the roles that
    running machines use keep serving ("failures look like planned draining").
    ``check_seconds``: while a config is held, its files' signature is compared at most
    this often (0: on every :meth:`reload`).
    """

    def __init__(self, paths: Paths, load: Optional[Loader] = None,
                 check_seconds: float = 0.0):
        self.paths = paths
        self.load = load or cached_pipes_loader
        self.check_seconds = check_seconds
        self.cfg: Optional[Config] = None
        self.valid = False             # False while ``cfg`` is a fallback (or None)
        self.signature: Optional[Tuple] = None
        self.next_check = 0.0          # time.monotonic() of the next signature comparison

    def reload(self, force: bool = False) -> bool:
        """Load the config if it changed (or ``force``); keep the old one if it is broken.

        Returns True if a new configuration is now held.
        """
        clock = time.monotonic()
        if not force and self.cfg is not None and clock < self.next_check:
            return False
        self.next_check = clock + self.check_seconds
        sig = config_signature(self.paths)
        if not force and sig == self.signature:
            return False
        self.signature = sig
        keeping = " (keeping the last valid configuration)" if self.valid else ""
        try:
            cfg = self.load(self.paths)
        except ConfigError as e:
            if self.valid or e.fallback is None:
                log.error("Reading configuration fails with error: %s%s", e, keeping)
                return False
            log.error("Reading configuration fails with error: %s (serving with the valid "
                      "parts of the files until it is fixed)", e)
            self.cfg = e.fallback
            return True
        except VacError as e:
            log.error("Reading configuration fails with error: %s%s", e, keeping)
            return False
        except Exception:  # a broken config must not stop the role
            log.exception("Reading configuration fails%s", keeping)
            return False
        if self.cfg is not None:
            log.info("Configuration reloaded")
        self.cfg, self.valid = cfg, True
        return True


def write_heartbeat(paths: Paths, role: str, now: Optional[float] = None) -> None:
    """``paths.heartbeat(role)`` := Unix time ``now`` (default: the clock); a failure
    (full disk, read-only state directory) is logged, never raised."""
    try:
        statereports.write_role_heartbeat(paths, role, time.time() if now is None else now)
    except (VacError, OSError) as e:
        log.error("Cannot write the %s heartbeat: %s", role, e)
