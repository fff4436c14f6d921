"""SIGKILL a real vacd at named points of machine creation and reaping (test glue only).

vacd runs with ``--role-registry tests.integration.crashglue:REGISTRY``: the real roles,
except that the factory first wraps the functions named in ``POINTS``. A point is armed
by listing it in ``$VAC_TEST_CRASH_AT`` (comma separated); it fires once, the first
time the factory reaches it: it creates ``$VAC_TEST_CRASH_DIR/<point>`` (so a restarted
factory does not fire it again) and then, by the point's mode,

* ``factory``: SIGKILLs the factory process (as the OOM killer would);
* ``parent``: SIGKILLs the vacd parent and carries on (the kernel then sends the roles
  SIGTERM: the factory ends its cycle and stops);
* ``all``: SIGKILLs the parent, then the factory (``systemctl kill -s KILL vacd``).

Nothing here is part of the installed package.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import os
import signal
from typing import Callable, Dict, List, Optional, Tuple

from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.vacd.rolechild import ROLE_REGISTRY

# name -> (module, attribute ("Class.method" for methods), when, mode, path pattern)
#   when: "after" the call returned or "before" it; the pattern (fnmatch, matched against
#   the call's string arguments) restricts a wrapped write function to some files.
Point = Tuple[str, str, str, str, Optional[str]]
POINTS: Dict[str, Point] = {
    # creation (SPEC §3.3 order)
    "create.slot-half": ("os", "replace", "before", "factory", "*/slots/*"),
    "create.slot-file": ("vac.adapters.statefs", "write_slot_file", "after", "all", None),
    "create.machine-dir": ("vac.adapters.statefs", "make_machine_dir", "after", "factory",
                           None),
    "create.accounting": ("vac.adapters.apelspool", "write_accounting", "after", "all",
                          None),
    "create.lv": ("vac.adapters.lvm", "Lvm.create_lv", "after", "all", None),
    "create.domain": ("vac.adapters.hypervisor", "Hypervisor.create_domain", "after",
                      "factory", None),
    "create.started-half": ("os", "replace", "before", "all", "*/started"),
    "create.started": ("vac.adapters.statefs", "write_started", "after", "parent", None),
    # reaping a machine that stopped
    "reap.destroyed": ("vac.services.vm", "destroy_vm", "after", "all", None),
    "reap.freeze-half": ("vac.adapters.apelspool", "write_atomic", "after", "factory",
                         "*/apel-record.tmp/record"),
    "reap.frozen": ("vac.adapters.apelspool", "freeze", "after", "all", None),
    "reap.archive-half": ("os", "replace", "before", "all", "*/apel-archive/*"),
    "reap.archived": ("vac.adapters.apelspool", "write_archive", "after", "parent", None),
    "reap.summary-half": ("os", "replace", "before", "factory", "*/apel-summary/*"),
    "reap.queued": ("vac.adapters.apelspool", "publish_staged", "after", "all", None),
    "reap.finished-half": ("os", "replace", "before", "factory", "*/finished"),
    "reap.finished": ("vac.adapters.statefs", "write_finished", "after", "all", None),
    "reap.finishes": ("vac.adapters.statefs", "update_finishes", "after", "parent", None),
}


def _fire(point: str, mode: str, flag_dir: str) -> None:
    """Fire ``point`` unless it already fired (its flag file exists)."""
    try:
        os.close(os.open(os.path.join(flag_dir, point), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    if mode in ("parent", "all"):
        os.kill(os.getppid(), signal.SIGKILL)
    if mode in ("factory", "all"):
        os.kill(os.getpid(), signal.SIGKILL)


def _matches(pattern: Optional[str], args: tuple) -> bool:
    if pattern is None:
        return True
    return any(isinstance(a, str) and fnmatch.fnmatch(a, pattern) for a in args)


def _wrap(func: Callable, point: str, when: str, mode: str, pattern: Optional[str],
          flag_dir: str) -> Callable:
    @functools.wraps(func)
    def crashing(*args, **kwargs):
        hit = _matches(pattern, args)
        if hit and when == "before":
            _fire(point, mode, flag_dir)
        result = func(*args, **kwargs)
        if hit and when == "after":
            _fire(point, mode, flag_dir)
        return result
    return crashing


def _owner(point: str) -> Tuple[object, str]:
    """(module or class, attribute name) of the function ``point`` wraps."""
    module_name, attr = POINTS[point][:2]
    owner = importlib.import_module(module_name)
    *cls, name = attr.split(".")
    return (getattr(owner, cls[0]) if cls else owner), name


def available() -> List[str]:
    """The points whose function exists in the vac under test (an older vac lacks some)."""
    return [p for p in POINTS if hasattr(*_owner(p))]


def arm(points: str, flag_dir: str) -> None:
    """Wrap the function of every armed point that has not fired yet."""
    for point in filter(None, points.split(",")):
        if os.path.exists(os.path.join(flag_dir, point)):
            continue
        _module, _attr, when, mode, pattern = POINTS[point]
        owner, name = _owner(point)
        setattr(owner, name, _wrap(getattr(owner, name), point, when, mode, pattern, flag_dir))


def run_factory(paths: Paths, control: RoleControl) -> None:
    """The factory role with the armed points wrapped."""
    arm(os.environ.get("VAC_TEST_CRASH_AT", ""), os.environ["VAC_TEST_CRASH_DIR"])
    from vac.services import factory
    factory.run_role(paths, control)


REGISTRY = dict(ROLE_REGISTRY, factory="tests.integration.crashglue:run_factory")
