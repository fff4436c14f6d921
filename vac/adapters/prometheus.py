"""prometheus_client in its multiprocess mode: the only module that imports it.

vacd's roles are separate processes, so their counters cannot live in one registry.
The library's own answer is used: each process that counts writes its values into
mmap'd files of its own (``counter_PID.db``, ``histogram_PID.db``) in the directory
named by ``PROMETHEUS_MULTIPROC_DIR``, and the metrics role merges every file at scrape
time (``MultiProcessCollector``). The files of a role process that died stay, so its
counts are not lost when vacd restarts the role; vacd empties the directory when it
starts (the library requires it), so counters restart from 0 with vacd, which
Prometheus' ``rate()``/``increase()`` treat as a counter reset.

prometheus_client chooses its value storage when it is first imported, from the
environment, so vacd sets the variable before it forks the roles, and a role imports
the library only when it first counts: with metrics off nothing here is imported.
No multiprocess gauges are used (their live/sum modes depend on process liveness);
every gauge is computed by the metrics role at scrape time and passed to
:func:`exposition`.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

ENV = "PROMETHEUS_MULTIPROC_DIR"
# the classic text format generate_latest writes (newer clients name 1.0.0 "latest")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class GaugeFamily:
    """One gauge family computed at scrape time: full name, help, label names, samples."""

    name: str
    help: str
    labels: Tuple[str, ...]
    samples: Sequence[Tuple[Mapping[str, str], float]]


def directory() -> Optional[str]:
    """The multiprocess directory of this process ("" or unset: metrics are off)."""
    return os.environ.get(ENV) or None


def missing() -> Optional[str]:
    """Why the library cannot be used here (None: it is installed)."""
    try:
        import prometheus_client  # noqa: F401 - imported for the check only
    except ImportError as e:
        return f"prometheus_client cannot be imported ({e})"
    return None


def reset_directory(path: str) -> None:
    """Create ``path`` (0755) and remove the value files of an earlier vacd."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    for name in glob.glob(os.path.join(path, "*.db")):
        os.unlink(name)


class Instruments:
    """This process's counters and histograms, made on first use (multiprocess values)."""

    def __init__(self) -> None:
        self._made: Dict[str, Any] = {}

    def _get(self, name: str, kind: str, help_text: str, labels: Sequence[str],
             buckets: Sequence[float] = ()) -> Any:
        made = self._made.get(name)
        if made is None:
            import prometheus_client
            if kind == "counter":
                made = prometheus_client.Counter(name, help_text, list(labels), registry=None)
            else:
                made = prometheus_client.Histogram(name, help_text, list(labels),
                                                   buckets=list(buckets), registry=None)
            self._made[name] = made
        return made

    def inc(self, name: str, help_text: str, labels: Sequence[str],
            values: Mapping[str, str], amount: float = 1.0) -> None:
        """Add ``amount`` (0 creates the series) to counter ``name`` with label ``values``."""
        counter = self._get(name, "counter", help_text, labels)
        (counter.labels(**values) if labels else counter).inc(amount)

    def observe(self, name: str, help_text: str, buckets: Sequence[float],
                value: Optional[float]) -> None:
        """Record ``value`` in histogram ``name`` (None only creates it)."""
        histogram = self._get(name, "histogram", help_text, (), buckets)
        if value is not None:
            histogram.observe(value)


def _merged_collector(path: Optional[str], helps: Mapping[str, str], gauges: Sequence[GaugeFamily]):
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.multiprocess import MultiProcessCollector

    class Merged:
        """Every role's counters (with their help texts) plus this scrape's gauges."""

        def collect(self) -> Iterable[Any]:
            counted = MultiProcessCollector(None, path=path).collect() if path else ()
            for metric in counted:
                metric.documentation = helps.get(metric.name, metric.documentation)
                yield metric
            for family in gauges:
                gauge = GaugeMetricFamily(family.name, family.help, labels=family.labels)
                for labels, value in family.samples:
                    gauge.add_metric([labels[k] for k in family.labels], value)
                yield gauge
    return Merged()


def exposition(path: Optional[str], helps: Mapping[str, str],
               gauges: Sequence[GaugeFamily]) -> Tuple[bytes, str]:
    """(body, content type) of /metrics in the Prometheus text format: the counters
    of the multiprocess directory ``path`` (None: none) and the ``gauges``."""
    from prometheus_client import CollectorRegistry, generate_latest
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_merged_collector(path, helps, gauges))
    return generate_latest(registry), CONTENT_TYPE


def parse_exposition(text: str) -> List[Tuple[str, Dict[str, str], float]]:
    """(sample name, labels, value) of every sample of a text exposition (tests, tools)."""
    from prometheus_client.parser import text_string_to_metric_families
    return [(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]
