"""Planner: processor allocation with superslots (SPEC §6.4 and its examples)."""

from __future__ import annotations

import random

import pytest

from vac.core import planner
from vac.core.configtypes import Machinetype
from vac.core.superslots import choose, superslot_map
from tests.core.plannerkit import NOW, config, domain, empty, host, inputs, running

T1 = NOW + 20000
ONE = Machinetype("one", target_share=1, min_processors=1, max_processors=1,
                  max_wallclock_seconds=86400, min_wallclock_seconds=3600)
EIGHT = Machinetype("eight", target_share=1, min_processors=8, max_processors=8,
                    max_wallclock_seconds=86400)


def _spec_example(ranked_first, only=False):
    """P_ss = 8, M = 16, two 1-processor machines ending at t1 (SPEC §6.4 example)."""
    mts = [ONE, EIGHT] if not only else [EIGHT]
    cfg = config(mts, processors_per_superslot=8, total_processors=16)
    slots = [running(0, shutdown=T1), running(1, shutdown=T1)] + [empty(i) for i in range(2, 16)]
    # reports make ranked_first the most starved machinetype
    other = "eight" if ranked_first == "one" else "one"
    reports = {"f2.example.com": {other: {"running_hs06": 100.0, "num_before_fizzle": 0},
                                  ranked_first: {"running_hs06": 0.0, "num_before_fizzle": 0}}}
    inp = inputs(cfg, slots, [domain(0), domain(1)], host_facts=host(16), reports=reports)
    return planner.plan(inp, NOW, random.Random(3))


def test_spec_example_fill_existing_superslot():
    plan = _spec_example("one")
    (create,) = plan.creates
    assert (create.machinetype, create.processors, create.shutdown_time) == ("one", 1, T1)
    assert "existing superslot finishing at" in create.reason


def test_spec_example_eight_opens_new_superslot():
    plan = _spec_example("eight", only=True)
    (create,) = plan.creates
    assert (create.machinetype, create.processors) == ("eight", 8)
    assert create.shutdown_time == NOW + 86400 and "new superslot" in create.reason


def test_filling_a_superslot_beats_fair_share_ranking():
    # the 8s are top-ranked but need 8; the 1s fit the incomplete superslot first
    ss = {T1: 2}
    choice = choose([EIGHT, ONE], ss, free=14, per_superslot=8, now=NOW)
    assert (choice.machinetype, choice.processors, choice.shutdown_time) == ("one", 1, T1)


@pytest.mark.parametrize("superslots,free,ranked,expected", [
    ({}, 16, [ONE], ("one", 1, NOW + 86400)),                      # new superslot
    ({T1: 8}, 8, [ONE], ("one", 1, NOW + 86400)),                  # complete: skipped
    ({T1: 3}, 13, [EIGHT], ("eight", 8, NOW + 86400)),             # 5 reserved, 8 left
    ({T1: 3}, 10, [EIGHT], None),                                  # 5 reserved, 5 left < 8
    ({NOW + 600: 1}, 15, [ONE], ("one", 1, NOW + 86400)),          # t - now < min_wallclock
    ({NOW + 90000: 1}, 15, [ONE], ("one", 1, NOW + 86400)),        # t - now > max_wallclock
    ({T1: 1, T1 + 5: 2}, 13, [ONE], ("one", 1, T1)),               # earliest first
    ({}, 0, [ONE], None),
])
def test_superslot_table(superslots, free, ranked, expected):
    choice = choose(ranked, superslots, free, per_superslot=8, now=NOW)
    got = None if choice is None else (choice.machinetype, choice.processors,
                                       choice.shutdown_time)
    assert got == expected


def test_multi_processor_fill_takes_what_is_needed():
    four = Machinetype("four", target_share=1, min_processors=2, max_processors=4,
                       min_wallclock_seconds=3600)
    choice = choose([four], {T1: 5}, 11, per_superslot=8, now=NOW)
    assert (choice.processors, choice.shutdown_time) == (3, T1)


def test_new_superslot_capped_by_processors_and_superslot_size():
    four = Machinetype("four", target_share=1, min_processors=2, max_processors=16)
    assert choose([four], {}, 16, per_superslot=8, now=NOW).processors == 8
    assert choose([four], {}, 3, per_superslot=8, now=NOW).processors == 3


def test_default_superslot_size_one_means_single_processor_machines():
    four = Machinetype("four", target_share=1, min_processors=1, max_processors=4)
    plan = planner.plan(inputs(config([four]), [empty(i) for i in range(4)]), NOW,
                        random.Random(1))
    assert plan.creates[0].processors == 1


def test_superslot_map_groups_by_shutdown_time():
    assert superslot_map([T1, T1, None, T1 + 1], [1, 2, 4, 8]) == {T1: 3, T1 + 1: 8}


def test_planner_uses_lowered_shutdown_time_for_superslots():
    cfg = config([ONE], processors_per_superslot=4, shutdown_time=NOW + 7200)
    slots = [running(0, shutdown=NOW + 80000), empty(1), empty(2), empty(3)]
    plan = planner.plan(inputs(cfg, slots, [domain(0)], host_facts=host(4)), NOW,
                        random.Random(1))
    assert plan.creates[0].shutdown_time == NOW + 7200
