"""Slot identity (SPEC §0.3, §4.2): ordinal -> machine name, IP, MAC, VNC port.

Ordinals 0..252 use 169.254.169.N exactly as the original. Larger ordinals (the
original had no addresses for them) continue in 169.254.170.0 upwards, so .253 and
.254 of 169.254.169.x (factory and metadata) are never given to a machine.
"""

from __future__ import annotations

from typing import Optional, Tuple

from vac.constants import MAC_PREFIX, VNC_BASE_PORT

FIRST_BLOCK_SIZE = 253  # 169.254.169.0 .. 169.254.169.252
MIN_NETWORK_SLOTS = 100  # the original always reserved ordinals 0-99


def network_slot_count(total_processors: Optional[int], processors: int) -> int:
    """How many slots get DHCP and /etc/hosts entries: one per processor (SPEC §1.7),
    ``total_processors`` if larger, at least MIN_NETWORK_SLOTS as the original."""
    return max(MIN_NETWORK_SLOTS, total_processors or 0, processors)


def split_hostname(factory: str) -> Tuple[str, str]:
    """Split ``factory1.example.com`` into (``factory1``, ``example.com``)."""
    short, _, domain = factory.partition(".")
    return short, domain


def machine_name(factory: str, ordinal: int) -> str:
    """Machine FQDN of a slot: two-digit ordinal below 100, else all digits."""
    _check_ordinal(ordinal)
    short, domain = split_hostname(factory)
    name = f"{short}-{ordinal:02d}"
    return f"{name}.{domain}" if domain else name


def machine_short_name(factory: str, ordinal: int) -> str:
    return machine_name(factory, ordinal).split(".", 1)[0]


def ordinal_from_name(factory: str, name: str) -> Optional[int]:
    """Inverse of machine_name, or None if ``name`` is not one of this factory's slots."""
    short, domain = split_hostname(factory)
    head, _, tail = name.partition(".")
    if tail != domain or not head.startswith(short + "-"):
        return None
    digits = head[len(short) + 1:]
    if not digits.isdigit() or len(digits) < 2:
        return None
    ordinal = int(digits)
    return ordinal if machine_name(factory, ordinal) == name else None


def machine_ip(ordinal: int) -> str:
    """IPv4 address of a slot on the NAT network."""
    _check_ordinal(ordinal)
    if ordinal < FIRST_BLOCK_SIZE:
        return f"169.254.169.{ordinal}"
    rest = ordinal - FIRST_BLOCK_SIZE
    third = 170 + rest // 256
    if third > 254:
        raise ValueError(f"ordinal {ordinal} is beyond the 169.254.0.0/16 address plan")
    return f"169.254.{third}.{rest % 256}"


def ordinal_from_ip(ip: str) -> Optional[int]:
    """Inverse of machine_ip, or None for addresses that are not slot addresses."""
    parts = ip.split(".")
    if len(parts) != 4 or parts[:2] != ["169", "254"] or not all(p.isdigit() for p in parts):
        return None
    third, fourth = int(parts[2]), int(parts[3])
    if fourth > 255:
        return None
    if third == 169:
        return fourth if fourth < FIRST_BLOCK_SIZE else None
    if 170 <= third <= 254:
        return FIRST_BLOCK_SIZE + (third - 170) * 256 + fourth
    return None


def machine_mac(ordinal: int) -> str:
    """MAC address: ``56:4D:`` + the four IP bytes in upper-case hex."""
    octets = [int(x) for x in machine_ip(ordinal).split(".")]
    return MAC_PREFIX + ":" + ":".join(f"{o:02X}" for o in octets)


def vnc_port(ordinal: int) -> int:
    _check_ordinal(ordinal)
    return VNC_BASE_PORT + ordinal


def _check_ordinal(ordinal: int) -> None:
    if not isinstance(ordinal, int) or ordinal < 0:
        raise ValueError(f"slot ordinal must be a non-negative integer, not {ordinal!r}")
