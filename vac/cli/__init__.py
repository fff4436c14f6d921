"""The ``vac`` command: global options and an explicit registry of sub-command modules."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from vac import __version__
from vac.cli import (apel_cmd, config_cmd, iptables_cmd, misc_cmd, plan_cmd, proxy_cmd,
                     selftest_cmd, squid_cmd, status_cmd)
from vac.cli.common import usage_error

# Explicit registry: each module exposes register(subparsers) and sets ``func`` on its
# sub-parsers; func(args) -> exit status.
COMMAND_MODULES = (config_cmd, status_cmd, squid_cmd, plan_cmd, proxy_cmd, apel_cmd,
                   selftest_cmd, iptables_cmd, misc_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vac", description="Vac command-line tool")
    parser.add_argument("--version", action="version", version=f"Vac {__version__}")
    parser.add_argument("--root", default="/", metavar="DIR",
                        help="treat DIR as the root of every system path (default /)")
    parser.add_argument("-s", "--space", help="override vac_space")
    parser.add_argument("-t", "--timeout", type=float, metavar="SECONDS",
                        help="override udp_timeout_seconds")
    parser.add_argument("-J", "--json", action="store_true", help="JSON output")
    parser.add_argument("-H", "--include-hs06", action="store_true",
                        help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in COMMAND_MODULES:
        module.register(sub)
    for command in sub.choices.values():
        # also accepted after the command; SUPPRESS keeps a value given before it
        command.add_argument("-J", "--json", action="store_true", default=argparse.SUPPRESS,
                             help="JSON output (also accepted before the command)")
        command.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS,
                             help="as --root before the command")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """The exit status of one ``vac`` command (vac(1): 0 ok, 1 failure, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)          # argparse exits 2 on a usage error
    if not getattr(args, "func", None):
        parser.print_usage(sys.stderr)
        return usage_error("Must give a recognised command argument to vac!")
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
