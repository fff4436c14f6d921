"""The state directory's file system fills up while a machine is finalised (real tmpfs).

Issue "Nothing lost, nothing trusted" point 3: the factory runs real cycles on a small
tmpfs mounted as /var/lib/vac (the hypervisor is the in-memory double; the file system
is the real boundary here). The disk is filled with a real file the moment the factory
starts writing the machine's APEL record, so every write from then on gets ENOSPC from
the kernel. The machine must stay unfinalised with its slot held, check-vacd must warn,
and once the file is removed exactly one archived and one outgoing record must appear,
with no temporary file left anywhere.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import time

import pytest

from vac.adapters import statefs, statereports
from vac.adapters.atomicfile import read_text
from vac.services import accounting
from tests.daemon.vacdproc import REPO, run_env
from tests.services.factorykit import FACTORY
from tests.services.test_accounting import archived, outgoing_texts
from tests.services.test_factory_accounting import PENDING_LINE, S0, _rig, _set_draining

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")]

TMPFS_BYTES = 4 * 1024 * 1024


@pytest.fixture
def small_state_dir(paths):
    """``paths.state_dir`` on its own 4 MiB tmpfs (unmounted afterwards)."""
    os.makedirs(paths.state_dir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0755",
                    "vac-test-full", paths.state_dir], check=True)
    yield paths
    subprocess.run(["umount", "-l", paths.state_dir], check=False)


def _fill(path: str) -> None:
    """Write ``path`` until the file system is full (ENOSPC from the kernel)."""
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                block = block[:len(block) // 2]
                if not block:
                    return


def _check_vacd(paths) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vac.nagios", "--root", paths.root],
                          cwd=REPO, env=run_env(), capture_output=True, text=True, timeout=60)


def _temporary_files(root: str) -> list:
    return [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in files + dirs
            if n.startswith(".tmp-") or n.endswith(".tmp")]


def test_disk_fills_while_finalising(small_state_dir, monkeypatch, caplog):
    paths = small_state_dir
    filler = os.path.join(paths.state_dir, "filler")
    rig = _rig(paths)
    rig.cycle()
    _set_draining(paths)
    mdir = statefs.read_slot(paths, FACTORY, 0).machine_dir
    rig.vm.power_off(S0)
    real, filled = accounting.account_machine, []

    def fill_first(*args, **kwargs):
        if not filled:
            _fill(filler)
            filled.append(filler)
        return real(*args, **kwargs)
    monkeypatch.setattr(accounting, "account_machine", fill_first)
    for role in ("responder", "metadata", "mjf"):
        statereports.write_role_heartbeat(paths, role, time.time())
    caplog.set_level(logging.INFO)
    for cycle in range(3):
        caplog.clear()
        rig.cycle()
        assert os.statvfs(paths.state_dir).f_bavail == 0
        slot = statefs.read_slot(paths, FACTORY, 0)
        assert slot.machine_dir == mdir and slot.finished_time is None, cycle
        lines = [r.getMessage() for r in caplog.records if PENDING_LINE.match(r.getMessage())]
        assert len(lines) == 1 and "No space left on device" in lines[0], lines
        assert _temporary_files(paths.state_dir) == []
        res = _check_vacd(paths)
        assert res.returncode == 1 and "1 APEL record pending" in res.stdout, res.stdout
    os.unlink(filler)
    for _ in range(2):
        rig.cycle()
    assert statefs.read_slot(paths, FACTORY, 0).finished_time is not None
    (path,) = archived(paths)
    assert outgoing_texts(paths) == [read_text(path)]
    assert _temporary_files(paths.state_dir) == []
    res = _check_vacd(paths)
    assert res.returncode == 0 and "apel_records_pending=0" in res.stdout, res.stdout
