"""What the metadata and MJF roles share: machine identity by source address, config
(re)loading, binding, the heartbeat loop (SPEC §2.5, §5.1).

Binding does not wait for the factory to make the NAT network: an address that does not
exist yet is bound with IP_FREEBIND (vac.adapters.httpserver) and served the moment it
appears. Other bind failures (port taken, no permission) are retried every
``BIND_RETRY_SECONDS``. The server's connection total leaves room for every slot.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from vac.adapters import host, httpserver, statefs
from vac.adapters.httpserver import HttpRequest, Limits
from vac.core import naming
from vac.core.configtypes import Config
from vac.core.metadata import Response
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import metrics_hooks
from vac.services.rolekit import CONFIG_CHECK_SECONDS, ConfigHolder, Loader, write_heartbeat

log = logging.getLogger(__name__)

BIND_RETRY_SECONDS = 2.0
STRANGER_CONNECTIONS = 64      # beyond every slot's share (the host itself, others)
HEARTBEAT_SECONDS = 30.0
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Machine:
    """The machine behind a source address: slot ordinal, FQDN and its directory."""

    ordinal: int
    name: str
    machine_dir: str
    created: int
    machinetype: str


Resolver = Callable[[str], Optional[Machine]]


def machine_for_ordinal(paths: Paths, factory: str, ordinal: int) -> Optional[Machine]:
    """The current machine of slot ``ordinal``, or None if the slot is not in use."""
    mdir = statefs.machine_dir_for(paths, factory, ordinal)
    if mdir is None:
        return None
    name = naming.machine_name(factory, ordinal)
    created, _, rest = os.path.basename(mdir).partition("_")
    machinetype = rest[:-(len(name) + 1)] if rest.endswith("_" + name) else rest
    return Machine(ordinal, name, mdir, int(created), machinetype)


class SlotMachines:
    """machine_for_ordinal, re-read only when the slot's file changes (one stat per
    request instead of reading and parsing the file; the machine directory must exist)."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self._slot_files: Dict[Tuple[str, int], str] = {}
        self._cache: Dict[Tuple[str, int], Tuple[Tuple[int, ...], Optional[Machine]]] = {}

    def machine(self, factory: str, ordinal: int) -> Optional[Machine]:
        key = (factory, ordinal)
        slot_file = self._slot_files.get(key)
        if slot_file is None:
            slot_file = self._slot_files[key] = statefs.slot_file_of(self.paths, *key)
        signature = statefs.file_signature(slot_file)
        if signature is None:
            return None
        hit = self._cache.get(key)
        if hit is not None and hit[0] == signature:
            machine = hit[1]
        else:
            machine = machine_for_ordinal(self.paths, factory, ordinal)
            self._cache[key] = (signature, machine)
        return machine if machine is not None and os.path.isdir(machine.machine_dir) else None


_SLOT_MACHINES: Dict[str, SlotMachines] = {}


def slot_machines(paths: Paths) -> SlotMachines:
    """The process's SlotMachines for the state under ``paths`` (shared by a role's
    resolver and its cache warming)."""
    slots = _SLOT_MACHINES.get(paths.root)
    if slots is None:
        slots = _SLOT_MACHINES[paths.root] = SlotMachines(paths)
    return slots


def address_resolver(paths: Paths, holder: ConfigHolder) -> Resolver:
    """Identify a machine ONLY by its source address (169.254.169.N -> slot N)."""
    slots = slot_machines(paths)

    def resolve(client_ip: str) -> Optional[Machine]:
        ordinal = naming.ordinal_from_ip(client_ip)
        if ordinal is None or holder.cfg is None:
            return None
        return slots.machine(holder.cfg.settings.factory_hostname, ordinal)
    return resolve


def allowed_hosts(host: str, port: int) -> Tuple[str, ...]:
    """Host header values accepted: the bound address (any if bound to all addresses)."""
    if host in ("", "0.0.0.0"):
        return ()
    hosts = (host, f"{host}:{port}")
    return hosts + ((f"{host}:80",) if port == 80 else ())


Answer = Callable[[Paths, Optional[Config], Optional[Machine], HttpRequest], Response]
# the same from what is in memory, for the server's event loop; None: ask ``answer``
QuickAnswer = Callable[[Paths, Optional[Config], Machine, HttpRequest], Optional[Response]]


@dataclass(frozen=True)
class RoleSpec:
    role: str                          # "metadata", "mjf" or "metrics"
    server_name: str                   # Server header
    bind: Callable[[Config], Optional[Tuple[str, int]]]   # cfg -> (address, port); None: off
    answer: Answer                     # (paths, cfg, machine or None, request) -> response
    quick: Optional[QuickAnswer] = None
    warm: Optional[Callable[[str], None]] = None   # fill the caches for a machine directory


class ReplyMemo:
    """The responses computed for one machine from one cache entry (dropped with it), so
    that a repeated request costs a dict look-up: at most MAX_ENTRIES paths (guests
    choose them), forgotten when the config object changes."""

    MAX_ENTRIES = 32
    __slots__ = ("cfg", "responses")

    def __init__(self) -> None:
        self.cfg: Optional[Config] = None
        self.responses: Dict[Tuple[str, str], Response] = {}

    def answer(self, cfg: Optional[Config], method: str, path: str,
               compute: Callable[[], Response]) -> Response:
        if cfg is not self.cfg:
            self.cfg, self.responses = cfg, {}
        key = (method, path)
        response = self.responses.get(key)
        if response is None:
            response = compute()
            if len(self.responses) < self.MAX_ENTRIES:
                self.responses[key] = response
        return response


RACY_NS = 100_000_000   # a directory changed this recently may change again unseen


class MachineDirCache:
    """What a role read from machine directories, for answers from memory: an entry (the
    value and a ReplyMemo) is kept while the directories ``SUBDIRS`` of its machine
    directory keep their inode and mtime (the factory replaces every file there by
    rename), but not if read within RACY_NS of a change (file system timestamps are
    coarse). :meth:`peek` costs a stat() per directory and never reads a file."""

    SUBDIRS: Tuple[str, ...] = ("",)

    def __init__(self, max_machines: int = 4096):
        self.max_machines = max_machines
        self._cache: Dict[str, Tuple[Tuple[int, ...], object, ReplyMemo]] = {}

    def signature(self, machine_dir: str) -> Tuple[int, ...]:
        """(inode, mtime ns) of each directory; OSError if one is missing."""
        signature: Tuple[int, ...] = ()
        for sub in self.SUBDIRS:
            st = os.stat(f"{machine_dir}/{sub}" if sub else machine_dir)
            signature += (st.st_ino, st.st_mtime_ns)
        return signature

    def lookup(self, machine_dir: str, signature: Tuple[int, ...]):
        """(value, ReplyMemo) held for ``signature``, or None."""
        hit = self._cache.get(machine_dir)
        return hit[1:] if hit is not None and hit[0] == signature else None

    def peek(self, machine_dir: str):
        """(value, ReplyMemo) if held and unchanged, else None."""
        try:
            return self.lookup(machine_dir, self.signature(machine_dir))
        except OSError:
            return None

    def keep(self, machine_dir: str, signature: Tuple[int, ...], value: object,
             started_ns: int) -> None:
        """Hold ``value``, read under ``signature`` from ``started_ns`` (time.time_ns())."""
        if max(signature[1::2]) >= started_ns - RACY_NS:
            return
        if len(self._cache) >= self.max_machines:
            self._cache.clear()
        self._cache[machine_dir] = (signature, value, ReplyMemo())


SETTLED_SECONDS = 2.0    # directories unchanged this long need no new warming pass


class Warmer:
    """Reads every machine directory's slot and files into the role's caches at its start
    and then whenever ``machines/`` or ``slots/`` changed (new machines, new slot files;
    a pass also follows while they changed within SETTLED_SECONDS, as file system
    timestamps are coarse), so that even a machine's first requests are answered from
    memory. A machine whose files change later is read again by its next request."""

    def __init__(self, paths: Paths, warm: Callable[[str], None]):
        self.paths, self.warm = paths, warm
        self._seen: Optional[Tuple[int, ...]] = None

    def _signature(self) -> Optional[Tuple[int, ...]]:
        try:
            return tuple(os.stat(d).st_mtime_ns for d in (self.paths.machines_dir,
                                                           self.paths.slots_dir))
        except OSError:
            return None

    def __call__(self, cfg: Optional[Config]) -> None:
        signature = self._signature()
        if cfg is None or signature is None or (
                signature == self._seen
                and max(signature) < time.time_ns() - SETTLED_SECONDS * 1e9):
            return
        self._seen = signature
        factory, slots = cfg.settings.factory_hostname, slot_machines(self.paths)
        for path, _created, _machinetype, name in statefs.iter_machine_dirs(self.paths):
            ordinal = naming.ordinal_from_name(factory, name)
            if ordinal is not None:
                slots.machine(factory, ordinal)
            self.warm(path)


def server_limits(cfg: Config, paths: Paths) -> Limits:
    """Connection limits leaving room for every slot (``per_source`` connections each)."""
    default = Limits()
    slots = naming.network_slot_count(cfg.settings.total_processors, host.processor_count(paths))
    need = slots * default.per_source + STRANGER_CONNECTIONS
    return Limits(max_connections=max(default.max_connections, need))


def _bind(spec: RoleSpec, paths: Paths, holder: ConfigHolder, resolve: Resolver):
    host, port = spec.bind(holder.cfg)
    metrics_hooks.enabled()     # decided now, not by the first request (an import: 13 ms)

    def app(request: HttpRequest) -> Response:
        try:
            response = spec.answer(paths, holder.cfg, resolve(request.client_ip), request)
        except Exception:  # counted as the 500 the server sends, then raised to it
            metrics_hooks.count("http_requests", role=spec.role, code="500")
            raise
        metrics_hooks.count("http_requests", role=spec.role, code=str(response.status))
        return response

    def quick(request: HttpRequest) -> Optional[Response]:
        machine = resolve(request.client_ip)
        response = (spec.quick(paths, holder.cfg, machine, request)
                    if machine is not None else None)
        if response is not None:
            metrics_hooks.count("http_requests", role=spec.role, code=str(response.status))
        return response
    server = httpserver.make_server(host, port, app, spec.server_name,
                                    limits=server_limits(holder.cfg, paths),
                                    quick=quick if spec.quick is not None else None)
    server.allowed_hosts = frozenset(allowed_hosts(host, server.server_address[1]))
    httpserver.serve_in_thread(server, f"vacd-{spec.role}-http")
    pending = (" (address not present yet: serving as soon as it appears)"
               if server.address_pending else "")
    log.info("%s server listening on %s:%d%s", spec.role, host, server.server_address[1],
             pending)
    return server, (host, port)


def _close(server) -> None:
    """Stop serving (None: nothing to stop); returns None for the caller's variable."""
    if server is not None:
        server.shutdown()
        server.server_close()


def run_http_role(paths: Paths, control: RoleControl, spec: RoleSpec,
                  load: Optional[Loader] = None, resolve: Optional[Resolver] = None,
                  ready: Optional[Callable] = None) -> None:
    """Serve until ``control.should_stop()``; rebind if the configured address changes,
    serve nothing while ``spec.bind`` gives None."""
    holder = ConfigHolder(paths, load, check_seconds=CONFIG_CHECK_SECONDS)
    warm = Warmer(paths, spec.warm) if spec.warm is not None else None
    resolve = resolve or address_resolver(paths, holder)
    server, bound, last_beat, warned = None, None, 0.0, False
    try:
        while not control.should_stop():
            if time.time() - last_beat >= HEARTBEAT_SECONDS:
                write_heartbeat(paths, spec.role)
                last_beat = time.time()
            holder.reload(force=control.take_reload())
            if warm is not None:
                warm(holder.cfg)
            wanted = spec.bind(holder.cfg) if holder.cfg is not None else None
            if server is not None and wanted != bound:
                server = _close(server)
            if wanted is not None and server is None:
                try:
                    server, bound = _bind(spec, paths, holder, resolve)
                    warned = False
                    if ready:
                        ready(server.server_address)
                except OSError as e:
                    if not warned:
                        log.warning("cannot bind %s server to %s: %s (retrying every %s s)",
                                    spec.role, wanted, e, BIND_RETRY_SECONDS)
                    warned = True
                    control.wait(BIND_RETRY_SECONDS)
                    continue
            control.wait(POLL_SECONDS)
    finally:
        _close(server)
