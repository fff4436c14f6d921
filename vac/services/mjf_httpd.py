"""The ``mjf`` role: Machine/Job Features and JOBOUTPUTS on 169.254.169.253:80.

GET answers come from vac.core.mjfhttp over the requesting machine's machinefeatures/
and jobfeatures/ directories. ``PUT /joboutputs/NAME`` is charged to the machine's quotas
(vac.services.joboutputs; 403 or 409 if refused), its whole length is reserved on disk,
then its body is written into a temporary file renamed into joboutputs/ (201): by the
server's event loop itself when the body is already in memory (up to 64 KiB, e.g. a
heartbeat), else streamed by a thread of its own. A full
file system is 507 (the guest may retry later), a failed upload leaves no temporary file
and the file it would have replaced intact.
Machines made with ``joboutputs_require_token`` must send their token first
(vac.core.mjfhttp.check_bearer: else 401/403).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from typing import Dict, Iterator, List, Mapping, Optional

from vac.adapters import contextfiles, statefs
from vac.adapters.httpserver import BodyError, HttpRequest
from vac.core.configtypes import Config
from vac.core.metadata import NOT_FOUND, Response
from vac.core.mjfhttp import (FEATURE_DIRS, FORBIDDEN, UNAUTHORIZED, JoboutputsLimits,
                              check_bearer, mjf_get, valid_name)
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services.httpd_role import Answer, Machine, MachineDirCache, RoleSpec, run_http_role
from vac.services.joboutputs import JoboutputsLedger

log = logging.getLogger(__name__)

SERVER_NAME = "Vac mjf server"
MAX_KEYS = 256
MAX_VALUE_BYTES = 64 * 1024
SNAPSHOT_BYTES = 64 * 1024      # feature values kept in memory per directory
CREATED = Response(201)


def _read_value(path: str) -> Optional[bytes]:
    """A regular file's first MAX_VALUE_BYTES (never through a symlink), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MAX_VALUE_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)


class FeatureDir(Mapping):
    """One machinefeatures/ or jobfeatures/ directory as {key: value bytes}, read on
    demand: a key costs one open(), only a listing scans the directory (first 256 keys)."""

    def __init__(self, path: str):
        self.path = path
        self._values: Dict[str, Optional[bytes]] = {}

    def __getitem__(self, key: str) -> bytes:
        if key not in self._values:
            self._values[key] = (_read_value(os.path.join(self.path, key))
                                 if valid_name(key) else None)
        value = self._values[key]
        if value is None:
            raise KeyError(key)
        return value

    def _names(self) -> List[str]:
        try:
            entries = sorted(os.scandir(self.path), key=lambda e: e.name)[:MAX_KEYS]
        except OSError:
            return []
        return [e.name for e in entries
                if valid_name(e.name) and e.is_file(follow_symlinks=False)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def read_features(machine_dir: str) -> Dict[str, FeatureDir]:
    """{machinefeatures|jobfeatures: {key: value}}, each read when asked for."""
    return {d: FeatureDir(os.path.join(machine_dir, d)) for d in FEATURE_DIRS}


Features = Dict[str, Dict[str, bytes]]


def _snapshot(path: str) -> Optional[Dict[str, bytes]]:
    """Every key of a feature directory, read as FeatureDir reads them; None if it has
    MAX_KEYS entries or more, or more than SNAPSHOT_BYTES of values."""
    try:
        if len(os.listdir(path)) >= MAX_KEYS:
            return None
    except OSError:
        return None
    directory = FeatureDir(path)
    values = {}
    for key in directory:
        value = directory.get(key)
        if value is not None:
            values[key] = value
    return values if sum(map(len, values.values())) <= SNAPSHOT_BYTES else None


class FeatureCache(MachineDirCache):
    """Each machine's machinefeatures/ and jobfeatures/ values, kept while both
    directories are unchanged (MachineDirCache: the factory replaces every key file by
    rename): GETs answered from memory, in the server's event loop."""

    SUBDIRS = FEATURE_DIRS

    def warm(self, machine_dir: str) -> None:
        """Read ``machine_dir``'s feature directories unless held and unchanged."""
        started = time.time_ns()
        try:
            signature = self.signature(machine_dir)
        except OSError:
            return
        if self.lookup(machine_dir, signature) is not None:
            return
        features = {d: _snapshot(os.path.join(machine_dir, d)) for d in FEATURE_DIRS}
        if all(v is not None for v in features.values()):
            self.keep(machine_dir, signature, features, started)

    def get(self, machine_dir: str) -> Mapping[str, Mapping[str, bytes]]:
        """Held values (read now if missing or changed) or, if not to be held, the
        directories read on demand."""
        hit = self.peek(machine_dir)
        if hit is None:
            self.warm(machine_dir)
            hit = self.peek(machine_dir)
        return hit[0] if hit is not None else read_features(machine_dir)


def joboutputs_limits(settings) -> JoboutputsLimits:
    return JoboutputsLimits(settings.joboutputs_max_file_bytes,
                            settings.joboutputs_max_total_bytes,
                            settings.joboutputs_max_files)


class TokenRule:
    """Whether each machine's JOBOUTPUTS PUTs must carry its token: decided at its creation
    (vac.adapters.contextfiles), remembered once that is complete (the machine directory
    has ``started``), so later PUTs cost no stat() for it. At most ``max_machines``."""

    def __init__(self, max_machines: int = 4096):
        self.max_machines = max_machines
        self._known: Dict[str, bool] = {}

    def required(self, machine_dir: str) -> bool:
        known = self._known.get(machine_dir)
        if known is None:
            known = contextfiles.joboutputs_token_required(machine_dir)
            if known or statefs.has_started(machine_dir):
                if len(self._known) >= self.max_machines:
                    self._known.clear()
                self._known[machine_dir] = known
        return known


TOKEN_RULE = TokenRule()


def _token_refusal(machine: Machine, request: HttpRequest) -> Optional[Response]:
    """For a machine that must send its token: 401/403 unless the PUT carries it."""
    if not TOKEN_RULE.required(machine.machine_dir):
        return None
    authorization = next((v for k, v in request.headers.items()
                          if k.lower() == "authorization"), None)     # names are caseless
    refusal = check_bearer(authorization, contextfiles.read_machine_token(machine.machine_dir))
    if refusal is None:
        return None
    log.warning("%s PUT %s refused: %s", machine.name, request.path[:200], refusal.reason)
    return UNAUTHORIZED if refusal.status == 401 else FORBIDDEN


def put_joboutput(machine: Machine, request: HttpRequest, settings,
                  ledger: JoboutputsLedger) -> Response:
    refusal = _token_refusal(machine, request)
    if refusal is not None:
        return refusal
    joboutputs = f"{machine.machine_dir}/joboutputs"
    decision, reservation = ledger.reserve(joboutputs, request.path, request.content_length,
                                           joboutputs_limits(settings))
    if reservation is None:
        log.warning("%s PUT %s refused: %s", machine.name, request.path[:200],
                    decision.reason)
        return Response(decision.status)
    path = f"{joboutputs}/{decision.name}"
    stored = False
    try:
        written = request.body.save_atomic(path, mode=0o644, preallocate=True,
                                           replaces=decision.replaced)
        ledger.commit(reservation, written)
        stored = True
    except BodyError as e:
        log.warning("%s PUT %s failed: %s", machine.name, request.path[:200], e)
        return Response(507 if e.no_space else 400 if e.errno is None else 500)
    finally:
        if not stored:
            ledger.release(reservation)
    request.note(f"{machine.name} Wrote {path}")
    return CREATED


def make_answer(ledger: JoboutputsLedger, features: FeatureCache) -> Answer:
    """The role's answer function, charging PUTs to ``ledger``."""
    def answer(_paths: Paths, cfg: Optional[Config], machine: Optional[Machine],
               request: HttpRequest) -> Response:
        """GET/HEAD features or PUT a job output for ``machine`` (None: not ours)."""
        if request.method in ("GET", "HEAD"):
            if machine is None:
                log.info("%s is not a machine of this factory: 404", request.client_ip)
                return NOT_FOUND
            return mjf_get(request.path, features.get(machine.machine_dir))
        if request.method == "PUT":
            if machine is None:
                log.warning("%s is not a machine of this factory: PUT refused",
                            request.client_ip)
                return FORBIDDEN
            return put_joboutput(machine, request, cfg.settings, ledger)
        return Response(405)
    return answer


def make_quick(cache: FeatureCache, ledger: JoboutputsLedger):
    """The answers of the server's event loop (vac.services.httpd_role.QuickAnswer):
    GET/HEAD from ``cache`` (None if it does not hold the machine), and PUTs, whose body
    the event loop has whole when it asks (at most the server's ``memory_body``): stored
    at once with a few local file-system calls, charged to ``ledger``. Handing such a PUT
    to a worker thread cost more than storing it (two thread hand-offs and GIL
    transfers: 900 instead of 500 us of CPU per PUT under a burst). None otherwise."""
    def quick(_paths: Paths, cfg: Optional[Config], machine: Machine,
              request: HttpRequest) -> Optional[Response]:
        if request.method == "PUT":
            return put_joboutput(machine, request, cfg.settings, ledger) if cfg else None
        if request.method not in ("GET", "HEAD"):
            return None
        hit = cache.peek(machine.machine_dir)
        if hit is None:
            return None
        features, memo = hit
        return memo.answer(None, "GET", request.path, lambda: mjf_get(request.path, features))
    return quick


def _bind(cfg):
    return cfg.settings.mjf_bind_address, cfg.settings.mjf_port


def run_role(paths: Paths, control: RoleControl, *, load=None, resolve=None,
             ready=None) -> None:
    """vacd role ``mjf``; ``load``/``resolve``/``ready`` are for tests only."""
    cache, ledger = FeatureCache(), JoboutputsLedger()

    def warm(machine_dir: str) -> None:
        """A machine's features, JOBOUTPUTS account and token rule, read before its
        first request (vac.services.httpd_role.Warmer)."""
        cache.warm(machine_dir)
        ledger.warm(f"{machine_dir}/joboutputs")
        TOKEN_RULE.required(machine_dir)
    spec = RoleSpec("mjf", SERVER_NAME, _bind, make_answer(ledger, cache),
                    quick=make_quick(cache, ledger), warm=warm)
    run_http_role(paths, control, spec, load=load, resolve=resolve, ready=ready)
