"""vacd: one parent process supervising the factory, responder, metadata and MJF roles.

Start-up: check the installation (no state directory: refuse to start), take an
exclusive lock on the pidfile (a second vacd refuses to start), set up the supervisor's
log, daemonise with python-daemon unless ``--foreground`` (systemd runs vacd in the
foreground), then fork one child per role and restart any child that dies, with
exponential back-off. An invalid configuration does not stop vacd ("failures look like
planned draining"): every role starts, the factory creates nothing until it is fixed,
and systemd's status line says why (sd_notify READY=1 and STATUS=, vac.adapters.sdnotify).

Signals (handlers only set flags; the main loop acts on them):
SIGTERM/SIGINT stop the children (SIGTERM -> RoleControl.request_stop) and exit; machines
belong to libvirt and keep running. SIGHUP is passed to the children, which reload.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import logging
import os
import select
import signal
import sys
from typing import IO, Dict, List, Mapping, Optional, Sequence, Tuple

from vac import __version__
from vac.adapters import prometheus, sdnotify, statereports
from vac.constants import DAEMON_ROLES, METRICS_ROLE
from vac.core.configtypes import Settings
from vac.errors import ConfigError
from vac.vacd.hosting import process_layout
from vac.vacd.logsetup import setup_role_logging, setup_stderr_logging
from vac.paths import Paths
from vac.vacd.rolechild import (ONCE_TARGET, ROLE_REGISTRY, RoleLoadError, load_registry,
                           load_target, prepare_fork, run_child, set_process_name)
from vac.services.configload import load_config
from vac.vacd.supervisor import BackoffPolicy, Supervisor

log = logging.getLogger(__name__)

SUPERVISOR_LOG = "supervisor"     # the parent's own log: Paths.log_file("supervisor")
STOP_GRACE_SECONDS = 30.0         # children get this long after SIGTERM before SIGKILL
IDLE_WAKEUP_SECONDS = 5.0


class AlreadyRunning(Exception):
    """Another vacd holds the pidfile lock."""


class Flags:
    """Set by signal handlers, consumed by the main loop."""

    def __init__(self) -> None:
        self.stop = False
        self.reload = False

    def on_stop(self, *_args) -> None:
        self.stop = True

    def on_reload(self, *_args) -> None:
        self.reload = True


# --- command line ----------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vacd", description="Vac factory daemon")
    p.add_argument("--version", action="version", version=f"vacd {__version__}")
    p.add_argument("--root", default="/", metavar="DIR",
                   help="treat DIR as the root of every system path (default /)")
    p.add_argument("--foreground", action="store_true",
                   help="do not daemonise (for systemd and testing)")
    p.add_argument("--once", action="store_true",
                   help="run one factory cycle in the foreground and exit")
    p.add_argument("--roles", metavar="ROLE[,ROLE...]", default=None,
                   help=f"roles to run (default: {','.join(DAEMON_ROLES)}, and "
                        f"{METRICS_ROLE} when metrics_address is set)")
    p.add_argument("--role-registry", metavar="MODULE:DICT", help=argparse.SUPPRESS)
    return p


def parse_roles(text: str) -> Tuple[str, ...]:
    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    known = DAEMON_ROLES + (METRICS_ROLE,)
    unknown = [r for r in roles if r not in known]
    if unknown or not roles:
        raise ValueError(f"--roles must be a subset of {','.join(known)}; got {text!r}")
    return roles


# --- installation and configuration ---------------------------------------------
class NotInstalled(Exception):
    """The installation is unusable (no state directory)."""


def check_installation(paths: Paths) -> None:
    """The state directory must exist (the package makes it); vacd does not invent one."""
    if not os.path.isdir(paths.state_dir):
        raise NotInstalled(f"the state directory {paths.state_dir} does not exist (is vac "
                           "installed? the vac package creates it); not starting")


def check_config(paths: Paths) -> str:
    """Load the configuration (without pipes); return its ``log_destination``.

    Raises ConfigError if the configuration is invalid.
    """
    return load_config(paths, pipes="none").settings.log_destination


def start_config(paths: Paths) -> Tuple[Settings, List[str]]:
    """(settings, problems) of the configuration vacd starts on; an invalid one gives
    the settings of its valid parts (the defaults if there are none)."""
    try:
        return load_config(paths, pipes="none").settings, []
    except ConfigError as e:
        fallback = e.fallback
        settings = fallback.settings if fallback is not None else Settings(vac_space="")
        return settings, [str(p) for p in e.problems]


def choose_roles(requested: Optional[str], settings: Settings) -> Tuple[str, ...]:
    """``--roles`` (checked), else the four roles plus ``metrics`` if
    ``metrics_address`` is set; metrics without an address is an error."""
    if requested is None:
        return DAEMON_ROLES + (METRICS_ROLE,) * bool(settings.metrics_address)
    roles = parse_roles(requested)
    if METRICS_ROLE in roles and not settings.metrics_address:
        raise ValueError("--roles names metrics but metrics_address is not set")
    return roles


def prepare_metrics(paths: Paths, roles: Sequence[str]) -> None:
    """With the metrics role: empty the multiprocess directory and name it in the
    environment the roles inherit (vac.adapters.prometheus); without it: make sure no
    role counts."""
    if METRICS_ROLE in roles:
        prometheus.reset_directory(paths.metrics_dir)
        os.environ[prometheus.ENV] = paths.metrics_dir
    else:
        os.environ.pop(prometheus.ENV, None)


def service_status(paths: Paths, roles: Sequence[str]) -> str:
    """One line for systemd's STATUS=: the configuration's trouble, else the roles."""
    invalid, disabled = statereports.read_config_report(paths)
    if invalid is not None:
        return sdnotify.status_line(invalid)
    running = f"running ({', '.join(roles)})"
    return sdnotify.status_line(f"{running}; {disabled}" if disabled else running)


class StatusNotifier:
    """Sends READY=1 once and STATUS= whenever the status line changes."""

    def __init__(self, paths: Paths, roles: Sequence[str]) -> None:
        self.paths, self.roles = paths, roles
        self.sent: Optional[str] = None

    def update(self, ready: bool = False) -> None:
        status = service_status(self.paths, self.roles)
        if status != self.sent or ready:
            self.sent = status
            sdnotify.notify(("READY=1\n" if ready else "") + f"STATUS={status}")


def log_config_problems(paths: Optional[Paths]) -> None:
    """On reload, log whether the configuration is valid (the roles decide what to do)."""
    if paths is None:
        return
    try:
        check_config(paths)
    except ConfigError as e:
        log.error("the configuration is invalid (running machines are left alone):")
        for problem in e.problems:
            log.error("  %s", problem)
    except Exception:  # reload boundary: a broken loader must not stop the supervisor
        log.exception("checking the configuration failed")
    else:
        log.info("the configuration is valid")


# --- pidfile lock ------------------------------------------------------------
def acquire_pidfile(path: str) -> IO:
    """Open and flock ``path`` exclusively; AlreadyRunning names the holder's pid."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    f = open(path, "a+", encoding="ascii")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
            f.close()
            raise
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise AlreadyRunning(f"vacd is already running (pid {holder}, "
                             f"lock held on {path}); not starting a second one") from e
    return f


def write_pid(f: IO) -> None:
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()


def release_pidfile(f: IO) -> None:
    """Empty the pidfile (kept, so no second vacd can lock a fresh inode) and unlock."""
    try:
        f.seek(0)
        f.truncate()
        f.close()
    except OSError:
        pass


# --- running -----------------------------------------------------------------
def make_spawner(paths: Paths, registry: Mapping[str, str], destination: str,
                 close_fds: tuple, layout: Mapping[str, Sequence[str]]):
    """A ``spawn(process) -> pid`` that forks a child running the roles
    ``layout[process]`` (the first in its main thread, vac.vacd.hosting)."""
    parent = os.getpid()
    # blocked across fork so a signal cannot reach the child before it has its own handlers
    deferred = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGCHLD}
    started: Dict[str, int] = {}

    def spawn(role: str) -> int:
        saved = signal.pthread_sigmask(signal.SIG_BLOCK, deferred)
        prepare_fork()
        try:
            pid = os.fork()
            if pid == 0:
                run_child(role, registry[role], paths, destination, parent, close_fds,
                          sigmask=saved, restarted=started.get(role, 0) > 0,
                          hosted=[(r, registry[r]) for r in layout[role][1:]])
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved)
        started[role] = started.get(role, 0) + 1
        return pid
    return spawn


def _wakeup_pipe() -> Tuple[int, int]:
    r, w = os.pipe()
    for fd in (r, w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    return r, w


def install_parent_signals(flags: Flags) -> None:
    signal.signal(signal.SIGTERM, flags.on_stop)
    signal.signal(signal.SIGINT, flags.on_stop)
    signal.signal(signal.SIGHUP, flags.on_reload)
    signal.signal(signal.SIGCHLD, lambda *_: None)   # only to wake the select()


def supervise(sup: Supervisor, flags: Flags, wake_fd: int, paths: Optional[Paths] = None,
              grace_seconds: float = STOP_GRACE_SECONDS,
              notifier: Optional[StatusNotifier] = None) -> None:
    """Main loop of the parent until a stop is requested; then stop the children."""
    sup.start_all()
    if notifier is not None:
        notifier.update(ready=True)
    while not flags.stop:
        nxt = sup.next_wakeup()
        timeout = IDLE_WAKEUP_SECONDS if nxt is None else min(nxt, IDLE_WAKEUP_SECONDS)
        try:
            select.select([wake_fd], [], [], timeout)
            while os.read(wake_fd, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        if flags.reload:
            flags.reload = False
            log.info("SIGHUP: asking the roles to reload their configuration")
            log_config_problems(paths)
            sup.signal_all(signal.SIGHUP)
        sup.reap()
        sup.restart_due()
        if notifier is not None:
            notifier.update()
    log.info("stopping: asking the roles to stop (machines are left running)")
    if notifier is not None:
        sdnotify.notify("STOPPING=1\nSTATUS=stopping (machines are left running)")
    sup.stop(grace_seconds)


def python_daemon():
    """The python-daemon module. It is optional (vac.spec only Recommends python3-daemon):
    systemd runs vacd with ``--foreground``, which never needs it."""
    try:
        import daemon  # python-daemon
    except ImportError as e:
        raise ValueError("python-daemon is not installed: run vacd --foreground (as the "
                         "systemd unit does) or install python3-daemon") from e
    return daemon


def daemonise(daemon_module, streams: List, lock: IO) -> None:
    """Classic daemonisation through python-daemon (not used under systemd).

    ``streams``: the open log streams; stray stderr output (a library's warning, a
    crash) goes to the first one, or stays on stderr when logging to journald.
    """
    ctx = daemon_module.DaemonContext(
        working_directory="/", umask=0o022, detach_process=True, signal_map={},
        files_preserve=streams + [lock], stderr=streams[0] if streams else sys.stderr)
    ctx.open()


def run_daemon(args: argparse.Namespace, paths: Paths, roles: Sequence[str],
               registry: Mapping[str, str], destination: str,
               problems: Sequence[str] = ()) -> int:
    daemon_module = None if args.foreground else python_daemon()
    lock = acquire_pidfile(paths.vacd_pidfile)
    streams = setup_role_logging(paths, SUPERVISOR_LOG, destination)
    if daemon_module is not None:
        daemonise(daemon_module, streams, lock)
    os.umask(0o022)
    set_process_name("vacd")
    write_pid(lock)
    flags = Flags()
    r, w = _wakeup_pipe()
    install_parent_signals(flags)
    log.info("vacd %s starting as pid %d (roles: %s, root %s)",
             __version__, os.getpid(), ",".join(roles), paths.root)
    if problems:
        log.error("the configuration is invalid (%d problem(s), the first: %s); starting "
                  "anyway: no machines are created until it is fixed, running machines "
                  "and their services are kept (the factory log lists every problem)",
                  len(problems), problems[0])
    prepare_metrics(paths, roles)
    layout = process_layout(roles)
    for process, hosted in layout.items():
        if len(hosted) > 1:
            log.info("vacd-%s also runs %s in threads of its own", process,
                     ", ".join(hosted[1:]))
    spawn = make_spawner(paths, registry, destination, (r, w), layout)
    sup = Supervisor(list(layout), spawn, policy=BackoffPolicy())
    try:
        supervise(sup, flags, r, paths, notifier=StatusNotifier(paths, roles))
    finally:
        log.info("vacd stopped")
        release_pidfile(lock)
    return 0


def run_once(paths: Paths, target: str = ONCE_TARGET) -> int:
    """``vacd --once``: one factory cycle in this process, logging to stderr."""
    lock = acquire_pidfile(paths.vacd_pidfile)
    setup_stderr_logging()
    try:
        run_cycle = load_target(target)
        if getattr(run_cycle(paths), "problems", None):
            return 1                    # the cycle ran, but on an invalid configuration
    except RoleLoadError as e:
        log.error("cannot run a factory cycle: %s", e)
        return 1
    except Exception:  # the single cycle's boundary
        log.exception("factory cycle failed")
        return 1
    finally:
        lock.close()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths.from_root(args.root)
    try:
        registry = load_registry(args.role_registry) if args.role_registry else ROLE_REGISTRY
        check_installation(paths)
        settings, problems = start_config(paths)
        destination = settings.log_destination
        roles = choose_roles(args.roles, settings)
        if problems:
            print(f"vacd: invalid configuration ({len(problems)} problem(s)); running "
                  "machines are looked after but no new ones are created until it is "
                  "fixed:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
        if args.once:
            return run_once(paths, registry.get("once", ONCE_TARGET))
        return run_daemon(args, paths, roles, registry, destination, problems)
    except (AlreadyRunning, NotInstalled, RoleLoadError, ValueError) as e:
        print(f"vacd: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"vacd: cannot start: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
