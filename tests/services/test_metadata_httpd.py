"""The metadata role over real sockets (SPEC §5.1; checklist rows 91, 92, 101)."""

from __future__ import annotations

import glob
import json
import logging
import os
import socket
import threading
import time

import pytest

from tests.services.ctxhelpers import (FACTORY, PUBKEY, add_address, in_thread,
                                       loopback_resolver, make_config, make_machine,
                                       netns_pair, request, running_role)
from vac.adapters import statefs
from vac.rolecontrol import RoleControl
from vac.services import httpd_role, metadata_httpd


@pytest.fixture
def served(paths):
    make_machine(paths, 5, user_data=b"#!/bin/sh\necho five\n")
    make_machine(paths, 6, machinetype="atlas", user_data=b"#!/bin/sh\necho six\n")
    with running_role(metadata_httpd.run_role, paths, make_config(),
                      resolve=loopback_resolver(paths)) as addr:
        yield addr


def test_ec2_and_openstack_answers(served, paths):
    status, headers, body = request(served, "GET", "/latest/user-data")
    assert (status, body) == (200, b"#!/bin/sh\necho five\n")
    assert headers["Server"] == "Vac metadata server"
    assert request(served, "GET", "/2009-04-04/meta-data/instance-id")[2] == b"uuid-0005"
    assert request(served, "GET", "/latest/meta-data/local-hostname")[2] == \
        b"factory1-05.example.com"
    assert request(served, "GET", "/latest/meta-data/public-keys/0/openssh-key")[2] == \
        PUBKEY.encode()
    md = json.loads(request(served, "GET", "/openstack/latest/meta_data.json")[2])
    assert md["uuid"] == "uuid-0005" and md["meta"]["machinetype"] == "lhcb-prod"
    assert md["availability_zone"] == FACTORY
    assert os.path.exists(paths.heartbeat("metadata"))


def test_isolation_between_slots(served):
    for _ in range(20):
        assert request(served, "GET", "/latest/user-data", source="127.0.0.6")[2] == \
            b"#!/bin/sh\necho six\n"
        assert request(served, "GET", "/latest/user-data", source="127.0.0.5")[2] == \
            b"#!/bin/sh\necho five\n"
    md = json.loads(request(served, "GET", "/latest/meta-data.json", source="127.0.0.6")[2])
    assert md["meta"]["machinetype"] == "atlas" and md["uuid"] == "uuid-0006"


def test_machine_files_are_read_again_when_rewritten(served, paths):
    """The role keeps what it read from a machine directory only while it is unchanged."""
    assert request(served, "GET", "/latest/user-data")[2] == b"#!/bin/sh\necho five\n"
    time.sleep(0.05)
    mdir = os.path.dirname(os.path.dirname(
        glob.glob(os.path.join(paths.machines_dir, "*factory1-05*", "jobfeatures", "job_id"))[0]))
    statefs.write_machine_file(mdir, "user_data", "#!/bin/sh\necho new\n")
    statefs.write_machine_file(mdir, "jobfeatures/job_id", "uuid-new")
    assert request(served, "GET", "/latest/user-data")[2] == b"#!/bin/sh\necho new\n"
    assert request(served, "GET", "/latest/meta-data/instance-id")[2] == b"uuid-new"


def test_strangers_unused_slots_and_unknown_paths_get_404(served):
    assert request(served, "GET", "/latest/user-data", source="127.0.0.1")[0] == 404
    assert request(served, "GET", "/latest/user-data", source="127.0.0.9")[0] == 404
    status, _, body = request(served, "GET", "/latest/nothing")
    assert (status, body) == (404, b"")
    assert request(served, "GET", "/latest/../../etc/passwd")[0] == 404


def test_methods_host_and_garbage_refused(served):
    assert request(served, "POST", "/latest/user-data", body=b"x")[0] == 405
    assert request(served, "DELETE", "/latest/user-data")[0] == 405
    assert request(served, "GET", "/latest/user-data",
                   headers={"Host": "evil.example.com"})[0] == 400
    assert request(served, "GET", "/latest/user-data",
                   headers={"Host": "169.254.169.254"})[0] == 400
    assert request(served, "GET", "/" + "a" * 5000)[0] == 414
    with socket.create_connection(served, timeout=5) as s:
        s.sendall(b"\x00\xff garbage HTTP/1.1\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert request(served, "GET", "/latest/user-data")[0] == 200


@pytest.mark.integration
def test_real_slot_addresses_in_a_network_namespace(paths):
    """Identity purely by the 169.254.169.N source address, as on a factory."""
    make_machine(paths, 5)
    make_machine(paths, 6, machinetype="atlas")
    with netns_pair("md") as (srv, cli):
        with running_role(metadata_httpd.run_role, paths,
                          make_config("169.254.169.254", 80), netns=srv) as addr:
            def fetch(src, path):
                return request(addr, "GET", path, source=src)
            assert in_thread(lambda: fetch("169.254.169.5", "/latest/meta-data/instance-id"),
                             cli)[2] == b"uuid-0005"
            assert in_thread(lambda: fetch("169.254.169.6", "/latest/meta-data/instance-id"),
                             cli)[2] == b"uuid-0006"
            assert in_thread(lambda: fetch("169.254.169.6", "/latest/meta-data/local-ipv4"),
                             cli)[2] == b"169.254.169.6"
            # the factory's own address is no machine
            assert in_thread(lambda: fetch("169.254.169.253", "/latest/user-data"),
                             srv)[0] == 404


def test_an_address_not_there_yet_is_bound_at_once(paths, caplog):
    """At boot the NAT bridge does not exist yet: the role binds at once (IP_FREEBIND)
    instead of retrying every 10 s, and says it waits for the address."""
    caplog.set_level(logging.INFO)
    t0 = time.monotonic()
    with running_role(metadata_httpd.run_role, paths, make_config("192.0.2.77", 0)):
        assert time.monotonic() - t0 < 5
    assert any("address not present yet" in r.getMessage() for r in caplog.records)
    assert not any("cannot bind" in r.getMessage() for r in caplog.records)


def test_a_taken_port_is_retried(paths, monkeypatch, caplog):
    """Another process holds the port: warn once, keep the heartbeat, bind once it is free."""
    monkeypatch.setattr(httpd_role, "BIND_RETRY_SECONDS", 0.1)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    control, bound = RoleControl(), threading.Event()
    t = threading.Thread(target=metadata_httpd.run_role, args=(paths, control),
                         kwargs={"load": lambda p: make_config("127.0.0.1", port),
                                 "ready": lambda addr: bound.set()})
    t.start()
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(paths.heartbeat("metadata")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert not bound.is_set() and os.path.exists(paths.heartbeat("metadata"))
        holder.close()
        assert bound.wait(5)
    finally:
        holder.close()
        control.request_stop()
        t.join(5)
    assert not t.is_alive()
    warnings = [r for r in caplog.records if "cannot bind metadata server" in r.getMessage()]
    assert len(warnings) == 1


def test_connection_total_leaves_room_for_every_slot(paths):
    """Per-source limits only protect if every slot can have its share at once."""
    for slots in (3, 600):
        limits = httpd_role.server_limits(make_config(total_processors=slots), paths)
        assert limits.max_connections >= slots * limits.per_source + 64
        assert limits.max_connections // limits.per_source * limits.uploads_per_source \
            >= slots * limits.uploads_per_source


@pytest.mark.integration
def test_serves_as_soon_as_the_address_appears(paths):
    """The role listens before the factory adds 169.254.169.254; the first guest request
    after the address appears is answered (the old retry took up to 10 s)."""
    make_machine(paths, 5)
    with netns_pair("fb", server_addresses=()) as (srv, cli):
        with running_role(metadata_httpd.run_role, paths,
                          make_config("169.254.169.254", 80), netns=srv) as addr:
            add_address(srv, "169.254.169.254")
            t0 = time.monotonic()
            reply = in_thread(lambda: request(addr, "GET", "/latest/meta-data/instance-id",
                                              source="169.254.169.5", timeout=5), cli)
            assert reply[2] == b"uuid-0005" and time.monotonic() - t0 < 5


def test_config_change_rebinds_and_broken_config_keeps_serving(paths):
    from vac.errors import ConfigError
    make_machine(paths, 5)
    os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
    with open(paths.etc_vac_conf, "w") as f:
        f.write("[settings]\n")
    box = {"cfg": make_config()}
    bound = []
    ready = threading.Event()

    def load(p):
        if box["cfg"] is None:
            raise ConfigError("vac.conf:1: broken")
        return box["cfg"]

    def on_ready(addr):
        bound.append(addr)
        ready.set()
    control = RoleControl()
    t = threading.Thread(target=metadata_httpd.run_role, args=(paths, control),
                         kwargs={"load": load, "resolve": loopback_resolver(paths),
                                 "ready": on_ready})
    t.start()
    try:
        assert ready.wait(10)
        ready.clear()
        box["cfg"] = None                                   # broken config: keep serving
        with open(paths.etc_vac_conf, "a") as f:
            f.write("broken\n")
        control.request_reload()
        assert not ready.wait(2)
        assert request(bound[0], "GET", "/latest/meta-data/instance-id")[2] == b"uuid-0005"
        box["cfg"] = make_config("127.0.0.2", 0)            # new address: rebind
        with open(paths.etc_vac_conf, "a") as f:
            f.write("# fixed\n")
        assert ready.wait(10)
        assert bound[-1][0] == "127.0.0.2"
        assert request(bound[-1], "GET", "/latest/meta-data/instance-id")[2] == b"uuid-0005"
    finally:
        control.request_stop()
        t.join(10)


def test_config_holder_reloads_on_run_vac_conf_and_cached_pipes(paths):
    """The HTTP roles reload when /var/run/vac.conf or a cached pipe changes too."""
    from vac.services.httpd_role import ConfigHolder
    loads = []
    holder = ConfigHolder(paths, lambda p: loads.append(p) or make_config())
    assert holder.reload() and not holder.reload()
    for changed in (paths.run_vac_conf, paths.pipe_cache_file("example")):
        os.makedirs(os.path.dirname(changed), exist_ok=True)
        with open(changed, "w") as f:
            f.write("# changed\n")
        assert holder.reload()
    assert len(loads) == 3


def age_machine(mdir: str, seconds: float = 60) -> None:
    """Date a machine directory back, as when the factory wrote it before the guest booted
    (caches keep nothing read within a moment of a change: timestamps are coarse)."""
    old = time.time() - seconds
    for sub in ("", "jobfeatures", "machinefeatures"):
        os.utime(os.path.join(mdir, sub), (old, old))


def test_files_held_from_the_start_until_the_factory_replaces_them(paths, monkeypatch):
    """The role reads a machine's files when it starts, so even the guest's first GETs
    read nothing (they are answered in the event loop); a file the factory replaces
    is served at once."""
    mdir = make_machine(paths, 5, user_data=b"one")
    age_machine(mdir)
    reads = []
    real = metadata_httpd.read_machine_files
    monkeypatch.setattr(metadata_httpd, "read_machine_files",
                        lambda d: reads.append(d) or real(d))
    with running_role(metadata_httpd.run_role, paths, make_config(),
                      resolve=loopback_resolver(paths)) as addr:
        assert len(reads) == 1                       # warmed before binding
        for _ in range(3):
            assert request(addr, "GET", "/latest/user-data")[2] == b"one"
            assert request(addr, "GET", "/latest/meta-data/instance-id")[2] == b"uuid-0005"
        assert len(reads) == 1
        statefs.write_machine_file(mdir, "user_data", "two")
        assert request(addr, "GET", "/latest/user-data")[2] == b"two"
        statefs.write_machine_file(mdir, "jobfeatures/job_id", "uuid-new")
        assert request(addr, "GET", "/latest/meta-data/instance-id")[2] == b"uuid-new"
