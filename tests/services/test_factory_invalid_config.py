"""Failures look like planned draining (issue points 4, 5): with an invalid configuration
the factory creates nothing but still finalises, accounts and destroys at the shutdown
time; it logs the problems once per change and writes them for check-vacd; fixing the
file resumes creation; a faulty machinetype only disables itself."""

from __future__ import annotations

import logging
import os
import time

from vac.adapters import statefs
from vac.adapters.atomicfile import read_text
from vac.core.actions import Account
from vac.services.configreport import FactoryMemory
from tests.services.factorykit import BASE_CONF, FACTORY, Rig

S0, S1 = "f1-00.example.com", "f1-01.example.com"
BROKEN = "\n[settings]\nmb_per_processor = lots\n"


def _append(paths, text):
    with open(paths.etc_vac_conf, "a") as f:
        f.write(text)


def _errors(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_invalid_configuration_finalises_and_accounts_but_creates_nothing(paths, caplog):
    rig = Rig(paths)
    memory = FactoryMemory()
    rig.cycle(memory=memory)                         # S0 created on a valid configuration
    mdir = statefs.read_slot(paths, FACTORY, 0).machine_dir
    _append(paths, BROKEN)
    caplog.set_level(logging.INFO)
    result = rig.cycle(memory=memory)
    assert result.problems and result.created == 0 and not result.plan.creates
    assert rig.vm.machines.get(S0) is not None and not rig.vm.destroyed    # left alone
    assert statefs.read_slot(paths, FACTORY, 1).created is None      # nothing new
    first = read_text(paths.config_error).splitlines()
    assert first[0].startswith("invalid configuration, no machines are created: ")
    assert first[0].endswith("[settings] mb_per_processor: 'lots' is not valid (expected an "
                             "integer >= 1)")
    assert "the last valid configuration" in "\n".join(_errors(caplog))
    rig.vm.power_off(S0)                              # the machine stops by itself
    result = rig.cycle(memory=memory, now=time.time() + 60)
    assert any(isinstance(a, Account) for a in result.plan.actions)
    assert os.path.exists(os.path.join(mdir, "finished")) and S0 in rig.vm.destroyed
    assert result.created == 0 and statefs.read_slot(paths, FACTORY, 0).machine_dir == mdir


def test_problems_are_logged_once_per_change_and_creation_resumes_when_fixed(paths, caplog):
    rig = Rig(paths, settings="draining = yes")
    memory = FactoryMemory()
    _append(paths, BROKEN)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        rig.cycle(memory=memory)
    assert sum("mb_per_processor" in m for m in _errors(caplog)) == 1
    assert "the valid parts of the files" in "\n".join(_errors(caplog))   # none read before
    _append(paths, "\n[settings]\nmb_per_processor = 1x\n")              # a new problem
    rig.cycle(memory=memory)
    assert sum("'1x' is not valid" in m for m in _errors(caplog)) == 1
    with open(paths.etc_vac_conf) as f:
        fixed = f.read().replace("mb_per_processor = lots", "").replace(
            "mb_per_processor = 1x", "").replace("draining = yes", "")
    with open(paths.etc_vac_conf, "w") as f:
        f.write(fixed)
    result = rig.cycle(memory=memory)
    assert result.created == 1 and not result.problems
    assert not os.path.exists(paths.config_error)
    assert "The configuration is valid again: creating machines again" in caplog.text


HB = "heartbeat_file = hb\nfizzle_seconds = 60"
BREAK_LHCB = "\n[machinetype lhcb]\nroot_device = ../x\n"


def _stale_heartbeat_cycle(rig, memory):
    later = time.time() + 200
    return rig.cycle(memory=memory, now=later, vacd_start=later - 1000)


def test_running_machines_keep_their_last_valid_machinetype(paths):
    """heartbeat_file is still enforced on lhcb's machines after lhcb is broken, globally
    or alone, because the factory read lhcb's valid definition before."""
    for extra in (BREAK_LHCB, BREAK_LHCB + BROKEN):
        root = paths.__class__(root=os.path.join(paths.root, str(len(extra))))
        rig = Rig(root, machinetype=HB)
        memory = FactoryMemory()
        rig.cycle(memory=memory)
        _append(root, extra)
        _stale_heartbeat_cycle(rig, memory)
        assert S0 in rig.vm.destroyed, extra
        mdir = statefs.read_slot(root, FACTORY, 0).machine_dir
        assert read_text(os.path.join(mdir, "joboutputs", "shutdown_message")) == \
            "700 Heartbeat file not created\n"


def test_a_fresh_factory_looks_after_machines_of_a_broken_machinetype_from_their_dirs(paths):
    rig = Rig(paths, machinetype=HB)
    rig.cycle()
    _append(paths, BREAK_LHCB)
    _stale_heartbeat_cycle(rig, FactoryMemory())       # vacd restarted on the broken file
    assert S0 not in rig.vm.destroyed                  # no definition: no heartbeat check


def test_without_a_valid_configuration_read_machines_keep_their_own_limits(paths):
    rig = Rig(paths)
    rig.cycle()
    slot = statefs.read_slot(paths, FACTORY, 0)
    _append(paths, "\n[settings]\nshutdown_time = soon\n")
    rig.cycle(now=slot.shutdown_time_job - 10)          # a fresh process (vacd --once)
    assert S0 not in rig.vm.destroyed
    rig.cycle(now=slot.shutdown_time_job + 1)           # its own shutdowntime_job
    assert S0 in rig.vm.destroyed


def test_a_bad_machinetype_disables_itself_and_the_others_are_created(paths, caplog):
    conf = BASE_CONF.format(settings="", machinetype="") + \
        "\n[machinetype cms]\nroot_image = /i.iso\ntarget_share = 100\nroot_device = ../x\n"
    rig = Rig(paths, text=conf)
    memory = FactoryMemory()
    caplog.set_level(logging.WARNING)
    result = rig.cycle(memory=memory)
    rig.cycle(memory=memory)
    assert result.created == 1 and rig.vm.created[0].machinetype.name == "lhcb"
    warnings = [r.getMessage() for r in caplog.records if "is disabled" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("machinetype cms is disabled")
    assert "[machinetype cms] root_device: '../x' is not valid" in warnings[0]
    text = read_text(paths.machinetypes_disabled)
    assert text.startswith("1 machinetype(s) disabled (cms): ") and text.count("\n") == 2
    assert not os.path.exists(paths.config_error)
