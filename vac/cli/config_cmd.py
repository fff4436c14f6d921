"""``vac config``: print the effective configuration with the origin of every value.

``vac config --check`` only validates: exit 0 when valid, 1 with every problem listed
(a machinetype with a problem is disabled by vacd, and is listed too).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, TextIO

from vac.core.configrender import config_as_json, render_config
from vac.errors import ConfigError
from vac.paths import Paths
from vac.services.configload import load_config


def register(subparsers) -> None:
    """Add ``config`` to the vac parser."""
    p = subparsers.add_parser("config", help="show the configuration and where each value "
                              "comes from")
    p.add_argument("--check", action="store_true",
                   help="only validate: exit 0 if valid, 1 listing every problem")
    p.add_argument("--pipes", choices=("none", "cache"), default="none",
                   help="expand vacuum pipes from the cache (default: not expanded)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Optional[TextIO] = None,
        err: Optional[TextIO] = None) -> int:
    """Load the configuration under ``--root`` and print it or the problems; exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    paths = Paths.from_root(getattr(args, "root", "/"))
    try:
        config = load_config(paths, pipes=getattr(args, "pipes", "none"))
    except ConfigError as e:
        if getattr(args, "json", False):
            out.write(json.dumps({"valid": False, "problems": [str(p) for p in e.problems]},
                                 indent=2) + "\n")
            return 1
        print("Reading configuration fails with error:", file=err)
        for problem in e.problems:
            print(f"  {problem}", file=err)
        print(f"{len(e.problems)} problem(s) found", file=err)
        return 1
    status = 1 if config.disabled else 0
    if getattr(args, "json", False):
        out.write(json.dumps(config_as_json(config, brief=getattr(args, "check", False)),
                             indent=2, sort_keys=True) + "\n")
        return status
    for warning in config.warnings:
        print(f"warning: {warning}", file=err)
    if config.disabled:
        print(f"{len(config.disabled)} machinetype(s) disabled (vacd creates every other "
              "machinetype):", file=err)
        for problem in config.problems:
            print(f"  {problem}", file=err)
    if getattr(args, "check", False):
        if not config.disabled:
            print(f"Configuration OK: {len(config.machinetypes)} machinetype(s), "
                  f"{len(config.vacuum_pipes)} vacuum pipe(s), "
                  f"{len(config.warnings)} warning(s)", file=out)
        return status
    out.write(render_config(config))
    return status

