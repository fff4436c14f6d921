"""Fair share with a memory (share_half_life_seconds) and the one-walk space totals.

The oracle below is the ranking of SPEC §6.2 as vac implemented it before this change
(one walk of every report per machinetype, the cycle's planned machines as one more
report). With half-life 0 and equal priorities the planner must take exactly the same
decisions on random inputs, including junk values from peers.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings, strategies as st

from vac.core import planner, shares, usage
from vac.core.configtypes import Machinetype
from tests.core.plannerkit import FACTORY, NOW, config, domain, empty, host, inputs, running


# --- the oracle: standings before this change ---------------------------------------------

def _old_totals(reports, name):
    hs06 = nbf = last_abort = 0.0
    for per_mt in reports.values():
        status = per_mt.get(name)
        if not status:
            continue
        hs06 += shares._num(status.get("running_hs06"))
        nbf += shares._num(status.get("num_before_fizzle"))
        if shares.abort_code(status.get("shutdown_message")) is not None:
            last_abort = max(last_abort, shares._num(status.get("shutdown_time")))
    return hs06, nbf, last_abort


def old_standings(cfg, reports, now):
    enabled = [mt for mt in cfg.machinetypes.values() if mt.target_share > 0]
    totals = {mt.name: _old_totals(reports, mt.name) for mt in enabled}
    scores = {mt.name: totals[mt.name][0] / mt.target_share for mt in enabled}
    groups = {}
    for mt in enabled:
        groups[mt.effective_machinegroup] = groups.get(mt.effective_machinegroup, 0.0) \
            + scores[mt.name]
    result = []
    for mt in enabled:
        hs06, nbf, last = totals[mt.name]
        restart = last + mt.backoff_seconds + (mt.fizzle_seconds if nbf > 0 else 0)
        why = shares._why_not(cfg, mt, now, last, restart)
        result.append((mt.name, scores[mt.name], groups[mt.effective_machinegroup],
                       int(nbf), last, restart, not why))
    return result


def old_standings_with_planned(cfg, reports, now, planned=None, totals=None, previous=()):
    """Drop-in for shares.standings: the planned machines as one more report."""
    merged = dict(reports)
    merged["(planned this cycle)"] = planned or {}
    fields = old_standings(cfg, merged, now)
    return [shares.Standing(n, cfg.machinetypes[n].effective_machinegroup, score, group,
                            nbf, last, restart, eligible, "" if eligible else "backing off")
            for n, score, group, nbf, last, restart, eligible in fields]


# --- random inputs ----------------------------------------------------------------------

NUMBER = st.one_of(st.integers(0, 50), st.floats(0, 50, allow_nan=False), st.none(),
                   st.sampled_from(["7", "x", True]))
MESSAGE = st.sampled_from([None, "", "200 Success", "300 Nothing to do", "700 x", "30",
                           "100 Shutdown as requested by the VM's host/hypervisor"])
STATUS = st.fixed_dictionaries({"running_hs06": NUMBER, "num_before_fizzle": NUMBER,
                                "shutdown_message": MESSAGE,
                                "shutdown_time": st.one_of(st.none(),
                                                           st.integers(NOW - 4000, NOW))})
NAMES = ["a", "b", "c", "d"]
REPORTS = st.dictionaries(st.sampled_from([FACTORY, "f2.example.com", "f3.example.com"]),
                          st.dictionaries(st.sampled_from(NAMES + ["other"]), STATUS),
                          max_size=3)


def _machinetypes(shares_, groups):
    return [Machinetype(n, target_share=s, machinegroup=g, backoff_seconds=600,
                        fizzle_seconds=300) for n, s, g in zip(NAMES, shares_, groups)]


@settings(max_examples=200, deadline=None)
@given(reports=REPORTS, shares_=st.lists(st.sampled_from([0, 0.5, 1, 3]), min_size=4,
                                          max_size=4),
       groups=st.lists(st.sampled_from([None, "g1", "g2"]), min_size=4, max_size=4),
       free=st.integers(0, 6), creations=st.integers(1, 5), seed=st.integers(0, 99))
def test_half_life_0_decides_exactly_as_before(monkeypatch_module, reports, shares_, groups,
                                               free, creations, seed):
    cfg = config(_machinetypes(shares_, groups), max_creations_per_cycle=creations)
    slots = [running(i, NAMES[i % 4]) for i in range(3)] + [empty(3 + i) for i in range(free)]
    inp = inputs(cfg, slots, [domain(i) for i in range(3)], host_facts=host(len(slots)),
                 reports=reports)
    new = planner.plan(inp, NOW, random.Random(seed))
    with monkeypatch_module.context() as m:
        m.setattr(planner, "standings", old_standings_with_planned)
        old = planner.plan(inp, NOW, random.Random(seed))
    assert new.actions == old.actions
    assert new.ranked == old.ranked and new.vetoes == old.vetoes
    assert [(s.machinetype, s.score, s.group_score, s.eligible) for s in new.standings] == \
        [(s.machinetype, s.score, s.group_score, s.eligible) for s in old.standings]


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


# --- the memory ---------------------------------------------------------------------------

DAY = 86400


def _report(hs06, decayed):
    return {"running_hs06": hs06, "num_before_fizzle": 0, "shutdown_message": None,
            "shutdown_time": None, "decayed_hs06_seconds": decayed}


def test_starved_machinetype_catches_up_and_busy_one_yields():
    mts = [Machinetype("busy", target_share=1), Machinetype("starved", target_share=1)]
    reports = {FACTORY: {"busy": _report(10.0, 40 * DAY), "starved": _report(20.0, 0.0)}}
    plain = shares.standings(config(mts), reports, NOW)
    memory = shares.standings(config(mts, share_half_life_seconds=DAY), reports, NOW)
    assert [s.machinetype for s in shares.rank(plain, random.Random(1))][0] == "busy"
    assert [s.machinetype for s in shares.rank(memory, random.Random(1))][0] == "starved"
    busy = next(s for s in memory if s.machinetype == "busy")
    assert busy.score == pytest.approx(10.0 + 40 * DAY * math.log(2) / DAY)


def test_usage_decays_by_half_per_half_life_and_adds():
    u = usage.add({}, "a", 1000.0, NOW, DAY)
    u = usage.add(u, "a", 1000.0, NOW + DAY, DAY)
    assert usage.current(u, NOW + DAY, DAY)["a"] == pytest.approx(1500.0)
    assert usage.current(u, NOW + 2 * DAY, DAY)["a"] == pytest.approx(750.0)
    value, since = usage.parse(usage.render(u))["a"]
    assert value == pytest.approx(1500.0) and since == NOW + DAY


@pytest.mark.parametrize("text", [None, "", "[1]", "{bad", '{"a": "x"}', '{"a": [1]}',
                                  '{"a": [-5, 1]}', '{"a": ["nan", 1]}'])
def test_unreadable_usage_file_counts_as_no_usage(text):
    assert usage.parse(text) == {}


def test_finished_machine_records_hs06_seconds_only_with_a_half_life():
    from vac.core.actions import RecordUsage
    slot = running(0, "lhcb", started=NOW - 1000, heartbeat_time=NOW - 10, hs06=20.0)
    for half_life, expected in ((0, []), (DAY, [RecordUsage("lhcb", 20.0 * 990)])):
        cfg = config(share_half_life_seconds=half_life)
        plan = planner.plan(inputs(cfg, [slot], []), NOW, random.Random(1))
        assert [a for a in plan.actions if isinstance(a, RecordUsage)] == expected


def test_junk_from_a_peer_adds_nothing_and_never_raises():
    junk = {"f2.example.com": {
        "a": {"running_hs06": [1], "num_before_fizzle": "x", "shutdown_message": ["300"]},
        "b": {"shutdown_message": 300, "shutdown_time": "soon"}, "c": None,
        "d": {"running_hs06": "4", "num_before_fizzle": True,
              "shutdown_message": "300 Nothing to do", "shutdown_time": NOW - 5}}}
    totals = shares.space_totals(junk, NAMES)
    assert totals["a"] == totals["b"] == totals["c"] == shares.Totals()
    assert totals["d"] == shares.Totals(hs06=4.0, nbf=1.0, last_abort=NOW - 5)
