"""statefs: slot snapshots from the original's on-disk layout."""

import os

from vac.adapters import statefs


def _make_machine(paths, name="f1-03.example.com", created=1699990000, mt="lhcb"):
    statefs.ensure_state_dirs(paths)
    statefs.write_slot_file(paths, name, created, mt, "cernvm3")
    mdir = paths.machine_dir(created, mt, name)
    for sub in ("machinefeatures", "jobfeatures", "joboutputs"):
        os.makedirs(os.path.join(mdir, sub))
    files = {"started": "1699990005\n", "heartbeat": "123.5 97.3\n", "ip": "169.254.169.3",
             "jobfeatures/allocated_cpu": "2\n", "jobfeatures/job_id": "abc-uuid",
             "jobfeatures/shutdowntime_job": "1700076400", "machinefeatures/hs06": "20.0",
             "jobfeatures/max_rss_bytes": "4294967296",
             "joboutputs/shutdown_message": "300 Nothing to do\n",
             "joboutputs/hb": "x"}
    for rel, text in files.items():
        with open(os.path.join(mdir, rel), "w") as f:
            f.write(text)
    return mdir


def test_read_slot_full(paths):
    mdir = _make_machine(paths)
    rec = statefs.read_slot(paths, "f1.example.com", 3, heartbeat_file="hb")
    assert rec.name == "f1-03.example.com" and rec.machine_dir == mdir
    assert (rec.created, rec.machinetype, rec.machine_model) == (1699990000, "lhcb", "cernvm3")
    assert rec.cpu_seconds == 123.5 and rec.cpu_percentage == 97.3
    assert rec.processors == 2 and rec.hs06 == 20.0 and rec.uuid == "abc-uuid"
    assert rec.shutdown_time_job == 1700076400 and rec.max_rss_bytes == 4294967296
    assert rec.shutdown_message == "300 Nothing to do"
    assert rec.started_time and rec.heartbeat_time and rec.heartbeat_file_mtime
    assert rec.finished_time is None and rec.is_used


def test_missing_and_garbage_slot_files(paths):
    statefs.ensure_state_dirs(paths)
    assert statefs.read_slot(paths, "f1.example.com", 0).created is None
    with open(paths.slot_file("f1-01.example.com"), "w") as f:
        f.write("garbage")
    assert statefs.read_slot(paths, "f1.example.com", 1).created is None
    statefs.write_slot_file(paths, "f1-02.example.com", 5, "mt", "cernvm3")
    rec = statefs.read_slot(paths, "f1.example.com", 2)
    assert rec.created == 5 and rec.machine_dir is None and not rec.is_used


def test_counts_round_trip(paths):
    statefs.ensure_state_dirs(paths)
    statefs.write_counts(paths, 3, 8, 5, 8, 48.0)
    assert open(paths.counts).read() == "3 8 5 8 48.00\n"
    assert statefs.read_counts(paths) == (3, 8, 5, 8, 48.0)


def test_iter_machine_dirs(paths):
    mdir = _make_machine(paths)
    os.makedirs(os.path.join(paths.machines_dir, "not_a_machine"))
    assert list(statefs.iter_machine_dirs(paths)) == [
        (mdir, 1699990000, "lhcb", "f1-03.example.com")]
