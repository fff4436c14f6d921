"""``vac iptables-rules [--check]``: the guest firewall of this factory (SPEC §4.3).

Prints the filter-table rules that keep machines away from the factory's services and
from each other, in iptables-restore syntax, for sites that keep their own iptables
(``manage_iptables = false``). ``--check`` compares them with ``iptables-save`` instead:
exit 0 if they are in place, 1 with one line per difference.
"""

from __future__ import annotations

import argparse
import sys

from vac.cli.common import EXIT_FAILURE, EXIT_OK
from vac.core import iptables
from vac.errors import VacError


def register(subparsers) -> None:
    """Add ``iptables-rules`` to the vac parser."""
    p = subparsers.add_parser(
        "iptables-rules", help="print or --check the guest firewall's iptables rules",
        description="Print the iptables rules that keep machines away from the factory's "
                    "services and from each other (iptables-restore syntax), or compare "
                    "them with iptables-save.")
    p.add_argument("--check", action="store_true",
                   help="compare with iptables-save; exit 1 if anything differs")
    p.set_defaults(func=_iptables_rules)


def _iptables_rules(args: argparse.Namespace) -> int:
    from vac.cli.status_cmd import load_cfg
    cfg = load_cfg(args)
    if cfg is None:
        return EXIT_FAILURE
    fw = iptables.guest_firewall(cfg.settings)
    if not args.check:
        print("# vac guest firewall: put these into the *filter table (iptables-restore "
              "syntax)")
        print(iptables.site_rules(fw), end="")
        return EXIT_OK
    from vac.adapters.netlink import NetLink
    try:
        problems = iptables.firewall_problems(fw, NetLink().iptables_save())
    except VacError as e:
        print(f"cannot read the iptables rules: {e}", file=sys.stderr)
        return EXIT_FAILURE
    for problem in problems:
        print(problem)
    if not problems:
        print(f"guest firewall in place on {fw.bridge}")
    return EXIT_FAILURE if problems else EXIT_OK
