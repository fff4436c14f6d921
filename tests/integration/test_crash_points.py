"""kill -9 of a real vacd at every named point of creation and reaping (real guests).

Issue "Nothing lost, nothing trusted" point 3. A real vacd (all four roles, so guests
get their metadata and MJF from vac itself) runs on a 2-slot factory whose guests are
the busybox test ISO: no user_data (404), so each boots and powers off within seconds
and every one passes fizzle (fizzle_seconds = 0). Every point of ``crashglue.POINTS``
is armed at once; each fires once, the first time the factory reaches it, killing the
factory, the vacd parent or both with SIGKILL; the test restarts vacd whenever the
parent is gone. When all have fired the factory drains. After convergence: no domain,
logical volume or temporary file is left, every machine is finalised, each machine
that started has exactly one archived and one outgoing APEL record, and apel-sync
counts each once from the day summaries.
"""

from __future__ import annotations

import fcntl
import glob
import os
import signal
import subprocess
import sys
import time

import pytest
from dirq.QueueSimple import QueueSimple

from tests.integration import crashglue
from tests.integration import vmsite
from vac.adapters import apelspool
from vac.adapters.atomicfile import read_text
from vac.core import apel
from vac.paths import Paths
from vac.services import accounting

pytestmark = pytest.mark.integration

FACTORY = "vaccrash.example.com"
NAMES = [f"vaccrash-0{i}.example.com" for i in range(2)]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRE_SECONDS = 600          # every point fired (a guest lives ~5-10 s on TCG; 70-200 s
                            # usually, the bound is for a heavily loaded machine)
DRAIN_SECONDS = 120
CONF = (vmsite.ROOT_SETTINGS + "gocdb_sitename = UKI-CRASH\nhs06_per_processor = 10.0\n"
        "cycle_seconds = 1\n" + vmsite.GUEST_MACHINETYPE.format(name="crash"))


@pytest.fixture
def crash_root(real_env, tmp_path):
    """A --root with vac.conf, a 2-processor cpuinfo and the guest ISO; libvirt cleaned."""
    return vmsite.factory_root(real_env, tmp_path, CONF, NAMES, factory=FACTORY)


class VacdRuns:
    """Starts vacd (again) in the netns with the crash points armed."""

    def __init__(self, real_env, paths: Paths, flags: str, log: str):
        self.real_env, self.paths, self.flags, self.log = real_env, paths, flags, log
        self.proc = None
        self.starts = 0

    def start(self, armed) -> None:
        env = dict(self.real_env.env, PYTHONPATH=REPO, VAC_TEST_CRASH_AT=",".join(armed),
                   VAC_TEST_CRASH_DIR=self.flags)
        argv = [sys.executable, os.path.join(REPO, "bin", "vacd"), "--root", self.paths.root,
                "--foreground", "--role-registry", "tests.integration.crashglue:REGISTRY"]
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(self.real_env.netns_argv(argv), env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.starts += 1

    def parent_gone(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def wait_all_gone(self, timeout: float = 60) -> None:
        """Until no vacd process of this root holds the pidfile lock (roles included)."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.paths.vacd_pidfile, "a+") as f:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    pass
            assert time.monotonic() < deadline, "vacd's roles did not stop"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.wait_all_gone()


def _machine_dirs(paths: Paths) -> list:
    return sorted(glob.glob(os.path.join(paths.machines_dir, "*_crash_vaccrash-0*")))


def _drained(paths: Paths, hv) -> bool:
    domains = [d for d in hv.list_domains() if d.name in NAMES]
    return not domains and all(os.path.exists(os.path.join(d, "finished"))
                               for d in _machine_dirs(paths))


def _outgoing(paths: Paths) -> list:
    queue, texts = QueueSimple(paths.apel_outgoing), []
    for element in queue:
        if queue.lock(element):
            data = queue.get(element)
            texts.append(data.decode() if isinstance(data, bytes) else data)
            queue.unlock(element)
    return texts


def _archived(paths: Paths) -> list:
    return [read_text(p) for p in glob.glob(os.path.join(paths.apel_archive, "*", "*"))
            if apel.is_record_file_name(os.path.basename(p))]


def _job_ids(texts) -> list:
    return sorted(apel.header_values(t, ("LocalJobId",))["LocalJobId"] for t in texts)


def _leftovers(paths: Paths) -> list:
    """Temporary files, half-made records, owed markers and leftover disks."""
    found = []
    for d, dirs, files in os.walk(paths.state_dir):
        for n in files + dirs:
            if n.startswith((".tmp-", "root.disk.")) or n.endswith(".tmp") or \
                    n == "apel-owed":
                found.append(os.path.join(d, n))
    return found


def _diagnostics(paths: Paths, log: str) -> str:
    text = [read_text(log) or ""]
    for role in ("supervisor", "factory"):
        text.append((read_text(paths.log_file(role)) or "")[-6000:])
    return "\n".join(text)


def test_kill_9_at_every_point_of_create_and_reap_loses_and_leaves_nothing(
        real_env, crash_root, tmp_path):
    paths, hv = crash_root
    flags = str(tmp_path / "fired")
    os.makedirs(flags)
    runs = VacdRuns(real_env, paths, flags, str(tmp_path / "vacd.out"))
    armed = crashglue.available()
    real_env.add_cleanup(runs.stop)
    runs.start(armed)
    deadline = time.monotonic() + FIRE_SECONDS
    while set(os.listdir(flags)) != set(armed):
        assert time.monotonic() < deadline, (
            f"not fired: {sorted(set(armed) - set(os.listdir(flags)))}\n"
            + _diagnostics(paths, runs.log))
        if runs.parent_gone():
            runs.wait_all_gone()
            runs.start(armed)
        time.sleep(0.2)
    runs.stop()                        # the last point may have been a parent-only kill
    fired_after = time.monotonic() - deadline + FIRE_SECONDS
    os.makedirs(os.path.dirname(paths.run_vac_conf), exist_ok=True)
    with open(paths.run_vac_conf, "w") as f:
        f.write("[settings]\ndraining = yes\n")
    runs.start(())
    deadline = time.monotonic() + DRAIN_SECONDS
    while not _drained(paths, hv):
        assert time.monotonic() < deadline, _diagnostics(paths, runs.log)
        time.sleep(0.5)
    time.sleep(2.5)                    # one more cycle: pending records completed
    runs.stop()
    drained_after = time.monotonic() - deadline + DRAIN_SECONDS
    print(f"crash points: all {len(armed)} fired after {fired_after:.0f} s, "
          f"{runs.starts} vacd starts, drained {drained_after:.0f} s later")
    assert runs.starts > 3                              # parent kills really happened
    assert not [n for n in real_env.lv_names() if n in NAMES]
    assert not [d.name for d in hv.list_domains() if d.name in NAMES]
    assert _leftovers(paths) == []
    started = sorted(read_text(os.path.join(d, "jobfeatures", "job_id")).strip()
                     for d in _machine_dirs(paths)
                     if os.path.exists(os.path.join(d, "started")))
    assert len(started) >= 2, _machine_dirs(paths)
    assert _job_ids(_archived(paths)) == started
    assert _job_ids(_outgoing(paths)) == started
    assert apelspool.pending_dirs(paths.machines_dir) == []
    for rescan in (False, True):        # the day summaries survived the kills, or are redone
        total = 0
        for month in {os.path.basename(d)[:6] for d in glob.glob(
                os.path.join(paths.apel_archive, "*"))}:
            total += sum(accounting.count_month(paths, month, print, rescan)[1].values())
        assert total == len(started)
