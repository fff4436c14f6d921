"""The metric catalogue's pure parts: bounded label values, and the gauges computed from
slot snapshots and the last cycle's report (vac.core.metrics, vac.core.metricstate)."""

from __future__ import annotations

from vac.core import metrics, metricstate
from vac.core.configtypes import Config, Machinetype, Settings
from vac.core.planner import _Capacity, vetoes
from vac.model import HostFacts, SlotRecord

NOW = 1_700_000_000


def cfg(**settings) -> Config:
    values = dict(vac_space="space.example.com", factory_hostname="f1.example.com")
    values.update(settings)
    return Config(settings=Settings(**values),
                  machinetypes={"lhcb": Machinetype("lhcb", target_share=2),
                                "atlas": Machinetype("atlas", target_share=1)})


def test_every_planner_veto_has_its_own_reason():
    """A veto text the classifier does not know would be counted as "other": drive the
    planner into each veto and check none is."""
    c = cfg(shutdown_time=NOW - 1, draining=True, total_processors=2)
    host = HostFacts(processor_count=2, load_average=99.0, mem_total_bytes=1,
                     mem_available_bytes=1, state_free_bytes=0)
    cap = _Capacity(running_processors=5, max_processors=2, processor_count=2,
                    superslots={}, free_ordinals=[], mem_available=1)
    found = vetoes(c, host, cap, NOW) + ["the NAT network is not ready"]
    reasons = [metrics.veto_reason(v) for v in found]
    assert "other" not in reasons, list(zip(found, reasons))
    assert set(reasons) == set(metrics.VETO_REASONS) - {"other"}
    assert metrics.veto_reason("something new") == "other"


def test_shutdown_codes_are_bounded():
    assert metrics.finish_code("300 Nothing to do") == "300"
    assert metrics.finish_code("  200 Success\n") == "200"
    assert metrics.finish_code(None) == metrics.CODE_NONE
    assert metrics.finish_code("") == metrics.CODE_NONE
    # a guest chooses its message: anything non-standard is one label value
    for hostile in ("999 x", "30", "abc", "301 almost", "200" + "x" * 5000):
        code = metrics.finish_code(hostile)
        assert code in metrics.SHUTDOWN_CODES + (metrics.CODE_OTHER,), hostile
    assert metrics.finish_code("301 almost") == metrics.CODE_OTHER


def test_fizzle_is_a_short_run_of_a_started_machine():
    started = SlotRecord(0, "vm-0", started_time=100.0, heartbeat_time=130.0)
    assert metrics.is_fizzle(started, 40)
    assert not metrics.is_fizzle(started, 30)
    assert not metrics.is_fizzle(SlotRecord(0, "vm-0"), 40)


def test_counter_names_follow_the_conventions():
    names = [m.exposed_name for m in metrics.COUNTED + metrics.STATE]
    assert len(names) == len(set(names))
    for m in metrics.COUNTED + metrics.STATE:
        assert m.full_name.startswith("vac_")
        assert m.kind != metrics.GAUGE or not m.name.endswith("_total"), m.name
        assert "name" not in m.labels and "uuid" not in m.labels and "machine" not in m.labels


def slot(ordinal: int, machinetype: str, state: str, processors: int = 1) -> SlotRecord:
    started = 10.0 if state in ("running", "finished") else None
    return SlotRecord(ordinal, f"f1-{ordinal:02d}.example.com", created=5,
                      machinetype=machinetype, machine_dir=f"/x/{ordinal}",
                      started_time=started, heartbeat_time=started,
                      finished_time=20.0 if state == "finished" else None,
                      processors=processors, hs06=10.0 * processors,
                      uuid=f"uuid-{ordinal}")


def inputs(slots, cycle=None, **kw) -> metricstate.StateInputs:
    return metricstate.StateInputs(cfg=cfg(), slots=slots, machinetype_bodies=[],
                                   cycle=cycle, now=NOW, version="04.00.00",
                                   processors_max=4, **kw)


def value(samples, name, **labels) -> float:
    hits = [v for lab, v in samples[name] if lab == labels]
    assert len(hits) == 1, (name, labels, samples.get(name))
    return hits[0]


def test_slots_and_machines_by_state_from_the_slot_files():
    slots = [slot(0, "lhcb", "running", 2), slot(1, "lhcb", "starting"),
             slot(2, "atlas", "finished"), SlotRecord(3, "f1-03.example.com")]
    s = metricstate.state_samples(inputs(slots))
    assert value(s, "slots") == 4 and value(s, "slots_free") == 2
    assert value(s, "slots_by_state", state="running") == 1
    assert value(s, "machines", machinetype="lhcb", state="running") == 1
    assert value(s, "machines", machinetype="lhcb", state="starting") == 1
    assert value(s, "machines", machinetype="atlas", state="running") == 0   # finished
    assert value(s, "processors_running") == 3 and value(s, "hs06_running") == 30.0
    labels = {v for samples in s.values() for lab, _ in samples for v in lab.values()}
    assert not any("uuid" in v or "f1-0" in v for v in labels), labels


def test_backoff_is_judged_at_scrape_time():
    standing = {"machinetype": "atlas", "score": 0.0, "last_abort": NOW - 100,
                "restart_time": NOW + 50, "eligible": False}
    cycle = {"end": NOW - 5, "duration_seconds": 1.5,
             "plan": {"standings": [standing], "vetoes": ["no free slot"]},
             "peers": {"answering": ["f1.example.com"], "silent": ["f2.example.com"]}}
    s = metricstate.state_samples(inputs([], cycle))
    assert value(s, "machinetype_backoff", machinetype="atlas") == 1
    assert value(s, "machinetype_backoff_end_timestamp_seconds", machinetype="atlas") == NOW + 50
    assert value(s, "vetoes_active", reason="slots") == 1
    assert value(s, "vetoes_active", reason="load") == 0
    assert value(s, "peers", state="silent") == 1
    assert value(s, "last_cycle_duration_seconds") == 1.5
    later = metricstate.state_samples(metricstate.StateInputs(
        cfg=cfg(), slots=[], machinetype_bodies=[], cycle=cycle, now=NOW + 51,
        version="x", processors_max=4))
    assert value(later, "machinetype_backoff", machinetype="atlas") == 0
    assert value(later, "machinetype_backoff_end_timestamp_seconds", machinetype="atlas") == 0


def test_health_gauges():
    s = metricstate.state_samples(inputs([], config_problems=2, factory_error=True,
                                         apel_pending=3, heartbeats={"factory": 5.0,
                                                                     "mjf": None}))
    assert value(s, "config_valid") == 0 and value(s, "config_problems") == 2
    assert value(s, "factory_error") == 1 and value(s, "apel_records_pending") == 3
    assert [lab for lab, _ in s["role_heartbeat_timestamp_seconds"]] == [{"role": "factory"}]
    assert "last_cycle_timestamp_seconds" not in s      # no cycle yet: no made-up time
