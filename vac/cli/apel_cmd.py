"""``vac apel-sync [YYYYMM ...]`` (SPEC §9.3): sync records from apel-archive to apel-outgoing."""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Tuple

from vac.core import apel
from vac.errors import VacError
from vac.paths import Paths
from vac.services import accounting


def register(subparsers) -> None:
    """Add ``apel-sync`` to the vac parser."""
    p = subparsers.add_parser(
        "apel-sync", help="queue APEL sync records for ssmsend from the archive",
        description="Count the archived APEL job records of each month YYYYMM (default: "
                    "the UTC month of 24 hours ago) per SubmitHost and queue one "
                    "APEL-sync-message for each in the outgoing queue ssmsend reads.")
    p.add_argument("months", nargs="*", metavar="YYYYMM", help="months to summarise")
    p.set_defaults(func=_apel_sync)


def _apel_sync(args: argparse.Namespace) -> int:
    """Always exits 0 (cron runs it daily); problems are printed."""
    months: List[Tuple[int, int]] = []
    for text in args.months:
        month = apel.parse_month(text)
        if month is None:
            print(f"Cannot parse as YYYYMM: {text}")
        else:
            months.append(month)
    if not args.months:
        months.append(apel.default_month(time.time()))
    paths = Paths.from_root(args.root)
    try:
        accounting.sync_months(paths, months, emit=print)
    except (VacError, OSError) as e:
        print(f"apel-sync failed: {e}", file=sys.stderr)
    return 0
