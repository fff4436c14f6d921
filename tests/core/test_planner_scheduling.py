"""Planner: creation vetoes, ranking, back-off and fizzle (SPEC §6.1-6.3, §6.5)."""

from __future__ import annotations

import random

import pytest

from vac.constants import GB
from vac.core import planner, shares
from vac.core.configtypes import Machinetype
from tests.core.plannerkit import (FACTORY, NOW, config, domain, empty, host, inputs, name,
                                   report, running)


def _plan(cfg, slots, domains=(), seed=7, **kw):
    return planner.plan(inputs(cfg, slots, domains, **kw), NOW, random.Random(seed))


# --- vetoes, in order ---------------------------------------------------------------

def _six_running():
    return [running(i) for i in range(6)] + [empty(6), empty(7)], [domain(i) for i in range(6)]


@pytest.mark.parametrize("settings,host_kw,first_veto", [
    ({}, dict(load=7.6), "runningProcessors (6)"),             # 7.6 > 1.25 * 6
    ({}, dict(load=10.1), "runningProcessors (6)"),
    ({}, dict(load=7.4), None),
    ({}, dict(mem_free_mib=1000), "free memory (1000 MiB) < mb_per_processor (2048 MiB)"),
    ({}, dict(mem_free_mib=None), None),                       # memory unknown: no veto
    ({}, dict(disk=GB // 2), "less than 1 GiB free"),
    ({"shutdown_time": NOW - 1}, {}, f"shutdown_time = {NOW - 1} has already passed"),
    ({"draining": True}, {}, "in draining mode"),
    ({"total_processors": 6}, {}, "limit (6) reached"),
])
def test_vetoes(settings, host_kw, first_veto):
    slots, domains = _six_running()
    plan = _plan(config(**settings), slots, domains, host_facts=host(8, **host_kw))
    if first_veto is None:
        assert not plan.vetoes and len(plan.creates) == 1
    else:
        assert first_veto in plan.vetoes[0] and not plan.creates


def test_load_veto_against_processor_count_when_few_running():
    plan = _plan(config(), [empty(0), empty(1)], host_facts=host(2, load=2.6))
    assert "processorCount (2)" in plan.vetoes[0]


def test_vetoes_are_all_listed_in_order():
    plan = _plan(config(draining=True, shutdown_time=NOW - 5), [empty(0)],
                 host_facts=host(1, load=9, disk=0))
    assert [v.split(" ")[0] for v in plan.vetoes] == ["load", "less", "shutdown_time", "in"]


def test_no_free_slot_veto():
    plan = _plan(config(total_processors=2), [running(0)], [domain(0)], host_facts=host(1))
    assert plan.vetoes == ["no free slot"]


def test_memory_must_cover_the_chosen_machine():
    mt = Machinetype("big", target_share=1, min_processors=4, max_processors=4)
    plan = _plan(config([mt], processors_per_superslot=4), [empty(i) for i in range(4)],
                 host_facts=host(4, mem_free_mib=5000))
    assert "does not cover big with 4 processor(s) (8192 MiB)" in plan.vetoes[0]


# --- creation basics ---------------------------------------------------------------------

def test_one_creation_per_cycle_in_lowest_free_slot():
    slots = [running(0), empty(1), empty(2)]
    plan = _plan(config(), slots, [domain(0)], host_facts=host(3))
    (create,) = plan.creates
    assert (create.ordinal, create.name, create.machinetype) == (1, name(1), "lhcb")
    assert (create.processors, create.shutdown_time) == (1, NOW + 86400)


def test_max_creations_per_cycle():
    plan = _plan(config(max_creations_per_cycle=3), [empty(i) for i in range(8)])
    assert [c.ordinal for c in plan.creates] == [0, 1, 2]


def test_several_creations_follow_the_shares():
    mts = [Machinetype("a", target_share=1), Machinetype("b", target_share=3)]
    plan = _plan(config(mts, max_creations_per_cycle=8), [empty(i) for i in range(8)])
    made = [c.machinetype for c in plan.creates]
    assert made.count("a") == 2 and made.count("b") == 6


def test_share_zero_never_created():
    mts = [Machinetype("off", target_share=0)]
    plan = _plan(config(mts), [empty(0)])
    assert not plan.creates and "No machinetype eligible" in plan.notes[0]


# --- ranking ---------------------------------------------------------------------------

def test_ranking_by_machinetype_score_spec_example():
    mts = [Machinetype("a", target_share=1), Machinetype("b", target_share=3)]
    reports = {"f2.example.com": report(a=(20.0, 0, None, None), b=(30.0, 0, None, None))}
    plan = _plan(config(mts), [empty(0)], reports=reports)
    assert plan.ranked == ["b", "a"] and plan.creates[0].machinetype == "b"
    scores = {s.machinetype: s.score for s in plan.standings}
    assert scores == {"a": 20.0, "b": 10.0}


def test_machinegroup_score_ranks_before_machinetype_score():
    mts = [Machinetype("a1", target_share=1, machinegroup="g1"),
           Machinetype("a2", target_share=1, machinegroup="g1"),
           Machinetype("b", target_share=1, accounting_fqan="/lhcb/Role=NULL")]
    reports = {FACTORY: report(a1=(0.0, 0, None, None), a2=(10.0, 0, None, None),
                               b=(5.0, 0, None, None))}
    plan = _plan(config(mts), [empty(0)], reports=reports)
    assert plan.ranked == ["b", "a1", "a2"]           # groups: g1 = 10, /lhcb = 5


def test_scores_sum_over_factories():
    mts = [Machinetype("a", target_share=2), Machinetype("b", target_share=1)]
    reports = {"f1.example.com": report(a=(10.0, 0, None, None)),
               "f2.example.com": report(a=(20.0, 0, None, None), b=(14.0, 0, None, None)),
               "f3.example.com": {}}
    plan = _plan(config(mts), [empty(0)], reports=reports)
    assert {s.machinetype: s.score for s in plan.standings} == {"a": 15.0, "b": 14.0}
    assert plan.ranked == ["b", "a"]


def test_ties_broken_by_seeded_random():
    mts = [Machinetype(n, target_share=1) for n in "abcdef"]
    first = _plan(config(mts), [empty(0)], seed=1).ranked
    assert first == _plan(config(mts), [empty(0)], seed=1).ranked
    assert {tuple(_plan(config(mts), [empty(0)], seed=s).ranked) for s in range(6)} != {tuple(first)}


def test_no_answers_all_zero_and_creation_continues():
    mts = [Machinetype("a", target_share=1), Machinetype("b", target_share=1)]
    plan = _plan(config(mts), [empty(0)], reports={})
    assert sorted(plan.ranked) == ["a", "b"] and len(plan.creates) == 1


# --- back-off and fizzle (§6.3) ----------------------------------------------------------

BO = Machinetype("lhcb", target_share=1, backoff_seconds=100, fizzle_seconds=600)


@pytest.mark.parametrize("message,age,nbf,eligible", [
    ("300 Nothing to do", 50, 0, False),         # within backoff_seconds
    ("300 Nothing to do", 101, 0, True),         # back-off expired
    ("300 Nothing to do", 101, 1, False),        # extended by fizzle_seconds while a probe runs
    ("300 Nothing to do", 701, 1, True),
    ("700 Heartbeat file not created", 50, 0, False),
    ("500 Bad contextualisation", 50, 0, False),
    ("200 Success", 50, 0, True),                # 100/200 never back off
    ("100 Shutdown as requested", 50, 0, True),
    ("garbage", 50, 0, True),
    (None, 50, 0, True),
])
def test_backoff_rules(message, age, nbf, eligible):
    reports = {"f2.example.com": report(lhcb=(0.0, nbf, message, NOW - age))}
    plan = _plan(config([BO]), [empty(0)], reports=reports)
    assert bool(plan.creates) == eligible
    if not eligible:
        assert "backing off" in plan.standings[0].why_not


def test_latest_abort_across_factories_counts():
    reports = {"f2.example.com": report(lhcb=(0.0, 0, "300 x", NOW - 1000)),
               "f3.example.com": report(lhcb=(0.0, 0, "301 y", NOW - 20)),
               "f4.example.com": report(lhcb=(0.0, 0, "200 ok", NOW - 1))}
    plan = _plan(config([BO]), [empty(0)], reports=reports)
    assert plan.standings[0].last_abort == NOW - 20 and not plan.creates


def test_nbf_of_planned_creations_extends_backoff():
    reports = {"f2.example.com": report(lhcb=(0.0, 0, "300 x", NOW - 200))}
    plan = _plan(config([BO], max_creations_per_cycle=4), [empty(i) for i in range(4)],
                 reports=reports)
    assert len(plan.creates) == 1     # the probe; the rest wait for it to pass fizzle


@pytest.mark.parametrize("min_wallclock,shutdown_in,eligible", [
    (7200, 3600, False), (1800, 3600, True), (3600, 3600, False)])
def test_min_wallclock_against_shutdown_time(min_wallclock, shutdown_in, eligible):
    mt = Machinetype("lhcb", target_share=1, min_wallclock_seconds=min_wallclock)
    plan = _plan(config([mt], shutdown_time=NOW + shutdown_in), [empty(0)])
    assert bool(plan.creates) == eligible


def test_new_machine_capped_at_shutdown_time_b23():
    mt = Machinetype("lhcb", target_share=1, min_wallclock_seconds=600)
    plan = _plan(config([mt], shutdown_time=NOW + 3600), [empty(0)])
    assert plan.creates[0].shutdown_time == NOW + 3600


@pytest.mark.parametrize("message,code", [("300 x", 300), ("299 x", None), ("700", 700),
                                          ("30", None), (None, None), ("abc", None)])
def test_abort_code(message, code):
    assert shares.abort_code(message) == code
