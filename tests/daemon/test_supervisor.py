"""Restart policy and Supervisor bookkeeping, without processes (injected spawn/kill/clock)."""

from __future__ import annotations

import signal

import pytest

from vac.vacd.supervisor import (EXIT_ROLE_MISSING, BackoffPolicy, Supervisor, backoff_seconds,
                            describe_wait_status, next_failure_count)


def exited(code):
    return code << 8


@pytest.mark.parametrize("failures,expected", [(0, 0), (1, 1), (2, 2), (3, 4), (6, 32),
                                               (9, 256), (10, 300), (1000, 300)])
def test_backoff_doubles_up_to_the_cap(failures, expected):
    assert backoff_seconds(failures) == expected


def test_backoff_policy_is_configurable():
    assert backoff_seconds(3, BackoffPolicy(base=0.5, cap=1.5)) == 1.5


def test_a_long_run_resets_the_failure_count():
    assert next_failure_count(5, ran_seconds=61) == 1
    assert next_failure_count(5, ran_seconds=3) == 6


@pytest.mark.parametrize("status,text", [
    (exited(0), "exited with code 0"),
    (exited(2), "exited with code 2"),
    (exited(EXIT_ROLE_MISSING), "exited with code 3 (role code could not be loaded)"),
    (exited(1), "exited with code 1 (role raised an exception)"),
    (signal.SIGKILL, "killed by SIGKILL"),
    (signal.SIGSEGV | 0x80, "killed by SIGSEGV (core dumped)"),
])
def test_wait_status_is_explained(status, text):
    assert describe_wait_status(status) == text


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def rig():
    clock = Clock()
    spawned, kills = [], []

    def spawn(role):
        spawned.append(role)
        return 100 + len(spawned)
    sup = Supervisor(["factory", "responder"], spawn, kill=lambda p, s: kills.append((p, s)),
                     clock=clock)
    return sup, clock, spawned, kills


def test_restart_waits_for_the_backoff(rig, caplog):
    sup, clock, spawned, _ = rig
    sup.start_all()
    assert spawned == ["factory", "responder"]
    sup.child_exited(101, signal.SIGKILL)
    assert "vacd-factory (pid 101) killed by SIGKILL" in caplog.text
    assert sup.next_wakeup() == 1.0
    sup.restart_due()
    assert spawned == ["factory", "responder"]
    clock.t += 1.0
    sup.restart_due()
    assert spawned == ["factory", "responder", "factory"]
    assert sup.children["factory"].pid == 103
    sup.child_exited(103, exited(1))            # dies again at once: 2 s
    assert sup.next_wakeup() == 2.0


def test_unknown_pids_are_ignored(rig):
    sup, _, _, _ = rig
    sup.start_all()
    sup.child_exited(999, exited(0))
    assert sup.running_pids() == [101, 102]


def test_failed_fork_is_retried(rig):
    sup, clock, _, _ = rig

    def broken(role):
        raise OSError("no more processes")
    sup._spawn = broken
    sup.start("factory")
    assert sup.children["factory"].pid is None
    assert sup.next_wakeup() == 1.0


def test_signal_all_and_stop_do_not_restart(rig):
    sup, clock, spawned, kills = rig
    sup.start_all()
    sup.signal_all(signal.SIGHUP)
    assert kills == [(101, signal.SIGHUP), (102, signal.SIGHUP)]
    exits = [(101, exited(0)), (102, exited(0))]

    def waitpid(pid, flags):
        return exits.pop(0) if exits else (0, 0)
    sup.stop(5.0, sleep=lambda s: None, waitpid=waitpid)
    assert sup.running_pids() == []
    assert kills[-2:] == [(101, signal.SIGTERM), (102, signal.SIGTERM)]
    clock.t += 1000
    sup.restart_due()
    assert spawned == ["factory", "responder"]


def test_stop_kills_children_that_ignore_sigterm(rig):
    sup, clock, _, kills = rig
    sup.start_all()
    killed = []

    def waitpid(pid, flags):
        if flags == 0 and killed:
            return killed.pop(0), signal.SIGKILL
        return 0, 0

    def sleep(seconds):
        clock.t += 1.0
    sup._kill = lambda p, s: (kills.append((p, s)),
                              killed.append(p) if s == signal.SIGKILL else None)
    sup.stop(3.0, sleep=sleep, waitpid=waitpid)
    assert (101, signal.SIGKILL) in kills and (102, signal.SIGKILL) in kills
    assert sup.running_pids() == []
