"""The iptables NAT check of SPEC §4.3 (bug B8: run it, warnings only). Pure.

The patterns are searched (regular expressions) in the text ``iptables-save`` printed.
"""

from __future__ import annotations

import re
from typing import List, Tuple

from vac.constants import NAT_BRIDGE


def expected_patterns(bridge: str = NAT_BRIDGE) -> List[Tuple[str, ...]]:
    """Each entry is satisfied if any of its regular expressions matches."""
    b = re.escape(bridge)
    return [
        (r"169\.254\.0\.0.*tcp.*MASQUERADE",),
        (r"169\.254\.0\.0.*udp.*MASQUERADE",),
        (b + r".*udp.*ACCEPT",),
        (b + r".*tcp.*ACCEPT",),
        (r"169\.254\.0\.0.*" + b + r".*ACCEPT", b + r".*169\.254\.0\.0.*ACCEPT"),
        (b + r".*" + b + r".*ACCEPT",),
        (b + r".*CHECKSUM",),
    ]


def missing_rules(iptables_save: str, bridge: str = NAT_BRIDGE) -> List[str]:
    """One warning per expected rule with no match in ``iptables_save``."""
    warnings = []
    for alternatives in expected_patterns(bridge):
        if not any(re.search(p, iptables_save) for p in alternatives):
            shown = " or ".join(f'"{p}"' for p in alternatives)
            warnings.append(f"Failed to match {shown} in output of iptables-save. "
                            "Have the NAT rules been removed?")
    return warnings
