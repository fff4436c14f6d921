"""The crash points of tests/integration/crashglue.py name functions that exist (no root)."""

from __future__ import annotations

from tests.integration import crashglue


def test_every_crash_point_names_a_function_of_vac():
    assert crashglue.available() == list(crashglue.POINTS)
