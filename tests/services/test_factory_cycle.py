"""Full factory cycles with FakeHypervisor and a rooted state directory (SPEC §3.1-3.11)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

from vac.adapters import statefs, statereports
from vac.adapters.atomicfile import read_text
from vac.rolecontrol import RoleControl
from vac.services import factory
from tests.services.factorykit import BASE_CONF, FACTORY, Boom, Rig, facts

S0, S1 = "f1-00.example.com", "f1-01.example.com"


def _slot(paths, ordinal):
    return statefs.read_slot(paths, FACTORY, ordinal)


def test_first_cycle_creates_one_machine_with_full_layout(paths):
    rig = Rig(paths)
    result = rig.cycle()
    assert result.created == 1 and not result.problems
    slot = _slot(paths, 0)
    assert slot.machinetype == "lhcb" and slot.machine_model == "cernvm3"
    assert read_text(paths.slot_file(S0)) == f"{slot.created} lhcb cernvm3"
    mdir = slot.machine_dir
    for rel in ("started", "heartbeat", "ip", "jobfeatures/job_id", "jobfeatures/allocated_cpu",
                "machinefeatures/shutdowntime", "joboutputs"):
        assert os.path.exists(os.path.join(mdir, rel)), rel
    assert read_text(os.path.join(mdir, "ip")) == "169.254.169.0"
    assert read_text(os.path.join(mdir, "heartbeat")) == "0.0 0.0\n"
    # no user_data option: created without one (make_user_data is never asked)
    assert not os.path.exists(os.path.join(mdir, "user_data"))
    assert rig.vm.machines.get(S0).uuid == slot.uuid
    assert slot.shutdown_time_job == slot.created + 86400
    assert statefs.read_counts(paths) == (0, 2, 0, 2, 0.0)
    assert os.path.exists(paths.heartbeat("factory"))
    assert _slot(paths, 1).created is None


def test_cycles_fill_slots_then_finalise_and_reuse(paths):
    rig = Rig(paths)
    rig.cycle()
    rig.vm.tick(50)
    rig.cycle(now=time.time() + 100)
    assert statefs.read_counts(paths)[0] == 1 and _slot(paths, 1).started_time
    assert _slot(paths, 0).cpu_seconds == 50.0
    first = _slot(paths, 0)
    with open(os.path.join(first.machine_dir, "joboutputs", "shutdown_message"), "w") as f:
        f.write("200 Success\n")
    rig.vm.power_off(S0)
    result = rig.cycle(now=time.time() + 200)
    assert os.path.exists(os.path.join(first.machine_dir, "finished"))
    pointer = read_text(paths.finishes_file("lhcb"))
    assert pointer == os.path.basename(first.machine_dir).replace("_", " ")
    assert result.created == 1 and _slot(paths, 0).machine_dir != first.machine_dir
    assert statefs.read_counts(paths)[:3] == (1, 2, 1)


def test_heartbeat_line_has_cpu_percentage(paths):
    rig = Rig(paths)
    rig.cycle()
    mdir = _slot(paths, 0).machine_dir
    statefs.write_heartbeat(mdir, 0.0, None)
    rig.vm.tick(30)
    rig.cycle(now=time.time() + 60)
    cpu, pct = _slot(paths, 0).cpu_seconds, _slot(paths, 0).cpu_percentage
    assert cpu == 30.0 and 40.0 < pct <= 51.0


def test_abort_message_backs_off_without_any_responder(paths):
    rig = Rig(paths)
    rig.cycle()
    mdir = _slot(paths, 0).machine_dir
    with open(os.path.join(mdir, "joboutputs", "shutdown_message"), "w") as f:
        f.write("300 Nothing to do\n")
    rig.vm.power_off(S0)
    result = rig.cycle()
    assert result.created == 0
    assert "backing off" in result.plan.standings[0].why_not
    assert os.path.exists(os.path.join(mdir, "finished"))


def test_creation_failure_writes_factory_error_and_next_cycle_cleans(paths):
    rig = Rig(paths)
    rig.vm.fail["create"] = Boom("no emulator")
    result = rig.cycle()
    assert result.created == 0 and result.failed == 1
    assert "LM creation fails with: no emulator" in read_text(paths.factory_error)
    half = _slot(paths, 0)
    assert half.started_time is None and half.machine_dir
    result = rig.cycle()
    assert os.path.exists(os.path.join(half.machine_dir, "finished"))
    assert result.created == 1 and not os.path.exists(paths.factory_error)


def test_killed_mid_create_converges(paths):
    """A slot written but the process killed before ``started``: destroyed, finalised."""
    rig = Rig(paths)
    now = int(time.time())
    mdir = statefs.make_machine_dir(paths, now, "lhcb", S0)
    statefs.write_slot_file(paths, S0, now, "lhcb", "cernvm3")
    statefs.write_machine_file(mdir, "jobfeatures/job_id", "u-1")
    rig.vm.add(S0, "u-1")
    rig.cycle()
    assert os.path.exists(os.path.join(mdir, "finished"))
    assert S0 in rig.vm.destroyed and rig.vm.machines.get(S0) is not None  # new one in slot 0
    assert rig.vm.machines.get(S0).uuid == _slot(paths, 0).uuid != "u-1"


def test_zombie_logical_volume_removed(paths):
    rig = Rig(paths, settings="draining = yes")
    rig.volumes = [S1, "other-lv"]
    rig.cycle()
    assert rig.vm.destroyed == [S1]


def test_zombie_domain_removed(paths):
    rig = Rig(paths, settings="draining = yes")
    rig.vm.add(S1, "zz")
    rig.cycle()
    assert rig.vm.machines.get(S1) is None


def test_vetoed_when_state_disk_is_full(paths):
    rig = Rig(paths)
    full = dataclasses.replace(facts(), state_free_bytes=10)
    result = rig.cycle(facts=full)
    assert result.created == 0 and "less than 1 GiB" in result.plan.vetoes[0]


def test_expired_machine_dirs_removed(paths):
    rig = Rig(paths, machinetype="machines_dir_days = 1")
    old = statefs.make_machine_dir(paths, 1000, "lhcb", S1)
    statefs.write_heartbeat(old, 1, None)
    os.utime(os.path.join(old, "heartbeat"), (1000, 1000))
    rig.cycle()
    assert not os.path.exists(old)


def test_run_role_survives_a_failing_cycle(paths, monkeypatch):
    control = RoleControl()
    calls = []

    def fake_cycle(p, **_kw):
        calls.append(p)
        if len(calls) == 1:
            raise RuntimeError("boom")
        control.request_stop()
        return factory.CycleResult(0.0)

    monkeypatch.setattr(factory, "run_cycle", fake_cycle)
    monkeypatch.setattr(factory, "DEFAULT_PAUSE_SECONDS", 0.05)
    factory.run_role(paths, control)
    assert len(calls) == 2 and os.path.exists(paths.heartbeat("factory"))


def test_vac_plan_explains_vetoes_and_choice(paths, capsys, monkeypatch):
    from vac.cli import main, plan_cmd
    from vac.errors import HypervisorError
    Rig(paths, settings="draining = yes\nshutdown_time = 1000")
    cfg, plan, notes = factory.preview(paths, facts=facts(), volumes=lambda c, p: [],
                                       hv_factory=lambda: (_ for _ in ()).throw(
                                           HypervisorError("down")))
    text = plan_cmd.render(cfg, plan, notes)
    assert "Veto: no machine created as shutdown_time = 1000 has already passed" in text
    assert "Veto: no machine created as in draining mode" in text
    assert "libvirt not reachable" in text and "Would create: nothing" in text
    assert "  lhcb " in text and "eligible" in text     # machinetypes explained despite vetoes
    rig = Rig(paths)
    cfg, plan, notes = factory.preview(paths, facts=facts(), volumes=lambda c, p: [],
                                       hv_factory=lambda: contextlib.nullcontext(rig.hv))
    text = plan_cmd.render(cfg, plan, notes)
    assert "Would create: f1-00.example.com: create lhcb with 1 processor(s)" in text
    assert "Ranking (most starved first): lhcb" in text
    monkeypatch.setattr(factory.hostfacts, "host_facts", lambda p: facts())
    monkeypatch.setattr(factory, "_libvirt_connect", lambda cfg: contextlib.nullcontext(rig.hv))
    monkeypatch.setattr("vac.services.gather.volume_names", lambda cfg, p: [])
    assert main(["--root", paths.root, "plan"]) == 0
    out = capsys.readouterr().out
    assert "Would create: f1-00.example.com: create lhcb" in out


def test_heartbeat_file_missing_destroys_with_700_and_keeps_machine_message(paths):
    rig = Rig(paths, machinetype="heartbeat_file = hb\nfizzle_seconds = 60")
    rig.cycle()
    mdir = _slot(paths, 0).machine_dir
    later = time.time() + 200
    result = rig.cycle(now=later, vacd_start=later - 1000)
    assert S0 in rig.vm.destroyed
    assert read_text(os.path.join(mdir, "joboutputs", "shutdown_message")) == \
        "700 Heartbeat file not created\n"
    assert "backing off" in result.plan.standings[0].why_not      # 700 is an abort
    rig.cycle(now=later + 5, vacd_start=later - 1000)     # its APEL record is frozen: final
    assert os.path.exists(os.path.join(mdir, "finished"))
    # a machine that wrote its own message keeps it
    rig2 = Rig(paths.__class__(root=paths.root + "2"), machinetype="heartbeat_file = hb\n"
               "fizzle_seconds = 60\nbackoff_seconds = 0")
    rig2.cycle()
    mdir2 = statefs.read_slot(rig2.paths, FACTORY, 0).machine_dir
    with open(os.path.join(mdir2, "joboutputs", "shutdown_message"), "w") as f:
        f.write("300 mine\n")
    rig2.cycle(now=later, vacd_start=later - 1000)
    assert read_text(os.path.join(mdir2, "joboutputs", "shutdown_message")) == "300 mine\n"


def test_global_shutdown_time_lowers_files_then_destroys(paths):
    rig = Rig(paths)
    rig.cycle()
    mdir = _slot(paths, 0).machine_dir
    limit = int(time.time()) + 500
    with open(paths.etc_vac_conf, "a") as f:
        f.write(f"\n[settings]\nshutdown_time = {limit}\n")
    rig.cycle()
    assert read_text(os.path.join(mdir, "machinefeatures", "shutdowntime")) == str(limit)
    assert read_text(os.path.join(mdir, "jobfeatures", "shutdowntime_job")) == str(limit)
    assert rig.vm.machines.get(S0) is not None
    result = rig.cycle(now=limit + 1)
    assert S0 in rig.vm.destroyed and os.path.exists(os.path.join(mdir, "finished"))
    assert result.created == 0 and "has already passed" in result.plan.vetoes[0]


def test_short_machine_without_message_is_a_fizzle_and_backs_off_b6(paths):
    rig = Rig(paths)
    rig.cycle()
    rig.vm.power_off(S0)                   # no shutdown_message, ran < fizzle_seconds
    result = rig.cycle()
    standing = result.plan.standings[0]
    assert result.created == 0 and "backing off" in standing.why_not
    assert standing.last_abort > 0


def test_finished_machine_gets_its_apel_record_from_the_cycle(paths):
    # the executor calls vac.services.accounting directly: a broken import fails here
    conf = BASE_CONF.replace("fizzle_seconds = 600", "fizzle_seconds = 0")
    rig = Rig(paths, text=conf.format(settings="", machinetype=""))
    rig.cycle()
    first = _slot(paths, 0)
    with open(os.path.join(first.machine_dir, "joboutputs", "shutdown_message"), "w") as f:
        f.write("200 Success\n")
    rig.vm.power_off(S0)
    rig.cycle(now=time.time() + 800)      # the record is frozen, archived and queued
    records = [f for _d, _s, files in os.walk(paths.apel_archive) for f in files]
    assert len(records) == 1
    assert not os.path.exists(os.path.join(first.machine_dir, "finished"))
    rig.cycle(now=time.time() + 805)      # then the machine is finalised
    assert os.path.exists(os.path.join(first.machine_dir, "finished"))
    assert len([f for _d, _s, files in os.walk(paths.apel_archive) for f in files]) == 1


def _hb_rig(paths):
    return Rig(paths, machinetype="heartbeat_file = hb\nfizzle_seconds = 60")


def test_once_cycles_enforce_heartbeat_file_while_mjf_server_is_up(paths):
    # vacd --once: each cycle is a fresh process, so the grace start must be on disk
    statereports.write_role_heartbeat(paths, "mjf", time.time())
    rig = _hb_rig(paths)
    start = time.time()
    rig.cycle(now=start)
    mdir = _slot(paths, 0).machine_dir
    assert read_text(paths.state(factory.MJF_UP_MARKER)) == f"{int(start)}\n"
    rig.cycle(now=start + 30)                               # still within fizzle_seconds
    assert S0 not in rig.vm.destroyed
    rig.cycle(now=start + 120)
    assert S0 in rig.vm.destroyed
    assert read_text(os.path.join(mdir, "joboutputs", "shutdown_message")) == \
        "700 Heartbeat file not created\n"


def test_once_cycles_do_not_kill_machines_while_mjf_server_is_down(paths):
    rig = _hb_rig(paths)                                    # no mjf-heartbeat at all
    start = time.time()
    rig.cycle(now=start)
    rig.cycle(now=start + 1000)
    assert S0 not in rig.vm.destroyed
    assert not os.path.exists(paths.state(factory.MJF_UP_MARKER))


def test_heartbeat_grace_restarts_with_mjf_server_and_daemon(paths):
    os.makedirs(paths.state_dir, exist_ok=True)
    now = time.time()
    statereports.write_role_heartbeat(paths, "mjf", now)
    assert factory.heartbeat_grace_start(paths, now, None) == now   # first seen up: now
    assert factory.heartbeat_grace_start(paths, now + 50, None) == int(now)
    # a vacd (re)started after the MJF server came up: grace from the daemon's start
    assert factory.heartbeat_grace_start(paths, now + 50, now + 40) == now + 40
    # the MJF server's heartbeat goes stale: down, so the grace restarts when it is back
    assert factory.heartbeat_grace_start(paths, now + 1000, None) == now + 1000
    statereports.write_role_heartbeat(paths, "mjf", now)
    os.utime(paths.heartbeat("mjf"), (now + 1100, now + 1100))
    assert factory.heartbeat_grace_start(paths, now + 1100, None) == now + 1100


def test_cycle_removes_disk_left_by_a_killed_create(paths):
    rig = Rig(paths)
    os.makedirs(paths.tmp, exist_ok=True)
    left = os.path.join(paths.tmp, "root.disk.abc123")
    with open(left, "w"):
        pass
    rig.cycle(now=time.time() + 3600)
    assert not os.path.exists(left)


def test_libvirtd_down_is_one_error_line_and_the_cycle_carries_on_next_time(paths, caplog):
    import logging
    from vac.errors import HypervisorError
    rig = Rig(paths)
    caplog.set_level(logging.ERROR, logger="vac.services.factory")
    down = HypervisorError("Failed to open libvirt connection to qemu:///system: no socket")
    caplog.set_level(logging.ERROR, logger="vac.services.gather")
    result = rig.cycle(hv_factory=lambda: (_ for _ in ()).throw(down))
    assert result.created == 0 and result.problems == [f"hypervisor: {down}"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"libvirt unavailable: {down} (vac's NAT network needs it: no "
                      "machines are created this cycle)"]
    assert statefs.read_slot(paths, FACTORY, 0).created is None      # nothing half-made
    assert rig.cycle().created == 1                                  # back: creation resumes
