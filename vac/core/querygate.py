"""Who may ask a responder, how often, and what it counted: pure decisions and counters.

* :class:`SourcePolicy`: the source addresses that get answers (the resolved addresses of
  ``factories``, ``query_allowed_sources`` addresses and networks, and this host's
  loopback addresses). Everybody else gets nothing, so a stranger cannot use the
  factory to amplify traffic towards a spoofed address.
* :class:`RateLimiter`: a token bucket per source address (requests per second).
* :class:`QueryCounters`: received / answered / refused-by-reason counters, per request
  type, summarised once a minute instead of one log line per datagram.

Clock values are passed in (seconds, monotonic); no I/O here.
"""

from __future__ import annotations

import ipaddress
from typing import Dict, Iterable, List, Optional

LOOPBACK_SOURCES = ("127.0.0.1", "::1")     # local vac / check-vacd; never spoofable
RATE_PER_SECOND = 10.0                      # sustained requests per second per source
RATE_BURST = 50.0                           # bucket size (requests)
MAX_BUCKETS = 10_000                        # sources tracked before idle ones are dropped
MAX_MEMO = 4096                             # per-address allow decisions remembered
MAX_TOP_SOURCES = 1000                      # distinct sources counted per summary period

# Why a datagram got no answer (the order of the summary line).
REASONS = ("source", "rate", "malformed", "space", "unsigned", "forged", "target",
           "stale", "replayed", "nokey")


def normalise_address(address: str) -> str:
    """Plain text form of a source address; IPv4-mapped IPv6 becomes IPv4."""
    if address.startswith("::ffff:") and "." in address:
        return address[7:]
    return address


class SourcePolicy:
    """Source addresses allowed an answer: exact ``addresses`` plus ``networks`` (CIDR)."""

    def __init__(self, addresses: Iterable[str] = (), networks: Iterable[str] = (),
                 loopback: bool = True):
        exact = {normalise_address(a) for a in addresses}
        if loopback:
            exact.update(LOOPBACK_SOURCES)
        self.addresses = frozenset(exact)
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._memo: Dict[str, bool] = {}

    def allows(self, address: str) -> bool:
        """True if ``address`` (text form as the socket reports it) may be answered."""
        known = self._memo.get(address)
        if known is not None:
            return known
        allowed = self._decide(normalise_address(address))
        if len(self._memo) < MAX_MEMO:
            self._memo[address] = allowed
        return allowed

    def _decide(self, address: str) -> bool:
        if address in self.addresses:
            return True
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in self.networks)

    def __repr__(self) -> str:
        return f"SourcePolicy({sorted(self.addresses)}, {[str(n) for n in self.networks]})"


class RateLimiter:
    """Token bucket per source: ``burst`` requests at once, ``rate`` per second after.

    Sources in ``exempt`` (this host's loopback) are never limited: their datagrams
    cannot come from elsewhere and their replies never leave the host.
    """

    def __init__(self, rate: float = RATE_PER_SECOND, burst: float = RATE_BURST,
                 exempt: Iterable[str] = LOOPBACK_SOURCES, max_sources: int = MAX_BUCKETS):
        self.rate, self.burst, self.max_sources = rate, burst, max_sources
        self.exempt = frozenset(exempt)
        self._buckets: Dict[str, List[float]] = {}      # source -> [tokens, last time]

    def take(self, source: str, now: float) -> bool:
        """Spend one token of ``source`` at monotonic time ``now``; False if none left."""
        if source in self.exempt:
            return True
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                self._prune(now)
            bucket = self._buckets[source] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def _prune(self, now: float) -> None:
        """Forget sources whose bucket has refilled (they lose nothing by it)."""
        full = [s for s, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self.rate >= self.burst]
        for source in full:
            del self._buckets[source]
        if len(self._buckets) >= self.max_sources:      # all busy: forget the oldest
            for source in sorted(self._buckets, key=lambda s: self._buckets[s][1])[
                    :len(self._buckets) // 2]:
                del self._buckets[source]

    def __len__(self) -> int:
        return len(self._buckets)


class QueryCounters:
    """Totals since start plus per-period source tallies for the once-a-minute line."""

    def __init__(self) -> None:
        self.received = 0
        self.answered = 0
        self.replies = 0
        self.reply_bytes = 0
        self.errors = 0
        self.by_type: Dict[str, int] = {}
        self.refused: Dict[str, int] = dict.fromkeys(REASONS, 0)
        self.sources: Dict[str, int] = {}          # answered, this period
        self.refused_sources: Dict[str, int] = {}  # refused, this period
        self._mark = self._totals()

    # --- counting (called per datagram) ---------------------------------------------
    def answer(self, request_type: str, source: str, replies: int, size: int) -> None:
        self.answered += 1
        self.replies += replies
        self.reply_bytes += size
        by_type = self.by_type
        by_type[request_type] = by_type.get(request_type, 0) + 1
        sources = self.sources
        if source in sources:
            sources[source] += 1
        else:
            _tally(sources, source)

    def refuse(self, reason: str, source: str) -> None:
        self.refused[reason] += 1
        _tally(self.refused_sources, source)

    @property
    def malformed(self) -> int:
        return self.refused["malformed"]

    @property
    def wrong_space(self) -> int:
        return self.refused["space"]

    # --- the periodic summary ------------------------------------------------------------
    def _totals(self) -> Dict[str, int]:
        totals = {"received": self.received, "answered": self.answered,
                  "replies": self.replies, "reply_bytes": self.reply_bytes,
                  "errors": self.errors}
        totals.update({"type " + k: v for k, v in self.by_type.items()})
        totals.update({"refused " + k: v for k, v in self.refused.items()})
        return totals

    def period_summary(self, seconds: float) -> Optional[str]:
        """One log line for the period since the last call (None if nothing arrived);
        starts a new period."""
        now_totals = self._totals()
        delta = {k: v - self._mark.get(k, 0) for k, v in now_totals.items()}
        self._mark = now_totals
        sources, refused_sources = self.sources, self.refused_sources
        self.sources, self.refused_sources = {}, {}
        if not delta["received"]:
            return None
        types = ", ".join(f"{k[5:]} {v}" for k, v in sorted(delta.items())
                          if k.startswith("type ") and v)
        reasons = ", ".join(f"{r} {delta['refused ' + r]}" for r in REASONS
                            if delta["refused " + r])
        refused = sum(delta["refused " + r] for r in REASONS)
        line = (f"VacQuery in the last {seconds:.0f} s: {delta['received']} datagrams; "
                f"answered {delta['answered']} ({types or 'none'}) with {delta['replies']} "
                f"replies, {delta['reply_bytes']} bytes; refused {refused}"
                + (f" ({reasons})" if reasons else ""))
        if delta["errors"]:
            line += f"; {delta['errors']} failed"
        if sources:
            line += "; answered sources " + _top(sources)
        if refused_sources:
            line += "; refused sources " + _top(refused_sources)
        return line


def _tally(table: Dict[str, int], source: str) -> None:
    if source in table:
        table[source] += 1
    elif len(table) < MAX_TOP_SOURCES:
        table[source] = 1
    else:
        table["(others)"] = table.get("(others)", 0) + 1


def _top(table: Dict[str, int], count: int = 10) -> str:
    ranked = sorted(table.items(), key=lambda item: (-item[1], item[0]))
    text = " ".join(f"{source}={n}" for source, n in ranked[:count])
    return text + (f" (+{len(ranked) - count} more)" if len(ranked) > count else "")
