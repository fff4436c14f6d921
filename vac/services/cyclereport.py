"""``last-cycle.json``: what the factory's last cycle did and why (its plan, as
``vac plan --json`` shows a plan), when, how long it took and which factories of the
space answered. The factory writes it after every cycle; the metrics role reads it for
/status.json and for the gauges of scores, back-off, vetoes and peers.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping

from vac.adapters import statefs
from vac.core.configtypes import Config
from vac.core.planreport import plan_body
from vac.errors import VacError
from vac.paths import Paths

log = logging.getLogger(__name__)


def peer_states(cfg: Config, reports: Mapping[str, Any]) -> Dict[str, List[str]]:
    """The factories of the space that answered the cycle's query and those that did not."""
    listed = sorted(set(cfg.settings.factories))
    return {"answering": [f for f in listed if f in reports],
            "silent": [f for f in listed if f not in reports]}


def report(result: Any, seconds: float) -> Dict[str, Any]:
    """The JSON-able report of one cycle's CycleResult (vac.services.factory)."""
    cfg, plan = result.config, result.plan
    return {"time": result.now, "end": result.now + seconds,
            "duration_seconds": round(seconds, 3), "created": result.created,
            "failed": result.failed, "problems": list(result.problems),
            "peers": result.peers,
            "plan": plan_body(cfg, plan, []) if cfg is not None and plan is not None else None}


def write(paths: Paths, result: Any, seconds: float) -> None:
    """Write the report; a failure is logged, never raised (the cycle is done)."""
    try:
        statefs.write_cycle_report(paths, report(result, seconds))
    except (VacError, OSError, TypeError, ValueError) as e:
        log.error("Cannot write %s: %s", paths.last_cycle, e)
