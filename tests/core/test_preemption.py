"""Priority tiers and graceful preemption in the planner (vac.core.preemption, slotstate).

Properties (hypothesis) over random factories: a preemption round never touches a machine
of the waiting machinetype's priority or higher, nor a non-preemptible one, nor one that
has not passed fizzle_seconds, never preempts more processors than the waiting
machinetype lacks against its share, and makes at most one round (one waiting
machinetype) per cycle.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from vac.constants import PREEMPTED_MESSAGE
from vac.core import planner, preemption, shares
from vac.core.actions import Account, Destroy, Finalise, Preempt
from vac.core.configtypes import Machinetype
from vac.model import DomainState
from tests.core.plannerkit import FACTORY, NOW, config, domain, inputs, report, running

LOW = Machinetype("low", target_share=1, preemptible=True, preemption_grace_seconds=120,
                  fizzle_seconds=600)
HIGH = Machinetype("high", target_share=1, priority=10)
MESSAGE = PREEMPTED_MESSAGE.format(for_machinetype="high")


def _full_of_low(n=4, started=NOW - 3600, **kw):
    return [running(i, "low", started=started, **kw) for i in range(n)], \
        [domain(i) for i in range(n)]


def _plan(cfg, slots, domains, reports=None, now=NOW, seed=1):
    return planner.plan(inputs(cfg, slots, domains, reports=reports), now, random.Random(seed))


def _own_report(hs06_low=4.0, hs06_high=0.0, **extra):
    body = report(low=(hs06_low, 0, None, None), high=(hs06_high, 0, None, None))
    body["low"]["preemptible_processors"] = extra.get("preemptible", 4)
    return body


def test_full_factory_preempts_low_for_high_up_to_its_share():
    slots, domains = _full_of_low(4)
    plan = _plan(config([LOW, HIGH]), slots, domains, {FACTORY: _own_report()})
    pre = plan.preemptions
    assert not plan.creates
    assert sum(p.processors for p in pre) == 2        # share 1:1 of 4 processors
    assert all(p.for_machinetype == "high" and p.grace_until == NOW + 120 for p in pre)
    assert {p.name for p in pre} <= {s.name for s in slots}
    assert any("preempt" in n.lower() for n in plan.notes) or pre


def test_no_preemption_without_priority_or_preemptible_or_before_fizzle():
    slots, domains = _full_of_low(4)
    same = Machinetype("high", target_share=1, priority=0)
    assert not _plan(config([LOW, same]), slots, domains, {FACTORY: _own_report()}).preemptions
    fixed = Machinetype("low", target_share=1, preemptible=False)
    assert not _plan(config([fixed, HIGH]), slots, domains, {FACTORY: _own_report()}).preemptions
    young, doms = _full_of_low(4, started=NOW - 100)          # fizzle_seconds 600
    assert not _plan(config([LOW, HIGH]), young, doms, {FACTORY: _own_report()}).preemptions


def test_no_preemption_when_share_met_or_high_backing_off_or_room_left():
    slots, domains = _full_of_low(4)
    met = _own_report(hs06_low=4.0, hs06_high=4.0)
    assert not _plan(config([LOW, HIGH]), slots, domains, {FACTORY: met}).preemptions
    backing = _own_report()
    backing["high"].update(shutdown_message="300 Nothing to do", shutdown_time=NOW - 5)
    plan = _plan(config([LOW, HIGH]), slots, domains, {FACTORY: backing})
    assert not plan.preemptions
    more_slots = slots + [running(4, "low", finished_time=NOW - 10)]
    plan = _plan(config([LOW, HIGH]), more_slots, domains, {FACTORY: _own_report()})
    assert [c.machinetype for c in plan.creates] == ["high"] and not plan.preemptions


def test_space_already_preempting_covers_the_deficit():
    slots, domains = _full_of_low(4)
    peer = _own_report(hs06_low=4.0)
    peer["high"]["preempted_for_processors"] = 4
    reports = {FACTORY: _own_report(), "f2.example.com": peer}
    assert not _plan(config([LOW, HIGH]), slots, domains, reports).preemptions


def test_two_factories_with_the_same_view_do_not_both_preempt():
    slots, domains = _full_of_low(4)
    peer = "f2.example.com"
    reports = {FACTORY: _own_report(), peer: _own_report()}
    winners = set()
    for minute in range(20):
        now = NOW + 60 * minute
        mine = bool(_plan(config([LOW, HIGH]), slots, domains, reports, now=now).preemptions)
        theirs = bool(_plan(config([LOW, HIGH], factory_hostname=peer), slots, domains,
                            reports, now=now).preemptions)
        assert mine + theirs == 1
        winners.add(mine)
    assert winners == {True, False}                   # the hash order rotates


def test_grace_end_destroys_with_code_100_and_accounts():
    slot = running(0, "low", preempted_until=NOW - 1, preempted_for="high",
                   shutdown_time_job=NOW - 1)
    plan = _plan(config([LOW, HIGH], shutdown_grace_seconds=30), [slot], [domain(0)],
                 {FACTORY: _own_report()})
    destroy = next(a for a in plan.actions if isinstance(a, Destroy))
    assert destroy.shutdown_message == MESSAGE and destroy.grace_seconds == 30
    assert any(isinstance(a, Account) for a in plan.actions)
    assert any(isinstance(a, Finalise) for a in plan.actions)


@pytest.mark.parametrize("domains", [[], [domain(0, DomainState.PAUSED)]])
def test_guest_that_stopped_in_the_grace_still_gets_code_100_and_no_backoff(domains):
    """Gone, or still powering off (libvirt shows it not active): the same message."""
    slot = running(0, "low", preempted_until=NOW + 60, preempted_for="high")
    plan = _plan(config([LOW, HIGH]), [slot], domains, {FACTORY: _own_report()})
    destroy = next(a for a in plan.actions if isinstance(a, Destroy))
    assert destroy.shutdown_message == MESSAGE
    assert shares.abort_code(MESSAGE) is None
    after = report(low=(0.0, 0, MESSAGE, NOW), high=(0.0, 0, None, None))
    low = next(s for s in shares.standings(config([LOW, HIGH]), {FACTORY: after}, NOW + 1)
               if s.machinetype == "low")
    assert low.eligible and not low.last_abort


def _ranked(hs06_low, hs06_high):
    stands = shares.standings(config([LOW, HIGH]),
                              {FACTORY: _own_report(hs06_low=hs06_low, hs06_high=hs06_high)},
                              NOW)
    return [s.machinetype for s in shares.rank(stands, random.Random(1))]


def test_priority_ranks_first_up_to_its_share_then_shares_decide():
    assert _ranked(0.0, 0.0) == ["high", "low"]          # empty space
    assert _ranked(10.0, 8.0) == ["high", "low"]         # below its half: first
    assert _ranked(10.0, 12.0) == ["low", "high"]        # above it: by score, as before


# --- properties ----------------------------------------------------------------------

MTS = st.lists(st.tuples(st.integers(0, 3), st.sampled_from([True, True, False]),
                         st.integers(1, 4)), min_size=2, max_size=4)
RARELY = st.sampled_from([False, False, False, True])


@settings(max_examples=150, deadline=None)
@given(mts=MTS, machines=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2000),
                                            st.integers(1, 4), RARELY),
                                  min_size=1, max_size=10),
       waiting_hs06=st.floats(0, 12), preempting=st.integers(0, 3),
       per_superslot=st.sampled_from([1, 4]), seed=st.integers(0, 100))
def test_preemption_properties(mts, machines, waiting_hs06, preempting, per_superslot, seed):
    types = [Machinetype(f"m{i}", target_share=share, priority=prio + (5 if i == 0 else 0),
                         preemptible=pre and i > 0, fizzle_seconds=600,
                         preemption_grace_seconds=60, max_processors=4)
             for i, (prio, pre, share) in enumerate(mts)]          # m0 usually waits
    slots, domains = [], []
    for i, (t, age, procs, marked) in enumerate(machines):
        mt = types[1 + t % (len(types) - 1)].name
        extra = dict(preempted_until=NOW + 30, preempted_for="m0") if marked else {}
        slots.append(running(i, mt, started=NOW - age, processors=procs, **extra))
        domains.append(domain(i))
    bodies = {}
    for mt in types:
        hs06 = sum(float(s.processors) for s in slots if s.machinetype == mt.name)
        bodies[mt.name] = {"running_hs06": waiting_hs06 if mt.name == "m0" else hs06,
                           "num_before_fizzle": 0, "shutdown_message": None,
                           "shutdown_time": None, "preempted_for_processors": preempting}
    cfg = config(types, processors_per_superslot=per_superslot)
    plan = _plan(cfg, slots, domains, {FACTORY: bodies}, seed=seed)
    pre = plan.preemptions
    if not pre:
        return
    assert not plan.creates
    waiting = {p.for_machinetype for p in pre}
    assert len(waiting) == 1                                  # one round, one machinetype
    w = cfg.machinetypes[waiting.pop()]
    stands = {s.machinetype: s for s in plan.standings}
    deficit = preemption.deficit_processors(cfg, stands[w.name], plan.standings)
    assert sum(p.processors for p in pre) <= deficit           # never more than needed
    by_name = {s.name: s for s in slots}
    for p in pre:
        slot = by_name[p.name]
        victim = cfg.machinetypes[slot.machinetype]
        assert victim.preemptible and victim.priority < w.priority   # never a higher one
        assert NOW - slot.started_time >= victim.fizzle_seconds       # never before fizzle
        assert slot.preempted_until is None                          # not twice
        assert p.processors == slot.processors
    assert len({p.name for p in pre}) == len(pre)


def test_describe_names_the_machinetype_made_room_for():
    from vac.core.actions import describe
    line = describe(Preempt("m1", "/d", "low", "high", 2, NOW + 60, "why"))
    assert "preempt low" in line and "for high" in line and str(NOW + 60) in line
