"""The ``metadata`` role: EC2/OpenStack metadata for machines on 169.254.169.254:80.

Each request is answered for the machine whose slot address is the TCP source address
(SPEC §5.1); anyone else gets 404. Answers come from vac.core.metadata.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Optional

from vac.adapters import contextfiles
from vac.adapters.atomicfile import read_text
from vac.adapters.httpserver import HttpRequest
from vac.core import naming
from vac.core.configtypes import Config
from vac.core.metadata import NOT_FOUND, MachineFacts, Response, metadata_response
from vac.core.userdata import UserDataError
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services.httpd_role import Answer, Machine, MachineDirCache, RoleSpec, run_http_role
from vac.services.userdata import read_wlcg_token

log = logging.getLogger(__name__)

SERVER_NAME = "Vac metadata server"
MAX_USER_DATA_BYTES = 64 * 1024 * 1024
MAX_KEY_BYTES = 64 * 1024


CACHED_USER_DATA_BYTES = 1024 * 1024   # larger user_data is read again for each request


@dataclass(frozen=True)
class MachineFiles:
    """What the metadata trees read from a machine directory (SPEC §3.3)."""

    uuid: str                      # jobfeatures/job_id
    user_data: Optional[bytes]
    public_key: Optional[str]      # root_public_key, stripped; None if absent or empty


def read_machine_files(machine_dir: str) -> MachineFiles:
    """The files of the machine directory the metadata trees need (statefs owns them)."""
    return MachineFiles(uuid=contextfiles.read_job_id(machine_dir, MAX_KEY_BYTES),
                        user_data=contextfiles.read_user_data(machine_dir, MAX_USER_DATA_BYTES),
                        public_key=contextfiles.read_public_key(machine_dir, MAX_KEY_BYTES))


class MachineFilesCache(MachineDirCache):
    """read_machine_files, kept while the machine directory and its jobfeatures/ are
    unchanged (MachineDirCache): the factory writes every file there by rename, all of
    them before the machine starts (and so before its first request); user_data over
    CACHED_USER_DATA_BYTES is not kept. Costs two stat() per request instead of three
    reads."""

    SUBDIRS = ("", "jobfeatures")

    def get(self, machine_dir: str) -> MachineFiles:
        started = time.time_ns()
        try:
            signature = self.signature(machine_dir)
        except OSError:
            return read_machine_files(machine_dir)
        hit = self.lookup(machine_dir, signature)
        if hit is not None:
            return hit[0]
        files = read_machine_files(machine_dir)
        if files.user_data is None or len(files.user_data) <= CACHED_USER_DATA_BYTES:
            self.keep(machine_dir, signature, files, started)
        return files

    def warm(self, machine_dir: str) -> None:
        self.get(machine_dir)


def _wlcg_token(paths: Paths, cfg: Optional[Config], machine: Machine) -> Optional[str]:
    """The current content of the machinetype's wlcg_token_file (re-read on every request,
    so a refreshed token reaches running machines); None if none or refused."""
    mt = cfg.machinetypes.get(machine.machinetype) if cfg is not None else None
    if mt is None or not mt.wlcg_token_file:
        return None
    try:
        return read_wlcg_token(paths, mt)
    except UserDataError as e:
        log.warning("%s: not serving the WLCG token: %s", machine.name, e)
        return None


def machine_facts(paths: Paths, cfg, machine: Machine, files: MachineFiles,
                  secrets: bool = False) -> MachineFacts:
    """The facts of ``machine`` for vac.core.metadata; the factory's root_public_key
    stands in when the machine directory has none. The machine and WLCG tokens only if
    ``secrets`` (requests below /vac/; never cached)."""
    key = files.public_key
    if key is None and cfg is not None:
        key = (read_text(paths.under_root(cfg.settings.root_public_key)) or "").strip() or None
    return MachineFacts(
        name=machine.name, uuid=files.uuid, machinetype=machine.machinetype,
        factory_hostname=cfg.settings.factory_hostname if cfg is not None else "",
        ip=naming.machine_ip(machine.ordinal), mac=naming.machine_mac(machine.ordinal),
        user_data=files.user_data, public_key=key,
        machine_token=contextfiles.read_machine_token(machine.machine_dir) if secrets else None,
        wlcg_token=_wlcg_token(paths, cfg, machine) if secrets else None)


def make_answer(cache: MachineFilesCache) -> Answer:
    """The role's answer function, reading machine directories through ``cache``."""
    def answer(paths: Paths, cfg: Optional[Config], machine: Optional[Machine],
               request: HttpRequest) -> Response:
        """The metadata response for one request from ``machine`` (None: not ours)."""
        if machine is None:
            log.info("%s is not a machine of this factory: 404 for %s",
                     request.client_ip, request.path[:200])
            return NOT_FOUND
        secrets = request.path.lstrip("/").startswith("vac")
        facts = machine_facts(paths, cfg, machine, cache.get(machine.machine_dir), secrets)
        return metadata_response(request.method, request.path, facts)
    return answer


def make_quick(cache: MachineFilesCache):
    """The role's answer from memory (vac.services.httpd_role.QuickAnswer): None for the
    secrets below /vac/, and unless ``cache`` holds the machine's files and its
    root_public_key."""
    def quick(paths: Paths, cfg: Optional[Config], machine: Machine,
              request: HttpRequest) -> Optional[Response]:
        if request.path.lstrip("/").startswith("vac"):
            return None
        hit = cache.peek(machine.machine_dir)
        if hit is None or hit[0].public_key is None:
            return None
        files, memo = hit
        return memo.answer(cfg, request.method, request.path, lambda: metadata_response(
            request.method, request.path, machine_facts(paths, cfg, machine, files)))
    return quick


def _bind(cfg):
    return cfg.settings.metadata_bind_address, cfg.settings.metadata_port


def run_role(paths: Paths, control: RoleControl, *, load=None, resolve=None,
             ready=None) -> None:
    """vacd role ``metadata``; ``load``/``resolve``/``ready`` are for tests only."""
    cache = MachineFilesCache()
    spec = RoleSpec("metadata", SERVER_NAME, _bind, make_answer(cache), quick=make_quick(cache),
                    warm=cache.warm)
    run_http_role(paths, control, spec, load=load, resolve=resolve, ready=ready)
