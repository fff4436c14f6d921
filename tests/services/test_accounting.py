"""account_machine: when a record is written, where, and exactly once across crashes."""

from __future__ import annotations

import dataclasses
import logging
import os
from types import MappingProxyType
from typing import Optional

import pytest
from dirq.QueueSimple import QueueSimple

from vac.adapters import apelspool
from vac.adapters.atomicfile import read_text
from vac.core import apel
from vac.core.configtypes import Config, Machinetype, Settings
from vac.errors import StateError
from vac.model import SlotRecord
from vac.paths import Paths
from vac.services import accounting

START = 1_699_900_000
NOW = START + 86_500


def make_cfg(**settings) -> Config:
    base = dict(vac_space="vac01.example.com", gocdb_sitename="UKI-EXAMPLE",
                factory_hostname="factory1.example.com", hs06_per_processor=10.5)
    base.update(settings)
    mt = Machinetype(name="lhcb-prod", fizzle_seconds=600, hepscore23_per_processor=12.5)
    return Config(settings=Settings(**base), machinetypes=MappingProxyType({mt.name: mt}))


def make_slot(paths: Paths, ordinal: int = 0, cfg: Optional[Config] = None,
              **fields) -> SlotRecord:
    """A finished machine whose accounting inputs were captured from ``cfg`` at creation."""
    cfg = cfg or make_cfg()
    name = f"factory1-{ordinal:02d}.example.com"
    machine_dir = paths.machine_dir(START - 5, "lhcb-prod", name)
    os.makedirs(machine_dir, exist_ok=True)
    inputs = apel.accounting_inputs(cfg.settings, cfg.machinetypes["lhcb-prod"], 2)
    base = dict(ordinal=ordinal, name=name, created=START - 5, machinetype="lhcb-prod",
                machine_dir=machine_dir, started_time=START, heartbeat_time=START + 86_000,
                cpu_seconds=80_000.0, processors=2, hs06=21.0, max_rss_bytes=None,
                uuid=f"uuid-{ordinal}", accounting=inputs)
    base.update(fields)
    return SlotRecord(**base)


def archived(paths: Paths):
    found = []
    for dirpath, _dirs, files in os.walk(paths.apel_archive):
        found += [os.path.join(dirpath, f) for f in files if apel.is_record_file_name(f)]
    return found


def outgoing_texts(paths: Paths, remove: bool = False):
    if not os.path.isdir(paths.apel_outgoing):
        return []
    queue, texts = QueueSimple(paths.apel_outgoing), []
    for name in queue:
        if queue.lock(name):
            data = queue.get(name)
            texts.append(data.decode() if isinstance(data, bytes) else data)
            if remove:
                queue.remove(name)
            else:
                queue.unlock(name)
    return texts


def test_record_in_archive_and_outgoing(paths):
    slot = make_slot(paths)
    path = accounting.account_machine(paths, slot, now=NOW)
    assert path in archived(paths) and len(archived(paths)) == 1
    text = open(path).read()
    assert outgoing_texts(paths) == [text]
    assert "ServiceLevel: 10.5\n" in text and "MachineName: factory1-00.example.com" in text
    assert "MemoryReal: 4194304\n" in text        # 2 processors x 2048 MiB in kB
    # later calls neither rewrite nor add anything
    mtime = os.stat(path).st_mtime_ns
    assert accounting.account_machine(paths, slot, now=NOW + 60) == path
    assert os.stat(path).st_mtime_ns == mtime and len(outgoing_texts(paths)) == 1


def test_v04_records_carry_hepscore23(paths):
    cfg = make_cfg(apel_message_version="0.4")
    path = accounting.account_machine(paths, make_slot(paths, cfg=cfg), now=NOW)
    assert "ServiceLevel: {hepspec: 10.5, HEPscore23: 12.5}\n" in open(path).read()


@pytest.mark.parametrize("settings,fields", [
    (dict(gocdb_sitename=None), {}),          # no site: archive only
    (dict(hs06_per_processor=None), {}),      # no HS06 at creation: archive only
    ({}, dict(heartbeat_time=NOW + 3 * 86400)),   # loader would reject: archive only
])
def test_archive_only(paths, settings, fields):
    slot = make_slot(paths, cfg=make_cfg(**settings), **fields)
    path = accounting.account_machine(paths, slot, now=NOW)
    assert archived(paths) == [path] and outgoing_texts(paths) == []


@pytest.mark.parametrize("fields", [
    dict(heartbeat_time=START + 599),          # fizzled
    dict(started_time=None),                   # never started
    dict(heartbeat_time=None),
    dict(accounting=None),                     # older vac's directory, machinetype gone
    dict(machine_dir=None),
])
def test_no_record(paths, fields):
    assert accounting.account_machine(paths, make_slot(paths, **fields), now=NOW) is None
    assert archived(paths) == [] and outgoing_texts(paths) == []


def test_machines_finalised_in_one_cycle_get_distinct_names(paths):
    for i in range(5):
        accounting.account_machine(paths, make_slot(paths, i, uuid=f"u{i}"), now=NOW)
    assert len(archived(paths)) == 5 and len(outgoing_texts(paths)) == 5


# --- records made from the machine directory alone (issue point 2) ---------------------

def test_record_comes_from_the_machine_directory_not_todays_configuration(paths, golden):
    """accounting.json written at creation is all the record needs: a later change of
    site, FQAN, HS06, HEPscore or message version (or the machinetype's removal) is not
    seen by the machines created before it."""
    cfg = Config(settings=Settings(vac_space="vac01.example.com", gocdb_sitename="UKI-EXAMPLE",
                                   factory_hostname="factory1.example.com",
                                   hs06_per_processor=10.5, apel_message_version="0.4"),
                 machinetypes=MappingProxyType({"lhcb-prod": Machinetype(
                     name="lhcb-prod", fizzle_seconds=600, hepscore23_per_processor=12.5,
                     accounting_fqan="/lhcb/Role=pilot")}))
    slot = make_slot(paths, cfg=cfg)
    apelspool.write_accounting(slot.machine_dir, slot.accounting)
    golden.check(read_text(os.path.join(slot.machine_dir, apelspool.ACCOUNTING_FILE)),
                 "apel/accounting.json")
    # what the factory reads back later, whatever the configuration says by then
    read_back = apelspool.read_accounting(slot.machine_dir)
    assert read_back == slot.accounting
    path = accounting.account_machine(paths, dataclasses.replace(slot, accounting=read_back),
                                      now=NOW)
    text = open(path).read()
    for line in ("APEL-individual-job-message: v0.4", "Site: UKI-EXAMPLE",
                 "SubmitHost: vac01.example.com/vac-factory1.example.com",
                 "FQAN: /lhcb/Role=pilot", "ServiceLevel: {hepspec: 10.5, HEPscore23: 12.5}"):
        assert line + "\n" in text
    assert outgoing_texts(paths) == [text]


@pytest.mark.parametrize("text", ["", "{", "[]", '{"format": 2}',
                                  '{"format": 1, "site": 3}'])
def test_unusable_accounting_json_reads_as_absent(paths, text):
    mdir = make_slot(paths).machine_dir
    with open(os.path.join(mdir, apelspool.ACCOUNTING_FILE), "w") as f:
        f.write(text)
    assert apelspool.read_accounting(mdir) is None


def test_older_machine_directory_falls_back_to_todays_configuration(paths, caplog):
    cfg = make_cfg()
    slot = make_slot(paths, accounting=None)
    slot = dataclasses.replace(slot, accounting=apel.inputs_from_config(cfg, slot))
    caplog.set_level(logging.INFO)
    path = accounting.account_machine(paths, slot, now=NOW)
    assert "ServiceLevel: 10.5\n" in open(path).read()
    assert "no usable accounting.json" in caplog.text and "today's configuration" in caplog.text
    gone = dataclasses.replace(cfg, machinetypes=MappingProxyType({}))
    assert apel.inputs_from_config(gone, slot) is None


# --- a record that cannot be written is never lost (issue point 1) ----------------------

def test_failed_freeze_leaves_no_temporary_record_and_marks_it_owed(paths, monkeypatch):
    slot = make_slot(paths)
    real_write = apelspool.write_atomic
    calls = []

    def full_disk(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise StateError(f"cannot write {path}: [Errno 28] No space left on device")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(apelspool, "write_atomic", full_disk)
    with pytest.raises(StateError, match="No space left"):
        accounting.account_machine(paths, slot, now=NOW)
    assert sorted(os.listdir(slot.machine_dir)) == [apelspool.OWED_MARKER]
    assert apelspool.pending_dirs(paths.machines_dir) == [(slot.machine_dir, "owed")]
    monkeypatch.setattr(apelspool, "write_atomic", real_write)
    accounting.account_machine(paths, slot, now=NOW + 60)
    assert apelspool.pending_dirs(paths.machines_dir) == []
    assert sorted(os.listdir(slot.machine_dir)) == [apelspool.FROZEN_DIR]
    assert len(archived(paths)) == 1 and len(outgoing_texts(paths)) == 1


def test_finalised_machine_with_leftover_temporary_record_is_redone(paths, caplog):
    """An older vac finalised the machine although its freeze failed (apel-record.tmp
    left behind): the record is made again from the machine directory."""
    slot = make_slot(paths, accounting=None)
    with open(os.path.join(slot.machine_dir, "started"), "w"):
        pass
    with open(os.path.join(slot.machine_dir, "heartbeat"), "w") as f:
        f.write("80000 99.0\n")
    os.utime(os.path.join(slot.machine_dir, "heartbeat"))
    os.makedirs(os.path.join(slot.machine_dir, "apel-record.tmp"))
    with open(os.path.join(slot.machine_dir, "finished"), "w"):
        pass
    fizzle0 = dataclasses.replace(make_cfg(), machinetypes=MappingProxyType({"lhcb-prod": Machinetype(
        name="lhcb-prod", fizzle_seconds=0)}))
    assert accounting.complete_pending(paths, NOW) == (0, [])   # no configuration: waits
    assert apelspool.pending_dirs(paths.machines_dir) == [(slot.machine_dir, "interrupted")]
    done, errors = accounting.complete_pending(
        paths, NOW, lambda s: apel.inputs_from_config(fizzle0, s))
    assert (done, errors) == (1, [])
    assert len(archived(paths)) == 1 and len(outgoing_texts(paths)) == 0   # no HS06 file
    assert not os.path.exists(os.path.join(slot.machine_dir, "apel-record.tmp"))
    assert accounting.complete_pending(paths, NOW) == (0, [])


# --- crash injection --------------------------------------------------------------------

_WRAPPED = ("open", "mkdir", "rename", "replace", "fsync", "chmod", "unlink", "rmdir")


def _run_child_dying_at(paths: Paths, slot: SlotRecord, step: int, after: bool) -> bool:
    """Fork; the child dies (os._exit) at its step-th file-system call. True if it died."""
    pid = os.fork()
    if pid == 0:                                   # child
        counter = [0]

        def wrap(fn):
            def dying(*args, **kwargs):
                counter[0] += 1
                if counter[0] == step and not after:
                    os._exit(77)
                result = fn(*args, **kwargs)
                if counter[0] == step and after:
                    os._exit(77)
                return result
            return dying

        for name in _WRAPPED:
            setattr(os, name, wrap(getattr(os, name)))
        try:
            accounting.account_machine(paths, slot, now=NOW)
        finally:
            os._exit(0)
    _pid, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) == 77


@pytest.mark.parametrize("after", [False, True], ids=["before-call", "after-call"])
@pytest.mark.parametrize("ssmsend_in_between", [False, True])
@pytest.mark.parametrize("recover", ["account_machine", "complete_pending"])
def test_crash_at_every_step_neither_loses_nor_duplicates(tmp_path, after,
                                                          ssmsend_in_between, recover):
    died_steps = 0
    for step in range(1, 200):
        paths = Paths(root=str(tmp_path / f"{step}"))
        slot = make_slot(paths)
        if not _run_child_dying_at(paths, slot, step, after):
            break                                   # the child got through every step
        died_steps += 1
        sent = outgoing_texts(paths, remove=True) if ssmsend_in_between else []
        for _ in range(2):                          # recovery, then a later cycle
            if recover == "complete_pending":       # the cycle's side step first
                accounting.complete_pending(paths, NOW + 120)
            accounting.account_machine(paths, slot, now=NOW + 120)
        (path,) = archived(paths)                   # exactly one archived copy
        text = open(path).read()
        delivered = sent + outgoing_texts(paths)
        assert delivered == [text], f"step {step}: {len(delivered)} outgoing copies"
        assert apel.check_job_record(text, NOW) == []
    assert died_steps >= 10, "the injection never hit the writes"


def test_complete_pending_finishes_what_a_refused_write_left(paths, monkeypatch):
    real = accounting.apelspool.write_archive

    def full_disk(*args):
        raise StateError("No space left on device")

    monkeypatch.setattr(accounting.apelspool, "write_archive", full_disk)
    for i in range(3):
        with pytest.raises(StateError):
            accounting.account_machine(paths, make_slot(paths, i, uuid=f"u{i}"), now=NOW)
    done, errors = accounting.complete_pending(paths, NOW)     # still refused: kept
    assert done == 0 and len(errors) == 3 and "No space left" in errors[0]
    assert len(apelspool.pending_dirs(paths.machines_dir)) == 3
    monkeypatch.setattr(accounting.apelspool, "write_archive", real)
    assert accounting.complete_pending(paths, NOW) == (3, [])
    assert accounting.complete_pending(paths, NOW) == (0, [])
    assert len(archived(paths)) == 3 and len(outgoing_texts(paths)) == 3
