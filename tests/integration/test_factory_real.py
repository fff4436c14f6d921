"""`vacd --root T --once`, repeatedly, on a real 2-slot factory (integration, real_env).

TCG guests from the test ISO boot, fetch user_data, PUT nothing and power off by
themselves; the next cycles finalise them (finished, finishes/MT, counts) and start new
ones. A vacd killed with SIGKILL in the middle of a create is restarted and the factory
converges: no domain or LV without a live machine, no machine left unfinished.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.integration import vmsite
from tests.realenv import wait_for
from vac.adapters import statefs
from vac.adapters.atomicfile import read_text
from vac.paths import Paths

pytestmark = pytest.mark.integration

FACTORY = "vactest.example.com"
NAMES = [f"vactest-0{i}.example.com" for i in range(2)]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERGE_SECONDS = 240
CONF = (vmsite.ROOT_SETTINGS + vmsite.GUEST_MACHINETYPE.format(name="vactest")
        + vmsite.GUEST_MACHINETYPE.format(name="probe"))
USER_DATA = "#!/bin/sh\necho VACTEST factory user_data\n"


def _lvs(real_env) -> list:
    return [n for n in real_env.lv_names() if n in NAMES]


@pytest.fixture
def factory_root(real_env, tmp_path):
    """A --root with vac.conf, a 2-processor cpuinfo and the guest ISO; libvirt cleaned."""
    return vmsite.factory_root(real_env, tmp_path, CONF, NAMES, factory=FACTORY)


def _vacd_argv(paths: Paths) -> list:
    return [sys.executable, os.path.join(REPO, "bin", "vacd"), "--root", paths.root, "--once"]


def _once(real_env, paths: Paths) -> str:
    env_path = real_env.env.get("PYTHONPATH")
    real_env.env["PYTHONPATH"] = REPO + (os.pathsep + env_path if env_path else "")
    res = real_env.run(_vacd_argv(paths), timeout=180, netns=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stderr


def _start_servers(real_env, tmp_path) -> None:
    www = tmp_path / "www"
    (www / "latest").mkdir(parents=True)
    (www / "latest" / "user-data").write_text(USER_DATA)
    real_env.serve_http("169.254.169.254", 80, str(www))
    real_env.serve_http("169.254.169.253", 80, str(tmp_path), put_dir=str(tmp_path / "puts"))


def _machine_dirs(paths: Paths) -> list:
    return sorted(glob.glob(os.path.join(paths.machines_dir, "*_*_vactest-0*")))


def _finished(paths: Paths) -> list:
    return [d for d in _machine_dirs(paths) if os.path.exists(os.path.join(d, "finished"))]


def _live_names(paths: Paths) -> set:
    """Machines the state directory says are created and not finished."""
    live = set()
    for ordinal in range(2):
        slot = statefs.read_slot(paths, FACTORY, ordinal)
        if slot.is_used and slot.finished_time is None:
            live.add(slot.name)
    return live


def _assert_consistent(real_env, paths: Paths, hv) -> None:
    """Every domain and LV belongs to a live machine; every old machine is finished."""
    domains = {d.name for d in hv.list_domains() if d.name in NAMES}
    live = _live_names(paths)
    assert domains <= live, (domains, live)
    assert set(_lvs(real_env)) <= live, (_lvs(real_env), live)
    current = {statefs.read_slot(paths, FACTORY, o).machine_dir for o in range(2)}
    stale = [d for d in _machine_dirs(paths) if d not in current
             and not os.path.exists(os.path.join(d, "finished"))]
    assert not stale, stale


def test_once_cycles_create_finalise_and_recreate(real_env, factory_root, tmp_path):
    paths, hv = factory_root
    log = _once(real_env, paths)
    assert "LM created" in log, log
    _start_servers(real_env, tmp_path)
    first = _machine_dirs(paths)[0]
    deadline = time.monotonic() + CONVERGE_SECONDS
    while len(_finished(paths)) < 2 or len(_machine_dirs(paths)) < 3:
        assert time.monotonic() < deadline, (_machine_dirs(paths), real_env.diagnostics())
        _once(real_env, paths)
        time.sleep(1)
    assert os.path.exists(os.path.join(first, "finished"))
    assert os.path.exists(os.path.join(first, "started"))
    for rel in ("jobfeatures/job_id", "machinefeatures/shutdowntime", "ip", "console.log"):
        assert os.path.exists(os.path.join(first, rel)), rel
    types = {os.path.basename(d).split("_")[1] for d in _machine_dirs(paths)}
    assert types == {"vactest", "probe"}              # both configured machinetypes ran
    for mt in types:
        done = [d for d in _finished(paths) if os.path.basename(d).split("_")[1] == mt]
        if done:
            assert read_text(paths.finishes_file(mt)) == \
                os.path.basename(done[-1]).replace("_", " ")
    counts = statefs.read_counts(paths)
    assert counts is not None and counts[1] == 2 and counts[3] == 2
    assert "VACTEST lease ip=169.254.169." in read_text(os.path.join(first, "console.log"))
    _assert_consistent(real_env, paths, hv)


def _kill_mid_create(real_env, paths: Paths) -> list:
    """Start vacd --once and SIGKILL it after a new machine appears, before `started`.

    Returns the half-created machine directories ([] if the cycle ended first)."""
    before = set(_machine_dirs(paths))
    proc = subprocess.Popen(real_env.netns_argv(_vacd_argv(paths)), env=real_env.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            new = [d for d in _machine_dirs(paths) if d not in before]
            if new and os.path.exists(os.path.join(new[0], "jobfeatures", "job_id")) \
                    and not os.path.exists(os.path.join(new[0], "started")):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                return [d for d in new if not os.path.exists(os.path.join(d, "started"))]
            time.sleep(0.005)
        return []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_sigkill_mid_create_converges(real_env, factory_root, tmp_path):
    paths, hv = factory_root
    real_env.env["PYTHONPATH"] = REPO
    half: list = []
    for _ in range(6):
        half = _kill_mid_create(real_env, paths)
        if half:
            break
        for name in NAMES:                       # free the slots again for the next try
            hv.destroy_domain(name)
        _once(real_env, paths)
    assert half, "never caught vacd between the job_id and `started`"
    for _ in range(2):
        _once(real_env, paths)
    wait_for(lambda: all(os.path.exists(os.path.join(d, "finished")) for d in half), 5,
             what="the half-created machine to be finalised")
    _assert_consistent(real_env, paths, hv)
    assert not os.path.exists(paths.factory_error) or "creation" in read_text(paths.factory_error)
