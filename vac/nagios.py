"""check-vacd entry point (placeholder until the service issue lands)."""

from __future__ import annotations

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    print("VACD UNKNOWN - check-vacd not implemented yet")
    return 3
