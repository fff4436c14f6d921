"""Counting for the metrics role: small calls the roles make where things happen.

``count("creations", machinetype="lhcb")`` adds to a counter of vac.core.metrics;
``observe_cycle(seconds)`` records a factory cycle. Both are no-ops unless vacd runs with
``metrics_address`` set (it then names the multiprocess directory in the environment of
every role, vac.adapters.prometheus), so with metrics off no role imports
prometheus_client and nothing is written. A failure to count is logged once and turns
counting off in that process: metrics never stop a cycle, a datagram or a request.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

from vac.core import metrics as catalogue

log = logging.getLogger(__name__)

_UNKNOWN = object()
_instruments = _UNKNOWN            # None: off in this process; else adapter Instruments


def _get():
    """This process's Instruments, or None when metrics are off (decided on first use)."""
    global _instruments
    if _instruments is _UNKNOWN:
        from vac.adapters import prometheus
        _instruments = prometheus.Instruments() if prometheus.directory() else None
    return _instruments


def enabled() -> bool:
    return _get() is not None


def reset() -> None:
    """Decide again on the next call (after the environment changed: tests, a new child)."""
    global _instruments
    _instruments = _UNKNOWN


def _disable(what: str) -> None:
    global _instruments
    log.exception("metrics: %s failed; this process counts nothing more", what)
    _instruments = None


def count(name: str, amount: float = 1.0, **labels: str) -> None:
    """Add ``amount`` to counter ``name`` (a key of vac.core.metrics.CATALOGUE)."""
    instruments = _get()
    if instruments is None:
        return
    metric = catalogue.CATALOGUE[name]
    try:
        values: Dict[str, str] = {k: str(labels[k]) for k in metric.labels}
        instruments.inc(metric.full_name, metric.help, metric.labels, values, amount)
    except Exception:  # metrics boundary: counting must never break the caller
        _disable(f"counting {name} {labels}")


def observe_cycle(seconds: Optional[float]) -> None:
    """Record one factory cycle of ``seconds`` (None: only create the histogram)."""
    instruments = _get()
    if instruments is None:
        return
    metric = catalogue.CATALOGUE["cycle_duration_seconds"]
    try:
        instruments.observe(metric.full_name, metric.help, catalogue.CYCLE_BUCKETS, seconds)
    except Exception:  # metrics boundary
        _disable("recording the cycle duration")
