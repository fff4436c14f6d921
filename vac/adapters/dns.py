"""Host names of the space: canonical factory names (SPEC §7.8) and IPv4 look-ups.

Canonicalisation: ``.`` -> this factory; a dotted name unchanged; a short name gets the
factory's domain. Look-ups use the system resolver (so /etc/hosts works) and fall back
to dnspython for A (and, for :func:`resolve_all`, AAAA) records (imported only for
that fallback: a factory whose peers the system resolver knows never loads it).
"""

from __future__ import annotations

import logging
import socket
from typing import List, Optional

log = logging.getLogger(__name__)


def canonical_name(name: str, this_factory: str) -> str:
    """Canonical factory name of ``name`` as seen from ``this_factory`` (lower case)."""
    name = name.strip().lower()
    if name == ".":
        return this_factory.lower()
    if "." in name.rstrip("."):
        return name.rstrip(".")
    domain = this_factory.partition(".")[2].lower()
    return f"{name}.{domain}" if domain and name else name


def resolve_ipv4(name: str, timeout: float = 2.0) -> Optional[str]:
    """An IPv4 address of ``name`` (system resolver, then DNS), or None."""
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_DGRAM)
        if infos:
            return str(infos[0][4][0])
    except (socket.gaierror, UnicodeError, OSError) as e:
        log.debug("getaddrinfo(%s) failed: %s", name, e)
    import dns.exception
    import dns.resolver
    try:
        answer = dns.resolver.resolve(name, "A", lifetime=timeout)
        return str(answer[0].address)
    except (dns.exception.DNSException, OSError, IndexError) as e:
        log.debug("DNS A record of %s failed: %s", name, e)
        return None


def resolve_all(name: str, timeout: float = 2.0) -> List[str]:
    """Every IPv4 and IPv6 address of ``name`` (system resolver, else DNS A and AAAA),
    sorted; empty if the name does not resolve."""
    found = set()
    try:
        for info in socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_DGRAM):
            found.add(str(info[4][0]).split("%", 1)[0])
    except (socket.gaierror, UnicodeError, OSError) as e:
        log.debug("getaddrinfo(%s) failed: %s", name, e)
    if found:
        return sorted(found)
    import dns.exception
    import dns.resolver
    for rdtype in ("A", "AAAA"):
        try:
            found.update(str(r.address) for r in dns.resolver.resolve(name, rdtype,
                                                                       lifetime=timeout))
        except (dns.exception.DNSException, OSError) as e:
            log.debug("DNS %s record of %s failed: %s", rdtype, name, e)
    return sorted(found)
