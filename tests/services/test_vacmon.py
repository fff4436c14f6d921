"""VacMon: a UDP sink on loopback receives every field of the VacMon schema."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from vac.adapters import statefs
from vac.services import vacmon
from tests.services.respondertools import add_machine, make_cfg

F = "factory1.example.com"
COMMON = {"cookie", "message_type", "vacquery_version"}
FACTORY_FIELDS = COMMON | {
    "boot_time", "factory_heartbeat_time", "kernel_version", "load_average", "mem_total_kb",
    "mem_used_kb", "metadata_heartbeat_time", "mjf_heartbeat_time", "os_issue",
    "responder_heartbeat_time", "root_disk_avail_kb", "root_disk_avail_inodes",
    "running_processors", "running_hs06", "running_machines", "max_processors", "max_hs06",
    "max_machines", "daemon_disk_avail_kb", "daemon_disk_avail_inodes", "daemon_version",
    "site", "space", "swap_used_kb", "swap_free_kb", "time_sent"}
MACHINETYPE_FIELDS = COMMON | {
    "machinetype", "fqan", "num_before_fizzle", "running_hs06", "running_machines",
    "running_processors", "shutdown_machine", "shutdown_message", "shutdown_time", "vo"}
MACHINE_FIELDS = COMMON | {
    "machine", "uuid", "state", "created_time", "started_time", "heartbeat_time",
    "cpu_seconds", "cpu_percentage", "hs06", "num_processors", "machine_model",
    "shutdown_message", "shutdown_time", "fqan", "vo"}


@pytest.fixture
def sink():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def drain(sock, count):
    return [json.loads(sock.recvfrom(65535)[0]) for _ in range(count)]


@pytest.fixture
def state(paths):
    statefs.ensure_state_dirs(paths)
    statefs.write_counts(paths, 1, 2, 1, 2, 1.0)
    add_machine(paths, F, 0, "lhcb", int(time.time()) - 100, fqan="/lhcb/Role=NULL")
    return paths


def test_cycle_status_messages(state, sink):
    port = sink.getsockname()[1]
    cfg = make_cfg(F, vacmon_hostport=(f"127.0.0.1:{port}", "bad-hostport"))
    assert vacmon.send_cycle_status(cfg, state, time.time()) == 3
    messages = drain(sink, 3)
    factory = [m for m in messages if m["message_type"] == "factory_status"]
    mts = {m["machinetype"]: m for m in messages if m["message_type"] == "machinetype_status"}
    assert len(factory) == 1 and set(mts) == {"lhcb", "atlas"}
    assert FACTORY_FIELDS <= set(factory[0])
    assert MACHINETYPE_FIELDS <= set(mts["lhcb"])
    assert mts["lhcb"]["vo"] == "lhcb" and mts["lhcb"]["running_machines"] == 1
    assert all(m["cookie"] == "0" and m["vac_version"].endswith("vacd-factory")
               for m in messages)


def test_machine_status_on_finish(state, sink):
    port = sink.getsockname()[1]
    cfg = make_cfg(F, vacmon_hostport=(f"127.0.0.1:{port}",))
    slot = statefs.read_slot(state, F, 0)
    assert vacmon.send_machine_status(cfg, state, slot, time.time()) == 1
    (message,) = drain(sink, 1)
    assert MACHINE_FIELDS <= set(message)
    assert message["machine"] == "factory1-00.example.com" and message["num_machines"] == 2


def test_nothing_sent_without_vacmon(state):
    assert vacmon.send_cycle_status(make_cfg(F), state, time.time()) == 0


def test_version_logger_off_by_default_and_daily_when_on(state, sink):
    now = time.time()
    assert vacmon.maybe_log_version(make_cfg(F), state, now) is False
    port = sink.getsockname()[1]
    cfg = make_cfg(F, version_logger=2, version_logger_hostport=f"127.0.0.1:{port}")
    sleeps = []
    assert vacmon.maybe_log_version(cfg, state, now, sleep=sleeps.append) is True
    assert sleeps == [1.0] * 4
    messages = drain(sink, 5)
    assert {m["message_type"] for m in messages} == {"factory_status"}
    assert vacmon.maybe_log_version(cfg, state, now + 100, sleep=sleeps.append) is False
    assert vacmon.maybe_log_version(cfg, state, now + 43300, sleep=sleeps.append) is True


def test_keyed_space_signs_vacmon_messages_and_an_unreadable_key_sends_none(state, sink):
    from vac.core.vqauth import Signer
    from tests.services.test_vacquery_auth import KEY, KEY_FILE, install_key
    port = sink.getsockname()[1]
    cfg = make_cfg(F, vacmon_hostport=(f"127.0.0.1:{port}",), query_key_file=KEY_FILE)
    path = install_key(state)
    assert vacmon.send_cycle_status(cfg, state, time.time()) == 3
    datagrams = [sink.recvfrom(65535)[0] for _ in range(3)]
    assert all(Signer(KEY).verify(d) for d in datagrams)
    os.chmod(path, 0o644)
    assert vacmon.send_cycle_status(cfg, state, time.time()) == 0
