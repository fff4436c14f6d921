"""The Prometheus metrics of vac: names, kinds, help texts, label sets, and the pure
classifiers that keep every label value within a bounded set (no machine names, UUIDs,
free text or peer addresses in labels).

Counters and the cycle histogram are counted by the roles where things happen
(vac.services.metrics_hooks); gauges are computed when /metrics is scraped, from the
state directory (vac.core.metricstate). A counter ``NAME`` is exposed as
``vac_NAME_total``; every other metric as ``vac_NAME``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from vac.model import SlotRecord

PREFIX = "vac_"
COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"

# bounded label values
SHUTDOWN_CODES = ("100", "200", "300", "400", "500", "600", "700")   # SPEC §3.11
CODE_NONE, CODE_OTHER = "none", "other"
VETO_REASONS = ("load", "memory", "disk", "shutdown_time", "draining", "processors",
                "slots", "network", "other")
SLOT_STATES = ("free", "starting", "running")
MACHINE_STATES = ("starting", "running")
PEER_STATES = ("answering", "silent")
HTTP_ROLES = ("metadata", "mjf", "metrics")
CYCLE_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)   # seconds


@dataclass(frozen=True)
class Metric:
    """One metric family: ``name`` without the ``vac_`` prefix (and without ``_total``)."""

    name: str
    kind: str
    help: str
    labels: Tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        return PREFIX + self.name

    @property
    def exposed_name(self) -> str:
        """The name samples carry in the exposition (counters end in ``_total``)."""
        return self.full_name + ("_total" if self.kind == COUNTER else "")


def _m(name: str, kind: str, help_text: str, *labels: str) -> Metric:
    return Metric(name, kind, help_text, tuple(labels))


COUNTED: Tuple[Metric, ...] = (
    _m("creations", COUNTER, "Machines created", "machinetype"),
    _m("creation_failures", COUNTER, "Machine creations that failed", "machinetype"),
    _m("finishes", COUNTER, "Machines finalised, by the code of their shutdown message "
       "(none: no message, other: not a standard code)", "machinetype", "code"),
    _m("fizzles", COUNTER, "Started machines that finished before fizzle_seconds",
       "machinetype"),
    _m("vetoes", COUNTER, "Creation attempts vetoed, by reason (one per veto per cycle)",
       "reason"),
    _m("apel_records", COUNTER, "APEL job records written to apel-archive"),
    _m("vacquery_requests", COUNTER, "VacQuery requests answered, by request type", "type"),
    _m("vacquery_refused", COUNTER, "VacQuery datagrams not answered, by reason", "reason"),
    _m("http_requests", COUNTER, "Requests to the metadata, MJF and metrics services, by "
       "HTTP status code", "role", "code"),
    _m("role_restarts", COUNTER, "Role processes restarted by vacd after they died", "role"),
    _m("cycle_duration_seconds", HISTOGRAM, "Duration of factory cycles"),
)

STATE: Tuple[Metric, ...] = (
    _m("info", GAUGE, "Always 1: this factory's version, name and space",
       "version", "factory", "space"),
    _m("slots", GAUGE, "Slots of this factory"),
    _m("slots_free", GAUGE, "Slots without a live machine"),
    _m("slots_by_state", GAUGE, "Slots by the state of their machine", "state"),
    _m("machines", GAUGE, "Live machines by machinetype and state (from the state "
       "directory, as vac machines shows them)", "machinetype", "state"),
    _m("machinetype_processors", GAUGE, "Processors of the machinetype's running and "
       "starting machines", "machinetype"),
    _m("machinetype_hs06", GAUGE, "HS06 of the machinetype's running and starting machines",
       "machinetype"),
    _m("machinetype_before_fizzle", GAUGE, "Machines of the machinetype not yet past "
       "fizzle_seconds", "machinetype"),
    _m("machinetype_target_share", GAUGE, "Configured target_share", "machinetype"),
    _m("machinetype_score", GAUGE, "Running HS06 / target_share over the space at the last "
       "cycle (lowest: most starved)", "machinetype"),
    _m("machinetype_backoff", GAUGE, "1 while the machinetype backs off after an abort",
       "machinetype"),
    _m("machinetype_backoff_end_timestamp_seconds", GAUGE, "Unix time its back-off ends "
       "(0: not backing off)", "machinetype"),
    _m("machinetype_last_abort_timestamp_seconds", GAUGE, "Unix time of its last abort in "
       "the space (0: none)", "machinetype"),
    _m("processors_running", GAUGE, "Processors of running and starting machines"),
    _m("processors_max", GAUGE, "Processors machines may use (total_processors)"),
    _m("hs06_running", GAUGE, "HS06 of running and starting machines"),
    _m("last_cycle_timestamp_seconds", GAUGE, "Unix time the last factory cycle ended"),
    _m("last_cycle_duration_seconds", GAUGE, "Duration of the last factory cycle"),
    _m("vetoes_active", GAUGE, "1 for each reason that vetoed creation in the last cycle",
       "reason"),
    _m("peers", GAUGE, "Factories of the space that answered (or not) the last cycle's "
       "VacQuery", "state"),
    _m("apel_records_pending", GAUGE, "APEL records owed or not yet complete in "
       "apel-archive and apel-outgoing"),
    _m("apel_outgoing_messages", GAUGE, "Messages in apel-outgoing waiting for ssmsend"),
    _m("config_valid", GAUGE, "1 if the configuration is valid, 0 while machines are not "
       "created because of it"),
    _m("config_problems", GAUGE, "Problems of the configuration (config-error)"),
    _m("machinetypes_disabled", GAUGE, "Machinetypes disabled by their own problems"),
    _m("factory_error", GAUGE, "1 while the last machine creation failed (factory-error)"),
    _m("role_heartbeat_timestamp_seconds", GAUGE, "Unix time of each role's heartbeat",
       "role"),
)

CATALOGUE: Dict[str, Metric] = {m.name: m for m in COUNTED + STATE}


def finish_code(message: Optional[str]) -> str:
    """The ``code`` label of a shutdown message: a standard code, ``other`` or ``none``."""
    if not message or not message.strip():
        return CODE_NONE
    code = message.strip()[:3]
    return code if code in SHUTDOWN_CODES else CODE_OTHER


def is_fizzle(slot: SlotRecord, fizzle_seconds: int) -> bool:
    """A started machine that ran (heartbeat - start) less than ``fizzle_seconds``."""
    if slot.started_time is None:
        return False
    if slot.heartbeat_time is None:
        return True
    return slot.heartbeat_time - slot.started_time < fizzle_seconds


_VETO_PREFIXES = (
    ("load average", "load"), ("free memory", "memory"), ("less than 1 GiB free", "disk"),
    ("shutdown_time", "shutdown_time"), ("in draining mode", "draining"),
    ("total_processors", "processors"), ("no free slot", "slots"),
    ("the NAT network", "network"),
)


def veto_reason(veto: str) -> str:
    """The ``reason`` label of one planner veto (vac.core.planner.vetoes, blockers)."""
    for prefix, reason in _VETO_PREFIXES:
        if veto.startswith(prefix):
            return reason
    return "other"
