"""Helpers for responder tests: state directories with machines, live responders."""

from __future__ import annotations

import os
import socket
import threading
import time
from types import MappingProxyType
from typing import Optional

from vac.adapters import statefs
from vac.core import vacquery as vq
from vac.core.configtypes import Config, Machinetype, Settings
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services.responder import Responder

SPACE = "vac01.example.com"


def make_cfg(factory: str = "factory1.example.com", factories=(), space: str = SPACE,
             **settings) -> Config:
    mts = {"lhcb": Machinetype("lhcb", target_share=1, accounting_fqan="/lhcb/Role=NULL"),
           "atlas": Machinetype("atlas", target_share=3, max_processors=2)}
    return Config(settings=Settings(vac_space=space, factory_hostname=factory,
                                    factories=tuple(factories) or (factory,), **settings),
                  machinetypes=MappingProxyType(mts))


def write(path: str, text: str = "") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def add_machine(paths: Paths, factory: str, ordinal: int, mt: str, created: int,
                started: bool = True, finished: bool = False, message: Optional[str] = None,
                processors: int = 1, fqan: Optional[str] = None) -> str:
    """A machine directory as the factory leaves it (files, not ctimes, are what counts)."""
    short, domain = factory.split(".", 1)
    name = f"{short}-{ordinal:02d}.{domain}"
    statefs.ensure_state_dirs(paths)
    statefs.write_slot_file(paths, name, created, mt, "cernvm3")
    mdir = paths.machine_dir(created, mt, name)
    write(os.path.join(mdir, "jobfeatures", "allocated_cpu"), f"{processors}\n")
    write(os.path.join(mdir, "jobfeatures", "job_id"), f"uuid-{ordinal}")
    if fqan:
        write(os.path.join(mdir, "accounting_fqan"), fqan)
    if started:
        write(os.path.join(mdir, "started"), f"{created}\n")
        write(os.path.join(mdir, "heartbeat"), "100.0 98.5\n")
    if message:
        write(os.path.join(mdir, "joboutputs", "shutdown_message"), message + "\n")
    if finished:
        write(os.path.join(mdir, "finished"))
        write(paths.finishes_file(mt), f"{created} {mt} {name}")
    return name


def running_factory(paths: Paths, factory: str, slots: int) -> Paths:
    """A state directory with ``slots`` slots, each running an lhcb machine."""
    statefs.ensure_state_dirs(paths)
    statefs.write_counts(paths, slots, slots, slots, slots, float(slots))
    for ordinal in range(slots):
        add_machine(paths, factory, ordinal, "lhcb", int(time.time()) - 100)
    return paths


class LiveResponder:
    """A Responder serving in a thread on 127.0.0.1 (ephemeral port unless given)."""

    def __init__(self, paths: Paths, cfg: Config, port: int = 0, address: str = "127.0.0.1",
                 snapshot_seconds: float = 0.0, **responder_kw):
        self.cfg = cfg
        self.loads = 0
        self.control = RoleControl()
        self.responder = Responder(paths, load=self._load, bind=(address, port),
                                   snapshot_seconds=snapshot_seconds, **responder_kw)
        self.thread = threading.Thread(target=self.responder.serve, args=(self.control,),
                                       daemon=True)

    def _load(self) -> Config:
        self.loads += 1
        return self.cfg

    def __enter__(self) -> "LiveResponder":
        self.thread.start()
        deadline = time.monotonic() + 10
        while self.responder.sock is None:
            assert time.monotonic() < deadline, "responder did not bind"
            time.sleep(0.005)
        self.address = self.responder.sock.getsockname()
        return self

    def __exit__(self, *exc) -> None:
        self.control.request_stop()
        self.thread.join(5)


def ask(address, message, expect: int, timeout: float = 3.0, source: str = "127.0.0.1",
        raw: bool = False) -> list:
    """Send one request (a dict, or the datagram bytes) from ``source``; collect up to
    ``expect`` replies, decoded (or the datagrams themselves if ``raw``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.sendto(message if isinstance(message, bytes) else vq.encode(message), address)
        replies: list = []
        try:
            while len(replies) < expect:
                data, _ = sock.recvfrom(65535)
                replies.append(data if raw else vq.decode_response(data, strict=True))
        except socket.timeout:
            pass
        return replies
