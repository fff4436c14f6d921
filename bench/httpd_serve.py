"""Run one HTTP role (metadata or mjf) in its own process for bench/bench_httpd.py.

``python bench/httpd_serve.py ROLE ROOT [max_file_bytes max_total_bytes]`` (run as a
script, so ``vac`` comes from ``PYTHONPATH``: the working tree or an older revision
extracted for the side-by-side baseline). The role serves the machine directories under
ROOT on an ephemeral port of 127.0.0.1; 127.0.0.N stands for slot N. It prints
``HOST PORT`` once it listens and stops when its stdin closes. Its log (the access log
included) goes to ROOT/ROLE.log through a WatchedFileHandler with vacd's formatter, as
vacd writes it.
"""

from __future__ import annotations

import importlib
import logging
import logging.handlers
import os
import sys
import threading

from vac.core.configtypes import Config, Settings
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import httpd_role

FACTORY = "factory1.example.com"


def resolver(paths: Paths):
    """127.0.0.N is slot N; machines are found as the role's own resolver finds them
    (through its slot cache where the revision has one)."""
    if hasattr(httpd_role, "slot_machines"):      # the one the role's cache warming fills
        lookup = httpd_role.slot_machines(paths).machine
    elif hasattr(httpd_role, "SlotMachines"):
        lookup = httpd_role.SlotMachines(paths).machine
    else:
        def lookup(factory: str, ordinal: int):
            return httpd_role.machine_for_ordinal(paths, factory, ordinal)

    def resolve(ip: str):
        parts = ip.split(".")
        if parts[:3] != ["127", "0", "0"] or int(parts[3]) in (0, 1):
            return None
        return lookup(FACTORY, int(parts[3]))
    return resolve


def main(argv) -> int:
    role, root = argv[0], argv[1]
    limits = {}
    if len(argv) >= 4:
        limits = dict(joboutputs_max_file_bytes=int(argv[2]),
                      joboutputs_max_total_bytes=int(argv[3]))
    handler = logging.handlers.WatchedFileHandler(os.path.join(root, f"{role}.log"))
    try:                                # vacd's format (revisions before it: asctime)
        from vac.vacd.logsetup import VacFormatter
        handler.setFormatter(VacFormatter())
    except ImportError:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    settings = Settings(vac_space="vac01.example.com", factory_hostname=FACTORY,
                        metadata_bind_address="127.0.0.1", metadata_port=0,
                        mjf_bind_address="127.0.0.1", mjf_port=0, **limits)
    cfg, paths, control = Config(settings=settings), Paths(root=root), RoleControl()
    module = importlib.import_module(
        "vac.services.metadata_httpd" if role == "metadata" else "vac.services.mjf_httpd")

    def ready(addr) -> None:
        print(addr[0], addr[1], flush=True)

    def stop_on_eof() -> None:
        sys.stdin.read()
        control.request_stop()
    threading.Thread(target=stop_on_eof, daemon=True).start()
    module.run_role(paths, control, load=lambda p: cfg, resolve=resolver(paths), ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
