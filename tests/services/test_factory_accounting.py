"""Factory cycles never lose an APEL record (issue "Nothing lost, nothing trusted", 1-2).

A machine whose record cannot be frozen (the disk fills while it is finalised) is not
finalised and keeps its slot; the record is retried every cycle with one log line per
cycle, check-vacd warns, and once the disk has room again exactly one archived and one
outgoing copy appear. A record is made from the machine directory, whatever the
configuration says when the machine finishes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import time

from vac import nagios
from vac.adapters import apelspool, atomicfile, statefs, statereports
from vac.adapters.atomicfile import read_text
from vac.services import accounting
from tests.services.factorykit import BASE_CONF, FACTORY, Rig
from tests.services.test_accounting import archived, outgoing_texts

S0 = "f1-00.example.com"
SETTINGS = "hs06_per_processor = 10.0\ngocdb_sitename = UKI-TEST\ndraining = {draining}"
PENDING_LINE = re.compile(r"^\d+ APEL records? pending: ")


def _rig(paths, draining: str = "no") -> Rig:
    conf = BASE_CONF.replace("fizzle_seconds = 600", "fizzle_seconds = 0")
    return Rig(paths, text=conf.format(settings=SETTINGS.format(draining=draining),
                                       machinetype="accounting_fqan = /lhcb/Role=NULL"))


def _set_draining(paths) -> None:
    """Stop creating, so a test only watches its one machine."""
    os.makedirs(os.path.dirname(paths.run_vac_conf), exist_ok=True)
    with open(paths.run_vac_conf, "w") as f:
        f.write("[settings]\ndraining = yes\n")


def _slot(paths):
    return statefs.read_slot(paths, FACTORY, 0)


class FullDisk:
    """Makes every non-empty atomic write below ``root`` fail with ENOSPC, as a full
    file system does (empty files, directories and renames still succeed)."""

    def __init__(self, monkeypatch, root: str):
        self.on = False
        self.armed = False         # fill up the moment the factory writes a record
        real = atomicfile.atomic_writer
        disk = self

        @contextlib.contextmanager
        def writer(path, *args, **kwargs):
            with real(path, *args, **kwargs) as f:
                if disk.on and os.path.abspath(path).startswith(root):
                    f.write = disk._refuse
                yield f
        monkeypatch.setattr(atomicfile, "atomic_writer", writer)
        account = accounting.account_machine

        def filling(*args, **kwargs):
            disk.on = disk.on or disk.armed
            return account(*args, **kwargs)
        monkeypatch.setattr(accounting, "account_machine", filling)

    def clear(self) -> None:
        self.on = self.armed = False

    @staticmethod
    def _refuse(data) -> int:
        if data:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return 0


def _beat_other_roles(paths) -> None:
    for role in ("responder", "metadata", "mjf"):
        statereports.write_role_heartbeat(paths, role, time.time())


def _pending_lines(caplog) -> list:
    return [r.getMessage() for r in caplog.records if PENDING_LINE.match(r.getMessage())]


def test_disk_full_while_finalising_keeps_the_machine_until_its_record_is_frozen(
        paths, monkeypatch, caplog):
    """Before: the record was lost for good (``finished`` written, slot reused,
    ``apel-record.tmp`` left). After: not finalised, retried every cycle with one log
    line, check-vacd WARNING, then exactly one archived and one outgoing copy."""
    rig = _rig(paths)
    rig.cycle()
    _set_draining(paths)
    first = _slot(paths)
    rig.vm.power_off(S0)
    disk = FullDisk(monkeypatch, paths.state_dir)
    disk.armed = True
    caplog.set_level(logging.INFO)
    _beat_other_roles(paths)
    start = time.time()
    for cycle in range(1, 4):
        caplog.clear()
        rig.cycle(now=start + 10 * cycle)
        slot = _slot(paths)
        assert slot.machine_dir == first.machine_dir and slot.finished_time is None, cycle
        assert not os.path.exists(os.path.join(first.machine_dir, "apel-record.tmp"))
        lines = _pending_lines(caplog)
        assert len(lines) == 1 and "No space left on device" in lines[0], lines
        code, line = nagios.check(paths, nagios.Thresholds(), time.time())
        assert code == nagios.WARNING and "1 APEL record pending" in line, line
        assert line.endswith("apel_records_pending=1;1;;0")
    assert archived(paths) == [] and outgoing_texts(paths) == []
    disk.clear()
    caplog.clear()
    rig.cycle(now=start + 50)                      # frozen, archived and queued
    assert not _pending_lines(caplog)
    assert _slot(paths).finished_time is None
    rig.cycle(now=start + 60)                      # finalised
    assert _slot(paths).finished_time is not None
    (path,) = archived(paths)
    assert outgoing_texts(paths) == [read_text(path)]
    code, line = nagios.check(paths, nagios.Thresholds(), time.time())
    assert code == nagios.OK and line.endswith("apel_records_pending=0;1;;0"), line


def test_unwritable_archive_finalises_once_frozen_and_completes_later(paths, caplog):
    """``apel-archive`` is not a directory (ENOTDIR): the record is frozen in the machine
    directory, so the machine is finalised; the copies follow when the fault is fixed."""
    rig = _rig(paths)
    rig.cycle()
    _set_draining(paths)
    mdir = _slot(paths).machine_dir
    os.rmdir(paths.apel_archive)
    with open(paths.apel_archive, "w") as f:
        f.write("not a directory\n")
    rig.vm.power_off(S0)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        caplog.clear()
        rig.cycle()
        lines = _pending_lines(caplog)
        assert len(lines) == 1 and "Not a directory" in lines[0], lines
    assert _slot(paths).finished_time is not None          # frozen first, then finalised
    assert apelspool.pending_dirs(paths.machines_dir) == [(mdir, "incomplete")]
    os.unlink(paths.apel_archive)
    rig.cycle()
    (path,) = archived(paths)
    assert outgoing_texts(paths) == [read_text(path)]
    assert apelspool.pending_dirs(paths.machines_dir) == []


def test_machinetype_removed_while_running_is_still_accounted(paths):
    """Before: "machinetype lhcb is no longer configured" and no record. After: the
    record comes from the machine's accounting.json (site, FQAN, HS06 as created)."""
    rig = _rig(paths)
    rig.cycle()
    mdir = _slot(paths).machine_dir
    with open(paths.etc_vac_conf, "w") as f:           # the admin removes the machinetype
        f.write("[settings]\nvac_space = vac01.example.com\nfactory_hostname = "
                f"{FACTORY}\nshutdown_grace_seconds = 0\ndraining = yes\n")
    rig.vm.power_off(S0)
    rig.cycle(now=time.time() + 100)
    rig.cycle(now=time.time() + 110)
    assert os.path.exists(os.path.join(mdir, "finished"))
    (path,) = archived(paths)
    text = read_text(path)
    for line in ("Site: UKI-TEST", "FQAN: /lhcb/Role=NULL", "ServiceLevel: 10.0",
                 "Queue: lhcb"):
        assert line + "\n" in text
    assert outgoing_texts(paths) == [text]


def test_configuration_error_still_completes_pending_records(paths, caplog):
    """A config path replaced by a directory is a configuration error naming it; the
    cycle creates and destroys nothing but still completes frozen records (they need
    no configuration)."""
    rig = _rig(paths)
    rig.cycle()
    _set_draining(paths)
    os.rmdir(paths.apel_archive)
    with open(paths.apel_archive, "w"):
        pass
    rig.vm.power_off(S0)
    rig.cycle()                                      # frozen, not archived
    rig.cycle()                                      # finalised
    assert _slot(paths).finished_time is not None and archived(paths) == []
    os.unlink(paths.apel_archive)
    os.makedirs(os.path.join(paths.etc_vac_d, "50-site.conf"))
    caplog.set_level(logging.INFO)
    result = rig.cycle()
    bad = os.path.join(paths.etc_vac_d, "50-site.conf")
    assert result.problems == [f"{bad}: a directory, not a configuration file"]
    assert bad in read_text(paths.config_error)
    assert len(archived(paths)) == 1 and len(outgoing_texts(paths)) == 1


def test_configuration_that_is_not_utf8_is_an_error_not_replaced(paths):
    """Before: the Latin-1 byte was silently replaced and a machine created. After: a
    configuration error naming the file and line; nothing is created."""
    rig = _rig(paths)
    with open(paths.etc_vac_conf, "ab") as f:
        f.write(b"# caf\xe9 au lait\n")
    lines = read_text(paths.etc_vac_conf).count("\n")
    result = rig.cycle()
    assert result.created == 0
    assert result.problems == [f"{paths.etc_vac_conf}:{lines}: not valid UTF-8 (byte 0xe9 "
                               f"at offset {os.path.getsize(paths.etc_vac_conf) - 10})"]
