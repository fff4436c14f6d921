"""Preemption, share memory and fast pacing through real factory cycles (FakeHypervisor,
rooted state directory, the real planner, executor and own machinetype_status report)."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from vac.adapters import statefs
from vac.adapters.atomicfile import read_text
from vac.constants import PREEMPTED_MESSAGE
from vac.core import pacing
from vac.core.configtypes import Config, Settings
from vac.model import DomainInfo, DomainState
from vac.services import accounting, factory, responder
from tests.services.factorykit import FACTORY, Rig, facts

CONF = """[settings]
vac_space = vac01.example.com
factory_hostname = f1.example.com
shutdown_grace_seconds = 0
{settings}
[machinetype low]
target_share = 1
root_image = /images/test.iso
preemptible = yes
preemption_grace_seconds = 120
fizzle_seconds = 60
{high}"""
HIGH = """
[machinetype high]
target_share = 1
priority = 10
root_image = /images/test.iso
"""


def _write(paths, high: str = "", settings: str = "") -> None:
    with open(paths.etc_vac_conf, "w") as f:
        f.write(CONF.format(high=high, settings=settings))


def _mdir(paths, ordinal):
    return statefs.read_slot(paths, FACTORY, ordinal).machine_dir


def test_full_factory_preempts_then_creates_the_higher_priority(paths):
    rig = Rig(paths, text=CONF.format(high="", settings=""))
    t = time.time()
    assert rig.cycle(now=t).created == 1 and rig.cycle(now=t + 10).created == 1
    _write(paths, HIGH)
    later = t + 1000                               # both past fizzle_seconds
    result = rig.cycle(now=later)
    [pre] = result.plan.preemptions
    assert pre.for_machinetype == "high" and pre.processors == 1 and not result.created
    victim = _mdir(paths, int(pre.name.split("-")[1][:2]))
    until = str(int(later) + 120)
    assert read_text(os.path.join(victim, "machinefeatures", "shutdowntime")) == until
    assert read_text(os.path.join(victim, "jobfeatures", "shutdowntime_job")) == until
    assert read_text(os.path.join(victim, "preempted")) == f"{until} high\n"
    # the own report tells the space; the next cycle does not preempt again
    from vac.services.responder import machinetype_bodies
    body = {b["machinetype"]: b for b in machinetype_bodies(
        rig.load_config(), paths, statefs.read_slots(paths, FACTORY, 2), later + 1)}
    assert body["high"]["preempted_for_processors"] == 1
    assert body["low"]["preemptible_processors"] == 1
    assert not rig.cycle(now=later + 60).plan.preemptions
    # grace over: code-100 message, accounted, finished; the room goes to high
    rig.cycle(now=later + 121)
    message = read_text(os.path.join(victim, "joboutputs", "shutdown_message"))
    assert message.strip() == PREEMPTED_MESSAGE.format(for_machinetype="high")
    result = rig.cycle(now=later + 126)      # its APEL record is frozen: finalised
    assert os.path.exists(os.path.join(victim, "finished"))
    assert [c.machinetype for c in result.plan.creates] == ["high"]
    low = next(s for s in result.plan.standings if s.machinetype == "low")
    assert low.eligible and not low.last_abort          # code 100: no back-off


def test_guest_message_wins_over_the_preemption_message(paths):
    rig = Rig(paths, text=CONF.format(high="", settings=""))
    t = time.time()
    rig.cycle(now=t)
    rig.cycle(now=t + 10)
    _write(paths, HIGH)
    [pre] = rig.cycle(now=t + 1000).plan.preemptions
    victim = _mdir(paths, int(pre.name.split("-")[1][:2]))
    with open(os.path.join(victim, "joboutputs", "shutdown_message"), "w") as f:
        f.write("200 Done early\n")
    rig.vm.power_off(pre.name)
    rig.cycle(now=t + 1010)
    assert read_text(os.path.join(victim, "joboutputs", "shutdown_message")) == \
        "200 Done early\n"
    assert os.path.exists(os.path.join(victim, "finished"))


def test_decayed_usage_is_recorded_reported_and_survives_a_restart(paths):
    day = 86400
    rig = Rig(paths, text=CONF.format(high="", settings=f"share_half_life_seconds = {day}"))
    t = time.time()
    rig.cycle(now=t)
    rig.vm.power_off("f1-00.example.com")
    rig.cycle(now=t + 100)
    stored = accounting.share_usage(paths)
    assert set(stored) == {"low"}
    value, since = stored["low"]
    assert since == pytest.approx(t + 100) and value >= 0.0
    accounting.record_share_usage(paths, "low", 1000.0, t + 100, day)     # a second machine
    # a new process (restart) reads the file; the responder reports it decayed
    bodies = responder.machinetype_bodies(rig.load_config(), paths,
                                          statefs.read_slots(paths, FACTORY, 2), t + 100 + day)
    low = next(b for b in bodies if b["machinetype"] == "low")
    assert low["decayed_hs06_seconds"] == pytest.approx((value + 1000.0) / 2, abs=0.1)


def test_without_half_life_the_report_has_no_new_fields(paths):
    rig = Rig(paths)
    rig.cycle()
    bodies = responder.machinetype_bodies(rig.load_config(), paths,
                                          statefs.read_slots(paths, FACTORY, 2), time.time())
    assert not {"decayed_hs06_seconds", "preemptible_processors",
                "preempted_for_processors"} & set(bodies[0])


# --- pacing ----------------------------------------------------------------------------

def _cfg(**kw) -> Config:
    return Config(settings=Settings(vac_space="v.example.com", **kw))


def _dom(cpu: float, state=DomainState.RUNNING) -> DomainInfo:
    return DomainInfo("m", "u", state, cpu)


@pytest.mark.parametrize("kw,waited,created,dom,due", [
    ({}, 5, ["m"], _dom(2.0), True),             # guest running and used CPU: fast
    ({}, 4, ["m"], _dom(2.0), False),            # not before fast_cycle_seconds
    ({}, 5, ["m"], _dom(0.2), False),            # not booting yet
    ({}, 5, ["m"], None, False),                 # gone: wait cycle_seconds
    ({}, 5, ["m"], _dom(9.0, DomainState.PAUSED), False),
    ({}, 5, [], None, False),                    # nothing created: normal cycle
    ({}, 60, [], None, True),
    ({"fast_cycle_seconds": 0}, 30, ["m"], _dom(9.0), False),   # original pacing
])
def test_cycle_due(kw, waited, created, dom, due):
    assert pacing.cycle_due(_cfg(**kw), waited, created, lambda name: dom) is due


def test_fast_cycles_still_stop_at_the_overload_veto(paths):
    """Load that rises with the guests stops creation under fast pacing."""
    rig = Rig(paths, processors=16)
    now, created = time.time(), 0
    for _ in range(16):
        running = len(rig.vm.machines)
        load = 2.0 * running                          # > 1.25 x running once running > 4
        result = rig.cycle(now=now, facts=dataclasses.replace(
            facts(16), load_average=load, load_average_15=load))
        created += result.created
        rig.vm.tick(2.0)
        waited = 0.0
        while not pacing.cycle_due(result.config, waited, result.created_names,
                                   rig.vm.machines.get):
            waited += 1.0
        now += waited + 1.0
    assert created == 5
    assert any("load average" in v for v in result.plan.vetoes)


@pytest.mark.parametrize("booted,fails,early", [(True, False, True), (False, False, False),
                                                (True, True, False)])
def test_role_pause_ends_early_only_once_the_new_guests_boot(paths, monkeypatch, booted,
                                                            fails, early):
    import contextlib
    from vac.errors import HypervisorError
    from vac.rolecontrol import RoleControl
    from vac.sim.fakehypervisor import FakeHypervisor
    from vac.core.naming import machine_name
    from vac.machinemodels import LIBVIRT
    cfg = _cfg(cycle_seconds=2, fast_cycle_seconds=1)
    name = machine_name(cfg.settings.factory_hostname, 0)
    hv = FakeHypervisor()
    hv.create_domain(f"<domain><name>{name}</name></domain>")
    hv.tick(2.0 if booted else 0.5)

    def connect(cfg):
        if fails:
            raise HypervisorError("libvirt down")
        return contextlib.nullcontext(hv)
    monkeypatch.setattr(factory, "_libvirt_connect", connect)
    monkeypatch.setattr(factory, "PACE_POLL_SECONDS", 0.05)
    start = time.monotonic()
    factory._pause(paths, RoleControl(), factory.CycleResult(
        0.0, config=cfg, created_names=[name], created_backends={name: LIBVIRT}))
    waited = time.monotonic() - start
    assert (1.0 <= waited < 1.9) if early else waited >= 2.0
