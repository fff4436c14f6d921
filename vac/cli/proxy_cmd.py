"""``vac proxy-init`` (12-hour X.509 proxy to stdout) and ``vac cernvm-signature FILE``."""

from __future__ import annotations

import argparse
import sys
import time

from vac.cli.common import usage_error
from vac.errors import CredentialError
from vac.paths import Paths

PROXY_INIT_SECONDS = 43200


def register(subparsers) -> None:
    """Add ``proxy-init`` and ``cernvm-signature`` to the vac parser."""
    p = subparsers.add_parser("proxy-init", help="print a 12-hour X.509 proxy from --cert and "
                              "--key")
    p.add_argument("-c", "--cert", metavar="FILE", help="certificate (chain) PEM file")
    p.add_argument("-k", "--key", metavar="FILE", help="private key PEM file (mode 0600)")
    p.add_argument("-l", "--legacy-proxy", action="store_true",
                   help="legacy Globus proxy instead of an RFC 3820 proxy")
    p.set_defaults(func=proxy_init)
    s = subparsers.add_parser("cernvm-signature", help="verify the signature of a CernVM "
                              "image")
    s.add_argument("file", nargs="?", metavar="FILE")
    s.set_defaults(func=cernvm_signature)


def proxy_init(args: argparse.Namespace) -> int:
    from vac.adapters import credentials
    if not args.cert:
        return usage_error("proxy-init command requires the --cert/-c option!")
    if not args.key:
        return usage_error("proxy-init command requires the --key/-k option!")
    now = time.time()
    try:
        pem = credentials.make_proxy(args.cert, args.key, expires=now + PROXY_INIT_SECONDS,
                                     now=now, legacy=args.legacy_proxy)
    except CredentialError as e:
        print(f"proxy-init fails: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(pem)
    return 0


def cernvm_signature(args: argparse.Namespace) -> int:
    from vac.adapters import cernvmsig
    if not args.file:
        return usage_error("cernvm-signature command requires the filename argument!")
    paths = Paths.from_root(getattr(args, "root", "/"))
    result = cernvmsig.verify_cernvm_signature(args.file, paths.grid_security_certificates)
    out = {"verified": result.verified}
    if result.dn:
        out["dn"] = result.dn
    if result.version:
        out["version"] = result.version
    print(out)
    if result.error:
        print(result.error, file=sys.stderr)
    return 0
