"""status: machine/machinetype/factory_status bodies from slot snapshots (pure)."""

from __future__ import annotations

from types import MappingProxyType

from vac.core import status
from vac.core.configtypes import Config, Machinetype, Settings
from vac.core.vacquery import MACHINE_FIELDS, MACHINETYPE_FIELDS, FACTORY_FIELDS
from vac.model import SlotRecord

F = "factory1.example.com"
NOW = 1_700_000_000


def make_cfg(**settings):
    mts = {"lhcb": Machinetype("lhcb", target_share=1, fizzle_seconds=600, max_processors=4,
                               min_processors=2, max_wallclock_seconds=7200,
                               min_wallclock_seconds=3600,
                               accounting_fqan="/lhcb/Role=NULL"),
           "atlas": Machinetype("atlas", target_share=3)}
    return Config(settings=Settings(vac_space="vac01.example.com", factory_hostname=F,
                                    **settings),
                  machinetypes=MappingProxyType(mts))


def slot(ordinal, mt="lhcb", created=NOW - 5000, started=NOW - 4990, heartbeat=NOW - 30,
         finished=None, processors=2, hs06=None, used=True, **kw):
    name = f"factory1-{ordinal:02d}.example.com"
    if not used:
        return SlotRecord(ordinal=ordinal, name=name)
    return SlotRecord(ordinal=ordinal, name=name, created=created, machinetype=mt,
                      machine_model="cernvm3", machine_dir=f"/m/{ordinal}",
                      started_time=started, heartbeat_time=heartbeat, finished_time=finished,
                      processors=processors, hs06=hs06, cpu_seconds=100.4,
                      cpu_percentage=99.5, uuid=f"uuid-{ordinal}", **kw)


def test_machine_states_from_files():
    assert status.machine_state(slot(0, used=False)) == "Shut down"
    assert status.machine_state(slot(0, started=None)) == "Starting"
    assert status.machine_state(slot(0)) == "Running"
    assert status.machine_state(slot(0, finished=NOW - 10)) == "Shut down"


def test_machine_statuses_fields_and_types():
    slots = [slot(0, accounting_fqan="/lhcb/Role=NULL"), slot(1, used=False),
             slot(2, finished=NOW - 9, shutdown_message="300 No work",
                  shutdown_message_time=NOW - 10.5)]
    bodies = status.machine_statuses(make_cfg(), slots, NOW)
    assert [b["num_machines"] for b in bodies] == [3, 3, 3]
    running, empty, done = bodies
    assert set(MACHINE_FIELDS) <= set(running)
    assert running["fqan"] == "/lhcb/Role=NULL" and running["vo"] == "lhcb"
    assert running["cpu_seconds"] == 100 and running["hs06"] == 2.0
    assert running["num_cpus"] == running["num_processors"] == 2
    assert running["started_time"] == NOW - 4990 and running["shutdown_message"] is None
    assert empty["machinetype"] is None and empty["uuid"] is None and "fqan" not in empty
    assert done["shutdown_message"] == "300 No work" and done["shutdown_time"] == NOW - 11


def test_machinetype_counting_windows_and_b19():
    slots = [slot(0, processors=4, hs06=40.0),                   # running
             slot(1, started=None, created=NOW - 60, processors=3),  # starting, 3 procs
             slot(2, heartbeat=NOW - 3700),                       # stale heartbeat
             slot(3, started=None, created=NOW - 3700),           # stale starting
             slot(4, finished=NOW - 5),                           # finished
             slot(5, started=NOW - 100, heartbeat=NOW - 5),      # young: before fizzle
             slot(6, mt="atlas", processors=1)]
    bodies = {b["machinetype"]: b for b in status.machinetype_statuses(make_cfg(), slots, NOW)}
    lhcb = bodies["lhcb"]
    assert set(MACHINETYPE_FIELDS) <= set(lhcb)
    assert lhcb["running_machines"] == 3
    assert lhcb["running_processors"] == lhcb["running_cpus"] == 4 + 3 + 2
    assert lhcb["running_hs06"] == 40.0 + 3.0 + 2.0
    assert lhcb["num_before_fizzle"] == 2
    assert (lhcb["min_wallclock_seconds"], lhcb["max_wallclock_seconds"]) == (3600, 7200)
    assert (lhcb["min_processors"], lhcb["max_processors"]) == (2, 4)
    assert lhcb["bytes_per_processor"] == 2048 * 1048576 and lhcb["num_machinetypes"] == 2
    assert lhcb["vo"] == "lhcb" and "fqan" not in bodies["atlas"]
    assert bodies["atlas"]["running_machines"] == 1
    assert bodies["atlas"]["min_wallclock_seconds"] == 86400


def test_last_finished_message_and_synthetic_fizzle_b6():
    cfg = make_cfg()
    fizzled = slot(0, started=NOW - 500, heartbeat=NOW - 380, finished=NOW - 300)
    body = status.machinetype_statuses(cfg, [], NOW, {"lhcb": fizzled})[0]
    lhcb = [b for b in status.machinetype_statuses(cfg, [], NOW, {"lhcb": fizzled})
            if b["machinetype"] == "lhcb"][0]
    assert body["machinetype"] == "atlas" and body["shutdown_message"] is None
    assert lhcb["shutdown_message"] == "300 Vac detects fizzle after 120 seconds"
    assert lhcb["shutdown_time"] == NOW - 380
    assert lhcb["shutdown_machine"] == "factory1-00.example.com"
    long_run = slot(0, started=NOW - 5000, heartbeat=NOW - 100, finished=NOW - 50)
    assert status.finished_outcome(cfg.machinetypes["lhcb"], long_run)[:2] == (None, None)
    told = slot(0, finished=NOW, shutdown_message="200 Success\nmore", shutdown_message_time=5)
    assert status.finished_outcome(cfg.machinetypes["lhcb"], told)[:2] == ("200 Success", 5)


def test_latest_finished_used_without_finishes_map():
    slots = [slot(0, finished=NOW, created=NOW - 900, shutdown_message="300 a"),
             slot(1, finished=NOW, created=NOW - 800, shutdown_message="301 b")]
    lhcb = [b for b in status.machinetype_statuses(make_cfg(), slots, NOW)
            if b["machinetype"] == "lhcb"][0]
    assert lhcb["shutdown_message"] == "301 b"


def test_factory_status_fields():
    sysinfo = {"processor_count": 8, "load_average": 1.234, "kernel_version": "6.1",
               "os_issue": "Debian 12", "boot_time": NOW - 1000.7, "mem_total_kb": 100,
               "mem_used_kb": 40, "swap_used_kb": 1, "swap_free_kb": 2,
               "root_disk_avail_kb": 3, "root_disk_avail_inodes": 4,
               "vac_disk_avail_kb": 5, "vac_disk_avail_inodes": 6}
    body = status.factory_status(make_cfg(total_processors=6, hs06_per_processor=10.0),
                                 (2, 8, 3, 6, 30.0), sysinfo,
                                 {"factory": NOW - 5.5, "responder": None}, NOW)
    assert set(FACTORY_FIELDS) <= set(body)
    assert body["max_processors"] == body["max_machines"] == body["total_cpus"] == 6
    assert body["max_hs06"] == body["total_hs06"] == 60.0
    assert (body["running_machines"], body["running_processors"]) == (2, 3)
    assert body["running_hs06"] == 30.0 and body["load_average"] == 1.23
    assert body["factory_heartbeat_time"] == NOW - 6 and body["responder_heartbeat_time"] == 0
    assert body["daemon_disk_avail_kb"] == 5 and body["boot_time"] == NOW - 1001
    empty = status.factory_status(make_cfg(), None, {"processor_count": 2}, {}, NOW)
    assert empty["max_hs06"] == 2.0 and empty["running_machines"] == 0
