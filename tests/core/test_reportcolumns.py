"""ReportColumns: the peers' bodies summed as they are decoded give, to the last bit, the
totals (and so the decisions) of walking the same reports as dicts, whatever order the
bodies arrive in, junk included."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings, strategies as st

from vac.core import planner, shares
from vac.core.reportcolumns import ReportColumns
from tests.core.plannerkit import FACTORY, NOW, config, domain, empty, host, inputs, running
from tests.core.test_shares_memory import MESSAGE, NAMES, _machinetypes

NUMBER = st.one_of(st.integers(-3, 50), st.floats(-1, 50, allow_nan=False), st.none(),
                   st.sampled_from(["7", "x", True, 10 ** 400, [1]]))
STATUS = st.fixed_dictionaries(
    {"running_hs06": NUMBER, "num_before_fizzle": NUMBER, "shutdown_message": MESSAGE,
     "shutdown_time": st.one_of(st.none(), st.integers(NOW - 4000, NOW), st.just("x"))},
    optional={"decayed_hs06_seconds": NUMBER, "preempted_for_processors": NUMBER})
PEERS = ["f2.example.com", "f3.example.com", "f4.example.com", "f5.example.com"]
REPORTS = st.dictionaries(st.sampled_from(PEERS),
                          st.dictionaries(st.sampled_from(NAMES + ["other"]),
                                          st.one_of(STATUS, st.just({}),
                                                    st.just({"running_hs06": 3}))),
                          max_size=4)


def columns_of(reports, seed):
    """The bodies added in a shuffled order, as replies come off the network."""
    order = [(position, name, status) for position, per_mt in enumerate(reports.values())
             for name, status in per_mt.items()]
    random.Random(seed).shuffle(order)
    columns = ReportColumns()
    for position, name, status in order:
        columns.add(position, name, status)
    return columns


@settings(max_examples=300, deadline=None)
@given(reports=REPORTS, seed=st.integers(0, 99))
def test_totals_equal_the_walk_of_the_dicts_in_any_arrival_order(reports, seed):
    flags = {"usage": True, "preempting": True}
    assert columns_of(reports, seed).totals(NAMES, **flags) == \
        shares.space_totals(reports, NAMES, **flags)
    assert columns_of(reports, seed).totals(NAMES) == shares.space_totals(reports, NAMES)


@settings(max_examples=100, deadline=None)
@given(reports=REPORTS, shares_=st.lists(st.sampled_from([0, 0.5, 1, 3]), min_size=4,
                                          max_size=4),
       creations=st.integers(1, 4), free=st.integers(0, 5), seed=st.integers(0, 99))
def test_the_planner_decides_the_same_from_columns(reports, shares_, creations, free, seed):
    cfg = config(_machinetypes(shares_, [None, "g1", None, "g1"]),
                 max_creations_per_cycle=creations)
    slots = [running(i, NAMES[i % 4]) for i in range(3)] + [empty(3 + i) for i in range(free)]
    walked = dataclasses.replace(
        inputs(cfg, slots, [domain(i) for i in range(3)], host_facts=host(len(slots)),
               reports=reports), own=planner.OwnFacts({}, {}))
    summed = dataclasses.replace(walked, peer_columns=columns_of(reports, seed))
    new, old = (planner.plan(i, NOW, random.Random(seed)) for i in (summed, walked))
    assert new.actions == old.actions and new.ranked == old.ranked
    assert new.standings == old.standings and new.vetoes == old.vetoes


def test_a_number_past_the_floats_range_adds_nothing_either_way():
    reports = {PEERS[0]: {"a": {"running_hs06": 10 ** 400, "num_before_fizzle": 10 ** 400,
                                "shutdown_message": "200 Success"}},
               PEERS[1]: {"a": {"running_hs06": 2.5, "num_before_fizzle": 1,
                                "shutdown_message": "200 Success"}}}
    expected = shares.Totals(hs06=2.5, nbf=1.0)
    assert shares.space_totals(reports, ["a"])["a"] == expected
    assert columns_of(reports, 1).totals(["a"])["a"] == expected
    assert FACTORY not in reports
