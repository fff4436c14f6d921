"""vacd as a real process in a --root tree, with stand-in roles (tests/daemon/standin_roles.py).

Covers checklist rows 28-31: four named roles in three processes (the responder runs in
vacd-factory), per-role logs in the vac line format, restart of a killed child, SIGTERM
leaving machines running, SIGHUP, one vacd at a time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import psutil
import pytest

from tests.daemon.vacdproc import (REPO, Vacd, log_text, make_root, run_env, vacd_argv,
                                   wait_for)

ROLES = ("factory", "responder", "metadata", "mjf")
PROCESSES = ("factory", "metadata", "mjf")     # the responder is a thread of vacd-factory
HOST = {"responder": "factory"}
LINE = re.compile(r"^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \[\d+\]: ")


@pytest.fixture
def root(paths):
    make_root(paths)
    return paths


@pytest.fixture
def vacd(root):
    d = Vacd(root)
    yield d
    d.kill()
    _kill_machine(root)


def _machine_pid(paths):
    try:
        with open(paths.state("standin-machine.pid"), encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _kill_machine(paths):
    pid = _machine_pid(paths)
    if pid and psutil.pid_exists(pid):
        os.kill(pid, signal.SIGKILL)


def test_runs_four_named_roles_in_three_processes_with_heartbeats_and_logs(vacd, root):
    kids = vacd.wait_roles(PROCESSES)
    assert set(kids) == {f"vacd-{p}" for p in PROCESSES}
    for role in ROLES:
        process = HOST.get(role, role)
        wait_for(lambda: os.path.exists(root.heartbeat(role)), what=f"{role} heartbeat")
        proc = psutil.Process(kids[f"vacd-{process}"])
        assert proc.name() == f"vacd-{process}"                 # kernel comm (ps -o comm)
        assert proc.cmdline()[0].startswith(f"vacd-{process}")   # ps title
        text = wait_for(lambda: log_text(root, role), what=f"{role} log")
        assert all(LINE.match(line) for line in text.splitlines()), text
        assert f"vacd-{role} starting" in text
        assert f"vacd-{process} starting" in log_text(root, process)
        with open(root.pidfile(role), encoding="ascii") as f:
            assert int(f.read()) == kids[f"vacd-{process}"]
    assert "vacd-factory starting" not in log_text(root, "responder")   # logs kept apart
    sup = log_text(root, "supervisor")
    assert "vacd-factory started as pid" in sup
    assert "vacd-factory also runs responder in threads of its own" in sup
    assert LINE.match(sup.splitlines()[0])
    with open(root.vacd_pidfile, encoding="ascii") as f:
        assert int(f.read()) == vacd.proc.pid


def test_restarts_a_killed_child_and_logs_why(vacd, root):
    old = vacd.wait_roles(PROCESSES)["vacd-mjf"]
    wait_for(lambda: "vacd-mjf started" in log_text(root, "supervisor"), what="start lines")
    # logrotate moves the log away: the next line must go to a new file (row 29)
    os.rename(root.log_file("supervisor"), root.log_file("supervisor") + ".1")
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: (lambda p: p if p and p != old else None)(
        vacd.children().get("vacd-mjf")), what="a new mjf")
    assert new != old
    sup = log_text(root, "supervisor")
    assert f"vacd-mjf (pid {old}) killed by SIGKILL" in sup
    assert "restarting in 1 s" in sup
    assert "vacd-factory started" not in sup        # those lines stayed in the old file
    with open(root.log_file("supervisor") + ".1", encoding="utf-8") as f:
        assert "vacd-factory started" in f.read()


def test_a_killed_factory_process_comes_back_with_its_responder(vacd, root):
    old = vacd.wait_roles(PROCESSES)["vacd-factory"]
    wait_for(lambda: "vacd-responder starting" in log_text(root, "responder"),
             what="responder start")
    wait_for(lambda: _machine_pid(root), what="stand-in machine")   # else it is orphaned
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: (lambda p: p if p and p != old else None)(
        vacd.children().get("vacd-factory")), what="a new factory")
    wait_for(lambda: log_text(root, "responder").count("vacd-responder starting") == 2,
             what="the responder started again")
    with open(root.pidfile("responder"), encoding="ascii") as f:
        assert int(f.read()) == new


def test_a_crashing_hosted_role_is_restarted_in_its_thread(root):
    """The responder's code cannot be loaded: its thread logs it and retries with
    back-off; the factory in the same process is not disturbed."""
    d = Vacd(root, "--roles", "factory,responder",
             registry="tests.daemon.standin_roles:MISSING")
    try:
        factory = d.wait_roles(["factory"])["vacd-factory"]
        wait_for(lambda: log_text(root, "responder").count("cannot start") >= 2,
                 what="two failed responder starts")
        text = log_text(root, "responder")
        assert "(a thread of this process) ended (exit code 3); restarting it in 1 s" in text
        assert d.children().get("vacd-factory") == factory
        assert os.path.exists(root.heartbeat("factory"))
        assert "cannot start" not in log_text(root, "factory")
    finally:
        assert d.stop() == 0
        _kill_machine(root)


def test_sigterm_stops_roles_but_leaves_machines_running(vacd, root):
    kids = vacd.wait_roles(PROCESSES)
    machine = wait_for(lambda: _machine_pid(root), what="stand-in machine")
    assert vacd.stop() == 0
    for pid in kids.values():
        assert not psutil.pid_exists(pid) or \
            psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert psutil.pid_exists(machine)
    assert psutil.Process(machine).status() != psutil.STATUS_ZOMBIE
    assert "machines are left running" in log_text(root, "supervisor")
    assert "vacd-factory stopped" in log_text(root, "factory")
    assert "vacd-responder stopped" in log_text(root, "responder")
    assert not os.path.exists(root.pidfile("factory"))
    assert not os.path.exists(root.pidfile("responder"))


def test_sighup_reaches_every_role(vacd, root):
    vacd.wait_roles(PROCESSES)
    for role in ROLES:
        wait_for(lambda: os.path.exists(root.heartbeat(role)), what=f"{role} heartbeat")
    with open(root.etc_vac_conf, "a", encoding="utf-8") as f:
        f.write("total_processors = many\n")
    vacd.proc.send_signal(signal.SIGHUP)
    for role in ROLES:
        wait_for(lambda: os.path.exists(root.state(f"{role}-reloads")),
                 what=f"{role} reload")
    sup = log_text(root, "supervisor")
    assert "SIGHUP" in sup and "the configuration is invalid" in sup
    assert "total_processors" in sup
    assert vacd.proc.poll() is None               # an invalid reload never stops vacd


def test_second_vacd_refuses_to_start(vacd, root):
    vacd.wait_roles(PROCESSES)
    second = subprocess.run(vacd_argv(root, "--foreground"), cwd=REPO, env=run_env(),
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert f"pid {vacd.proc.pid}" in second.stderr
    assert vacd.proc.poll() is None


def test_missing_or_crashing_role_is_retried_not_fatal(root):
    d = Vacd(root, "--roles", "responder,metadata",
             registry="tests.daemon.standin_roles:MISSING")
    try:
        wait_for(lambda: log_text(root, "responder").count("cannot start") >= 2,
                 what="two failed responder starts")
        wait_for(lambda: "stand-in role crashed" in log_text(root, "metadata"),
                 what="metadata traceback")
        sup = log_text(root, "supervisor")
        assert "role code could not be loaded" in sup
        assert "role raised an exception" in sup
        assert d.proc.poll() is None
    finally:
        assert d.stop() == 0


def test_roles_subset_and_bad_roles(root):
    bad = subprocess.run(vacd_argv(root, "--foreground", "--roles", "factory,bogus"),
                         cwd=REPO, env=run_env(), capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "--roles" in bad.stderr
    d = Vacd(root, "--roles", "mjf")
    try:
        d.wait_roles(["mjf"])
        assert set(d.children()) == {"vacd-mjf"}
    finally:
        assert d.stop() == 0


def test_daemonises_without_foreground(root):
    started = subprocess.run(vacd_argv(root), cwd=REPO, env=run_env(),
                             capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr

    def daemon_pid():
        try:
            with open(root.vacd_pidfile, encoding="ascii") as f:
                pid = int(f.read())
        except (OSError, ValueError):
            return None
        return pid if pid != started.returncode and psutil.pid_exists(pid) else None
    pid = wait_for(daemon_pid, what="daemon pidfile")
    try:
        proc = psutil.Process(pid)
        wait_for(lambda: len(proc.children()) == 3, what="three children")
        assert proc.name() == "vacd"
        assert proc.ppid() != os.getpid()          # detached from the test process
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not psutil.pid_exists(pid) or
                 psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, what="daemon exit")
        _kill_machine(root)
    assert "vacd stopped" in log_text(root, "supervisor")


def test_without_python_daemon_only_foreground_starts(root, tmp_path):
    """python-daemon is optional (vac.spec Recommends): without it vacd says so and
    exits 1 instead of crashing; --foreground, as under systemd, does not need it."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "daemon.py").write_text("raise ImportError('python-daemon hidden by the test')\n")
    env = run_env()
    env["PYTHONPATH"] = f"{hide}{os.pathsep}{env['PYTHONPATH']}"
    res = subprocess.run(vacd_argv(root), cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 1
    assert "python-daemon is not installed: run vacd --foreground" in res.stderr
    assert not os.path.exists(root.vacd_pidfile)


INVALID_CONF = ("[settings]\nvac_space = vac01.example.com\n"
                "factory_hostname = factory1.example.com\ntotal_processors = many\n")


def _notify_socket(paths):
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = os.path.join(paths.root, "notify.sock")
    sock.bind(path)
    sock.settimeout(0.2)
    return sock, path


def _messages(sock):
    import socket
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except socket.timeout:
            return out


def test_invalid_configuration_starts_every_role_and_tells_systemd(paths):
    """Point 4: vacd starts on an invalid configuration; READY=1 and STATUS= go to a real
    $NOTIFY_SOCKET, and STATUS follows the factory's config-error file."""
    from vac.adapters import statereports
    make_root(paths, INVALID_CONF)
    sock, path = _notify_socket(paths)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        d = Vacd(paths)
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        d.wait_roles(PROCESSES)
        got = wait_for(lambda: [m for m in _messages(sock) if "READY=1" in m], what="READY")
        assert got[0].startswith("READY=1\nSTATUS=running (factory, responder, metadata, mjf)")
        statereports.write_config_report(paths, ["etc/vac.conf:4: [settings] total_processors: "
                                            "'many' is not valid"], {})
        status = wait_for(lambda: [m for m in _messages(sock) if "STATUS=invalid" in m],
                          what="STATUS with the problem")
        assert status[0] == ("STATUS=invalid configuration, no machines are created: "
                             "etc/vac.conf:4: [settings] total_processors: 'many' is not valid")
        assert "the configuration is invalid (1 problem(s), the first: " in \
            log_text(paths, "supervisor")
    finally:
        code = d.stop()
        _kill_machine(paths)              # the stand-in factory's machine
    assert code == 0
    assert "invalid configuration (1 problem(s))" in d.proc.stderr_text
    assert "STOPPING=1" in "".join(_messages(sock))
    sock.close()


def test_no_state_directory_refuses_to_start(paths):
    os.makedirs(os.path.dirname(paths.etc_vac_conf))
    with open(paths.etc_vac_conf, "w") as f:
        f.write(INVALID_CONF)
    res = subprocess.run(vacd_argv(paths, "--foreground"), cwd=REPO, env=run_env(),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert f"the state directory {paths.state_dir} does not exist" in res.stderr
    assert not os.path.exists(paths.state_dir)


def test_once_runs_one_cycle_in_the_foreground(root):
    res = subprocess.run(vacd_argv(root, "--once"), cwd=REPO, env=run_env(),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert os.path.exists(root.state("standin-once"))
    assert "stand-in cycle ran" in res.stderr and LINE.match(res.stderr)


def test_once_reports_a_failed_cycle(root):
    res = subprocess.run(vacd_argv(root, "--once",
                                   registry="tests.daemon.standin_roles:MISSING"),
                         cwd=REPO, env=run_env(), capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "factory cycle failed" in res.stderr
    assert "RuntimeError: stand-in cycle crashed on purpose" in res.stderr


def test_once_is_refused_while_vacd_runs(vacd, root):
    vacd.wait_roles(PROCESSES)
    res = subprocess.run(vacd_argv(root, "--once"), cwd=REPO, env=run_env(),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "already running" in res.stderr
    assert not os.path.exists(root.state("standin-once"))


def test_children_follow_a_killed_parent_and_the_lock_is_freed(vacd, root):
    kids = vacd.wait_roles(PROCESSES)
    vacd.proc.kill()                      # SIGKILL: no chance to stop the children itself
    vacd.proc.wait(10)
    wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() !=
                             psutil.STATUS_ZOMBIE for p in kids.values()),
             what="orphaned role processes to exit (PR_SET_PDEATHSIG)")
    again = Vacd(root)
    try:
        again.wait_roles(PROCESSES)
    finally:
        assert again.stop() == 0


def test_journald_destination_logs_to_stderr_with_priorities(paths):
    from tests.daemon.vacdproc import MINIMAL_CONF
    make_root(paths, MINIMAL_CONF + "log_destination = journald\n")
    d = Vacd(paths, "--roles", "mjf")
    try:
        d.wait_roles(["mjf"])
    finally:
        assert d.stop() == 0
    err = d.proc.stderr_text
    assert re.search(r"^<6>vacd-supervisor\[\d+\]: vacd-mjf started as pid", err, re.M), err
    assert re.search(r"^<6>vacd-mjf\[\d+\]: vacd-mjf starting", err, re.M), err
    assert not os.path.exists(paths.log_file("mjf"))
