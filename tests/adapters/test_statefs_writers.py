"""statefs lifecycle writers: atomic, never overwriting the machine's own message."""

from __future__ import annotations

import os
import time

import pytest

from vac.adapters import statefs, statereports
from vac.adapters.atomicfile import read_text

NAME = "f1-03.example.com"


def test_machine_dir_layout(paths):
    mdir = statefs.make_machine_dir(paths, 1700000000, "lhcb", NAME)
    assert mdir == paths.machine_dir(1700000000, "lhcb", NAME)
    assert sorted(os.listdir(mdir)) == ["jobfeatures", "joboutputs", "machinefeatures"]
    statefs.write_features(mdir, "jobfeatures", {"allocated_cpu": "2\n", "job_id": "u"})
    assert read_text(os.path.join(mdir, "jobfeatures", "allocated_cpu")) == "2\n"


def test_started_and_heartbeat_lines(paths):
    mdir = statefs.make_machine_dir(paths, 1, "lhcb", NAME)
    statefs.write_started(mdir, 1700000000.7)
    assert read_text(os.path.join(mdir, "started")) == "1700000000\n"
    assert read_text(os.path.join(mdir, "heartbeat")) == "0.0 0.0\n"
    statefs.write_heartbeat(mdir, 123.4, 97.25)
    assert read_text(os.path.join(mdir, "heartbeat")) == "123 97.2\n"
    statefs.write_heartbeat(mdir, 5, None)
    assert read_text(os.path.join(mdir, "heartbeat")) == "5\n"


def test_shutdown_message_never_overwrites_the_machines_own(paths):
    mdir = statefs.make_machine_dir(paths, 1, "lhcb", NAME)
    assert statefs.write_shutdown_message(mdir, "700 Heartbeat file not created")
    assert not statefs.write_shutdown_message(mdir, "700 other")
    target = os.path.join(mdir, "joboutputs", "shutdown_message")
    assert read_text(target) == "700 Heartbeat file not created\n"
    assert os.listdir(os.path.join(mdir, "joboutputs")) == ["shutdown_message"]


def test_finishes_points_at_most_recently_created_finished(paths):
    new = statefs.make_machine_dir(paths, 2000, "lhcb", NAME)
    old = statefs.make_machine_dir(paths, 1000, "lhcb", "f1-04.example.com")
    newest_unfinished = statefs.make_machine_dir(paths, 3000, "lhcb", "f1-05.example.com")
    other = statefs.make_machine_dir(paths, 4000, "atlas", NAME)
    statefs.write_finished(new)        # finished first, created later
    statefs.write_finished(old)
    statefs.write_finished(other)
    assert statefs.update_finishes(paths, "lhcb") == os.path.basename(new)
    assert read_text(paths.finishes_file("lhcb")) == f"2000 lhcb {NAME}"
    assert newest_unfinished and statefs.update_finishes(paths, "cms") is None


def test_machine_dir_ages_and_removal(paths):
    mdir = statefs.make_machine_dir(paths, 1, "lhcb", NAME)
    bare = statefs.make_machine_dir(paths, 2, "lhcb", NAME)
    statefs.write_heartbeat(mdir, 1, None)
    os.utime(os.path.join(mdir, "heartbeat"), (500, 500))
    assert statefs.machine_dir_ages(paths) == [(mdir, "lhcb", 500.0, False),
                                              (bare, "lhcb", None, False)]
    statefs.remove_machine_dir(paths, mdir)
    assert not os.path.exists(mdir)
    with pytest.raises(ValueError):
        statefs.remove_machine_dir(paths, paths.state_dir)


def test_factory_error_and_heartbeat(paths):
    statereports.write_role_heartbeat(paths, "factory", 1700000000)
    assert read_text(paths.heartbeat("factory")) == "1700000000\n"
    statereports.write_factory_error(paths, "LM creation fails with: x")
    assert read_text(paths.factory_error) == "LM creation fails with: x\n"
    statereports.clear_factory_error(paths)
    statereports.clear_factory_error(paths)
    assert not os.path.exists(paths.factory_error)


def _touch(path, age=0.0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()
    t = time.time() - age
    os.utime(path, (t, t))


def test_temporaries_of_interrupted_writes_are_removed(paths):
    statefs.ensure_state_dirs(paths)
    mdir = statefs.make_machine_dir(paths, 1, "lhcb", NAME)
    left = [os.path.join(mdir, ".tmp-a"), os.path.join(mdir, "jobfeatures", ".tmp-b"),
            os.path.join(mdir, "apel-record", ".tmp-c")]
    for path in left:
        _touch(path)
    _touch(os.path.join(mdir, "joboutputs", "keep.tmp-not"))
    assert sorted(statefs.clean_machine_dir(mdir)) == sorted(left)
    assert os.path.exists(os.path.join(mdir, "joboutputs", "keep.tmp-not"))
    now = time.time()
    _touch(os.path.join(paths.slots_dir, ".tmp-s"))
    _touch(os.path.join(paths.finishes_dir, ".tmp-f"))
    _touch(os.path.join(paths.state_dir, ".tmp-old"), age=120)
    _touch(os.path.join(paths.state_dir, ".tmp-new"))        # a role's write, maybe live
    removed = statefs.remove_interrupted_writes(paths, now)
    assert sorted(os.path.basename(p) for p in removed) == [".tmp-f", ".tmp-old", ".tmp-s"]
    assert os.path.exists(os.path.join(paths.state_dir, ".tmp-new"))



def test_atomic_write_temporaries_are_private_and_never_follow_a_planted_name(tmp_path,
                                                                               monkeypatch):
    """make_temp keeps tempfile.mkstemp's contract (without loading tempfile into every
    role): a new 0600 file; a name already taken, even by a symlink, is skipped."""
    from vac.adapters import atomicfile
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    names = iter([b"\x01" * 6, b"\x01" * 6, b"\x02" * 6])
    monkeypatch.setattr(atomicfile.os, "urandom", lambda n: next(names))
    fd, first = atomicfile.make_temp(str(tmp_path))
    os.close(fd)
    assert os.path.basename(first) == atomicfile.TEMP_PREFIX + "01" * 6
    assert os.stat(first).st_mode & 0o777 == 0o600
    os.unlink(first)
    os.symlink(victim, first)                   # planted where the next name will be
    fd, second = atomicfile.make_temp(str(tmp_path))
    with os.fdopen(fd, "w") as f:
        f.write("temporary")
    assert os.path.basename(second) == atomicfile.TEMP_PREFIX + "02" * 6
    assert victim.read_text() == "untouched"
