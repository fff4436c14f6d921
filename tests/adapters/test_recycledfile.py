"""vac.adapters.recycledfile: small replacements through a directory's spare inode, on the
real file system of the test's temporary directory (ext4 or tmpfs: both exchange names)."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from vac.adapters import recycledfile, statefs
from vac.adapters.atomicfile import SPARE_NAME, replace_file
from vac.adapters.recycledfile import SPARE_MAX_BYTES, recycle_file


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def restless(monkeypatch):
    """Spares written over at once (the rest rule has its own test)."""
    monkeypatch.setattr(recycledfile, "SPARE_REST_NS", 0)


def _write(path: str, data: bytes) -> bool:
    """As the mjf role writes: recycled if possible (True), else the ordinary way."""
    if recycle_file(path, data):
        return True
    replace_file(path, data, fsync=False)
    return False


def test_replacements_recycle_one_inode_and_keep_content_mode_and_mtime(tmp_path, restless):
    path, spare = str(tmp_path / "heartbeat"), str(tmp_path / SPARE_NAME)
    inodes = []
    for n, data in enumerate((b"a" * 3000, b"bb", b"c" * 5000, b"d" * 100)):
        before = time.time_ns()
        assert recycle_file(path, data, mode=0o644)
        st = os.stat(path)
        assert _read(path) == data and st.st_size == len(data)
        assert st.st_mode & 0o7777 == 0o644 and st.st_mtime_ns >= before - 10_000_000
        inodes.append(st.st_ino)
        assert os.path.exists(spare) == (n > 0)     # the first write used its new spare up
    assert inodes[3] == inodes[1] and inodes[2] != inodes[3]    # two inodes, swapped
    assert os.path.getsize(spare) == 5000                    # the last replaced content
    assert sorted(os.listdir(tmp_path)) == [SPARE_NAME, "heartbeat"]


def test_a_reader_sees_the_old_or_the_new_content_never_a_mix(tmp_path):
    """Rewritten as fast as it can be for 1.5 s, recycled whenever a spare has rested."""
    path = str(tmp_path / "log")
    contents = (b"A" * 3000, b"B" * 700)
    _write(path, contents[0])
    seen, stop, recycled, i = set(), threading.Event(), 0, 0

    def reader() -> None:
        while not stop.is_set():
            seen.add(_read(path))
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            i += 1
            recycled += _write(path, contents[i % 2])
    finally:
        stop.set()
        thread.join()
    assert seen <= set(contents) and len(seen) == 2
    assert 5 <= recycled < i / 10


def test_an_open_old_file_keeps_its_content_while_its_inode_rests(tmp_path):
    """A replaced inode is written over only SPARE_REST_NS after it was replaced: a reader
    that opened the old file has that long to read it (after rename() it has forever)."""
    path, rest = str(tmp_path / "heartbeat"), recycledfile.SPARE_REST_NS / 1e9 + 0.05
    _write(path, b"first")
    assert _write(path, b"second")                  # "first"'s inode is the spare now
    time.sleep(rest)
    with open(path, "rb") as old:
        assert _write(path, b"third")               # "second"'s inode: the new spare
        assert not _write(path, b"fourth")          # the spare has not rested: a new inode
        assert old.read() == b"second" and _read(path) == b"fourth"
        time.sleep(rest)
        assert _write(path, b"fifth")               # over the inode "old" has open
        old.seek(0)
        assert old.read() == b"fifth"               # the documented difference


def test_a_file_larger_than_the_limit_never_becomes_the_spare(tmp_path, restless):
    """Replacing a large file is left to the ordinary way (which frees it); a spare found
    larger (a file replaced behind the ledger's back) is removed."""
    path, big = str(tmp_path / "big"), b"x" * (SPARE_MAX_BYTES + 1)
    replace_file(path, big, fsync=False)
    assert not recycle_file(path, b"small", replaced_bytes=len(big))
    assert _read(path) == big and os.listdir(tmp_path) == ["big"]
    assert recycle_file(path, b"small", replaced_bytes=100)     # the ledger was wrong
    assert os.path.getsize(tmp_path / SPARE_NAME) == len(big)
    assert not recycle_file(path, b"again")
    assert _read(path) == b"small" and os.listdir(tmp_path) == ["big"]


def test_a_spare_planted_in_the_directory_is_never_written_through(tmp_path, restless):
    """A container's guest shares its joboutputs/: a spare it made that is a link to
    another file, a second name of a file, a FIFO or a directory only sends the write
    the ordinary way."""
    outside, spare = tmp_path / "outside", tmp_path / "jo" / SPARE_NAME
    (tmp_path / "jo").mkdir()
    outside.write_bytes(b"host file")
    path = str(tmp_path / "jo" / "heartbeat")
    planted = [lambda: spare.symlink_to(outside), lambda: os.link(outside, spare),
               lambda: os.mkfifo(spare), lambda: spare.mkdir()]
    for plant in planted:
        plant()
        started = time.monotonic()
        assert not recycle_file(path, b"guest data")
        assert time.monotonic() - started < 1            # a FIFO does not block
        assert outside.read_bytes() == b"host file" and not os.path.exists(path)
        spare.rmdir() if spare.is_dir() and not spare.is_symlink() else spare.unlink()


def test_a_failed_write_leaves_the_file_and_gives_the_spare_back(tmp_path, restless, monkeypatch):
    path = str(tmp_path / "keep")
    recycle_file(path, b"k" * 800)
    recycle_file(path, b"k" * 900)                        # a spare now exists

    def full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(recycledfile.os, "pwrite", full)
    with pytest.raises(OSError) as e:
        recycle_file(path, b"new")
    assert e.value.errno == errno.ENOSPC
    assert _read(path) == b"k" * 900 and os.listdir(tmp_path) == ["keep"]


def test_without_rename_exchange_it_renames_then_leaves_the_file_system_alone(
        tmp_path, monkeypatch):
    def unsupported(a, b):
        raise OSError(errno.EINVAL, "Invalid argument", a, None, b)
    monkeypatch.setattr(recycledfile, "exchange", unsupported)
    monkeypatch.setattr(recycledfile, "_devices_without_exchange", set())
    path = str(tmp_path / "f")
    replace_file(path, b"old", fsync=False)
    assert recycle_file(path, b"new")                    # the spare renamed over it
    assert _read(path) == b"new" and os.listdir(tmp_path) == ["f"]
    assert not recycle_file(path, b"newer")              # then: the ordinary way
    assert _read(path) == b"new" and os.listdir(tmp_path) == ["f"]


def test_empty_content_is_left_to_the_ordinary_write(tmp_path):
    """An empty write through the spare would not update the mtime (a heartbeat)."""
    assert not recycle_file(str(tmp_path / "heartbeat"), b"")
    assert os.listdir(tmp_path) == []


def test_a_finalised_machine_directory_loses_its_spares_unreported(tmp_path, restless):
    joboutputs = tmp_path / "joboutputs"
    joboutputs.mkdir()
    for data in (b"1", b"2"):
        recycle_file(str(joboutputs / "heartbeat"), data)
    assert (joboutputs / SPARE_NAME).exists()
    assert statefs.clean_machine_dir(str(tmp_path)) == []
    assert os.listdir(joboutputs) == ["heartbeat"]
