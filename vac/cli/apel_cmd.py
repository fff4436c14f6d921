"""vac sub-commands: apel_cmd (placeholder until its issue lands)."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add this module's sub-commands to the vac parser."""
