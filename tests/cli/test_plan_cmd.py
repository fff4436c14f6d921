"""`vac plan` text (golden): slot states, lifecycle actions, scores, vetoes, choice."""

from __future__ import annotations

import random

from vac.cli import plan_cmd
from vac.core import planner
from vac.core.configtypes import Machinetype
from tests.core.plannerkit import NOW, config, domain, empty, host, inputs, report, running


def _render(cfg, slots, domains, **kw):
    plan = planner.plan(inputs(cfg, slots, domains, **kw), NOW, random.Random(7))
    return plan_cmd.render(cfg, plan, [])


def test_plan_text_with_choice(golden):
    mts = [Machinetype("lhcb", target_share=1), Machinetype("atlas", target_share=3,
                                                            backoff_seconds=600)]
    reports = {"f2.example.com": report(lhcb=(20.0, 0, None, None),
                                        atlas=(30.0, 1, "300 Nothing to do", NOW - 100))}
    text = _render(config(mts), [running(0), running(1), empty(2)], [domain(0)],
                   host_facts=host(3), reports=reports)
    golden.check(text, "cli/plan_choice.txt")


def test_plan_text_with_vetoes(golden):
    text = _render(config(draining=True, shutdown_time=NOW - 60), [running(0), empty(1)],
                   [domain(0)], host_facts=host(2, load=9.0))
    assert text.count("Veto:") == 3
    golden.check(text, "cli/plan_vetoes.txt")


def test_plan_json():
    import json
    cfg = config()
    plan = planner.plan(inputs(cfg, [empty(0)], []), NOW, random.Random(7))
    body = json.loads(plan_cmd.as_json(cfg, plan, ["n"]))
    assert body["creates"][0]["machinetype"] == "lhcb" and body["ranked"] == ["lhcb"]
    assert body["standings"][0]["eligible"] is True and body["notes"] == ["n"]


def test_plan_shows_disabled_machinetypes_and_why():
    import dataclasses
    import json
    from types import MappingProxyType
    problem = "f.conf:7: [machinetype cms] root_device: 'x-1' is not valid (expected a-z 0-9)"
    cfg = dataclasses.replace(config(), disabled=MappingProxyType({"cms": (problem,)}))
    plan = planner.plan(inputs(cfg, [empty(0)], []), NOW, random.Random(7))
    text = plan_cmd.render(cfg, plan, [])
    assert f"Disabled machinetype cms (nothing of it is created):\n  {problem}\n" in text
    assert "Would create: " in text and "lhcb" in text.split("Would create: ")[1]
    assert json.loads(plan_cmd.as_json(cfg, plan, []))["disabled"] == {"cms": [problem]}


def test_plan_shows_each_planned_preemption_and_why(golden):
    import json
    low = Machinetype("low", target_share=1, preemptible=True, preemption_grace_seconds=300)
    high = Machinetype("high", target_share=1, priority=5)
    cfg = config([low, high])
    slots = [running(i, "low") for i in range(2)]
    own = report(low=(2.0, 0, None, None), high=(0.0, 0, None, None))
    own["low"]["preemptible_processors"] = 2
    plan = planner.plan(inputs(cfg, slots, [domain(0), domain(1)], host_facts=host(2),
                               reports={"f1.example.com": own}), NOW, random.Random(7))
    text = plan_cmd.render(cfg, plan, [])
    assert text.count("Would preempt:") == 1 and "for high" in text
    golden.check(text, "cli/plan_preempt.txt")
    body = json.loads(plan_cmd.as_json(cfg, plan, []))
    assert body["preemptions"][0]["for_machinetype"] == "high"
    assert body["preemptions"][0]["grace_until"] == NOW + 300
