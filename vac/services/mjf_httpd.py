"""The ``mjf`` role: Machine/Job Features and JOBOUTPUTS on 169.254.169.253:80.

GET answers come from vac.core.mjfhttp over the requesting machine's machinefeatures/
and jobfeatures/ directories; ``PUT /joboutputs/NAME`` is streamed atomically into its
joboutputs/ (201) after vac.core.mjfhttp.check_put allowed it (else 403).
"""

from __future__ import annotations

import logging
import os
from typing import Dict, Optional

from vac.adapters.httpserver import BodyError, HttpRequest
from vac.core.configtypes import Config
from vac.core.metadata import NOT_FOUND, Response
from vac.core.mjfhttp import FEATURE_DIRS, FORBIDDEN, check_put, mjf_get, valid_name
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services.httpd_role import Machine, RoleSpec, run_http_role

log = logging.getLogger(__name__)

SERVER_NAME = "Vac mjf server"
MAX_KEYS = 256
MAX_VALUE_BYTES = 64 * 1024


def read_features(machine_dir: str) -> Dict[str, Dict[str, bytes]]:
    """{machinefeatures|jobfeatures: {key: value}} (bounded: 256 keys of 64 KiB)."""
    features: Dict[str, Dict[str, bytes]] = {}
    for directory in FEATURE_DIRS:
        values: Dict[str, bytes] = {}
        try:
            entries = sorted(os.scandir(os.path.join(machine_dir, directory)),
                             key=lambda e: e.name)
        except OSError:
            entries = []
        for entry in entries[:MAX_KEYS]:
            if not valid_name(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                with open(entry.path, "rb") as f:
                    values[entry.name] = f.read(MAX_VALUE_BYTES)
            except OSError:
                continue
        features[directory] = values
    return features


def joboutputs_sizes(joboutputs: str) -> Dict[str, int]:
    try:
        return {e.name: e.stat(follow_symlinks=False).st_size for e in os.scandir(joboutputs)
                if not e.name.startswith(".")}
    except OSError:
        return {}


def put_joboutput(machine: Machine, request: HttpRequest, settings) -> Response:
    joboutputs = os.path.join(machine.machine_dir, "joboutputs")
    decision = check_put(request.path, request.content_length, joboutputs_sizes(joboutputs),
                         settings.joboutputs_max_file_bytes,
                         settings.joboutputs_max_total_bytes)
    if decision.status != 201:
        log.warning("%s PUT %s refused: %s", machine.name, request.path[:200],
                    decision.reason)
        return FORBIDDEN
    path = os.path.join(joboutputs, decision.name)
    try:
        request.body.save_atomic(path, mode=0o644)
    except BodyError as e:
        log.warning("%s PUT %s failed: %s", machine.name, request.path[:200], e)
        return FORBIDDEN
    log.info("%s Wrote %s", machine.name, path)
    return Response(201)


def answer(_paths: Paths, cfg: Optional[Config], machine: Optional[Machine],
           request: HttpRequest) -> Response:
    """GET/HEAD features or PUT a job output for ``machine`` (None: not one of ours)."""
    if request.method in ("GET", "HEAD"):
        if machine is None:
            log.info("%s is not a machine of this factory: 404", request.client_ip)
            return NOT_FOUND
        return mjf_get(request.path, read_features(machine.machine_dir))
    if request.method == "PUT":
        if machine is None:
            log.warning("%s is not a machine of this factory: PUT refused", request.client_ip)
            return FORBIDDEN
        return put_joboutput(machine, request, cfg.settings)
    return Response(405)


def _bind(cfg):
    return cfg.settings.mjf_bind_address, cfg.settings.mjf_port


def run_role(paths: Paths, control: RoleControl, *, load=None, resolve=None,
             ready=None) -> None:
    """vacd role ``mjf``; ``load``/``resolve``/``ready`` are for tests only."""
    spec = RoleSpec("mjf", SERVER_NAME, _bind, answer)
    run_http_role(paths, control, spec, load=load, resolve=resolve, ready=ready)
