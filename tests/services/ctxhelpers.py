"""Helpers for the metadata/MJF service tests: machine directories, running a role in a
thread (optionally inside a network namespace), HTTP clients with a chosen source address.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import shutil
import subprocess
import threading
from typing import Callable, Optional

import pytest

from vac.adapters import statefs
from vac.core import naming
from vac.core.configtypes import Config, Settings
from vac.rolecontrol import RoleControl
from vac.services.httpd_role import machine_for_ordinal

FACTORY = "factory1.example.com"
PUBKEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC0 root@factory1"
CLONE_NEWNET = 0x40000000


def make_machine(paths, ordinal: int, machinetype: str = "lhcb-prod", created: int = 1700000000,
                 user_data: Optional[bytes] = None) -> str:
    """A machine directory for slot ``ordinal`` as the factory writes it (SPEC §3.3)."""
    name = naming.machine_name(FACTORY, ordinal)
    mdir = paths.machine_dir(created, machinetype, name)
    for sub in ("machinefeatures", "jobfeatures", "joboutputs"):
        os.makedirs(os.path.join(mdir, sub), exist_ok=True)
    statefs.write_slot_file(paths, name, created, machinetype, "vm-raw")
    files = {"jobfeatures/job_id": f"uuid-{ordinal:04d}",
             "jobfeatures/allocated_cpu": f"{ordinal % 4 + 1}\n",
             "jobfeatures/wall_limit_secs": str(3600 + ordinal),
             "machinefeatures/total_cpu": str(ordinal % 4 + 1),
             "root_public_key": PUBKEY + "\n", "ip": naming.machine_ip(ordinal)}
    for rel, text in files.items():
        with open(os.path.join(mdir, rel), "w") as f:
            f.write(text)
    with open(os.path.join(mdir, "user_data"), "wb") as f:
        f.write(user_data if user_data is not None else f"#!/bin/sh\n# slot {ordinal}\n".encode())
    return mdir


def make_config(address: str = "127.0.0.1", port: int = 0, **kw) -> Config:
    settings = Settings(vac_space="vac01.example.com", factory_hostname=FACTORY,
                        metadata_bind_address=address, metadata_port=port,
                        mjf_bind_address=address, mjf_port=port, **kw)
    return Config(settings=settings)


def loopback_resolver(paths):
    """127.0.0.N acts as the address of slot N (the real mapping is tested in a netns)."""
    def resolve(ip: str):
        parts = ip.split(".")
        if parts[:3] != ["127", "0", "0"] or int(parts[3]) in (0, 1):
            return None
        return machine_for_ordinal(paths, FACTORY, int(parts[3]))
    return resolve


def setns(name: str) -> None:
    """Move the CALLING THREAD into network namespace ``name``."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({name}) failed")
    finally:
        os.close(fd)


def in_thread(fn: Callable, netns: Optional[str] = None):
    """Run ``fn()`` in a new thread (inside ``netns`` if given) and return its result."""
    box = {}

    def body():
        try:
            if netns:
                setns(netns)
            box["value"] = fn()
        except BaseException as e:  # re-raised in the caller
            box["error"] = e
    t = threading.Thread(target=body)
    t.start()
    t.join(120)
    if "error" in box:
        raise box["error"]
    return box.get("value")


@contextlib.contextmanager
def running_role(run_role, paths, cfg: Config, netns: Optional[str] = None, resolve=None):
    """Start a role in a thread; yields (host, port) once it listens; stops it after."""
    control, bound = RoleControl(), threading.Event()
    address = {}

    def ready(addr):
        address["addr"] = addr
        bound.set()

    def body():
        if netns:
            setns(netns)
        run_role(paths, control, load=lambda p: cfg, resolve=resolve, ready=ready)
    t = threading.Thread(target=body, daemon=True)
    t.start()
    assert bound.wait(20), "role did not bind"
    try:
        yield address["addr"]
    finally:
        control.request_stop()
        t.join(20)


def request(addr, method: str, path: str, source: str = "127.0.0.5", body: bytes = None,
            headers=None, timeout: float = 10.0):
    """(status, headers dict, body) of one request from source address ``source``."""
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _ip(*args: str, check: bool = True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


SERVER_ADDRESSES = ("169.254.169.254", "169.254.169.253")


def add_address(ns: str, address: str) -> None:
    """Add ``address``/16 to the veth of namespace ``ns`` (made by netns_pair)."""
    dev = _ip("-n", ns, "-o", "link", "show", "type", "veth").stdout.split(":")[1]
    _ip("-n", ns, "addr", "add", address + "/16", "dev", dev.strip().split("@")[0])


@contextlib.contextmanager
def netns_pair(tag: str, server_addresses=SERVER_ADDRESSES):
    """Server and client namespaces joined by a veth: ``server_addresses`` (169.254.169.253
    and .254) on the server side, 169.254.169.5 and .6 (two slots) on the client side."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 for network namespaces")
    srv, cli = f"vacsrv-{tag}-{os.getpid()}", f"vaccli-{tag}-{os.getpid()}"
    veth = f"vc{os.getpid() % 100000}{tag[:3]}"
    try:
        _ip("netns", "add", srv)
        _ip("netns", "add", cli)
        _ip("link", "add", veth + "a", "type", "veth", "peer", "name", veth + "b")
        _ip("link", "set", veth + "a", "netns", srv)
        _ip("link", "set", veth + "b", "netns", cli)
        for ns, dev, addrs in ((srv, veth + "a", tuple(server_addresses)),
                               (cli, veth + "b", ("169.254.169.5", "169.254.169.6"))):
            for a in addrs:
                _ip("-n", ns, "addr", "add", a + "/16", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield srv, cli
    finally:
        _ip("netns", "del", srv, check=False)
        _ip("netns", "del", cli, check=False)
