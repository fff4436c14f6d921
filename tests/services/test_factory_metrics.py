"""What factory cycles count for the metrics role (creations, finishes by code, fizzles,
vetoes, APEL records, cycle durations) and the last-cycle.json they leave, with
FakeHypervisor cycles and a recording stand-in for prometheus_client's instruments."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from tests.services.factorykit import FACTORY, Rig
from vac.adapters import statefs, statereports
from vac.services import metrics_hooks


class Recording:
    """Records what would be added to each counter (vac.adapters.prometheus.Instruments)."""

    def __init__(self):
        self.counts = Counter()
        self.cycles = []

    def inc(self, name, _help, labels, values, amount=1.0):
        self.counts[(name,) + tuple(values[k] for k in labels)] += amount

    def observe(self, _name, _help, _buckets, value):
        self.cycles.append(value)


@pytest.fixture
def recording(monkeypatch):
    rec = Recording()
    monkeypatch.setattr(metrics_hooks, "_instruments", rec)
    yield rec
    metrics_hooks.reset()


def finish(paths, ordinal, rig, message=None):
    slot = statefs.read_slot(paths, FACTORY, ordinal)
    if message:
        with open(os.path.join(slot.machine_dir, "joboutputs", "shutdown_message"), "w") as f:
            f.write(message + "\n")
    rig.vm.power_off(slot.name)


def test_cycles_count_creations_finishes_fizzles_and_vetoes(paths, recording):
    rig = Rig(paths, settings="hs06_per_processor = 10\ngocdb_sitename = SITE",
              machinetype="fizzle_seconds = 60")
    t0 = time.time()
    rig.cycle(now=t0)
    rig.cycle(now=t0 + 1)                    # both slots in use
    assert recording.counts[("vac_creations", "lhcb")] == 2
    rig.cycle(now=t0 + 2)                    # no free slot: a veto
    assert recording.counts[("vac_vetoes", "slots")] >= 1
    finish(paths, 0, rig, "300 Nothing to do")      # stops at once: a fizzle
    rig.cycle(now=t0 + 3)
    assert recording.counts[("vac_finishes", "lhcb", "300")] == 1
    assert recording.counts[("vac_fizzles", "lhcb")] == 1
    assert recording.counts[("vac_apel_records",)] == 0
    finish(paths, 1, rig)                    # no message (file times: also a fizzle)
    rig.cycle(now=t0 + 200)
    assert recording.counts[("vac_finishes", "lhcb", "none")] == 1
    assert recording.counts[("vac_fizzles", "lhcb")] == 2     # APEL: the e2e test
    assert len(recording.cycles) == 5 and all(c >= 0 for c in recording.cycles)


def test_last_cycle_json_has_the_plan_and_the_peers(paths, recording):
    rig = Rig(paths, settings="factories = f1.example.com f2.example.com")
    result = rig.cycle()
    report = statereports.read_cycle_report(paths)
    assert report["created"] == result.created == 1
    assert report["end"] >= report["time"] and report["duration_seconds"] >= 0
    assert [s["machinetype"] for s in report["plan"]["standings"]] == ["lhcb"]
    assert report["plan"]["creates"][0]["machinetype"] == "lhcb"
    assert sorted(report["peers"]["answering"] + report["peers"]["silent"]) == \
        ["f1.example.com", "f2.example.com"]


def test_counting_off_costs_nothing(paths):
    """Metrics off (no multiprocess directory named): cycles run and count nothing."""
    metrics_hooks.reset()
    assert not metrics_hooks.enabled()
    assert Rig(paths).cycle().created == 1
