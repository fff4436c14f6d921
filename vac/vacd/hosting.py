"""Roles that run in a thread of another role's process, and their own logs there.

The VacQuery responder runs in the factory's process (``HOSTS``): it answers from the
state files the factory writes and, apart from its socket, needs nothing the factory has
not already loaded, so a process of its own cost a whole interpreter (about 19 MiB RSS,
11 MiB PSS) for a few hundred lines of code. It keeps what made it a role: its own
heartbeat, pidfile (holding the factory process's pid), log and RoleControl (SIGTERM
and SIGHUP reach it as before), and a crash of the responder restarts only its thread,
with the supervisor's back-off. If the factory process dies, vacd restarts it and the
responder with it. ``vacd --roles`` without the factory gives the responder a process of
its own again.

A hosted role's thread is named ``vacd-ROLE``, and so are (as a prefix) the threads it
starts; its records go to its own log by that name (vac.vacd.logsetup.ThreadsOf).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, Mapping, Sequence, Tuple

from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import metrics_hooks
from vac.vacd.logsetup import thread_name
from vac.vacd.supervisor import BackoffPolicy, backoff_seconds, next_failure_count

log = logging.getLogger(__name__)

HOSTS: Mapping[str, str] = {"responder": "factory"}   # hosted role -> its host role
JOIN_SECONDS = 10.0      # how long the host waits for a hosted role to stop


def process_layout(roles: Sequence[str]) -> Dict[str, Tuple[str, ...]]:
    """Process (named after its first role) -> the roles it runs, in ``roles`` order; a
    hosted role whose host is not in ``roles`` has a process of its own."""
    layout = {r: (r,) for r in roles if HOSTS.get(r) not in roles}
    for role in roles:
        host = HOSTS.get(role)
        if host in layout:
            layout[host] += (role,)
    return layout


RunRole = Callable[[str, str, Paths, RoleControl], int]   # vac.vacd.rolechild.run_role


class HostedRole(threading.Thread):
    """Runs ``role`` (``run_role(role, target, paths, control)``, which returns an exit
    code) in a thread until ``control`` asks it to stop; if it raises or cannot be
    loaded, logs why and runs it again after the supervisor's back-off."""

    def __init__(self, role: str, target: str, paths: Paths, control: RoleControl,
                 run_role: RunRole, policy: BackoffPolicy = BackoffPolicy()) -> None:
        super().__init__(name=thread_name(role), daemon=True)
        self.role, self.target, self.paths, self.control = role, target, paths, control
        self.run_role, self.policy = run_role, policy
        self.restarts = 0

    def run(self) -> None:
        failures = 0
        while not self.control.should_stop():
            started = time.monotonic()
            code = self.run_role(self.role, self.target, self.paths, self.control)
            if self.control.should_stop():
                return
            failures = next_failure_count(failures, time.monotonic() - started, self.policy)
            delay = backoff_seconds(failures, self.policy)
            log.warning("vacd-%s (a thread of this process) ended (exit code %d); "
                        "restarting it in %.0f s", self.role, code, delay)
            self.control.wait(delay)
            self.restarts += 1
            metrics_hooks.count("role_restarts", role=self.role)
