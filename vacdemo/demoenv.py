"""The host side of ``make demo``: the test environment, vacd's process, cleaning up.

The demo reuses what ``tools/testenv.sh start`` prepared and described in
``$TESTENV_DIR/env.json`` (default /var/tmp/vac-test-env): libvirtd running inside the
network namespace ``vacns``, the volume group on a loop device with the LV shims in
``shim_bin`` (no device-mapper here), and the test guest ISO. vacd runs inside the
namespace (so the metadata and MJF servers can bind 169.254.169.254/.253 on virbr1 and the
responder UDP 995) with the shims first in PATH.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Tuple

from vac.adapters import runner
from vac.adapters.host import choose_domain_type  # noqa: F401 - the demo picks with it
from vac.constants import NAT_NETWORK_NAME
from vac.core import naming
from vac.errors import VacError
from vac.paths import Paths

DEFAULT_TESTENV_DIR = "/var/tmp/vac-test-env"
HOSTS_FILE = "/etc/hosts"
ETC_NETNS = "/etc/netns"
HOSTS_TAG = "# added by vac demo"
LOCK_WAIT_SECONDS = 3600.0
KILL_WAIT_SECONDS = 5.0      # after SIGKILL, how long to wait for vacd to be gone
Say = Callable[[str], None]


class DemoError(Exception):
    """The demo cannot run (message says what to do)."""


@dataclass(frozen=True)
class DemoEnv:
    """The parts of env.json the demo uses."""

    testenv_dir: str = DEFAULT_TESTENV_DIR
    netns: str = "vacns"
    libvirt_uri: str = "qemu:///system"
    volume_group: str = "vac_volume_group"
    shim_bin: str = os.path.join(DEFAULT_TESTENV_DIR, "bin")
    guest_iso: str = os.path.join(DEFAULT_TESTENV_DIR, "guest", "vac-test-guest.iso")

    def as_dict(self) -> dict:
        return asdict(self)


def testenv_dir() -> str:
    return os.environ.get("TESTENV_DIR") or DEFAULT_TESTENV_DIR


def load_env(required: bool) -> DemoEnv:
    """DemoEnv from $TESTENV_DIR/env.json; defaults if absent and not ``required``."""
    path = os.path.join(testenv_dir(), "env.json")
    try:
        with open(path) as f:
            values = json.load(f)
    except (OSError, ValueError) as e:
        if required:
            raise DemoError(f"cannot read {path} ({e}); prepare the host first with "
                            "'make testenv' (tools/testenv.sh install && start)") from e
        return DemoEnv(testenv_dir=testenv_dir())
    names = DemoEnv.__dataclass_fields__
    env = DemoEnv(**{k: str(v) for k, v in values.items() if k in names})
    if required:
        _check_env(env)
    return env


def _check_env(env: DemoEnv) -> None:
    if os.geteuid() != 0:
        raise DemoError("the demo must run as root (libvirt, LVM, network namespace)")
    for what, path in (("network namespace", f"/run/netns/{env.netns}"),
                       ("libvirtd socket", "/run/libvirt/libvirt-sock"),
                       ("test guest ISO", env.guest_iso)):
        if not os.path.exists(path):
            raise DemoError(f"{what} {path} is missing; run "
                            f"'TESTENV_DIR={env.testenv_dir} bash tools/testenv.sh start'")


def hostname() -> str:
    """This host's fully qualified name if it has one, else its short name."""
    name = socket.gethostname()
    if "." not in name:
        fqdn = socket.getfqdn(name)
        if "." in fqdn and not fqdn.startswith("localhost"):
            return fqdn
    return name


def take_lock(env: DemoEnv, say: Say) -> int:
    """Exclusive lock on the test environment (one libvirtd per machine), like the tests."""
    path = os.path.join(env.testenv_dir, "lock")
    try:
        return flock_waiting(path, LOCK_WAIT_SECONDS, 1.0, on_wait=lambda: say(
            f"vac demo: waiting for {path} (tests are using the environment)"))
    except TimeoutError as e:
        raise DemoError(str(e)) from e


def flock_waiting(path: str, wait_seconds: float, interval: float,
                  on_wait: Optional[Callable[[], None]] = None) -> int:
    """An fd holding an exclusive flock on ``path`` (created if absent), polling every
    ``interval`` seconds for up to ``wait_seconds``; ``on_wait`` is called once if the
    lock is busy. TimeoutError if it stays busy. tests/realenv.py takes the same lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
                on_wait = None
            if time.monotonic() > deadline:
                os.close(fd)
                raise TimeoutError(f"{path} stayed locked for {wait_seconds:.0f} s") from None
            time.sleep(interval)


# --- the factory name must resolve inside the namespace for VacQuery (vac machines, ...) --
# ``ip netns exec NS`` bind-mounts /etc/netns/NS/hosts over /etc/hosts, so only processes
# in the namespace (vacd, the printed vac commands) see the demo's line; the host's own
# /etc/hosts and DNS are not touched.

def netns_hosts_file(netns: str, etc_netns: str = ETC_NETNS) -> str:
    return os.path.join(etc_netns, netns, "hosts")


def add_hosts_line(factory: str, netns: str, etc_netns: str = ETC_NETNS,
                   host_hosts: str = HOSTS_FILE) -> bool:
    """Map ``factory`` to 127.0.0.1 in the namespace's hosts file (made from the host's
    /etc/hosts if absent). True if the demo created that file."""
    path = netns_hosts_file(netns, etc_netns)
    created = not os.path.exists(path)
    if created:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(host_hosts) as f:
            text = f.read()
    else:
        with open(path) as f:
            text = f.read()
    line = f"127.0.0.1 {factory} {HOSTS_TAG}\n"
    if line not in text:
        if text and not text.endswith("\n"):
            text += "\n"
        with open(path, "w") as f:
            f.write(text + line)
    return created


def remove_hosts_line(netns: str, created: bool, etc_netns: str = ETC_NETNS) -> None:
    """Undo :func:`add_hosts_line` (``created``: remove the file the demo made)."""
    path = netns_hosts_file(netns, etc_netns)
    if created:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))
        return
    try:
        with open(path) as f:
            lines = f.readlines()
    except OSError:
        return
    kept = [line for line in lines if not line.rstrip().endswith(HOSTS_TAG)]
    if len(kept) != len(lines):
        with open(path, "w") as f:
            f.write("".join(kept))


# --- libvirt ------------------------------------------------------------------------

def reset_network(env: DemoEnv) -> bool:
    """Remove a left-over vac NAT network (vacd defines it again with the demo's host
    names); True: the demo will have made the network."""
    from vac.adapters import hypervisor
    with hypervisor.connect(env.libvirt_uri) as hv:
        if hv.network(NAT_NETWORK_NAME) is not None:
            busy = [d.name for d in hv.list_domains()]
            if busy:
                return False      # somebody's guests use it: leave it, vacd adds its hosts
            _remove_network(hv)
    return True


def _remove_network(hv) -> None:
    """Stop and undefine vac's NAT network."""
    hv.destroy_network(NAT_NETWORK_NAME)
    hv.undefine_network(NAT_NETWORK_NAME)


def demo_machine_names(state: dict) -> List[str]:
    factory = str(state.get("factory") or "")
    if not factory:
        return []
    return [naming.machine_name(factory, i) for i in range(int(state.get("slots") or 0))]


def clean_machines(paths: Paths, state: dict, say: Say) -> List[str]:
    """Stop vacd, destroy the demo's domains and LVs, the network if the demo made it.

    Returns the problems that make removing the tree unsafe ([] if none)."""
    problems = []
    pid = running_vacd(paths)
    if pid is not None:
        say(f"vac demo: stopping vacd pid {pid}")
        stop_vacd(pid, 45.0)
    names = demo_machine_names(state)
    uri = str(state.get("libvirt_uri") or "qemu:///system")
    try:
        _destroy_domains(uri, names, bool(state.get("made_network")), say)
    except VacError as e:
        problems.append(f"libvirt at {uri}: {e}")
    shim = str(state.get("shim_bin") or "")
    vg = str(state.get("volume_group") or "")
    if vg and names:
        _remove_lvs(vg, shim, names, say)
    return problems


def _destroy_domains(uri: str, names: List[str], network: bool, say: Say) -> None:
    from vac.adapters import hypervisor
    with hypervisor.connect(uri) as hv:
        for info in hv.list_domains():
            if info.name in names:
                say(f"vac demo: destroying domain {info.name}")
                hv.destroy_domain(info.name)
        others = [d.name for d in hv.list_domains() if d.name not in names]
        if others:
            say(f"vac demo: leaving network {NAT_NETWORK_NAME}: other guests use it "
                f"({', '.join(sorted(others))})")
        elif network and hv.network(NAT_NETWORK_NAME) is not None:
            say(f"vac demo: removing libvirt network {NAT_NETWORK_NAME}")
            _remove_network(hv)


def shim_first_path(shim: str) -> str:
    """This process's PATH with the test environment's LVM shims (``shim_bin``) first."""
    return shim + os.pathsep + os.environ.get("PATH", "/usr/sbin:/usr/bin")


def _remove_lvs(vg: str, shim: str, names: List[str], say: Say) -> None:
    from vac.adapters.lvm import Lvm

    def run(argv, **kw):
        env = dict(kw.pop("env", None) or {})
        env["PATH"] = shim_first_path(shim)
        return runner.run(argv, env=env, **kw)

    lvm = Lvm(run=run)
    present = {name for name, _size in lvm.list_lvs_quiet(vg)}
    for name in names:
        if name in present and lvm.remove_lv(vg, name, quiet=True):
            say(f"vac demo: removed logical volume {vg}/{name}")


# --- vac selftest ---------------------------------------------------------------------

def run_selftest(root: str, env: DemoEnv, say: Say) -> bool:
    """``vac selftest --image <test guest>`` inside the namespace (LV shims first in
    PATH), each of its lines said; True if every check passed."""
    vac = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "vac")
    argv = ["ip", "netns", "exec", env.netns, vac, "--root", root, "selftest",
            "--image", env.guest_iso]
    result = runner.run(argv, timeout=300.0, check=False,
                        env={"PATH": shim_first_path(env.shim_bin),
                             "LVM_SUPPRESS_FD_WARNINGS": "1"})
    for line in (result.stdout + result.stderr).splitlines():
        say(f"    {line}")
    return result.returncode == 0


# --- vacd -------------------------------------------------------------------------------

def vacd_argv(root: str, env: DemoEnv, containers: bool = False) -> List[str]:
    """vacd in the namespace. ``containers``: enter only its network namespace
    (``nsenter --net``): ``ip netns exec`` also gives vacd a mount namespace with a fresh
    /sys without the cgroup mounts, where runc cannot start containers ("no cgroup mount
    found in mountinfo"); vacd then does not see the namespace's /etc/netns hosts file."""
    enter = ["nsenter", f"--net=/run/netns/{env.netns}", "--"] if containers else \
        ["ip", "netns", "exec", env.netns]
    return [*enter, sys.executable, "-m", "vac.vacd.daemon", "--root", root, "--foreground"]


def start_vacd(root: str, env: DemoEnv, containers: bool = False) -> int:
    """Fork/exec ``vacd --foreground`` in the namespace, in its own process group (the
    terminal's Ctrl-C reaches only the demo, which sends SIGTERM); output to a log file."""
    paths = Paths.from_root(root)
    os.makedirs(paths.log_dir, exist_ok=True)
    out = os.open(os.path.join(paths.log_dir, "vacd-console"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    child_env = dict(os.environ)
    child_env["PATH"] = shim_first_path(env.shim_bin)
    child_env["LVM_SUPPRESS_FD_WARNINGS"] = "1"
    argv = vacd_argv(root, env, containers)
    pid = os.fork()
    if pid == 0:                                  # child: never returns
        try:
            os.setpgid(0, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.execvpe(argv[0], argv, child_env)
        finally:
            os._exit(127)
    os.close(out)
    return pid


def reap(pid: int) -> Optional[int]:
    """vacd's exit status if it has exited, else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def stop_vacd(pid: int, wait_seconds: float) -> int:
    """SIGTERM, wait up to ``wait_seconds``, then SIGKILL; exit status (-1 if unknown,
    -9 if it had to be killed and is not our child)."""
    child = _is_child(pid)          # a child stays ours until reaped: look once
    _signal(pid, signal.SIGTERM)
    status = _wait_exit(pid, child, wait_seconds)
    if status is not None:
        return status
    _signal(pid, signal.SIGKILL)
    status = _wait_exit(pid, child, KILL_WAIT_SECONDS)
    return status if child and status is not None else -9


def _wait_exit(pid: int, child: bool, seconds: float) -> Optional[int]:
    """Poll up to ``seconds`` for vacd to end: its exit status (0 if not our child)."""
    deadline = time.monotonic() + seconds
    while True:
        status = reap(pid) if child else (None if _alive(pid) else 0)
        if status is not None or time.monotonic() >= deadline:
            return status
        time.sleep(0.1)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _is_child(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return ppid == os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def running_vacd(paths: Paths) -> Optional[int]:
    """The pid of the vacd that holds this root's pidfile lock, or None."""
    try:
        fd = os.open(paths.vacd_pidfile, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None                           # nobody holds it: no vacd
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
        text = os.read(fd, 64).decode(errors="replace").strip()
        return int(text) if text.isdigit() else None
    finally:
        os.close(fd)
