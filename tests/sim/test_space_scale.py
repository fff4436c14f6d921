"""The space-traffic simulation (vac.sim.spacescale) counts what the real client sends and
gets, and the subspace poll sends less than the all-peers one for the same shares."""

from __future__ import annotations

from vac.sim import spacescale


def test_all_peers_traffic_is_n_minus_one_times_one_plus_m_and_exact():
    fig = spacescale.run_case(12, "all", 3)
    assert fig.datagrams_per_cycle == spacescale.all_peers_cost(12)
    assert fig.error_max == 0.0 and fig.disagree == 0


def test_subspaces_send_less_for_about_the_same_shares_with_originals_in_the_space():
    full = spacescale.run_case(16, "all", 3, subspace_min_factories=10)
    sim = spacescale.ScaleSimulation(16, "subspaces", originals=2, subspace_min_factories=10)
    fig = sim.run_cycles(3)
    assert fig.datagrams_per_cycle < 0.8 * full.datagrams_per_cycle
    assert fig.mean_error < 0.05
    assert sim.originals and all(o not in sim.digests for o in sim.originals)
    assert len(sim.digests) == 16 - len(sim.originals)
