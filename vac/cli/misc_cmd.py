"""vac sub-commands kept for compatibility: ``scan`` (obsolete)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("scan", help=argparse.SUPPRESS)
    p.set_defaults(func=_scan)


def _scan(args: argparse.Namespace) -> int:
    print("It's  vac machines  now!")
    return 1
