"""Packaging checks (rpmbuild, puppet, mandoc, systemd unit).

``require_tool`` skips a check whose tool is missing, with the reason, on a developer's
machine; under ``make test`` (VAC_REQUIRE_TESTENV=1, i.e. CI) a missing tool fails the
check instead, so CI can never pass without having run it.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Path of the program ``name``; skip (or, under make test, fail) when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} missing (tools/install-deps.sh installs it)"
        if os.environ.get("VAC_REQUIRE_TESTENV") == "1":
            pytest.fail(message + "; make test (VAC_REQUIRE_TESTENV=1) requires it",
                        pytrace=False)
        pytest.skip(message)
    return path
