"""Managed ``/etc/hosts`` lines for the slots (SPEC §4.1 step 3, §4.2). Pure.

Each slot gets ``IP SHORT FQDN # added by Vac``; lines already present (exactly) are
never repeated, so applying :func:`updated_text` twice changes nothing.
"""

from __future__ import annotations

from typing import List, Optional

from vac.core import naming

MARKER = "# added by Vac"


def desired_lines(factory: str, slot_count: int) -> List[str]:
    """The managed line of every ordinal 0 .. ``slot_count`` - 1."""
    lines = []
    for ordinal in range(slot_count):
        fqdn = naming.machine_name(factory, ordinal)
        short = fqdn.split(".", 1)[0]
        lines.append(f"{naming.machine_ip(ordinal)} {short} {fqdn} {MARKER}")
    return lines


def missing_lines(present_text: str, desired: List[str]) -> List[str]:
    """The desired lines not already present verbatim (ignoring surrounding blanks)."""
    present = {line.strip() for line in present_text.splitlines()}
    return [line for line in desired if line not in present]


def updated_text(present_text: str, desired: List[str]) -> Optional[str]:
    """The new file content with missing lines appended, or None if nothing is missing."""
    missing = missing_lines(present_text, desired)
    if not missing:
        return None
    head = present_text if present_text.endswith("\n") or not present_text else present_text + "\n"
    return head + "".join(line + "\n" for line in missing)
