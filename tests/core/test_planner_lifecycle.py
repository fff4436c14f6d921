"""Planner: per-slot lifecycle rules (SPEC §3.2, §3.7-3.10), table-driven, fixed clock."""

from __future__ import annotations

import dataclasses
import random

import pytest

from vac.constants import (HEARTBEAT_NOT_CREATED, HEARTBEAT_NOT_UPDATED, STATE_PAUSED,
                           STATE_RUNNING, STATE_SHUTDOWN, STATE_STARTING)
from vac.core import planner
from vac.core.actions import (Account, Create, Destroy, ExpireMachineDir, Finalise, LowerShutdownTime,
                              WriteCounts, WriteHeartbeat)
from vac.core.configtypes import Machinetype
from vac.core.slotstate import MachineDirInfo, slot_state
from vac.machinemodels import LIBVIRT
from vac.model import DomainState, SlotRecord
from tests.core.plannerkit import (NOW, config, domain, empty, host, inputs, name, running)


def _plan(cfg, slots, domains=(), **kw):
    return planner.plan(inputs(cfg, slots, domains, **kw), NOW, random.Random(7))


def _kinds(plan, ordinal=None, creates=False):
    """Action class names, optionally only those about one slot (creations left out)."""
    out = []
    for a in plan.actions:
        if isinstance(a, Create) and not creates:
            continue
        who = getattr(a, "name", None) or getattr(getattr(a, "slot", None), "name", None)
        if ordinal is None or who == name(ordinal):
            out.append(type(a).__name__)
    return out


@pytest.mark.parametrize("slot,dom,expected", [
    (empty(0), None, STATE_SHUTDOWN),
    (running(0, started=None), None, STATE_STARTING),
    (running(0), None, STATE_SHUTDOWN),
    (running(0), domain(0), STATE_RUNNING),
    (running(0), domain(0, DomainState.BLOCKED), STATE_RUNNING),
    (running(0), domain(0, DomainState.PAUSED), STATE_PAUSED),
    (running(0), domain(0, DomainState.SHUTOFF), STATE_SHUTDOWN),
    (running(0, finished_time=NOW - 5), domain(0), STATE_SHUTDOWN),
    (SlotRecord(0, name(0), created=NOW, machinetype="lhcb"), None, STATE_SHUTDOWN),
])
def test_slot_state(slot, dom, expected):
    assert slot_state(slot, dom) == expected


def test_running_machine_gets_heartbeat_with_cpu_percentage():
    plan = _plan(config(), [running(0)], [domain(0, cpu=130.0)])
    hb = [a for a in plan.actions if isinstance(a, WriteHeartbeat)]
    assert hb == [WriteHeartbeat(name(0), running(0).machine_dir, 130.0, 50.0)]
    assert _kinds(plan, 0) == ["WriteHeartbeat"] and plan.states[name(0)] == STATE_RUNNING


def test_first_heartbeat_has_no_percentage():
    plan = _plan(config(), [running(0, cpu_seconds=None)], [domain(0)])
    assert plan.actions[0].cpu_percentage is None


def test_global_shutdown_time_lowers_machine_shutdown_time():
    plan = _plan(config(shutdown_time=NOW + 100), [running(0)], [domain(0)])
    assert LowerShutdownTime(name(0), running(0).machine_dir, NOW + 100,
                             f"global shutdown_time {NOW + 100}") in plan.actions
    assert _kinds(plan, 0) == ["WriteHeartbeat", "LowerShutdownTime"]


def test_passed_shutdown_time_destroys_without_message_and_skips_heartbeat_check_b17():
    mt = Machinetype("lhcb", target_share=1, heartbeat_file="hb", fizzle_seconds=600)
    slot = running(0, shutdown=NOW - 1)            # no heartbeat file either
    plan = _plan(config([mt]), [slot], [domain(0)])
    destroys = [a for a in plan.actions if isinstance(a, Destroy)]
    assert len(destroys) == 1 and destroys[0].shutdown_message is None
    assert "passed shutdowntime" in destroys[0].reason and destroys[0].grace_seconds == 30
    assert _kinds(plan, 0) == ["WriteHeartbeat", "Destroy", "Account", "Finalise"]


@pytest.mark.parametrize("created_ago,destroyed", [(3600, False), (86400 + 10, True)])
def test_missing_shutdowntime_job_uses_max_wallclock_b18(created_ago, destroyed):
    slot = running(0, started=NOW - created_ago + 5, shutdown=None)
    plan = _plan(config(), [slot], [domain(0)])
    assert ("Destroy" in _kinds(plan, 0)) == destroyed


HB_MT = Machinetype("lhcb", target_share=1, heartbeat_file="hb", fizzle_seconds=600,
                    heartbeat_seconds=300)


@pytest.mark.parametrize("started_ago,hb_age,vacd_age,message", [
    (3600, None, 86400, HEARTBEAT_NOT_CREATED),
    (3600, 400, 86400, HEARTBEAT_NOT_UPDATED),
    (3600, 100, 86400, None),
    (500, None, 86400, None),            # still within fizzle_seconds of its start
    (3600, None, 500, None),             # vacd restarted less than fizzle_seconds ago
])
def test_heartbeat_file_enforcement(started_ago, hb_age, vacd_age, message):
    slot = running(0, started=NOW - started_ago,
                   heartbeat_file_mtime=None if hb_age is None else NOW - hb_age)
    plan = _plan(config([HB_MT]), [slot], [domain(0)], vacd_start=NOW - vacd_age)
    destroys = [a for a in plan.actions if isinstance(a, Destroy)]
    if message is None:
        assert not destroys
    else:
        assert destroys[0].shutdown_message == message
        assert _kinds(plan, 0)[-2:] == ["Account", "Finalise"]


def test_heartbeat_not_enforced_for_unknown_machinetype():
    slot = running(0, mt="gone", started=NOW - 3600)
    plan = _plan(config([HB_MT]), [slot], [domain(0)])
    assert "Destroy" not in _kinds(plan, 0)


def test_paused_machine_destroyed_and_finalised():
    plan = _plan(config(), [running(0)], [domain(0, DomainState.PAUSED)])
    assert _kinds(plan, 0) == ["Destroy", "Account", "Finalise"]
    assert "paused" in plan.actions[0].reason


def test_stale_starting_machine_destroyed_and_finalised_without_accounting():
    plan = _plan(config(), [running(0, started=None)], [domain(0)])
    assert _kinds(plan, 0) == ["Destroy", "Finalise"]
    fin = [a for a in plan.actions if isinstance(a, Finalise)][0]
    assert not fin.started and "starting" in plan.actions[0].reason


def test_shut_down_machine_cleaned_accounted_finalised_and_slot_reused():
    plan = _plan(config(), [running(0), running(1)], [domain(1)])
    assert _kinds(plan, 0, creates=True) == ["Destroy", "Account", "Finalise", "Create"]
    assert plan.creates[0].ordinal == 0


def test_finished_machine_needs_nothing():
    plan = _plan(config(draining=True), [running(0, finished_time=NOW - 100)])
    assert _kinds(plan, 0) == []


@pytest.mark.parametrize("slot,dom,why", [
    (empty(0), domain(0), "slot file or machine directory missing"),
    (running(0), domain(0, uuid="other"), "differs from job_id"),
    (running(0, finished_time=NOW - 9), domain(0), "already finished"),
    (running(0, machine_model="docker"), domain(0), "docker"),
])
def test_zombie_domains_destroyed(slot, dom, why):
    plan = _plan(config(draining=True), [slot], [dom])
    zombies = [a for a in plan.actions if isinstance(a, Destroy) and "zombie" in a.reason]
    assert len(zombies) == 1 and why in zombies[0].reason


def test_foreign_and_out_of_range_domains():
    from vac.model import MachineInfo
    foreign = MachineInfo("other-00.example.org", "u", DomainState.RUNNING, backend=LIBVIRT)
    beyond = MachineInfo(name(5), "u", DomainState.RUNNING, backend=LIBVIRT)
    plan = _plan(config(draining=True), [empty(0)], [foreign, beyond])
    zombies = [a.name for a in plan.actions if isinstance(a, Destroy)]
    assert zombies == [name(5)]


def test_machine_dir_expiry():
    mts = [Machinetype("lhcb", target_share=1, machines_dir_days=1.0),
           Machinetype("never", target_share=1, machines_dir_days=0)]
    dirs = [MachineDirInfo("/m/a", "lhcb", NOW - 2 * 86400),
            MachineDirInfo("/m/b", "lhcb", NOW - 3600),
            MachineDirInfo("/m/c", "never", NOW - 99 * 86400),
            MachineDirInfo("/m/d", "unknown", NOW - 4 * 86400),
            MachineDirInfo("/m/e", "unknown", NOW - 2 * 86400),
            MachineDirInfo("/m/f", "lhcb", None)]
    plan = _plan(config(mts, draining=True), [empty(0)], machine_dirs=dirs)
    assert [a.path for a in plan.actions if isinstance(a, ExpireMachineDir)] == ["/m/a", "/m/d"]


def test_counts_after_lifecycle():
    slots = [running(0, processors=2, hs06=20.0), running(1), running(2), empty(3)]
    plan = _plan(config(draining=True, total_processors=3), slots,
                 [domain(0), domain(1)], host_facts=host(4))
    counts = [a for a in plan.actions if isinstance(a, WriteCounts)]
    assert counts == [WriteCounts(2, 4, 3, 3, 21.0)]


def test_finalise_carries_started_slot_for_accounting():
    plan = _plan(config(draining=True), [running(0)])
    acct = [a for a in plan.actions if isinstance(a, Account)]
    assert acct[0].slot == running(0)


@pytest.mark.parametrize("final_cpu,recorded", [(160.0, 160.0), (0.0, 100.0), (90.0, 100.0)])
def test_record_of_a_stopped_machine_has_its_final_cpu_time(final_cpu, recorded):
    """A stopped container's whole CPU time (more than its last heartbeat's 100 s) goes
    into its record; a backend that cannot tell (0, libvirt's shut-off domain) or reads
    less leaves the heartbeat's."""
    plan = _plan(config(draining=True), [running(0)],
                 [domain(0, DomainState.SHUTOFF, cpu=final_cpu)])
    acct = [a for a in plan.actions if isinstance(a, Account)]
    assert acct[0].slot.cpu_seconds == recorded


def test_logical_volumes_without_live_machine_are_zombies():
    slots = [running(0), running(1), running(2, finished_time=NOW - 5)]
    vols = [name(0), name(1), name(2), name(7), "swap", "other-01.example.org"]
    inp = dataclasses.replace(inputs(config(draining=True), slots, [domain(0)],
                                     host_facts=host(3)), volumes=vols)
    plan = planner.plan(inp, NOW, random.Random(1))
    zombies = [a.name for a in plan.actions if isinstance(a, Destroy) and "logical" in a.reason]
    assert zombies == [name(2), name(7)]     # slot 1 is already destroyed as shut down


# --- a machine owing its APEL record keeps its slot until the record is frozen ----------

def _inputs(fizzle_seconds: int = 600):
    from vac.core import apel
    return apel.accounting_inputs(config().settings,
                                  Machinetype("lhcb", fizzle_seconds=fizzle_seconds), 1)


def test_machine_owing_its_record_is_accounted_but_not_finalised_nor_replaced():
    plan = _plan(config(), [running(0, accounting=_inputs()), empty(1)])
    assert _kinds(plan, 0, creates=True) == ["Destroy", "Account"]
    assert plan.states[name(0)] == STATE_SHUTDOWN
    assert [c.ordinal for c in plan.creates] == [1]          # slot 0 stays held


def test_frozen_record_lets_the_machine_be_finalised_and_its_slot_reused():
    slot = running(0, accounting=_inputs(), record_frozen=True)
    plan = _plan(config(), [slot, running(1)], [domain(1)])
    assert _kinds(plan, 0, creates=True) == ["Destroy", "Account", "Finalise", "Create"]


@pytest.mark.parametrize("fields", [dict(accounting=_inputs(fizzle_seconds=7200)),
                                    dict(accounting=None), dict(heartbeat_time=None)])
def test_machine_owing_no_record_is_finalised_at_once(fields):
    plan = _plan(config(), [running(0, **fields), running(1)], [domain(1)])
    assert _kinds(plan, 0, creates=True) == ["Destroy", "Account", "Finalise", "Create"]


def test_directory_with_a_pending_record_never_expires():
    dirs = [MachineDirInfo("/m/a", "lhcb", NOW - 9 * 86400, record_pending=True),
            MachineDirInfo("/m/b", "lhcb", NOW - 9 * 86400)]
    plan = _plan(config(draining=True), [empty(0)], machine_dirs=dirs)
    assert [a.path for a in plan.actions if isinstance(a, ExpireMachineDir)] == ["/m/b"]
