"""Which sources a responder answers: the allow-list, kept fresh, and the rate limiter.

The allow-list is the addresses of every name in ``factories`` (A and AAAA records,
resolved again every REFRESH_SECONDS in a background thread so a slow DNS server never
holds up answers), the ``query_allowed_sources`` networks and this host's loopback
addresses. Until a name resolves, its previous addresses stay allowed.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Dict, List, Optional, Tuple

from vac.adapters import dns
from vac.core.configtypes import Config
from vac.core.querygate import RateLimiter, SourcePolicy
from vac.services.peers import target_names

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0          # the factories are resolved again this often

Resolve = Callable[[str], List[str]]


class SourceGate:
    """Allow-list and per-source token buckets of one responder."""

    def __init__(self, resolve: Resolve = dns.resolve_all,
                 refresh_seconds: float = REFRESH_SECONDS,
                 limiter: Optional[RateLimiter] = None):
        self.resolve = resolve
        self.refresh_seconds = refresh_seconds
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.policy = SourcePolicy()
        self.unkeyed = SourcePolicy(loopback=False)
        self.names: Tuple[str, ...] = ()
        self._networks: Tuple[str, ...] = ()
        self._resolved: Dict[str, List[str]] = {}
        self._next_refresh = 0.0
        self._thread: Optional[threading.Thread] = None

    def configure(self, cfg: Config) -> None:
        """A new configuration: allow its networks now, resolve its factories soon."""
        self.names = tuple(target_names(cfg, None))
        self._networks = cfg.settings.query_allowed_sources
        self._resolved = {n: a for n, a in self._resolved.items() if n in self.names}
        self.unkeyed = SourcePolicy(networks=cfg.settings.query_unkeyed_sources,
                                    loopback=False)
        self._publish()
        self._next_refresh = 0.0

    def admit(self, source: str, clock: float) -> Optional[str]:
        """None if ``source`` may be answered now, else the refusal reason."""
        if not self.policy.allows(source):
            return "source"
        if not self.limiter.take(source, clock):
            return "rate"
        return None

    def maybe_refresh(self, clock: float, background: bool = True) -> None:
        """Resolve the factories again if due (in a thread unless ``background`` is False)."""
        if clock < self._next_refresh or (self._thread is not None
                                          and self._thread.is_alive()):
            return
        self._next_refresh = clock + self.refresh_seconds
        if not background:
            self.refresh()
            return
        # named under the starting thread's name: a hosted responder's (vac.vacd.hosting)
        # log then gets this thread's records too
        name = f"{threading.current_thread().name}:vacquery-allow-list"
        self._thread = threading.Thread(target=self.refresh, name=name, daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        """Resolve every factory name now and publish the new allow-list."""
        names = self.names
        resolved = dict(self._resolved)
        for name in names:
            try:
                addresses = self.resolve(name)
            except Exception:       # a resolver failure must not stop the responder
                log.exception("Cannot resolve factory %s for the VacQuery allow-list", name)
                continue
            if addresses:
                resolved[name] = addresses
            elif name not in resolved:
                log.warning("Factory %s does not resolve: its queries are not answered "
                            "until it does", name)
        if names == self.names:        # not replaced by a newer configuration meanwhile
            self._resolved = resolved
            self._publish()

    def wait_refreshed(self, seconds: float) -> None:
        """Wait (tests, start-up) for a running background refresh to finish."""
        thread = self._thread
        if thread is not None:
            thread.join(seconds)

    def _publish(self) -> None:
        addresses = {a for found in self._resolved.values() for a in found}
        self.policy = SourcePolicy(addresses, self._networks)
        log.debug("VacQuery allow-list: %r", self.policy)
