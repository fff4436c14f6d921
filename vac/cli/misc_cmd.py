"""vac sub-commands kept for compatibility: ``scan`` (obsolete)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the obsolete ``scan`` (it names its replacement and exits 1)."""
    p = subparsers.add_parser("scan", help="obsolete: use 'vac machines'")
    p.set_defaults(func=_scan)


def _scan(args: argparse.Namespace) -> int:
    print("It's  vac machines  now!")
    return 1
