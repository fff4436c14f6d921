"""The APEL spools with the real dirq QueueSimple that ssmsend uses to read apel-outgoing."""

from __future__ import annotations

import os

import pytest
from dirq.QueueSimple import QueueSimple

from vac.adapters import apelspool


def _record(i: int) -> str:
    return f"APEL-individual-job-message: v0.3\nSite: S\nLocalJobId: job-{i}\n%%\n"


def _frozen_records(paths, n: int, outgoing: bool = True):
    frozen = []
    for i in range(n):
        machine_dir = paths.machine_dir(1000 + i, "mt", f"f-{i:02d}.example.com")
        os.makedirs(machine_dir)
        frozen.append(apelspool.freeze(machine_dir, _record(i),
                                       f"20231114/2213{i:02d}0123abcd", outgoing))
    return frozen


def test_dirq_reads_every_record_vac_wrote(paths):
    for f in _frozen_records(paths, 12):
        apelspool.write_archive(paths.apel_archive, f)
        apelspool.publish_staged(paths.apel_outgoing, f)
        assert not os.path.exists(f.staged_path)
    sync = apelspool.queue_add(paths.apel_outgoing, "APEL-sync-message: v0.1\nSite: S\n%%\n")
    assert os.path.isfile(sync)

    queue = QueueSimple(paths.apel_outgoing)      # exactly what ssmsend opens
    assert queue.count() == 13
    seen = []
    for name in queue:
        assert queue.lock(name)
        data = queue.get(name)
        seen.append(data.decode() if isinstance(data, bytes) else data)
        queue.remove(name)
    assert sorted(seen) == sorted([_record(i) for i in range(12)]
                                  + ["APEL-sync-message: v0.1\nSite: S\n%%\n"])
    queue.purge()
    assert QueueSimple(paths.apel_outgoing).count() == 0
    # the archive keeps its copies, 0644 in 0755 day directories
    day = os.path.join(paths.apel_archive, "20231114")
    assert len(os.listdir(day)) == 12
    assert os.stat(day).st_mode & 0o777 == 0o755
    assert all(os.stat(os.path.join(day, n)).st_mode & 0o777 == 0o644 for n in os.listdir(day))


def test_frozen_record_round_trip_and_markers(paths):
    (f,) = _frozen_records(paths, 1)
    machine_dir = os.path.dirname(f.directory)
    loaded = apelspool.load_frozen(machine_dir)
    assert loaded == f
    apelspool.write_archive(paths.apel_archive, f)
    assert apelspool.load_frozen(machine_dir).archived
    apelspool.publish_staged(paths.apel_outgoing, f)
    assert not apelspool.load_frozen(machine_dir).outgoing_pending
    # publishing again is a no-op: the staged copy is gone, the element stays single
    apelspool.publish_staged(paths.apel_outgoing, f)
    assert QueueSimple(paths.apel_outgoing).count() == 1


def test_freeze_replaces_a_stale_temporary_directory(paths):
    machine_dir = paths.machine_dir(1, "mt", "f-00")
    os.makedirs(os.path.join(machine_dir, apelspool.FROZEN_DIR + ".tmp"))
    apelspool.freeze(machine_dir, _record(0), "20231114/22130000000000", False)
    loaded = apelspool.load_frozen(machine_dir)
    assert loaded.text == _record(0) and not loaded.outgoing_pending
    assert apelspool.load_frozen(paths.machine_dir(2, "mt", "none")) is None


def test_publish_survives_purged_day_directory(paths, monkeypatch):
    (f,) = _frozen_records(paths, 1)
    real_rename = os.rename
    calls = []

    def rename_after_purge(src, dst):
        calls.append(dst)
        if len(calls) == 1:             # ssmsend purges the empty day directory first
            os.rmdir(os.path.dirname(dst))
        return real_rename(src, dst)

    monkeypatch.setattr(apelspool.os, "rename", rename_after_purge)
    target = apelspool.publish_staged(paths.apel_outgoing, f)
    assert len(calls) == 2 and os.path.isfile(target)


def test_archive_listing_is_newest_first_and_skips_dot_files(paths):
    for day, names in (("20231101", ["100000aaaaaaaa", "090000bbbbbbbb", ".tmp-x"]),
                       ("20231102", ["080000cccccccc"]), ("20231201", ["070000dddddddd"])):
        os.makedirs(os.path.join(paths.apel_archive, day), exist_ok=True)
        for n in names:
            with open(os.path.join(paths.apel_archive, day, n), "w") as f:
                f.write(f"H\nSite: {n}\n")
    days = apelspool.month_day_dirs(paths.apel_archive, "202311")
    assert [os.path.basename(d) for d in days] == ["20231102", "20231101"]
    assert apelspool.day_file_names(days[1]) == ["100000aaaaaaaa", "090000bbbbbbbb"]
    assert apelspool.read_head(os.path.join(days[0], "080000cccccccc")).startswith("H\nSite")
    assert apelspool.read_head(days[0]) is None
    assert apelspool.month_day_dirs(os.path.join(paths.root, "missing"), "202311") == []


def test_disk_refusal_is_a_state_error(paths):
    from vac.errors import StateError
    with pytest.raises(StateError):
        apelspool.freeze(os.path.join(paths.root, "no", "such", "dir"), "x", "a/b", True)


def test_interrupted_archive_write_is_reused_not_left_behind(paths):
    (frozen,) = _frozen_records(paths, 1)
    day = os.path.join(paths.apel_archive, "20231114")
    os.makedirs(day)
    with open(os.path.join(day, ".2213000123abcd.tmp"), "w") as f:
        f.write("half a rec")                     # a write killed before its rename
    path = apelspool.write_archive(paths.apel_archive, frozen).path
    assert sorted(os.listdir(day)) == ["2213000123abcd"]
    assert open(path).read() == _record(0)
    with open(os.path.join(frozen.directory, ".tmp-marker"), "w"):
        pass                                      # an interrupted `archived` marker
    apelspool.write_archive(paths.apel_archive, frozen)
    assert sorted(os.listdir(frozen.directory)) == ["archived", "name", "outgoing", "record"]


def test_pending_states(paths):
    states = {}
    for i, files in enumerate([(), ("apel-owed",), ("apel-record.tmp/record",),
                               ("apel-owed", "apel-record/record", "apel-record/name"),
                               ("apel-record/record", "apel-record/name",
                                "apel-record/archived"),
                               ("apel-record/record", "apel-record/name",
                                "apel-record/archived", "apel-record/outgoing")]):
        mdir = paths.machine_dir(1000 + i, "mt", f"f-{i:02d}.example.com")
        for rel in files:
            os.makedirs(os.path.dirname(os.path.join(mdir, rel)), exist_ok=True)
            open(os.path.join(mdir, rel), "w").close()
        os.makedirs(mdir, exist_ok=True)
        states[i] = apelspool.pending_state(mdir)
    assert states == {0: None, 1: "owed", 2: "interrupted", 3: "incomplete", 4: None,
                      5: "incomplete"}
    assert [s for _d, s in apelspool.pending_dirs(paths.machines_dir)] == [
        "owed", "interrupted", "incomplete", "incomplete"]
