"""Planner invariants over random slot tables (hypothesis)."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from vac.constants import STATE_SHUTDOWN
from vac.core import planner
from vac.core.actions import Create, Destroy, Finalise
from vac.core.configtypes import Machinetype
from vac.model import DomainState
from tests.core.plannerkit import NOW, config, domain, empty, host, inputs, running

MTS = [Machinetype("one", target_share=1),
       Machinetype("four", target_share=2, min_processors=2, max_processors=4)]

slot_kind = st.sampled_from(["empty", "running", "stopped", "paused", "starting",
                             "finished", "expired"])


def _slot(i, kind, procs):
    if kind == "empty":
        return empty(i), None
    if kind == "starting":
        return running(i, started=None, processors=procs), None
    if kind == "finished":
        return running(i, finished_time=NOW - 10, processors=procs), None
    if kind == "expired":
        return running(i, shutdown=NOW - 1, processors=procs), domain(i)
    dom = {"running": domain(i), "stopped": None,
           "paused": domain(i, DomainState.PAUSED)}[kind]
    return running(i, processors=procs), dom


@settings(max_examples=200, deadline=None)
@given(kinds=st.lists(st.tuples(slot_kind, st.integers(1, 4)), min_size=1, max_size=12),
       per_superslot=st.sampled_from([1, 4, 8]), creations=st.integers(0, 4),
       total=st.integers(1, 16), seed=st.integers(0, 1000))
def test_invariants(kinds, per_superslot, creations, total, seed):
    pairs = [_slot(i, k, p) for i, (k, p) in enumerate(kinds)]
    slots = [s for s, _ in pairs]
    domains = [d for _, d in pairs if d is not None]
    cfg = config(MTS, processors_per_superslot=per_superslot,
                 max_creations_per_cycle=creations, total_processors=total)
    plan = planner.plan(inputs(cfg, slots, domains, host_facts=host(len(slots))), NOW,
                        random.Random(seed))
    creates = [a for a in plan.actions if isinstance(a, Create)]
    assert len(creates) <= creations
    # creations come last, in distinct slots that are free after this cycle's lifecycle
    assert all(isinstance(a, Create) for a in plan.actions[len(plan.actions) - len(creates):])
    ordinals = [c.ordinal for c in creates]
    assert len(set(ordinals)) == len(ordinals)
    assert all(plan.states[slots[o].name] == STATE_SHUTDOWN for o in ordinals)
    # never beyond total_processors, never bigger than a superslot
    running_procs = sum(s.processors or 1 for s in slots
                        if plan.states[s.name] != STATE_SHUTDOWN)
    assert running_procs + sum(c.processors for c in creates) <= max(total, running_procs)
    assert all(1 <= c.processors <= per_superslot for c in creates)
    # every machine that stops is finalised exactly once, after its destroy
    for s in slots:
        fins = [a for a in plan.actions if isinstance(a, Finalise) and a.slot.name == s.name]
        assert len(fins) <= 1
        if fins:
            first_destroy = next(i for i, a in enumerate(plan.actions)
                                 if isinstance(a, Destroy) and a.name == s.name)
            assert first_destroy < plan.actions.index(fins[0])
