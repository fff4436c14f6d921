"""Roles hosted in threads of another role's process (vac.vacd.hosting): the layout,
their logs kept apart, and a crashing hosted role restarted in its thread."""

from __future__ import annotations

import logging
import threading

from vac.rolecontrol import RoleControl
from vac.vacd import hosting
from vac.vacd.logsetup import ThreadsOf, thread_name
from vac.vacd.supervisor import BackoffPolicy


def test_the_responder_runs_in_the_factory_process_when_both_run():
    assert hosting.process_layout(("factory", "responder", "metadata", "mjf", "metrics")) == {
        "factory": ("factory", "responder"), "metadata": ("metadata",), "mjf": ("mjf",),
        "metrics": ("metrics",)}
    assert hosting.process_layout(("responder", "metadata")) == {
        "responder": ("responder",), "metadata": ("metadata",)}
    assert hosting.process_layout(("responder", "factory")) == {
        "factory": ("factory", "responder")}


def _record(thread: str) -> logging.LogRecord:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.threadName = thread
    return record


def test_records_go_to_the_log_of_the_role_whose_thread_wrote_them():
    hosted, rest = ThreadsOf(["responder"]), ThreadsOf(["responder"], exclude=True)
    for thread, to_hosted in (("MainThread", False), ("vacd-responder", True),
                              ("vacd-responder:vacquery-allow-list", True),
                              ("vacd-mjf-http", False)):
        assert hosted.filter(_record(thread)) is to_hosted
        assert rest.filter(_record(thread)) is not to_hosted


def test_a_hosted_role_that_fails_is_run_again_until_stopped():
    control, runs = RoleControl(), []

    def run_role(role, target, paths, ctl):
        runs.append((role, target, threading.current_thread().name))
        if len(runs) == 3:
            ctl.request_stop()
            return 0
        return 1                                   # as run_role after an exception
    thread = hosting.HostedRole("responder", "mod:fn", None, control, run_role,
                                BackoffPolicy(base=0.01, cap=0.01))
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert runs == [("responder", "mod:fn", thread_name("responder"))] * 3
    assert thread.restarts == 2
