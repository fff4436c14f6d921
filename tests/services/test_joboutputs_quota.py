"""JOBOUTPUTS quotas under attack, over real sockets: parallel uploads from one machine
never store more bytes or files than allowed, a full disk is 507 and loses nothing."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from typing import List, Tuple

import pytest

from tests.services.ctxhelpers import loopback_resolver, make_config, make_machine, running_role
from vac.adapters.atomicfile import SPARE_NAME
from vac.adapters.httpserver import Limits
from vac.adapters.recycledfile import SPARE_MAX_BYTES
from vac.services import httpd_role, joboutputs, mjf_httpd


@pytest.fixture
def machine(paths):
    return make_machine(paths, 5)


@pytest.fixture
def roomy(monkeypatch):
    """Let one source have 32 connections and uploads, so all parallel ones are in flight
    at once (the defaults would refuse most of them before the quota is even asked)."""
    monkeypatch.setattr(httpd_role, "server_limits",
                        lambda cfg, paths: Limits(per_source=32, uploads_per_source=32))


def _status(data: bytes) -> int:
    parts = data.split(None, 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _head(addr, name: str, size: int, expect: bool = False) -> bytes:
    return (f"PUT /joboutputs/{name} HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\n"
            f"Content-Length: {size}\r\n" + ("Expect: 100-continue\r\n" if expect else "")
            + "\r\n").encode()


def parallel_puts(addr, puts: List[Tuple[str, int]]) -> List[int]:
    """Every PUT on its own connection from slot 5: all heads and the first KiB of every
    body go out, then (all together) the rest. Statuses; 0 if dropped without one (a
    refused upload is read on and dropped after its reply, so the guest gets the reply)."""
    barrier = threading.Barrier(len(puts))
    statuses = [0] * len(puts)

    def one(i: int, name: str, size: int) -> None:
        body = b"%02d" % i * (size // 2)
        try:
            s = socket.create_connection(addr, timeout=10, source_address=("127.0.0.5", 0))
        except OSError:
            barrier.wait()
            return
        with s:
            with contextlib.suppress(OSError):
                s.sendall(_head(addr, name, size) + body[:1024])
            barrier.wait()
            with contextlib.suppress(OSError):
                s.sendall(body[1024:])
            with contextlib.suppress(OSError):
                statuses[i] = _status(s.recv(200))
    threads = [threading.Thread(target=one, args=(i, n, size))
               for i, (n, size) in enumerate(puts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return statuses


def put(addr, name: str, data: bytes) -> int:
    """PUT with ``Expect: 100-continue``, as curl sends large files."""
    with socket.create_connection(addr, timeout=10, source_address=("127.0.0.5", 0)) as s:
        s.sendall(_head(addr, name, len(data), expect=True))
        reply = s.recv(200)
        if reply.startswith(b"HTTP/1.1 100"):
            s.sendall(data)
            reply = reply.split(b"\r\n\r\n", 1)[1] or s.recv(200)
        return _status(reply)


def stored(machine: str):
    """(name -> size of the visible files, names of temporary files) in joboutputs/; the
    spare inode of recycled writes (at most SPARE_MAX_BYTES) is neither."""
    directory = os.path.join(machine, "joboutputs")
    names = os.listdir(directory)
    if SPARE_NAME in names:
        names.remove(SPARE_NAME)
        assert os.path.getsize(os.path.join(directory, SPARE_NAME)) <= SPARE_MAX_BYTES
    return ({n: os.path.getsize(os.path.join(directory, n)) for n in names
             if not n.startswith(".")}, [n for n in names if n.startswith(".")])


def test_parallel_uploads_never_exceed_the_byte_quota(paths, machine, roomy):
    """16 uploads of 100 kB against 500 kB: before, each was checked before any body was
    written and all were stored (3.2 x the quota); now each is charged first."""
    cfg = make_config(joboutputs_max_file_bytes=200_000, joboutputs_max_total_bytes=500_000)
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], sum(stored(machine)[0].values()))
            time.sleep(0.005)
    with running_role(mjf_httpd.run_role, paths, cfg, resolve=loopback_resolver(paths)) as addr:
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            statuses = parallel_puts(addr, [(f"out{i}", 100_000) for i in range(16)])
        finally:
            done.set()
            watcher.join()
    files, temps = stored(machine)
    assert statuses.count(201) == 5 and set(statuses) == {201, 403}, statuses
    assert len(files) == 5 and sum(files.values()) == 500_000 and temps == []
    assert peak[0] <= 500_000


def test_parallel_uploads_never_exceed_the_file_count(paths, machine, roomy):
    cfg = make_config(joboutputs_max_files=5)
    with running_role(mjf_httpd.run_role, paths, cfg, resolve=loopback_resolver(paths)) as addr:
        statuses = parallel_puts(addr, [(f"f{i}", 2000) for i in range(16)])
        assert statuses.count(201) == 5, statuses
        files = stored(machine)[0]
        assert len(files) == 5
        assert put(addr, sorted(files)[0], b"replaced") == 201    # a replacement is no new file
        assert put(addr, "one-more", b"x") == 403
    assert len(stored(machine)[0]) == 5


def test_one_upload_per_name_and_one_scan_per_machine(paths, machine, monkeypatch):
    """A second upload of a name still being uploaded is 409 (its charge could not hold);
    the quota check never rescans joboutputs/ (one scan when the machine is first seen)."""
    scans = []
    real_scan = joboutputs.scan
    monkeypatch.setattr(joboutputs, "scan", lambda d: scans.append(d) or real_scan(d))
    with running_role(mjf_httpd.run_role, paths, make_config(),
                      resolve=loopback_resolver(paths)) as addr:
        for i in range(20):
            assert put(addr, f"small{i % 5}", b"x" * i) == 201
        with socket.create_connection(addr, timeout=10,
                                      source_address=("127.0.0.5", 0)) as first:
            first.sendall(_head(addr, "big", 200_000) + b"a" * 1000)
            time.sleep(0.3)
            assert put(addr, "big", b"b" * 10) == 409
            first.sendall(b"a" * 199_000)
            assert _status(first.recv(200)) == 201
    assert scans == [os.path.join(machine, "joboutputs")]


def test_a_machine_is_accounted_before_its_first_put(paths, machine, monkeypatch):
    """The role scans a machine's joboutputs/ when it warms its caches (at its start and
    when machines appear), not in the machine's first PUT: under a burst of first PUTs
    each cost a directory scan more than the others."""
    scans = []
    real_scan = joboutputs.scan
    monkeypatch.setattr(joboutputs, "scan", lambda d: scans.append(d) or real_scan(d))
    with running_role(mjf_httpd.run_role, paths, make_config(),
                      resolve=loopback_resolver(paths)) as addr:
        assert scans == [os.path.join(machine, "joboutputs")]     # before any request
        assert put(addr, "heartbeat", b"1") == 201
    assert len(scans) == 1


@contextlib.contextmanager
def tmpfs(directory: str, size: str):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", directory],
                   check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", directory], check=True)


def test_a_full_disk_is_507_and_loses_nothing(paths, machine):
    """ENOSPC while storing a guest's PUT: 507 (retry later), not 403; no temporary file
    stays and what was stored is intact; once there is room the retry is stored."""
    with tmpfs(os.path.join(machine, "joboutputs"), "256k") as directory:
        with open(os.path.join(directory, "filler"), "wb") as f:
            f.write(b"f" * 240 * 1024)
        with running_role(mjf_httpd.run_role, paths, make_config(),
                          resolve=loopback_resolver(paths)) as addr:
            assert put(addr, "keep", b"k" * 8000) == 201
            assert put(addr, "big", b"b" * 100_000) == 507       # space reserved first
            assert put(addr, "mid", b"m" * 30_000) == 507        # fails while writing
            assert put(addr, "keep", b"K" * 30_000) == 507       # a failed replacement
            files, temps = stored(machine)
            assert sorted(files) == ["filler", "keep"] and temps == []
            with open(os.path.join(directory, "keep"), "rb") as f:
                assert f.read() == b"k" * 8000
            os.unlink(os.path.join(directory, "filler"))
            assert put(addr, "big", b"b" * 100_000) == 201
            assert stored(machine)[0]["big"] == 100_000
