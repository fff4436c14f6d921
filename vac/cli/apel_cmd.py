"""``vac apel-sync [YYYYMM ...]`` (SPEC §9.3): sync records from apel-archive to apel-outgoing."""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Tuple

from vac.cli.common import usage_error
from vac.core import apel
from vac.errors import VacError
from vac.paths import Paths
from vac.services import accounting


def register(subparsers) -> None:
    """Add ``apel-sync`` to the vac parser."""
    p = subparsers.add_parser(
        "apel-sync", help="queue APEL sync records of the archive for ssmsend",
        description="Count the archived APEL job records of each month YYYYMM (default: "
                    "the UTC month of 24 hours ago) per SubmitHost and queue one "
                    "APEL-sync-message for each in the outgoing queue ssmsend reads.")
    p.add_argument("months", nargs="*", metavar="YYYYMM", help="months to summarise")
    p.add_argument("--rescan", action="store_true",
                   help="read every archived record, not the day summaries in "
                        "apel-summary/ (after editing records in place)")
    p.set_defaults(func=_apel_sync)


def _apel_sync(args: argparse.Namespace) -> int:
    """Exit 2 if a month is not YYYYMM (nothing is queued then), else 0: cron runs it
    daily, and problems with the records are printed."""
    months: List[Tuple[int, int]] = []
    bad = [text for text in args.months if apel.parse_month(text) is None]
    if bad:
        return usage_error("".join(f"Cannot parse as YYYYMM: {text}\n" for text in bad)
                           + "nothing queued")
    for text in args.months:
        months.append(apel.parse_month(text))  # type: ignore[arg-type]
    if not args.months:
        months.append(apel.default_month(time.time()))
    paths = Paths.from_root(args.root)
    try:
        accounting.sync_months(paths, months, emit=print, rescan=args.rescan)
    except (VacError, OSError) as e:
        print(f"apel-sync failed: {e}", file=sys.stderr)
    return 0
