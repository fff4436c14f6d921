"""What a factory cycle did and why, told in the factory log (one line per slot,
standing, veto and note) and kept in ``last-cycle.json``: its plan (as
``vac plan --json`` shows a plan), when, how long it took and which factories of the
space answered. The factory writes it after every cycle; the metrics role reads it for
/status.json and for the gauges of scores, back-off, vetoes and peers.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping

from vac.adapters import statereports
from vac.core import planner
from vac.core.configtypes import Config
from vac.core.metrics import veto_reason
from vac.core.planreport import plan_body
from vac.errors import VacError
from vac.model import SlotRecord
from vac.paths import Paths
from vac.services import metrics_hooks

log = logging.getLogger(__name__)


def log_slots(plan: planner.Plan, slots: List[SlotRecord]) -> None:
    """``NAME is STATE (PROCESSORS MACHINETYPE "MESSAGE" UUID)`` per slot (SPEC §3.2)."""
    for slot in slots:
        state = plan.states.get(slot.name, "Unknown")
        hint = ""
        if slot.shutdown_message and slot.shutdown_message.startswith("3") and \
                slot.heartbeat_time and slot.started_time:
            hint = (f" Minimum {slot.machinetype} fizzle_seconds="
                    f"{int(slot.heartbeat_time - slot.started_time)} ?")
        log.info('%s is %s (%s %s "%s" %s)%s', slot.name, state, slot.processors or "-",
                 slot.machinetype or "-", slot.shutdown_message or "", slot.uuid or "-", hint)


def log_plan(plan: planner.Plan) -> None:
    """One line per standing, veto and note (the creation decision's explanation);
    each veto is counted for the metrics role by its reason."""
    for s in plan.standings:
        abort = (f"last abort {s.last_abort:.0f}, creation restart at {s.restart_time:.0f}"
                 if s.last_abort else "no abort")
        log.info("For %s: score %.2f, machinegroup %s score %.2f, %d before fizzle, %s%s",
                 s.machinetype, s.score, s.machinegroup, s.group_score, s.num_before_fizzle,
                 abort, f" - not eligible: {s.why_not}" if s.why_not else "")
    if plan.ranked:
        log.info("Sorted machinegroup/machinetype scores: %s", " ".join(plan.ranked))
    for veto in plan.vetoes:
        log.info("LM not created as %s", veto)
        metrics_hooks.count("vetoes", reason=veto_reason(veto))
    for note in plan.notes:
        log.info("%s", note)


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
        statereports.write_cycle_report(paths, report(result, seconds))
    except (VacError, OSError, TypeError, ValueError) as e:
        log.error("Cannot write %s: %s", paths.last_cycle, e)
