"""The ``metadata`` role: EC2/OpenStack metadata for machines on 169.254.169.254:80.

Each request is answered for the machine whose slot address is the TCP source address
(SPEC §5.1); anyone else gets 404. Answers come from vac.core.metadata.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from vac.adapters.atomicfile import read_text
from vac.adapters.httpserver import HttpRequest
from vac.core import naming
from vac.core.configtypes import Config
from vac.core.metadata import NOT_FOUND, MachineFacts, Response, metadata_response
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services.httpd_role import Machine, RoleSpec, run_http_role

log = logging.getLogger(__name__)

SERVER_NAME = "Vac metadata server"
MAX_USER_DATA_BYTES = 64 * 1024 * 1024


def _read_bytes(path: str, limit: int) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def machine_facts(paths: Paths, cfg, machine: Machine) -> MachineFacts:
    """Read what the metadata trees need from the machine directory (SPEC §3.3)."""
    j = lambda *p: os.path.join(machine.machine_dir, *p)  # noqa: E731 - path helper
    key = read_text(j("root_public_key"))
    if key is None and cfg is not None:
        key = read_text(paths.under_root(cfg.settings.root_public_key))
    return MachineFacts(
        name=machine.name, uuid=(read_text(j("jobfeatures", "job_id")) or "").strip(),
        machinetype=machine.machinetype,
        factory_hostname=cfg.settings.factory_hostname if cfg is not None else "",
        ip=naming.machine_ip(machine.ordinal), mac=naming.machine_mac(machine.ordinal),
        user_data=_read_bytes(j("user_data"), MAX_USER_DATA_BYTES),
        public_key=key.strip() if key and key.strip() else None)


def answer(paths: Paths, cfg: Optional[Config], machine: Optional[Machine],
           request: HttpRequest) -> Response:
    """The metadata response for one request from ``machine`` (None: not one of ours)."""
    if machine is None:
        log.info("%s is not a machine of this factory: 404 for %s",
                 request.client_ip, request.path[:200])
        return NOT_FOUND
    return metadata_response(request.method, request.path, machine_facts(paths, cfg, machine))


def _bind(cfg):
    return cfg.settings.metadata_bind_address, cfg.settings.metadata_port


def run_role(paths: Paths, control: RoleControl, *, load=None, resolve=None,
             ready=None) -> None:
    """vacd role ``metadata``; ``load``/``resolve``/``ready`` are for tests only."""
    spec = RoleSpec("metadata", SERVER_NAME, _bind, answer)
    run_http_role(paths, control, spec, load=load, resolve=resolve, ready=ready)
