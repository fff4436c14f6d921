"""``vac squid-conf INPUT OUTPUT`` (SPEC §11.2): Squid configuration for a factory.

Appends to the template one ``acl localnet`` line per factory of the space and one ICP
``cache_peer`` sibling line per *other* factory; OUTPUT is rewritten (atomically) only if
the result differs from its current content. Exit: 0 written or unchanged; 1 on an
unreadable template (B15), a configuration error or a failed write; 2 without both files.
With ``--check`` nothing is written: exit 0 if OUTPUT is up to date, 1 otherwise (the
Puppet module's ``unless``, so that Squid is restarted only when its configuration
really changes).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Iterable, List, Optional

from vac.adapters import dns
from vac.adapters.atomicfile import read_text, write_atomic
from vac.cli.common import usage_error
from vac.errors import VacError


def register(subparsers) -> None:
    """Add ``squid-conf`` to the vac parser."""
    p = subparsers.add_parser("squid-conf", help="write squid.conf from a template",
                              description="Append acl/cache_peer lines for the factories "
                                          "of the space to INPUT and write OUTPUT if it "
                                          "changes.")
    p.add_argument("files", nargs="*", metavar="INPUT OUTPUT")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 0 if OUTPUT is up to date, else 1")
    p.set_defaults(func=_squid_conf)


def factory_lines(factories: Iterable[str], this_factory: str,
                  resolve: Callable[[str], Optional[str]]) -> List[str]:
    """acl/cache_peer lines for the factories (sorted); unresolvable ones are skipped."""
    lines = []
    for factory in sorted(set(factories)):
        address = resolve(factory)
        if not address:
            print(f"Cannot resolve factory {factory}: skipped", file=sys.stderr)
            continue
        lines.append(f"acl localnet src {address}/32")
        if factory != this_factory:
            lines.append(f"cache_peer {address} sibling 3128 3130 default")
    return lines


def render(template: str, lines: List[str]) -> str:
    text = template if template.endswith("\n") or not template else template + "\n"
    return text + "".join(line + "\n" for line in lines)


def _squid_conf(args: argparse.Namespace) -> int:
    if len(args.files) != 2:
        return usage_error("squid-conf command requires input and output filename "
                           "arguments!")
    source, target = args.files
    template = read_text(source)
    if template is None:
        print(f"Cannot read squid configuration template {source}", file=sys.stderr)
        return 1
    from vac.cli.status_cmd import load_cfg
    cfg = load_cfg(args)
    if cfg is None:
        return 1
    s = cfg.settings
    text = render(template, factory_lines(s.factories, s.factory_hostname, dns.resolve_ipv4))
    if read_text(target) == text:
        return 0
    if args.check:
        return 1
    try:
        write_atomic(target, text)
    except VacError as e:
        print(f"Cannot write {target}: {e}", file=sys.stderr)
        return 1
    return 0
