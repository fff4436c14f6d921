"""The MJF/JOBOUTPUTS role over real sockets (SPEC §5.1; checklist rows 92-94)."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time

import pytest

from tests.services.ctxhelpers import (in_thread, loopback_resolver, make_config,
                                       make_machine, netns_pair, request, running_role)
from vac.adapters import contextfiles, statefs
from vac.adapters.atomicfile import SPARE_NAME
from vac.adapters.httpserver import Limits
from vac.services import metadata_httpd, mjf_httpd

LIMITS = dict(joboutputs_max_file_bytes=1000, joboutputs_max_total_bytes=1500)


@pytest.fixture
def machines(paths):
    return {5: make_machine(paths, 5), 6: make_machine(paths, 6, machinetype="atlas")}


@pytest.fixture
def served(paths, machines):
    with running_role(mjf_httpd.run_role, paths, make_config(**LIMITS),
                      resolve=loopback_resolver(paths)) as addr:
        yield addr


def test_listings_values_and_missing_keys(served, paths):
    status, headers, body = request(served, "GET", "/jobfeatures/")
    assert status == 200 and headers["Content-Type"] == "text/html"
    assert headers["Server"] == "Vac mjf server"
    assert b'<li><a href="allocated_cpu">allocated_cpu</a></li>' in body
    assert request(served, "GET", "/jobfeatures")[2] == body
    assert request(served, "GET", "/jobfeatures/allocated_cpu")[2] == b"2\n"
    assert request(served, "GET", "/jobfeatures/wall_limit_secs")[2] == b"3605"
    assert request(served, "GET", "/machinefeatures/total_cpu")[2] == b"2"
    assert request(served, "GET", "/jobfeatures/max_swap_bytes")[0] == 404
    assert request(served, "GET", "/jobfeatures/a/b")[0] == 404
    assert request(served, "GET", "/joboutputs/")[0] == 404
    assert os.path.exists(paths.heartbeat("mjf"))


def test_put_writes_into_the_callers_joboutputs(served, machines):
    status = request(served, "PUT", "/joboutputs/shutdown_message", body=b"200 Success")[0]
    assert status == 201
    with open(os.path.join(machines[5], "joboutputs", "shutdown_message"), "rb") as f:
        assert f.read() == b"200 Success"
    assert not os.path.exists(os.path.join(machines[6], "joboutputs", "shutdown_message"))
    assert request(served, "PUT", "/joboutputs/heartbeat", source="127.0.0.6",
                   body=b"0.1 0.2")[0] == 201
    assert os.listdir(os.path.join(machines[6], "joboutputs")) == ["heartbeat"]
    assert oct(os.stat(os.path.join(machines[6], "joboutputs", "heartbeat")).st_mode
               & 0o777) == "0o644"


def test_isolation_of_feature_reads(served):
    for _ in range(20):
        assert request(served, "GET", "/jobfeatures/job_id", source="127.0.0.6")[2] == \
            b"uuid-0006"
        assert request(served, "GET", "/jobfeatures/job_id", source="127.0.0.5")[2] == \
            b"uuid-0005"


@pytest.mark.parametrize("path", [
    "/joboutputs/../jobfeatures/job_id", "/joboutputs/..%2Fx", "/joboutputs/.hidden",
    "/joboutputs/a/b", "/joboutputs/" + "n" * 200, "/jobfeatures/job_id", "/joboutputs/"])
def test_bad_put_paths_403(served, machines, path):
    assert request(served, "PUT", path, body=b"x")[0] == 403
    assert open(os.path.join(machines[5], "jobfeatures", "job_id")).read() == "uuid-0005"


def test_size_limits_and_strangers(served, machines):
    assert request(served, "PUT", "/joboutputs/big", body=b"x" * 1001)[0] == 403
    assert request(served, "PUT", "/joboutputs/a", body=b"x" * 1000)[0] == 201
    assert request(served, "PUT", "/joboutputs/b", body=b"x" * 600)[0] == 403
    assert request(served, "PUT", "/joboutputs/a", body=b"x" * 900)[0] == 201
    assert request(served, "PUT", "/joboutputs/x", source="127.0.0.1", body=b"x")[0] == 403
    assert request(served, "PUT", "/joboutputs/x", source="127.0.0.9", body=b"x")[0] == 403
    assert request(served, "GET", "/jobfeatures/job_id", source="127.0.0.1")[0] == 404
    assert request(served, "POST", "/joboutputs/x", body=b"x")[0] == 405
    assert request(served, "PUT", "/joboutputs/x", body=b"x",
                   headers={"Host": "evil"})[0] == 400
    assert sorted(set(os.listdir(os.path.join(machines[5], "joboutputs"))) - {SPARE_NAME}) \
        == ["a"]


def test_put_without_length_or_chunked_refused(served):
    with socket.create_connection(served, timeout=5, source_address=("127.0.0.5", 0)) as s:
        s.sendall(b"PUT /joboutputs/x HTTP/1.0\r\n\r\nabc")
        assert s.recv(100).startswith(b"HTTP/1.1 403")
    with socket.create_connection(served, timeout=5, source_address=("127.0.0.5", 0)) as s:
        s.sendall(b"PUT /joboutputs/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 411")


def _fuzz_requests(rng: random.Random, n: int):
    pieces = [b"GET", b"PUT", b"POST", b"\x00", b"\xff\xfe", b"/joboutputs/", b"..", b"/",
              b"HTTP/1.1", b"HTTP/9.9", b"HTTP/1.0", b"\r\n", b"\n", b" ", b"Content-Length: ",
              b"-1", b"99999999999999999999", b"Host: x", b"Transfer-Encoding: chunked",
              b"%2e%2e", b"jobfeatures", b"A" * 3000, b":", b"\t"]
    for _ in range(n):
        yield b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) + \
            rng.choice([b"\r\n\r\n", b"", b"\r\n"])


def _fuzz(addr, start: int, n: int, source: str) -> None:
    rng = random.Random(start)
    for data in _fuzz_requests(rng, n):
        with socket.create_connection(addr, timeout=10, source_address=(source, 0)) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                s.recv(4096)
            except OSError:
                pass


@pytest.mark.slow
def test_fuzz_10000_malformed_requests_leave_both_services_answering(paths, machines):
    cfg = make_config(**LIMITS)
    resolve = loopback_resolver(paths)
    with running_role(mjf_httpd.run_role, paths, cfg, resolve=resolve) as mjf, \
            running_role(metadata_httpd.run_role, paths, cfg, resolve=resolve) as md:
        threads = [threading.Thread(target=_fuzz, args=(addr, i, 1250, "127.0.0.5"))
                   for i, addr in enumerate([mjf, md] * 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert request(mjf, "GET", "/jobfeatures/job_id")[2] == b"uuid-0005"
        assert request(md, "GET", "/latest/meta-data/instance-id")[2] == b"uuid-0005"
        assert request(mjf, "PUT", "/joboutputs/after-fuzz", body=b"ok")[0] == 201
    leftovers = [n for n in os.listdir(os.path.join(machines[5], "joboutputs"))
                 if n.startswith(".")]
    assert leftovers == []


@pytest.mark.integration
def test_put_and_get_from_real_slot_addresses_in_a_namespace(paths, machines):
    with netns_pair("mjf") as (srv, cli):
        with running_role(mjf_httpd.run_role, paths, make_config("169.254.169.253", 80),
                          netns=srv) as addr:
            def put(src):
                return request(addr, "PUT", "/joboutputs/shutdown_message", source=src,
                               body=f"200 Success from {src}".encode())
            assert in_thread(lambda: put("169.254.169.6"), cli)[0] == 201
            assert in_thread(lambda: request(addr, "GET", "/jobfeatures/job_id",
                                             source="169.254.169.5"), cli)[2] == b"uuid-0005"
    with open(os.path.join(machines[6], "joboutputs", "shutdown_message")) as f:
        assert f.read() == "200 Success from 169.254.169.6"
    assert not os.path.exists(os.path.join(machines[5], "joboutputs", "shutdown_message"))


def test_one_machine_cannot_exhaust_the_connections(served):
    """Idle connections up to the per-source cap from slot 5 (each has sent the start of a
    request: the kernel hands a connection to accept() once data has arrived): its next
    is dropped at once, slot 6 is still served, and slot 5 again once it closes them."""
    per = Limits().per_source
    idle = [socket.create_connection(served, timeout=5, source_address=("127.0.0.5", 0))
            for _ in range(per)]
    for s in idle:
        s.sendall(b"GET /jobfeatures/job_id HTTP/1.0\r\n")
    try:
        time.sleep(0.3)
        with socket.create_connection(served, timeout=5,
                                      source_address=("127.0.0.5", 0)) as extra:
            extra.sendall(b"GET /jobfeatures/job_id HTTP/1.0\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):
                assert extra.recv(100) == b""
        assert request(served, "GET", "/jobfeatures/job_id", source="127.0.0.6")[2] == \
            b"uuid-0006"
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if request(served, "GET", "/jobfeatures/job_id")[2] == b"uuid-0005":
                break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail("slot 5 not served again after closing its idle connections")


def test_slow_clients_do_not_starve_other_slots(paths, machines):
    """8 sources each hold 16 half-sent requests to each service (the old server's whole
    capacity): another slot's GETs and heartbeat PUT are still answered, each in < 1 s."""
    cfg, resolve = make_config(**LIMITS), loopback_resolver(paths)
    with running_role(mjf_httpd.run_role, paths, cfg, resolve=resolve) as mjf, \
            running_role(metadata_httpd.run_role, paths, cfg, resolve=resolve) as md:
        slow = []
        for addr in (md, mjf):
            for n in range(20, 28):
                for _ in range(16):
                    with contextlib.suppress(OSError):
                        s = socket.create_connection(addr, timeout=2,
                                                     source_address=(f"127.0.0.{n}", 0))
                        s.sendall(b"GET /jobfeatures/job_id HTTP/1.1\r\nX-Slow: a")
                        slow.append(s)
        try:
            for addr, method, path, body, want in (
                    (md, "GET", "/latest/user-data", None, 200),
                    (mjf, "GET", "/jobfeatures/job_id", None, 200),
                    (mjf, "PUT", "/joboutputs/heartbeat", b"0.5 0.4 0.3", 201)):
                t0 = time.monotonic()
                assert request(addr, method, path, body=body, timeout=5)[0] == want
                assert time.monotonic() - t0 < 1.0, f"{method} {path} took too long"
        finally:
            for s in slow:
                s.close()


def test_values_held_from_the_start_until_the_factory_replaces_them(paths, monkeypatch):
    """Feature values are read when the role starts: GETs then open no file (answered in
    the event loop); a key the factory replaces (by rename) is served new at once."""
    from tests.services.test_metadata_httpd import age_machine
    from vac.adapters import statefs
    mdir = make_machine(paths, 5)
    age_machine(mdir)
    opened = []
    real = mjf_httpd._read_value
    monkeypatch.setattr(mjf_httpd, "_read_value", lambda p: opened.append(p) or real(p))
    with running_role(mjf_httpd.run_role, paths, make_config(**LIMITS),
                      resolve=loopback_resolver(paths)) as addr:
        warmed = len(opened)
        assert warmed == 4                           # every key of both directories
        for _ in range(3):
            assert request(addr, "GET", "/jobfeatures/allocated_cpu")[2] == b"2\n"
            assert b"total_cpu" in request(addr, "GET", "/machinefeatures/")[2]
        assert len(opened) == warmed
        statefs.write_machine_file(mdir, "jobfeatures/allocated_cpu", "8\n")
        assert request(addr, "GET", "/jobfeatures/allocated_cpu")[2] == b"8\n"


def test_token_rule_is_remembered_once_the_machine_has_started(tmp_path):
    """Whether PUTs need the machine token is read again while the machine is being made
    (the marker may not be written yet) and remembered once it has ``started``."""
    rule = mjf_httpd.TokenRule()
    making, started = tmp_path / "making", tmp_path / "started"
    making.mkdir()
    started.mkdir()
    assert not rule.required(str(making))
    contextfiles.write_machine_token(str(making), "secret", True)
    assert rule.required(str(making))
    statefs.write_started(str(started), 1700000000)
    assert not rule.required(str(started))
    os.remove(os.path.join(started, "started"))
    contextfiles.write_machine_token(str(started), "secret", True)
    assert not rule.required(str(started))          # decided at creation: not re-read
