"""The child-process side of vacd: name the process, set signals and logging, run one role.

vacd forks one child per role (factory, responder, metadata, mjf). In the child,
``run_child`` never returns: it ends the process with ``os._exit`` and an exit code the
supervisor explains in its log (``vac.vacd.supervisor.describe_wait_status``).

Roles are found by name through an explicit registry (role -> ``"module:function"``)
and imported only inside the child, so a missing or broken role module is logged and
retried with back-off instead of crashing vacd.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import logging
import os
import signal
import sys
from typing import Callable, Dict, Mapping, Sequence, Tuple

from vac.adapters.atomicfile import read_text, write_atomic
from vac.errors import StateError
from vac.vacd.hosting import JOIN_SECONDS, HostedRole
from vac.vacd.logsetup import setup_role_logging
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import metrics_hooks
from vac.vacd.supervisor import EXIT_ROLE_CRASHED, EXIT_ROLE_MISSING

log = logging.getLogger(__name__)

ROLE_REGISTRY: Dict[str, str] = {
    "factory": "vac.services.factory:run_role",
    "responder": "vac.services.responder:run_role",
    "metadata": "vac.services.metadata_httpd:run_role",
    "mjf": "vac.services.mjf_httpd:run_role",
    "metrics": "vac.services.metrics_role:run_role",
}
ONCE_TARGET = "vac.services.factory:run_cycle"

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


class RoleLoadError(Exception):
    """The ``module:function`` of a role cannot be imported."""


def load_target(spec: str) -> Callable:
    """Import ``"package.module:function"`` and return the function."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise RoleLoadError(f"{spec!r} is not of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise RoleLoadError(f"cannot import {module_name}: {e}") from e
    func = getattr(module, attr, None)
    if not callable(func):
        raise RoleLoadError(f"{module_name} has no function {attr}")
    return func


def load_registry(spec: str) -> Mapping[str, str]:
    """A role registry named ``"module:DICT"`` (vacd ``--role-registry``, tests only)."""
    module_name, _, attr = spec.partition(":")
    try:
        registry = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise RoleLoadError(f"cannot load role registry {spec!r}: {e}") from e
    if not isinstance(registry, Mapping):
        raise RoleLoadError(f"role registry {spec!r} is not a mapping")
    return registry


def _libc() -> ctypes.CDLL:
    """The C library, through the symbols already loaded (dlopen(NULL)): ctypes.util's
    find_library would load subprocess and more into vacd and, by fork, every role."""
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg) -> None:
    """Linux prctl(2); ``arg`` is an int or a ctypes buffer (passed by pointer)."""
    libc = _libc()
    if isinstance(arg, int):
        arg = ctypes.c_ulong(arg)
    zero = ctypes.c_ulong(0)
    libc.prctl(ctypes.c_int(option), arg, zero, zero, zero)


def prepare_fork() -> None:
    """Before vacd forks a role: collect garbage, freeze what is left (the child's
    collections then leave the shared pages alone: lower PSS) and give free heap pages
    back to the kernel (glibc malloc_trim), since a child's RSS counts every page of
    the parent's heap, used or free. About 0.5 MiB less RSS per role process."""
    gc.collect()
    gc.freeze()
    _trim_heap()


def _trim_heap() -> None:
    """Give free heap pages back to the kernel (glibc malloc_trim; elsewhere nothing)."""
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):     # not glibc: nothing to trim
        pass


def set_process_name(name: str) -> None:
    """Set the kernel comm name (``ps -o comm``, prctl PR_SET_NAME) and the argv title."""
    try:
        import setproctitle  # optional: changes what ps shows as the command line
    except ImportError:
        pass
    else:
        setproctitle.setproctitle(name)
    try:
        _prctl(_PR_SET_NAME, ctypes.create_string_buffer(name.encode()[:15]))
    except (OSError, AttributeError):
        pass


def _die_with_parent() -> None:
    """Ask the kernel to SIGTERM this child when vacd dies (no orphaned role processes)."""
    try:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass


def install_child_signals(controls: Sequence[RoleControl]) -> None:
    """SIGTERM -> stop, SIGHUP -> reload, for each role of the process; Ctrl-C is vacd's
    business, not the roles'."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, lambda *_: [c.request_stop() for c in controls])
    signal.signal(signal.SIGHUP, lambda *_: [c.request_reload() for c in controls])
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_role(role: str, target: str, paths: Paths, control: RoleControl) -> int:
    """Load and run one role until it returns; the exit code for the process."""
    try:
        func = load_target(target)
    except RoleLoadError as e:
        log.error("vacd-%s cannot start: role %s: %s", role, target, e)
        return EXIT_ROLE_MISSING
    log.info("vacd-%s starting (%s)", role, target)
    _trim_heap()
    try:
        func(paths, control)
    except Exception:  # role boundary: log the traceback, let vacd restart us
        log.exception("vacd-%s stopped by an unexpected exception", role)
        return EXIT_ROLE_CRASHED
    if control.should_stop():
        log.info("vacd-%s stopped", role)
    else:
        log.warning("vacd-%s role function returned without being asked to stop", role)
    return 0


def write_role_pidfile(paths: Paths, role: str) -> None:
    """``/var/lib/vac/ROLE.pid`` (SPEC §2.2 names) for operators; vacd does not rely on it."""
    try:
        os.makedirs(paths.state_dir, exist_ok=True)
        write_atomic(paths.pidfile(role), f"{os.getpid()}\n", fsync=False)
    except (OSError, StateError) as e:
        log.warning("vacd-%s cannot write %s: %s", role, paths.pidfile(role), e)


def remove_role_pidfile(paths: Paths, role: str) -> None:
    """Remove ``ROLE.pid`` if it still holds this process's pid."""
    path = paths.pidfile(role)
    if (read_text(path) or "").strip() == str(os.getpid()):
        try:
            os.unlink(path)
        except OSError:
            pass


def run_hosted(hosted: Sequence[Tuple[str, str]], main: Tuple[str, str], paths: Paths,
               controls: Sequence[RoleControl]) -> int:
    """Run the hosted roles (role, target) in threads (vac.vacd.hosting) and the main
    role in this thread; when the main role ends, stop the hosted ones too."""
    threads = [HostedRole(role, target, paths, control, run_role)
               for (role, target), control in zip(hosted, controls[1:])]
    for thread in threads:
        thread.start()
    code = run_role(main[0], main[1], paths, controls[0])
    for control in controls[1:]:
        control.request_stop()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    return code


def _announce(paths: Paths, roles: Sequence[str], restarted: bool) -> None:
    """Each role's pidfile, and a counted restart if vacd started the process before."""
    for name in roles:
        if restarted:
            metrics_hooks.count("role_restarts", role=name)
        write_role_pidfile(paths, name)


def run_child(role: str, target: str, paths: Paths, log_destination: str,
              parent_pid: int, close_fds: tuple = (), sigmask=None,
              restarted: bool = False, hosted: Sequence[Tuple[str, str]] = ()) -> None:
    """Body of a forked role process; never returns.

    ``sigmask``: the signal mask to restore once the role's handlers are installed
    (vacd blocks SIGTERM/SIGHUP across fork so none is lost or misrouted).
    ``restarted``: vacd started this role before (counted as a role restart).
    ``hosted``: (role, target) of the roles run in threads of this process.
    """
    code = EXIT_ROLE_CRASHED
    roles = [role] + [r for r, _ in hosted]
    try:
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        controls = [RoleControl() for _ in roles]
        install_child_signals(controls)
        if sigmask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, sigmask)
        _die_with_parent()
        if os.getppid() != parent_pid:      # vacd died before PDEATHSIG was armed
            os._exit(0)
        os.setpgid(0, 0)                    # terminal signals reach vacd only
        set_process_name(f"vacd-{role}")
        setup_role_logging(paths, role, log_destination, hosted=roles[1:])
        if "random" in sys.modules:         # do not share the parent's random state
            sys.modules["random"].seed()
        metrics_hooks.reset()               # metrics on iff vacd named their directory
        _announce(paths, roles, restarted)
        code = run_hosted(hosted, (role, target), paths, controls)
        for name in roles:
            remove_role_pidfile(paths, name)
    except BaseException:  # noqa: B036 - last resort in a forked child: log, then _exit
        try:
            log.exception("vacd-%s failed to start", role)
        except Exception:  # logging itself is broken; nothing else to do
            pass
    finally:
        logging.shutdown()
        os._exit(code)
