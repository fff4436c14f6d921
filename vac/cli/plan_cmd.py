"""``vac plan``: what the next factory cycle would do and why, without acting."""

from __future__ import annotations

import json
from typing import List

from vac.core.actions import Create, Preempt, WriteHeartbeat, describe
from vac.core.planreport import plan_body
from vac.errors import ConfigError
from vac.paths import Paths


def register(subparsers) -> None:
    """Add ``plan`` to the vac parser."""
    p = subparsers.add_parser("plan", help="show what the next factory cycle would do, "
                                           "and why")
    p.set_defaults(func=run)


def render(cfg, plan, notes: List[str]) -> str:
    """The explanation as text (one section per planner stage)."""
    lines = [f"Factory {cfg.settings.factory_hostname} in space {cfg.settings.vac_space}"]
    lines += [f"Note: {n}" for n in notes]
    lines.append("Slots:")
    lines += [f"  {name:<40} {state}" for name, state in plan.states.items()]
    lifecycle = [a for a in plan.actions
                 if not isinstance(a, (WriteHeartbeat, Create, Preempt))]
    lines.append("Lifecycle actions:" if lifecycle else "Lifecycle actions: none")
    lines += [f"  {describe(a)}" for a in lifecycle]
    if plan.standings:
        lines.append("Machinetypes (score = running HS06 / target_share over the space):")
    for s in plan.standings:
        verdict = "eligible" if s.eligible else f"not eligible: {s.why_not}"
        tier = f"priority {s.priority}  " if s.priority else ""
        lines.append(f"  {s.machinetype:<20} {tier}score {s.score:8.2f}  machinegroup "
                     f"{s.machinegroup} score {s.group_score:.2f}  before fizzle "
                     f"{s.num_before_fizzle}  {verdict}")
    for name, problems in cfg.disabled.items():
        lines.append(f"Disabled machinetype {name} (nothing of it is created):")
        lines += [f"  {problem}" for problem in problems]
    for veto in plan.vetoes:
        lines.append(f"Veto: no machine created as {veto}")
    if plan.ranked:
        lines.append("Ranking (most starved first): " + " ".join(plan.ranked))
    lines += plan.notes
    creates = plan.creates
    lines += [f"Would create: {describe(c)}" for c in creates]
    if not creates:
        lines.append("Would create: nothing")
    lines += [f"Would preempt: {describe(p)}" for p in plan.preemptions]
    return "\n".join(lines) + "\n"


def as_json(cfg, plan, notes: List[str]) -> str:
    """The same explanation as JSON (``vac --json plan``)."""
    return json.dumps(plan_body(cfg, plan, notes), indent=1, sort_keys=True)


def run(args) -> int:
    from vac.services import factory
    paths = Paths.from_root(args.root)
    try:
        cfg, plan, notes = factory.preview(paths)
    except ConfigError as e:
        for problem in e.problems:
            print(f"configuration: {problem}")
        print("Would create: nothing (configuration error; nothing would be destroyed)")
        return 1
    if getattr(args, "json", False):
        print(as_json(cfg, plan, notes))
    else:
        print(render(cfg, plan, notes), end="")
    return 0
