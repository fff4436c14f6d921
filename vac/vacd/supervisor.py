"""Child-process supervision for vacd: start one process per role, restart with back-off.

The restart policy (``backoff_seconds``, ``describe_wait_status``) is pure and unit-tested
without processes. ``Supervisor`` keeps per-role state and takes its effects (spawn a
child, send a signal, reap, read the clock) as injected callables, so tests can drive it
with recorded fakes; vacd passes ``os.fork``-based spawning and ``os.kill``.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple

log = logging.getLogger(__name__)

EXIT_ROLE_MISSING = 3   # child exit code: the role's module or function cannot be loaded
EXIT_ROLE_CRASHED = 1   # child exit code: the role raised an exception


@dataclass(frozen=True)
class BackoffPolicy:
    """Restart delays: ``base * 2**(failures-1)`` seconds, at most ``cap`` seconds.

    A child that ran at least ``stable_seconds`` before dying counts as healthy again:
    its failure count restarts at one.
    """

    base: float = 1.0
    cap: float = 300.0
    stable_seconds: float = 60.0


def backoff_seconds(failures: int, policy: BackoffPolicy = BackoffPolicy()) -> float:
    """Seconds to wait before restarting a role after its ``failures``-th consecutive failure."""
    if failures <= 0:
        return 0.0
    exponent = min(failures - 1, 32)          # avoid huge floats; the cap applies anyway
    return float(min(policy.cap, policy.base * (2 ** exponent)))


def next_failure_count(failures: int, ran_seconds: float,
                       policy: BackoffPolicy = BackoffPolicy()) -> int:
    """Consecutive-failure count after a child died having run ``ran_seconds``."""
    return 1 if ran_seconds >= policy.stable_seconds else failures + 1


def describe_wait_status(status: int) -> str:
    """Human reason for a ``waitpid`` status: exit code, signal name, core dump."""
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        if code == EXIT_ROLE_MISSING:
            return f"exited with code {code} (role code could not be loaded)"
        if code == EXIT_ROLE_CRASHED:
            return f"exited with code {code} (role raised an exception)"
        return f"exited with code {code}"
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        core = " (core dumped)" if os.WCOREDUMP(status) else ""
        return f"killed by {name}{core}"
    return f"ended with wait status {status}"


@dataclass
class ChildState:
    """What the supervisor knows about one role's process (times are monotonic seconds)."""

    role: str
    pid: Optional[int] = None
    started: float = 0.0
    failures: int = 0
    restart_at: Optional[float] = None


class Supervisor:
    """Keep one child per role running; restart dead children after a back-off."""

    def __init__(self, roles: Iterable[str], spawn: Callable[[str], int],
                 kill: Callable[[int, int], None] = os.kill,
                 clock: Callable[[], float] = time.monotonic,
                 policy: BackoffPolicy = BackoffPolicy()) -> None:
        self.children: Dict[str, ChildState] = {r: ChildState(r) for r in roles}
        self._spawn = spawn
        self._kill = kill
        self._clock = clock
        self.policy = policy
        self.stopping = False

    # --- starting -----------------------------------------------------
    def start(self, role: str) -> None:
        """Fork the child for ``role`` now (a failed fork is retried with back-off)."""
        state = self.children[role]
        state.restart_at = None
        try:
            state.pid = self._spawn(role)
        except OSError as e:
            state.failures += 1
            delay = backoff_seconds(state.failures, self.policy)
            state.restart_at = self._clock() + delay
            log.error("vacd-%s could not be started: %s; retrying in %.0f s", role, e, delay)
            return
        state.started = self._clock()
        log.info("vacd-%s started as pid %d", role, state.pid)

    def start_all(self) -> None:
        for role in self.children:
            self.start(role)

    def restart_due(self) -> None:
        """Start every role whose back-off has expired."""
        if self.stopping:
            return
        now = self._clock()
        for state in self.children.values():
            if state.pid is None and state.restart_at is not None and now >= state.restart_at:
                self.start(state.role)

    def next_wakeup(self) -> Optional[float]:
        """Seconds until the earliest pending restart, or None if none is pending."""
        pending = [s.restart_at for s in self.children.values()
                   if s.pid is None and s.restart_at is not None]
        if not pending:
            return None
        return max(0.0, min(pending) - self._clock())

    # --- exits --------------------------------------------------------
    def role_of(self, pid: int) -> Optional[str]:
        for state in self.children.values():
            if state.pid == pid:
                return state.role
        return None

    def child_exited(self, pid: int, status: int) -> None:
        """Record that ``pid`` ended with wait ``status``; log why and schedule a restart."""
        role = self.role_of(pid)
        if role is None:
            return
        state = self.children[role]
        state.pid = None
        reason = describe_wait_status(status)
        if self.stopping:
            log.info("vacd-%s (pid %d) %s", role, pid, reason)
            return
        ran = self._clock() - state.started
        state.failures = next_failure_count(state.failures, ran, self.policy)
        delay = backoff_seconds(state.failures, self.policy)
        state.restart_at = self._clock() + delay
        log.error("vacd-%s (pid %d) %s after %.0f s; restarting in %.0f s "
                  "(consecutive failure %d)", role, pid, reason, ran, delay, state.failures)

    def reap(self, waitpid: Callable[[int, int], Tuple[int, int]] = os.waitpid) -> None:
        """Collect every exited child without blocking."""
        while True:
            try:
                pid, status = waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.child_exited(pid, status)

    # --- signalling and stopping --------------------------------------
    def running_pids(self) -> List[int]:
        return [s.pid for s in self.children.values() if s.pid is not None]

    def signal_all(self, signum: int) -> None:
        """Send ``signum`` to every running child (a vanished child is ignored)."""
        for pid in self.running_pids():
            try:
                self._kill(pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, grace_seconds: float,
             sleep: Callable[[float], None] = time.sleep,
             waitpid: Callable[[int, int], Tuple[int, int]] = os.waitpid) -> None:
        """SIGTERM every child, wait up to ``grace_seconds``, then SIGKILL what is left.

        Only vacd's own children are signalled: machines belong to libvirt (or their
        container runtime) and are never touched.
        """
        self.stopping = True
        self.signal_all(signal.SIGTERM)
        deadline = self._clock() + grace_seconds
        while self.running_pids() and self._clock() < deadline:
            self.reap(waitpid)
            if self.running_pids():
                sleep(0.05)
        if self.running_pids():
            for state in self.children.values():
                if state.pid is not None:
                    log.warning("vacd-%s (pid %d) did not stop within %.0f s; killing it",
                                state.role, state.pid, grace_seconds)
            self.signal_all(signal.SIGKILL)
            while self.running_pids():
                try:
                    pid, status = waitpid(-1, 0)
                except ChildProcessError:
                    break
                self.child_exited(pid, status)
