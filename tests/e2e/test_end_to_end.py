"""End to end: the ``make demo`` path, unattended, on the real environment (integration).

``python -m vacdemo.demo run`` writes the embedded demo configuration (3 slots, machinetypes
``work`` 2 : ``idle`` 1, TCG guests from the test ISO) and runs a real vacd (all four roles)
inside the namespace. Real guests boot, take user_data from vac's metadata service, read
MJF, PUT heartbeats and a shutdown message through JOBOUTPUTS and power off; the factory
finalises each, accounts the ones that passed fizzle in APEL, and backs ``idle`` off after
its ``300 Nothing to do``. While vacd runs, ``vac machines --json`` (the real responder)
must match the files and ``check-vacd`` must say OK. A real Prometheus server in the
namespace scrapes vacd's metrics role: through its query API it must see the machines
the files show running while real guests run, and after the demo path the counters of
creations, finishes by code and APEL records must equal what is on disk. Ctrl-C (SIGINT) stops the demo and
vacd cleanly. Each guest's timeline is printed and written to $TESTENV_DIR/e2e_timeline.txt.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional

import pytest

from tests.e2e import metricscheck
from tests.realenv import console_tail
from vacdemo import democontainer, demo
from vac.adapters import statefs
from vacdemo.demowatch import read_events, record_field, split_dir_name, timeline, timeline_text
from vac.paths import Paths

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Written where the run happens; bench/results/e2e_timeline.txt holds a committed copy.
# Set VAC_E2E_TIMELINE=bench/results/e2e_timeline.txt to refresh that copy.
TIMELINE_FILE = os.environ.get("VAC_E2E_TIMELINE") or os.path.join(
    os.environ.get("TESTENV_DIR", "/var/tmp/vac-test-env"), "e2e_timeline.txt")
GOAL_SECONDS = 360          # the goal below must be reached within this
DEMO_SECONDS = 420          # the demo stops by itself after this, whatever happens
STOP_SECONDS = 60           # SIGINT -> demo and vacd gone
FIZZLE = demo.fizzle_seconds()
BACKOFF = {name: b for name, _s, _f, b, _q in demo.MACHINETYPES}
CONT = democontainer.NAME
MESSAGES = {"work": "200 Success", "idle": "300 Nothing to do", CONT: "200 Success"}


class Machine:
    """One machine directory's files."""

    def __init__(self, mdir: str):
        self.dir = mdir
        self.created, self.machinetype, self.name = split_dir_name(os.path.basename(mdir))

    def path(self, *rel: str) -> str:
        return os.path.join(self.dir, *rel)

    def ctime(self, *rel: str) -> Optional[float]:
        try:
            return os.stat(self.path(*rel)).st_ctime
        except OSError:
            return None

    def text(self, *rel: str) -> str:
        try:
            with open(self.path(*rel), "rb") as f:
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""

    @property
    def finished(self) -> bool:
        return self.ctime("finished") is not None

    @property
    def message(self) -> str:
        return self.text("joboutputs", "shutdown_message")

    @property
    def ran_seconds(self) -> Optional[float]:
        """heartbeat time - start time, as accounting and fizzle see it."""
        started, heartbeat = self.ctime("started"), self.ctime("heartbeat")
        return None if started is None or heartbeat is None else heartbeat - started

    @property
    def passed_fizzle(self) -> bool:
        ran = self.ran_seconds
        return ran is not None and ran >= FIZZLE[self.machinetype]


def machines(paths: Paths) -> List[Machine]:
    dirs = glob.glob(os.path.join(paths.machines_dir, "*_*_*"))
    return sorted((Machine(d) for d in dirs if split_dir_name(os.path.basename(d))),
                  key=lambda m: (m.created, m.name))


def archive_records(paths: Paths) -> List[str]:
    texts = []
    for path in sorted(glob.glob(os.path.join(paths.apel_archive, "*", "*"))):
        with open(path) as f:
            texts.append(f.read())
    return texts


def outgoing_records(paths: Paths) -> List[str]:
    """Job records in the outgoing queue, read as ssmsend does (dirq QueueSimple)."""
    from dirq.QueueSimple import QueueSimple
    queue = QueueSimple(paths.apel_outgoing)
    texts = []
    for name in queue:
        if queue.lock(name):
            body = queue.get(name)
            queue.unlock(name)
            texts.append(body.decode() if isinstance(body, bytes) else body)
    return [t for t in texts if t.startswith("APEL-individual-job-message")]


def containers_on(paths: Paths) -> bool:
    """The demo runs its container machinetype (podman can be used here)."""
    return bool(demo.read_state(paths.root).get("container_image"))


def goal_reached(paths: Paths) -> bool:
    """>= 4 finalised VMs, two of them accounted work machines, an idle one backed off;
    and a finalised, accounted container if the demo runs them."""
    done = [m for m in machines(paths) if m.finished]
    work = [m for m in done if m.machinetype == "work" and m.message == MESSAGES["work"]]
    idle = [m for m in done if m.machinetype == "idle" and m.message == MESSAGES["idle"]]
    cont = [m for m in done if m.machinetype == CONT and m.message == MESSAGES[CONT]]
    vms = [m for m in done if m.machinetype != CONT]
    accounted = len(archive_records(paths))
    return len(vms) >= 4 and len(work) >= 2 and len(idle) >= 1 \
        and accounted >= 2 + len(cont) and (len(cont) >= 1 or not containers_on(paths)) \
        and "backing off after abort" in _read(paths.log_file("factory"))


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def run_in_netns(real_env, argv: List[str]) -> subprocess.CompletedProcess:
    bindir = os.path.dirname(sys.executable)
    return real_env.run([os.path.join(bindir, argv[0]), *argv[1:]], timeout=60, netns=True,
                        check=False)


def check_vac_machines_matches_disk(real_env, paths: Paths, factory: str) -> dict:
    """``vac machines --json`` against the running responder == the slot files (retried:
    a cycle may change a slot between the answer and the look at the files)."""
    problems: List[str] = []
    for _ in range(5):
        res = run_in_netns(real_env, ["vac", "--root", paths.root, "--json", "machines"])
        assert res.returncode == 0, res.stdout + res.stderr
        replies = json.loads(res.stdout)
        problems = []
        for reply in replies:
            ordinal = int(reply["machine"].split(".", 1)[0].rsplit("-", 1)[1])
            slot = statefs.read_slot(paths, factory, ordinal, heartbeat_file="heartbeat")
            assert reply["factory"] == factory
            if reply.get("machinetype") == CONT:      # vac machines shows the kind
                assert reply.get("machine_model") == "docker", reply
            if reply["machine"] != slot.name or reply.get("machinetype") != slot.machinetype \
                    or reply.get("uuid") != slot.uuid:
                problems.append(f"{reply} != {slot}")
        if len(replies) == demo.SLOTS and not problems:
            return {r["machine"]: r for r in replies}
        time.sleep(1)
    raise AssertionError("vac machines --json does not match the files: "
                         + "; ".join(problems))


def diagnostics(real_env, paths: Paths, demo_out: str) -> str:
    """Everything needed to understand a failure: demo output, consoles, vacd logs."""
    parts = ["==== demo output ====", _read(demo_out)[-6000:]]
    for m in machines(paths):
        parts.append(console_tail(m.path("console.log"), 60))
    for role in ("supervisor", "factory", "responder", "metadata", "mjf", "console"):
        text = _read(paths.log_file(role)).splitlines()[-120:]
        parts.append(f"==== {paths.log_file(role)} (last {len(text)} lines) ====")
        parts.extend(text)
    parts.append(real_env.diagnostics())
    return "\n".join(parts)


def start_demo(real_env, root: str, out: str, extra: List[str] = ()) -> subprocess.Popen:
    env = dict(os.environ, TESTENV_DIR=real_env.testenv_dir, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    with open(out, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "vacdemo.demo", "run", "--root", root,
                                 "--no-lock", "--duration", str(DEMO_SECONDS), *extra],
                                stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env)


@pytest.fixture
def demo_run(real_env, tmp_path):
    root = str(tmp_path / "demo")
    out = str(tmp_path / "demo.out")
    proc = start_demo(real_env, root, out)

    def stop_and_clean():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        assert demo.clean(root, lock=False) == 0
    real_env.add_cleanup(stop_and_clean)
    return proc, Paths.from_root(root), out


def wait_for_goal(proc: subprocess.Popen, paths: Paths, start: float) -> float:
    """Poll until goal_reached; returns the seconds since ``start`` (monotonic)."""
    while not goal_reached(paths):
        assert proc.poll() is None, f"the demo exited early with status {proc.returncode}"
        assert time.monotonic() - start < GOAL_SECONDS, \
            f"goal not reached within {GOAL_SECONDS} s"
        time.sleep(2)
    return time.monotonic() - start


@pytest.fixture
def prom(real_env, tmp_path):
    """A real Prometheus server in the namespace, scraping the demo's metrics address."""
    server = metricscheck.PrometheusServer(real_env, str(tmp_path / "prometheus"))
    real_env.add_cleanup(server.stop)
    return server


def test_demo_factory_end_to_end(real_env, demo_run, prom):
    proc, paths, out = demo_run
    start = time.monotonic()
    try:
        prom.wait_ready()

        def alive() -> None:
            assert proc.poll() is None, f"the demo exited early with status {proc.returncode}"
        metricscheck.wait_prometheus_sees_running_guests(prom, lambda: machines(paths), alive)
        took = wait_for_goal(proc, paths, start)
        factory = demo.read_state(paths.root)["factory"]
        check_vac_machines_matches_disk(real_env, paths, factory)
        res = run_in_netns(real_env, ["check-vacd", "--root", paths.root])
        assert res.returncode == 0 and res.stdout.startswith("VACD OK"), res.stdout
        scrape = metricscheck.check_counters_equal_disk(
            real_env.netns, paths, lambda: machines(paths),
            lambda: len(archive_records(paths)))
        metricscheck.check_scrape(scrape)
        assert {"VacFactoryNotCycling", "VacRoleRestarting"} <= set(prom.rules_healthy())
        proc.send_signal(signal.SIGINT)                     # Ctrl-C
        assert proc.wait(STOP_SECONDS) == 0, "the demo did not stop cleanly"
        assert "vacd stopped (exit status 0)" in _read(out)
        check_guests(paths)
        check_shares_and_backoff(paths)
        check_apel(paths)
    except (AssertionError, TimeoutError, subprocess.TimeoutExpired) as e:
        pytest.fail(f"{e}\n{diagnostics(real_env, paths, out)}", pytrace=False)
    write_timeline(paths, took)


def check_containers(paths: Paths, done: List[Machine]) -> None:
    """Every finalised container read MJF from /etc/machinefeatures and over HTTP and
    reported through JOBOUTPUTS; ``vac machines`` showed it as a container."""
    for m in done:
        mjf = m.text("joboutputs", "mjf")
        assert "from /etc/machinefeatures: hs06=10.0 allocated_cpu=1" in mjf, (m.dir, mjf)
        assert "over HTTP: hs06=10.0 allocated_cpu=1" in mjf, (m.dir, mjf)
        assert m.message == MESSAGES[CONT] and " container step " in \
            m.text("joboutputs", "heartbeat"), m.dir
        assert len(m.text("jobfeatures", "job_id")) == 64, m.dir       # the container ID


def check_guests(paths: Paths) -> None:
    """Every finalised guest booted, was contextualised and reported through JOBOUTPUTS."""
    every = [m for m in machines(paths) if m.finished]
    check_containers(paths, [m for m in every if m.machinetype == CONT])
    done = [m for m in every if m.machinetype != CONT]
    assert len(done) >= 4, [m.name for m in done]
    for m in done:
        console = _read(m.path("console.log"))
        where = f"{m.dir}\n{console_tail(m.path('console.log'), 40)}"
        assert "VACTEST user_data fetched" in console, where
        assert "VACDEMO MJF allocated_cpu=1 wall_limit_secs=600 hs06=10" in console, where
        assert "VACDEMO put heartbeat: HTTP/1.1 201" in console, where
        assert "VACDEMO put shutdown_message: HTTP/1.1 201" in console, where
        assert m.message == MESSAGES[m.machinetype], where
        assert m.ctime("joboutputs", "heartbeat") is not None, where
        assert m.text("jobfeatures", "job_id"), where


def check_shares_and_backoff(paths: Paths) -> None:
    """work (share 2) gets machines; idle (share 1, 300) is held back after each abort."""
    every = machines(paths)
    work = [m for m in every if m.machinetype == "work"]
    idle = [m for m in every if m.machinetype == "idle"]
    assert len(work) >= 2 and len(work) >= len(idle), ([m.name for m in work],
                                                       [m.name for m in idle])
    log = _read(paths.log_file("factory"))
    assert "For idle: " in log and "not eligible: backing off after abort" in log
    assert not any("For work: " in line and "backing off" in line
                   for line in log.splitlines())
    for before, after in zip(idle, idle[1:]):
        aborted = before.ctime("joboutputs", "shutdown_message")
        if aborted is not None and aborted < after.created:
            assert after.created >= int(aborted) + BACKOFF["idle"] - 1, \
                (f"{after.name} created {after.created - aborted:.0f} s after the abort "
                 f"of {before.name}; backoff_seconds is {BACKOFF['idle']}")
    span = max(m.created for m in every) - min(m.created for m in every)
    assert len(idle) <= 2 + span // BACKOFF["idle"], "idle was not backed off"


def check_apel(paths: Paths) -> None:
    """Exactly one record (archive and outgoing queue) per finalised machine that ran at
    least fizzle_seconds; none for the others."""
    archive = [record_field(t, "LocalJobId") for t in archive_records(paths)]
    outgoing = [record_field(t, "LocalJobId") for t in outgoing_records(paths)]
    done = [m for m in machines(paths) if m.finished]
    assert any(m.passed_fizzle for m in done)
    for m in done:
        job_id = m.text("jobfeatures", "job_id")
        want = 1 if m.passed_fizzle else 0
        assert archive.count(job_id) == want, (m.name, m.ran_seconds, archive)
        assert outgoing.count(job_id) == want, (m.name, m.ran_seconds, outgoing)
    for m in done:
        if m.passed_fizzle:
            assert m.machinetype in ("work", CONT)
        if m.machinetype == CONT and m.passed_fizzle:      # CPU time from the container
            record = [t for t in archive_records(paths)
                      if record_field(t, "LocalJobId") == m.text("jobfeatures", "job_id")]
            assert int(record_field(record[0], "CpuDuration")) >= 1, record
    assert len(archive) == len(set(archive)) and len(outgoing) == len(set(outgoing))


def write_timeline(paths: Paths, took: float) -> None:
    rows = [r for r in timeline(paths, os.path.join(paths.root, demo.EVENTS_FILE))
            if r["finalised"]]
    uname = os.uname()
    text = (f"# e2e timeline (tests/e2e/test_end_to_end.py), "
            f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}, host {uname.nodename} "
            f"{uname.machine} cpus={os.cpu_count()}, TCG guests, 3 slots, cycle_seconds 5\n"
            f"# goal (>= 4 finalised guests, 2 accounted, idle backed off) reached after "
            f"{took:.0f} s\n" + timeline_text(rows) + "\n")
    os.makedirs(os.path.dirname(TIMELINE_FILE), exist_ok=True)
    with open(TIMELINE_FILE, "w") as f:
        f.write(text)
    print("\n" + text)
    assert all(r["first_heartbeat"] for r in rows), read_events(
        os.path.join(paths.root, demo.EVENTS_FILE))
