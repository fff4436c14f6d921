"""Scheduling simulator scenarios (issue 4): shares, back-off and recovery, multi-processor."""

from __future__ import annotations

import json

import pytest

from vac.sim import schedscenarios, simulator
from vac.sim.plot import render_svg


def test_shares_1_to_3_converge_to_1_to_3_of_hs06():
    result = simulator.scenario_shares(hours=12)
    a, b = result.mean_hs06("a", 8), result.mean_hs06("b", 8)
    assert a > 0 and b / a == pytest.approx(3.0, rel=0.15)
    assert a + b == pytest.approx(4 * 8 * simulator.HS06_PER_PROCESSOR, rel=0.05)


def test_machinetype_without_work_backs_off_and_recovers():
    result = simulator.scenario_backoff(hours=9, work_from_hour=4)
    # no work: after the first aborts are seen, only occasional probes (back-off works)
    probes = result.created_between("idle", 1, 4)
    assert probes <= 12 < result.created_between("busy", 1, 4)
    assert result.mean_hs06("idle", 1) < result.mean_hs06("busy", 1)
    # work appears at hour 4: idle recovers to its equal share
    assert result.mean_hs06("idle", 6) == pytest.approx(result.mean_hs06("busy", 6), rel=0.2)


def test_one_and_eight_processor_machinetypes_share_without_starving_the_eights():
    result = simulator.scenario_multiproc(hours=16)
    single, eight = result.mean_hs06("single", 8), result.mean_hs06("eight", 8)
    assert eight >= 80.0                 # at least one 8-processor machine all the time
    assert eight / (single + eight) > 0.3


def test_plot_is_an_svg_with_one_line_per_machinetype(tmp_path):
    result = simulator.scenario_shares(hours=1)
    svg = render_svg(result.times, result.hs06, title="t")
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    out, js = tmp_path / "p.svg", tmp_path / "p.json"
    assert simulator.main(["--scenario", "backoff", "--plot", str(out), "--json", str(js)]) == 0
    assert out.read_text().count("<polyline") == 2
    body = json.loads(js.read_text())
    assert body["scenario"] == "backoff" and set(body["final_shares"]) == {"idle", "busy"}
    assert sum(body["final_shares"].values()) == pytest.approx(1.0, abs=0.01)


def test_high_priority_arrival_preempts_to_its_share_without_backing_off_low():
    result = schedscenarios.scenario_preemption(hours=4, arrive_hour=1)
    f = result.figures
    assert 0 < f["hours_to_95pct_of_target_share"] <= 1.0     # grace is 15 min
    assert f["hours_to_95pct_without_preemption"] == -1.0      # low's work outlasts the run
    assert 0 < f["processors_preempted"] <= 24                 # 3:1 of 32 processors
    assert f["low_aborts"] == 0                                # code 100 is no abort


def test_half_life_brings_the_bursty_machinetype_closer_to_its_share():
    result = schedscenarios.scenario_halflife(hours=36)
    f = result.figures
    assert f["bursty_share_error_cumulative_with"] < f["bursty_share_error_cumulative_without"]
