"""Subspaces of a big space (pure): layout, member choice, digests that stand in exactly."""

from __future__ import annotations

import random
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vac.core import shares
from vac.core import subspaces as sub
from vac.core.configtypes import Config, Machinetype, Settings
from vac.core.preemption import PREEMPTIBLE_FIELD, round_winner

NAMES = [f"factory{i}.example.com" for i in range(1000)]
NOW = 1_700_000_000


def test_small_spaces_are_polled_whole():
    assert sub.layout(NAMES, NAMES[0], 0, 0) is None                    # the default: off
    assert sub.layout(NAMES[:24], NAMES[0], 25, 0) is None
    assert sub.layout(NAMES[:30], "other.example.com", 25, 0) is None   # not a member
    assert sub.layout(NAMES[:30], NAMES[0], 25, 100) is None            # one subspace


@pytest.mark.parametrize("n", [25, 100, 1000])
def test_layout_covers_every_factory_once_in_about_sqrt_n_subspaces(n):
    lay = sub.layout(NAMES[:n], NAMES[3], 25, 0)
    members = [m for g in lay.groups for m in g]
    assert sorted(members) == sorted(NAMES[:n]) and NAMES[3] in lay.groups[lay.own]
    assert len(lay.groups) == round(n / round(n ** 0.5))
    assert max(len(g) for g in lay.groups) < 3 * n ** 0.5


def test_every_factory_agrees_and_one_more_name_changes_few_keys():
    lays = [sub.layout(list(reversed(NAMES[:400])), NAMES[i], 25, 0) for i in (0, 7, 99)]
    assert lays[0].groups == lays[1].groups == lays[2].groups
    other = sub.layout(NAMES[:400] + ["new.example.com"], NAMES[0], 25, 0)
    assert len(set(other.keys) - set(lays[0].keys)) == 1


def test_members_that_answered_with_sums_are_preferred_plain_and_silent_avoided():
    lay = sub.layout(NAMES[:100], NAMES[0], 25, 0)
    index = (lay.own + 1) % len(lay.groups)
    a, b, *rest = lay.groups[index]
    memory = {a: sub.Remembered("sums", NOW), b: sub.Remembered("plain", NOW)}
    for m in rest:
        memory[m] = sub.Remembered("silent", NOW - 60)
    chosen = sub.choose_members(lay, memory, NOW, random.Random(1))
    assert lay.own not in chosen and chosen[index] == a
    memory[a] = sub.Remembered("plain", NOW - 10)
    assert sub.choose_members(lay, memory, NOW, random.Random(1))[index] is None
    later = sub.choose_members(lay, memory, NOW + sub.SILENT_SECONDS, random.Random(1))
    assert later[index] in rest                 # the silent are tried again later


CFG = Config(settings=Settings(vac_space="vac01.example.com", factory_hostname=NAMES[0],
                               share_half_life_seconds=3600),
             machinetypes=MappingProxyType({
                 "a": Machinetype("a", target_share=1.0),
                 "b": Machinetype("b", target_share=3.0, priority=1),
                 "c": Machinetype("c", target_share=1.0, preemptible=True)}))

status = st.fixed_dictionaries({
    "running_hs06": st.floats(0, 500).map(lambda x: round(x, 2)),
    "num_before_fizzle": st.integers(0, 3),
    "shutdown_message": st.sampled_from([None, "200 Success", "300 Nothing to do",
                                         "500 Broken"]),
    "shutdown_time": st.integers(NOW - 7200, NOW),
    "decayed_hs06_seconds": st.floats(0, 1e6).map(lambda x: round(x, 1)),
    PREEMPTIBLE_FIELD: st.integers(0, 2)})
space = st.dictionaries(st.sampled_from(NAMES[:60]),
                        st.dictionaries(st.sampled_from("abc"), status, max_size=3),
                        min_size=30, max_size=60)


def approx(standing: shares.Standing) -> tuple:
    """The standing's fields, floats to 6 significant digits (sums in another order)."""
    return tuple(float(f"{v:.6g}") if isinstance(v, float) else v
                 for v in standing.__dict__.values())


@settings(max_examples=60, deadline=None)
@given(space)
def test_own_subspace_plus_digests_give_the_same_standings_as_every_report(reports):
    """What the planner decides from its own subspace's reports and the other
    subspaces' digests (through the wire form) equals what it decides from all."""
    names = sorted(reports)
    lay = sub.layout(names, names[0], 25, 5)
    cfg = Config(settings=CFG.settings.__class__(**dict(
        CFG.settings.__dict__, factory_hostname=names[0])), machinetypes=CFG.machinetypes)
    mixed = {f: reports[f] for f in lay.groups[lay.own]}
    for index, members in enumerate(lay.groups):
        if index != lay.own:
            state = sub.digest_state(lay, {f: reports[f] for f in members}, NOW)
            state["key"] = lay.keys[index]
            replies = {b["machinetype"]: b for b in sub.status_bodies(state, NOW)}
            mixed.update(sub.as_reports(lay, index, members[0], replies))
    assert [approx(s) for s in shares.standings(cfg, mixed, NOW)] == \
        [approx(s) for s in shares.standings(cfg, reports, NOW)]
    waiting = shares.Standing("b", "b", 0, 0, 0, 0, 0, True, priority=1)
    assert round_winner(cfg, mixed, waiting, False, NOW) == \
        round_winner(cfg, reports, waiting, False, NOW)


def test_fresh_digest_needs_the_key_the_format_and_youth():
    lay = sub.layout(NAMES[:100], NAMES[0], 25, 0)
    state = sub.digest_state(lay, {NAMES[0]: {"a": {"running_hs06": 10.0}}}, NOW)
    key = lay.keys[lay.own]
    assert sub.fresh_digest(state, key, NOW + 120, 120) is state
    assert sub.fresh_digest(state, key, NOW + 121, 120) is None
    assert sub.fresh_digest(state, "0" * 16, NOW, 120) is None
    assert sub.fresh_digest(dict(state, format=2), key, NOW, 120) is None
    assert sub.fresh_digest(dict(state, machinetypes=[]), key, NOW, 120) is None
    assert sub.fresh_digest("junk", key, NOW, 120) is None
    (body,) = sub.status_bodies(state, NOW + 30)
    assert body["running_hs06"] == 10.0 and body["subspace_age"] == 30
    assert body["subspace"] == key and body["subspace_factories"] == len(lay.groups[lay.own])
