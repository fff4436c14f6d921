"""The plan of one factory cycle as a JSON-able dict: what ``vac plan --json`` prints and
what the factory keeps of its last cycle for /status.json and the metrics (pure)."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List

from vac.core.actions import WriteHeartbeat, describe
from vac.core.configtypes import Config
from vac.core.planner import Plan


def plan_body(cfg: Config, plan: Plan, notes: List[str]) -> Dict[str, Any]:
    """States, vetoes, standings, ranking, actions, creations and preemptions with their
    reasons."""
    return {"factory": cfg.settings.factory_hostname, "notes": notes,
            "states": plan.states, "vetoes": plan.vetoes, "ranked": plan.ranked,
            "standings": [dataclasses.asdict(s) for s in plan.standings],
            "actions": [describe(a) for a in plan.actions if not isinstance(a, WriteHeartbeat)],
            "creates": [dataclasses.asdict(c) for c in plan.creates],
            "disabled": {name: list(problems) for name, problems in cfg.disabled.items()},
            "preemptions": [dataclasses.asdict(p) for p in plan.preemptions],
            "explanation": plan.notes}
