"""``vac selftest [--image ISO]``: PASS/FAIL lines saying whether this host can run vac."""

from __future__ import annotations

import argparse
import json

from vac.cli.common import EXIT_FAILURE, EXIT_OK
from vac.paths import Paths


def register(subparsers) -> None:
    """Add ``selftest`` to the vac parser."""
    p = subparsers.add_parser(
        "selftest", help="check that this host can run vac, with a test machine",
        description="Run the checks of vac(1) SELFTEST in order, one PASS/FAIL line each "
                    "with the fix to apply; exit 0 only if every check passes.")
    p.add_argument("--image", metavar="ISO",
                   help="bootable ISO for the test machine (default: firmware only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vac.services.selftest import run_selftest
    checks = run_selftest(Paths.from_root(args.root), image=args.image)
    if getattr(args, "json", False):
        print(json.dumps([{"check": c.name, "pass": c.ok, "detail": c.detail, "fix": c.fix}
                          for c in checks], indent=2))
    else:
        for check in checks:
            print(check.line())
        failed = sum(not c.ok for c in checks)
        print(f"selftest: {failed} of {len(checks)} checks failed" if failed else
              f"selftest: all {len(checks)} checks pass")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILURE
