"""Live responder on 127.0.0.1: every request type, space check, legacy form, robustness."""

from __future__ import annotations

import os
import time

import pytest

from vac.adapters import statefs
from vac.core import vacquery as vq
from vac.adapters.conffiles import config_signature
from vac.services.responder import Responder
from tests.services.respondertools import (SPACE, LiveResponder, add_machine, ask, make_cfg,
                                           write)

F = "factory1.example.com"
SALT = vq.make_salt(b"\x01" * 32)


@pytest.fixture
def state(paths):
    now = int(time.time())
    statefs.ensure_state_dirs(paths)
    statefs.write_counts(paths, 2, 3, 3, 3, 3.0)
    add_machine(paths, F, 0, "lhcb", now - 100, fqan="/lhcb/Role=NULL")
    add_machine(paths, F, 1, "atlas", now - 50, processors=2)
    add_machine(paths, F, 2, "lhcb", now - 2000, finished=True, message="300 Nothing to do")
    return paths


def request(mtype, space=SPACE):
    return vq.request_dict(mtype, space, vq.cookie(SALT, F), "04.00.00", "vac-command")


def test_machines_query_one_reply_per_slot(state):
    with LiveResponder(state, make_cfg()) as live:
        replies = ask(live.address, request(vq.MACHINES_QUERY), expect=3)
    assert sorted(r["machine"] for r in replies) == [
        "factory1-00.example.com", "factory1-01.example.com", "factory1-02.example.com"]
    assert {r["num_machines"] for r in replies} == {3}
    assert len({r["time_sent"] for r in replies}) == 1
    by_name = {r["machine"]: r for r in replies}
    assert by_name["factory1-00.example.com"]["state"] == "Running"
    assert by_name["factory1-00.example.com"]["fqan"] == "/lhcb/Role=NULL"
    assert by_name["factory1-02.example.com"]["shutdown_message"] == "300 Nothing to do"
    assert all(r["cookie"] == vq.cookie(SALT, F) and r["factory"] == F for r in replies)


def test_machinetypes_query(state):
    with LiveResponder(state, make_cfg()) as live:
        replies = ask(live.address, request(vq.MACHINETYPES_QUERY), expect=2)
    by_mt = {r["machinetype"]: r for r in replies}
    assert set(by_mt) == {"lhcb", "atlas"}
    assert by_mt["atlas"]["running_processors"] == 2
    assert by_mt["lhcb"]["running_machines"] == 1
    assert by_mt["lhcb"]["shutdown_message"] == "300 Nothing to do"
    assert by_mt["lhcb"]["shutdown_machine"] == "factory1-02.example.com"
    assert by_mt["lhcb"]["site"] == "example.com"


def test_factory_query(state):
    write(state.heartbeat("factory"), "1\n")
    with LiveResponder(state, make_cfg()) as live:
        (reply,) = ask(live.address, request(vq.FACTORY_QUERY), expect=1)
    assert reply["running_machines"] == 2 and reply["running_hs06"] == 3.0
    assert reply["factory_heartbeat_time"] > 0 and reply["mjf_heartbeat_time"] == 0
    assert reply["responder_heartbeat_time"] > 0
    assert reply["mem_total_kb"] > 0 and reply["kernel_version"] == os.uname().release


@pytest.mark.parametrize("method,count", [("machines", 3), ("machinetypes", 2),
                                          ("factories", 1)])
def test_legacy_method_form_answered(state, method, count):
    msg = {"method": method, "space": SPACE, "cookie": "legacy", "vac_version": "Vac 0.20"}
    with LiveResponder(state, make_cfg()) as live:
        replies = ask(live.address, msg, expect=count)
    assert len(replies) == count and replies[0]["cookie"] == "legacy"


def test_other_space_and_garbage_ignored_and_counted(state):
    with LiveResponder(state, make_cfg()) as live:
        assert ask(live.address, request(vq.FACTORY_QUERY, "other.space"), 1, 0.3) == []
        for junk in (b"", b"{", b"[]", b'{"message_type":"factory_query"}', b"\xff" * 2000):
            ask_raw(live.address, junk)
        assert len(ask(live.address, request(vq.FACTORY_QUERY), expect=1)) == 1
        stats = live.responder.stats
        assert live.thread.is_alive()
    assert stats.wrong_space == 1 and stats.malformed == 5 and stats.answered == 1


def ask_raw(address, data: bytes) -> None:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, address)


def test_never_writes_slot_state(state):
    def tree():
        out = {}
        for top, _, files in os.walk(state.state_dir):
            for name in files:
                path = os.path.join(top, name)
                if not name.endswith("-heartbeat"):
                    out[path] = os.stat(path).st_mtime_ns
        return out
    before = tree()
    with LiveResponder(state, make_cfg()) as live:
        for mtype in vq.REQUEST_TYPES:
            ask(live.address, request(mtype), expect=3, timeout=0.5)
    assert tree() == before
    assert os.path.exists(state.heartbeat("responder"))


def test_config_reloaded_on_request_not_per_datagram(state):
    with LiveResponder(state, make_cfg()) as live:
        for _ in range(5):
            ask(live.address, request(vq.FACTORY_QUERY), expect=1)
        assert live.loads == 1
        live.cfg = make_cfg(space="vac02.example.com")
        live.control.request_reload()
        deadline = time.monotonic() + 5
        while live.loads < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        replies = ask(live.address, request(vq.FACTORY_QUERY, "vac02.example.com"), 1)
    assert live.loads == 2 and replies[0]["space"] == "vac02.example.com"


def test_real_config_files_and_mtime_reload(paths):
    write(paths.etc_vac_conf, "[settings]\nvac_space = vac01.example.com\n"
          "factory_hostname = factory1.example.com\n")
    responder = Responder(paths)
    assert responder.refresh_config().settings.factory_hostname == F
    first = config_signature(paths)
    write(paths.etc_vac_conf, "[settings]\nvac_space = vac09.example.com\n"
          "factory_hostname = factory1.example.com\n")
    os.utime(paths.etc_vac_conf, (1, 1))
    assert config_signature(paths) != first
    responder.config.next_check = 0
    assert responder.refresh_config().settings.vac_space == "vac09.example.com"
    write(paths.etc_vac_conf, "[settings]\nbroken = \n[[[")
    responder.config.next_check = 0
    assert responder.refresh_config().settings.vac_space == "vac09.example.com"


def test_bind_failure_is_retried_not_fatal(state):
    with LiveResponder(state, make_cfg()) as first:
        second = LiveResponder(state, make_cfg(), port=first.address[1])
        second.thread.start()
        time.sleep(0.2)
        assert second.thread.is_alive() and second.responder.sock is None
        second.control.request_stop()
        second.thread.join(5)
        assert not second.thread.is_alive()


def test_run_vac_conf_and_cached_pipes_trigger_reload(paths):
    """/var/run/vac.conf and a cached pipe are part of what decides a reload."""
    write(paths.etc_vac_conf, "[settings]\nvac_space = vac01.example.com\n"
          "factory_hostname = factory1.example.com\n")
    loads = []
    responder = Responder(paths, load=lambda: loads.append(1) or make_cfg())
    responder.refresh_config()
    responder.config.next_check = 0
    responder.refresh_config()
    assert len(loads) == 1
    for changed in (paths.run_vac_conf, paths.pipe_cache_file("example")):
        write(changed, "# changed\n")
        responder.config.next_check = 0
        responder.refresh_config()
    assert len(loads) == 3
