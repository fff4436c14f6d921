"""The ``metrics`` role: Prometheus metrics and a local status document over HTTP.

Started by vacd only when ``metrics_address`` is set, and bound only there:

* ``GET /metrics``: the Prometheus text exposition. Counters (creations, finishes by
  shutdown-message code, fizzles, vetoes, APEL records, VacQuery and HTTP requests,
  role restarts) and the cycle-duration histogram are counted by the roles where things
  happen and merged from prometheus_client's multiprocess files (vac.adapters.
  prometheus); every gauge (slots, machines by machinetype and state, processors, HS06,
  back-off, peers, APEL backlog, configuration health) is computed at scrape time from
  the state directory (vac.core.metricstate), so it is true even right after a restart.
* ``GET /status.json``: this factory's machine_status, machinetype_status and
  factory_status messages (what ``vac --json machines|machinetypes|factories`` show for
  it) and its last cycle's plan (as ``vac plan --json``), read from the files, without
  the responder or a UDP round trip.

Every metric's label values come from bounded sets (configured machinetypes, fixed
codes and reasons); no machine names or UUIDs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from vac import __version__
from vac.adapters import apelspool, host, prometheus, statefs, statereports, sysinfo
from vac.adapters.httpserver import HttpRequest
from vac.constants import DAEMON_ROLES, METRICS_ROLE
from vac.core import metrics as catalogue
from vac.core import metricstate, querygate, status
from vac.core import vacquery as vq
from vac.core.configtypes import Config
from vac.core.metadata import NOT_FOUND, Response
from vac.core.options import split_listen_address
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import metrics_hooks, responder
from vac.services.httpd_role import Machine, RoleSpec, run_http_role

log = logging.getLogger(__name__)

SERVER_NAME = "Vac metrics server"
STATUS_TYPES = (("machines", vq.MACHINE_STATUS), ("machinetypes", vq.MACHINETYPE_STATUS),
                ("factories", vq.FACTORY_STATUS))
QUERY_TYPES = (vq.MACHINES_QUERY, vq.MACHINETYPES_QUERY, vq.FACTORY_QUERY)
REFUSALS = querygate.REASONS + ("error",)
_seeded: List[Any] = [None]        # the Config whose series were last created at 0


def state_inputs(paths: Paths, cfg: Config, now: float) -> metricstate.StateInputs:
    """Read what the gauges need from the state directory (read-only)."""
    hb_files = {name: mt.heartbeat_file for name, mt in cfg.machinetypes.items()}
    slots = statefs.read_slots(paths, cfg.settings.factory_hostname,
                               responder.slot_count(paths), hb_files)
    return metricstate.StateInputs(
        cfg=cfg, slots=slots, machinetype_bodies=responder.machinetype_bodies(
            cfg, paths, slots, now),
        cycle=statereports.read_cycle_report(paths), now=now, version=__version__,
        processors_max=status.total_processors(cfg, host.processor_count(paths)),
        apel_pending=len(apelspool.pending_dirs(paths.machines_dir)),
        apel_outgoing=apelspool.queue_count(paths.apel_outgoing),
        config_problems=statereports.config_problem_count(paths),
        factory_error=os.path.exists(paths.factory_error),
        heartbeats=sysinfo.heartbeat_times(paths, DAEMON_ROLES + (METRICS_ROLE,)))


def seed_counters(cfg: Config) -> None:
    """Create every known counter series at 0 (so rate() and alerts see them from the
    first scrape); the roles add to them as things happen."""
    if _seeded[0] is cfg:
        return
    _seeded[0] = cfg
    count = metrics_hooks.count
    for mt in cfg.machinetypes:
        for name in ("creations", "creation_failures", "fizzles"):
            count(name, 0, machinetype=mt)
        for code in catalogue.SHUTDOWN_CODES:
            count("finishes", 0, machinetype=mt, code=code)
    for reason in catalogue.VETO_REASONS:
        count("vetoes", 0, reason=reason)
    for query in QUERY_TYPES:
        count("vacquery_requests", 0, type=query)
    for reason in REFUSALS:
        count("vacquery_refused", 0, reason=reason)
    for role in DAEMON_ROLES + (METRICS_ROLE,):
        count("role_restarts", 0, role=role)
    for role in catalogue.HTTP_ROLES:
        count("http_requests", 0, role=role, code="200")
    count("apel_records", 0)
    metrics_hooks.observe_cycle(None)


def gauge_families(samples: metricstate.Samples) -> List[prometheus.GaugeFamily]:
    """The computed gauges as families of the catalogue (in catalogue order)."""
    return [prometheus.GaugeFamily(m.full_name, m.help, m.labels, samples[m.name])
            for m in catalogue.STATE if m.name in samples]


def exposition(paths: Paths, cfg: Config, now: float) -> Tuple[bytes, str]:
    """(body, content type) of one scrape."""
    seed_counters(cfg)
    samples = metricstate.state_samples(state_inputs(paths, cfg, now))
    helps = {m.full_name: m.help for m in catalogue.COUNTED}
    return prometheus.exposition(prometheus.directory(), helps, gauge_families(samples))


def status_document(paths: Paths, cfg: Config, now: float) -> Dict[str, Any]:
    """This factory's status messages and its last cycle, as one JSON object."""
    doc: Dict[str, Any] = {"factory": cfg.settings.factory_hostname,
                           "space": cfg.settings.vac_space, "time": int(now)}
    for key, reply_type in STATUS_TYPES:
        doc[key] = [responder.wrap(cfg, reply_type, body, vq.UNSOLICITED_COOKIE, now,
                                   client_name="vac-metrics")
                    for body in responder.local_bodies(cfg, paths, reply_type, now)]
    cycle = statereports.read_cycle_report(paths) or {}
    doc["plan"] = cycle.pop("plan", None)
    doc["last_cycle"] = cycle or None
    return doc


def answer(paths: Paths, cfg: Optional[Config], _machine: Optional[Machine],
           request: HttpRequest) -> Response:
    """GET or HEAD of /metrics or /status.json; 404 for other paths, 405 other methods."""
    path = request.path.split("?", 1)[0]
    if path not in ("/metrics", "/status.json"):
        return NOT_FOUND
    if request.method not in ("GET", "HEAD"):
        return Response(405, body=b"only GET and HEAD\n")
    if cfg is None:
        return Response(503, body=b"no configuration loaded yet\n")
    now = time.time()
    if path == "/metrics":
        body, content_type = exposition(paths, cfg, now)
        return Response(200, content_type, body)
    text = json.dumps(status_document(paths, cfg, now), indent=1, sort_keys=True)
    return Response(200, "application/json", text.encode() + b"\n")


def _bind(cfg: Config) -> Optional[Tuple[str, int]]:
    address = cfg.settings.metrics_address
    return split_listen_address(address) if address else None


def run_role(paths: Paths, control: RoleControl, *, load=None, resolve=None,
             ready=None) -> None:
    """vacd role ``metrics``; ``load``/``ready`` are for tests only (``resolve`` is
    ignored: no answer depends on who asks). Without prometheus_client the role stops
    with an error saying so, and vacd retries it with back-off."""
    problem = prometheus.missing()
    if problem:
        raise RuntimeError(f"metrics_address is set but {problem}: install "
                           "python3-prometheus_client (EPEL 9) or prometheus-client")
    spec = RoleSpec(METRICS_ROLE, SERVER_NAME, _bind, answer)
    run_http_role(paths, control, spec, load=load, resolve=lambda _ip: None, ready=ready)
