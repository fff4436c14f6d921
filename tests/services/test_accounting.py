"""account_machine: when a record is written, where, and exactly once across crashes."""

from __future__ import annotations

import os
from types import MappingProxyType

import pytest
from dirq.QueueSimple import QueueSimple

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
                factory_hostname="factory1.example.com")
    base.update(settings)
    mt = Machinetype(name="lhcb-prod", fizzle_seconds=600, hepscore23_per_processor=12.5)
    return Config(settings=Settings(**base), machinetypes=MappingProxyType({mt.name: mt}))


def make_slot(paths: Paths, ordinal: int = 0, **fields) -> SlotRecord:
    name = f"factory1-{ordinal:02d}.example.com"
    machine_dir = paths.machine_dir(START - 5, "lhcb-prod", name)
    os.makedirs(machine_dir, exist_ok=True)
    base = dict(ordinal=ordinal, name=name, created=START - 5, machinetype="lhcb-prod",
                machine_dir=machine_dir, started_time=START, heartbeat_time=START + 86_000,
                cpu_seconds=80_000.0, processors=2, hs06=21.0, max_rss_bytes=None,
                uuid=f"uuid-{ordinal}")
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
    path = accounting.account_machine(make_cfg(), paths, slot, now=NOW)
    assert path in archived(paths) and len(archived(paths)) == 1
    text = open(path).read()
    assert outgoing_texts(paths) == [text]
    assert "ServiceLevel: 10.5\n" in text and "MachineName: factory1-00.example.com" in text
    assert "MemoryReal: 4194304\n" in text        # 2 processors x 2048 MiB in kB
    # later calls neither rewrite nor add anything
    mtime = os.stat(path).st_mtime_ns
    assert accounting.account_machine(make_cfg(), paths, slot, now=NOW + 60) == path
    assert os.stat(path).st_mtime_ns == mtime and len(outgoing_texts(paths)) == 1


def test_v04_records_carry_hepscore23(paths):
    path = accounting.account_machine(make_cfg(apel_message_version="0.4"), paths,
                                      make_slot(paths), now=NOW)
    assert "ServiceLevel: {hepspec: 10.5, HEPscore23: 12.5}\n" in open(path).read()


@pytest.mark.parametrize("settings,fields", [
    (dict(gocdb_sitename=None), {}),          # no site: archive only
    ({}, dict(hs06=None)),                    # no machinefeatures/hs06: archive only
    ({}, dict(heartbeat_time=NOW + 3 * 86400)),   # loader would reject: archive only
])
def test_archive_only(paths, settings, fields):
    path = accounting.account_machine(make_cfg(**settings), paths, make_slot(paths, **fields),
                                      now=NOW)
    assert archived(paths) == [path] and outgoing_texts(paths) == []


@pytest.mark.parametrize("fields", [
    dict(heartbeat_time=START + 599),          # fizzled
    dict(started_time=None),                   # never started
    dict(heartbeat_time=None),
    dict(machinetype="gone"),                  # machinetype no longer configured
    dict(machine_dir=None),
])
def test_no_record(paths, fields):
    assert accounting.account_machine(make_cfg(), paths, make_slot(paths, **fields),
                                      now=NOW) is None
    assert archived(paths) == [] and outgoing_texts(paths) == []


def test_machines_finalised_in_one_cycle_get_distinct_names(paths):
    for i in range(5):
        accounting.account_machine(make_cfg(), paths, make_slot(paths, i, uuid=f"u{i}"),
                                   now=NOW)
    assert len(archived(paths)) == 5 and len(outgoing_texts(paths)) == 5


# --- crash injection --------------------------------------------------------------------

_WRAPPED = ("open", "mkdir", "rename", "replace", "fsync", "chmod", "unlink", "rmdir")


def _run_child_dying_at(cfg: Config, paths: Paths, slot: SlotRecord, step: int,
                        after: bool) -> bool:
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
            accounting.account_machine(cfg, paths, slot, now=NOW)
        finally:
            os._exit(0)
    _pid, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) == 77


@pytest.mark.parametrize("after", [False, True], ids=["before-call", "after-call"])
@pytest.mark.parametrize("ssmsend_in_between", [False, True])
@pytest.mark.parametrize("recover", ["account_machine", "complete_pending"])
def test_crash_at_every_step_neither_loses_nor_duplicates(tmp_path, after,
                                                          ssmsend_in_between, recover):
    cfg, died_steps = make_cfg(), 0
    for step in range(1, 200):
        paths = Paths(root=str(tmp_path / f"{step}"))
        slot = make_slot(paths)
        if not _run_child_dying_at(cfg, paths, slot, step, after):
            break                                   # the child got through every step
        died_steps += 1
        sent = outgoing_texts(paths, remove=True) if ssmsend_in_between else []
        for _ in range(2):                          # recovery, then a later cycle
            if recover == "complete_pending":       # the machine was finalised anyway
                accounting.complete_pending(paths)
            accounting.account_machine(cfg, paths, slot, now=NOW + 120)
        (path,) = archived(paths)                   # exactly one archived copy
        text = open(path).read()
        delivered = sent + outgoing_texts(paths)
        assert delivered == [text], f"step {step}: {len(delivered)} outgoing copies"
        assert apel.check_job_record(text, NOW) == []
    assert died_steps >= 10, "the injection never hit the writes"


def test_complete_pending_finishes_what_a_refused_write_left(paths, monkeypatch):
    cfg = make_cfg()
    real = accounting.apelspool.write_archive

    def full_disk(*args):
        raise StateError("No space left on device")

    monkeypatch.setattr(accounting.apelspool, "write_archive", full_disk)
    for i in range(3):
        with pytest.raises(StateError):
            accounting.account_machine(cfg, paths, make_slot(paths, i, uuid=f"u{i}"), now=NOW)
    assert accounting.complete_pending(paths) == 0      # still refused: logged, kept
    monkeypatch.setattr(accounting.apelspool, "write_archive", real)
    assert accounting.complete_pending(paths) == 3
    assert accounting.complete_pending(paths) == 0
    assert len(archived(paths)) == 3 and len(outgoing_texts(paths)) == 3
