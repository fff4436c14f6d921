"""Text -> typed value converters for vac.conf options; each raises ValueError("expected ...").

The ValueError text is the "(what is expected)" part of a configuration problem, so it
says what a good value looks like, e.g. ``expected an integer >= 1``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, Optional, Sequence, Tuple

Converter = Callable[[str], object]

_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")
_HOSTPORT_RE = re.compile(r"^[a-z0-9.-]+:[0-9]+$")
_HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
NAME_RE = re.compile(r"^[a-z0-9-]+$")           # machinetype names, vacuum_pipe prefixes
SUFFIX_NAME_RE = re.compile(r"^[a-z0-9_]+$")    # XXX in user_data_option_XXX etc.
DEVICE_RE = re.compile(r"^[a-z0-9]+$")
_VG_RE = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")
_IFACE_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


def text(value: str) -> str:
    """Any text (already stripped by the INI parser)."""
    return value


def nonempty(value: str) -> str:
    """Text that is not empty."""
    if not value.strip():
        raise ValueError("expected a non-empty value")
    return value.strip()


def integer(minimum: Optional[int] = None, maximum: Optional[int] = None) -> Converter:
    """Converter for a decimal integer within [minimum, maximum] (either bound optional)."""
    def convert(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError(_expected("an integer", minimum, maximum)) from None
        _check_bounds(number, minimum, maximum, "an integer")
        return number
    return convert


def real(minimum: Optional[float] = None, strictly_positive: bool = False) -> Converter:
    """Converter for a finite decimal number >= minimum, or > 0 if strictly_positive."""
    expected = "expected a number > 0" if strictly_positive else _expected("a number", minimum, None)

    def convert(value: str) -> float:
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(expected) from None
        if number != number or abs(number) == float("inf"):
            raise ValueError(expected)
        if (strictly_positive and number <= 0) or (minimum is not None and number < minimum):
            raise ValueError(expected)
        return number
    return convert


def boolean(value: str) -> bool:
    """true/yes/on/1 or false/no/off/0, case-insensitive."""
    word = value.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError("expected true or false (also yes/no, on/off, 1/0)")


def choice(*allowed: str) -> Converter:
    """Converter for one of ``allowed`` (compared case-insensitively, returned lower-case)."""
    def convert(value: str) -> str:
        word = value.strip().lower()
        if word not in allowed:
            raise ValueError("expected one of " + ", ".join(allowed))
        return word
    return convert


def words(value: str) -> Tuple[str, ...]:
    """Whitespace-separated list (spaces, tabs or continuation lines)."""
    return tuple(value.split())


def hostnames(value: str) -> Tuple[str, ...]:
    """Whitespace-separated host names, lower-cased; ``.`` stands for this factory."""
    names = tuple(w.lower() for w in value.split())
    for name in names:
        if name != "." and not _HOSTNAME_RE.match(name):
            raise ValueError(f"expected host names (a-z 0-9 . -), not {name!r}")
    return names


def hostport(value: str) -> str:
    """One ``host.domain:port`` value, lower-cased."""
    item = value.strip().lower()
    if not _HOSTPORT_RE.match(item) or not 0 < int(item.rsplit(":", 1)[1]) < 65536:
        raise ValueError("expected host.domain:port")
    return item


def hostport_list(value: str) -> Tuple[str, ...]:
    """Whitespace-separated ``host.domain:port`` values, lower-cased."""
    try:
        return tuple(hostport(item) for item in value.split())
    except ValueError:
        raise ValueError("expected a list of host.domain:port") from None


def listen_address(value: str) -> str:
    """``IPV4:PORT`` or ``HOSTNAME:PORT`` to listen on, or "" (off); host lower-cased."""
    item = value.strip().lower()
    if item == "":
        return item
    host, sep, port = item.rpartition(":")
    expected = ('expected IPV4_ADDRESS:PORT or HOST.NAME:PORT (e.g. 127.0.0.1:8995), '
                'or "" for off')
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(expected)
    try:
        if ipaddress.ip_address(host).version != 4:
            raise ValueError(expected)
    except ValueError:
        if not _HOSTNAME_RE.match(host) or host.replace(".", "").isdigit():
            raise ValueError(expected) from None
    return f"{host}:{int(port)}"


def split_listen_address(value: str) -> Tuple[str, int]:
    """(host, port) of a value returned by :func:`listen_address` (not "")."""
    host, _, port = value.rpartition(":")
    return host, int(port)


def port_list(value: str) -> Tuple[int, ...]:
    """Whitespace-separated TCP/UDP port numbers 1-65535, sorted, each once."""
    try:
        ports = {int(item) for item in value.split()}
    except ValueError:
        raise ValueError("expected a list of port numbers 1-65535") from None
    if any(not 0 < port < 65536 for port in ports):
        raise ValueError("expected a list of port numbers 1-65535")
    return tuple(sorted(ports))


def fqdn(value: str) -> str:
    """A fully qualified host name (contains a dot), lower-cased."""
    name = value.strip().lower()
    if "." not in name or not _HOSTNAME_RE.match(name):
        raise ValueError("expected a fully qualified domain name such as factory1.example.com")
    return name


def space_name(value: str) -> str:
    """A Vac space name: FQDN-like (contains a dot), case kept as written."""
    name = value.strip()
    if "." not in name or not _HOSTNAME_RE.match(name.lower()):
        raise ValueError("expected an FQDN-like space name such as vac01.example.com")
    return name


def absolute_path(value: str) -> str:
    """An absolute file system path."""
    path = value.strip()
    if not path.startswith("/") or "\n" in path:
        raise ValueError("expected an absolute path starting with /")
    return path


def absolute_paths(value: str) -> Tuple[str, ...]:
    """Whitespace-separated absolute paths."""
    paths = tuple(value.split())
    if any(not p.startswith("/") for p in paths):
        raise ValueError("expected absolute paths starting with /")
    return paths


def file_name(value: str) -> str:
    """A bare file name: no ``/``, not empty, not ``.`` or ``..``."""
    name = value.strip()
    if not name or "/" in name or name in (".", "..") or "\n" in name:
        raise ValueError("expected a bare file name without /")
    return name


def file_names(value: str) -> Tuple[str, ...]:
    """Whitespace-separated bare names (e.g. CernVM-FS repositories)."""
    names = tuple(value.split())
    if any("/" in n or n in (".", "..") for n in names):
        raise ValueError("expected bare names without /")
    return names


def device(value: str) -> str:
    """A guest device name such as vda: a-z 0-9 only."""
    name = value.strip()
    if not DEVICE_RE.match(name):
        raise ValueError("expected a device name of a-z 0-9 only, such as vda")
    return name


def regex(value: str) -> str:
    """A Python regular expression (checked to compile)."""
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"expected a valid regular expression ({e})") from None
    return value


def fqan(value: str) -> str:
    """A VOMS FQAN such as /lhcb/Role=NULL/Capability=NULL."""
    item = value.strip()
    if not item.startswith("/") or len(item) < 2 or any(c.isspace() for c in item):
        raise ValueError("expected a VOMS FQAN such as /vo/Role=NULL/Capability=NULL")
    return item


def single_word(value: str) -> str:
    """Text without white space."""
    item = value.strip()
    if not item or any(c.isspace() for c in item):
        raise ValueError("expected a single word without spaces")
    return item


def volume_group(value: str) -> str:
    """An LVM volume group name."""
    item = value.strip()
    if not _VG_RE.match(item):
        raise ValueError("expected an LVM volume group name (A-Z a-z 0-9 + _ . -)")
    return item


def interface(value: str) -> str:
    """A network interface name (at most 15 characters)."""
    item = value.strip()
    if not _IFACE_RE.match(item):
        raise ValueError("expected a network interface name such as eth0")
    return item


def ip_address(allow_empty: bool = False) -> Converter:
    """Converter for an IPv4/IPv6 address ("" = all addresses when allow_empty)."""
    def convert(value: str) -> str:
        item = value.strip()
        if allow_empty and item == "":
            return item
        try:
            ipaddress.ip_address(item)
        except ValueError:
            extra = ' or "" for all addresses' if allow_empty else ""
            raise ValueError(f"expected an IP address{extra}") from None
        return item
    return convert


def ip_networks(value: str) -> Tuple[str, ...]:
    """Whitespace-separated IPv4/IPv6 addresses or CIDR networks, normalised
    (``10.1.2.3`` -> ``10.1.2.3/32``, ``2001:DB8::/32`` -> ``2001:db8::/32``)."""
    out = []
    for item in value.split():
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError("expected IP addresses or networks such as 10.1.0.0/16 "
                             f"or 2001:db8::/32, not {item!r}") from None
    return tuple(out)


def url(schemes: Sequence[str]) -> Converter:
    """Converter for a URL with one of ``schemes`` (e.g. ``("http", "https")``)."""
    def convert(value: str) -> str:
        item = value.strip()
        scheme, sep, rest = item.partition("://")
        if not sep or scheme.lower() not in schemes or not rest or " " in item:
            raise ValueError("expected a URL starting with "
                             + " or ".join(f"{s}://" for s in schemes))
        return item
    return convert


def libvirt_uri(value: str) -> str:
    """A libvirt connection URI such as qemu:///system."""
    item = value.strip()
    if "://" not in item or " " in item:
        raise ValueError("expected a libvirt URI such as qemu:///system")
    return item


def unix_time(value: str) -> int:
    """Unix time in seconds (an integer)."""
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError("expected a Unix time in seconds, e.g. 1700000000") from None


def version_logger(value: str) -> int:
    """Messages per day (integer >= 0); legacy true/false mean 1/0."""
    word = value.strip().lower()
    if word in ("true", "false"):
        return 1 if word == "true" else 0
    return integer(0)(word)  # type: ignore[return-value]


def _expected(what: str, minimum: Optional[float], maximum: Optional[float]) -> str:
    if minimum is not None and maximum is not None:
        return f"expected {what} from {minimum} to {maximum}"
    if minimum is not None:
        return f"expected {what} >= {minimum}"
    if maximum is not None:
        return f"expected {what} <= {maximum}"
    return f"expected {what}"


def _check_bounds(number: int, minimum: Optional[int], maximum: Optional[int],
                  what: str) -> None:
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(_expected(what, minimum, maximum))
