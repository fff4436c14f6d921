"""The client's retransmission schedule on a fake clock."""

from __future__ import annotations

import pytest

from vac.core.pollplan import PollPlan


def run(plan, replies, until=20.0, step=0.001):
    """Drive ``plan``: ``replies[name]`` = delay after a send before a (complete) reply,
    or None (silent). Returns {name: [send times]} and the time the plan ended."""
    sends, pending, now = {n: [] for n in plan.peers}, [], 0.0
    while now < until:
        for name in plan.due(now):
            plan.sent(name, now)
            sends[name].append(round(now, 3))
            if replies[name] is not None:
                pending.append((now + replies[name], name))
        for at, name in [p for p in pending if p[0] <= now]:
            pending.remove((at, name))
            plan.heard(name, now, complete=True)
        if plan.next_wakeup(now) is None:
            return sends, now
        now = round(now + step, 6)
    return sends, now


def test_everybody_answers_no_resend():
    plan = PollPlan(["a", "b"], deadline=10.0)
    sends, end = run(plan, {"a": 0.002, "b": 0.01})
    assert sends == {"a": [0.0], "b": [0.0]} and end == pytest.approx(0.01)
    assert plan.given_up() == []


def test_silent_factory_backs_off_and_is_given_up_after_one_and_a_half_seconds():
    plan = PollPlan(["alive", "dead"], deadline=10.0)
    sends, end = run(plan, {"alive": 0.02, "dead": None})
    assert plan.rto == pytest.approx(0.05)                  # 2 x 20 ms, floor 50 ms
    # 0.1 (before any reply), then 0.05 x 2, 4, 8, capped at 1.5 / 4
    assert sends["dead"] == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.775, 1.15], abs=0.002)
    assert end == pytest.approx(1.5) and plan.given_up() == ["dead"]


def test_rto_follows_the_observed_round_trip():
    plan = PollPlan(["slow", "dead"], deadline=30.0)
    sends, end = run(plan, {"slow": 0.3, "dead": None})
    assert sends["slow"] == [0.0, 0.1]                      # before any RTT sample
    assert plan.rto == pytest.approx(0.4)                   # 2 x (0.3 - 0.1), a lower bound
    assert end == pytest.approx(1.6, abs=0.01)              # 8 x the smallest RTT
    plan = PollPlan(["very slow", "dead"], deadline=30.0)
    sends, end = run(plan, {"very slow": 1.0, "dead": None})
    assert end == pytest.approx(2.0, abs=0.01)              # but never more than 2 s


def test_queueing_of_a_big_batch_does_not_lengthen_the_wait_for_the_dead():
    names = [f"f{i}" for i in range(100)]
    plan = PollPlan(names + ["dead"], deadline=10.0)
    # the i-th factory's answer waits behind i others: 1 ms to 400 ms
    sends, end = run(plan, dict({n: 0.001 + 0.004 * i for i, n in enumerate(names)},
                                dead=None))
    assert plan.rto > 0.05 and plan.silent_seconds == pytest.approx(1.5)
    assert end == pytest.approx(1.5) and plan.given_up() == ["dead"]


def test_progress_resets_the_interval_and_deadline_caps_everything():
    plan = PollPlan(["partial"], deadline=10.0)
    plan.sent("partial", 0.0)
    plan.heard("partial", 0.05, complete=False)
    assert plan.due(0.1) == [] and plan.due(0.16) == ["partial"]
    plan = PollPlan(["dead"], deadline=0.5)
    sends, end = run(plan, {"dead": None})
    assert sends["dead"] == pytest.approx([0.0, 0.1, 0.3], abs=0.002)
    assert end == pytest.approx(0.5)
