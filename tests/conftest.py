"""Shared fixtures: rooted Paths on tmp_path, fixed clock, seeded RNG, golden files."""

from __future__ import annotations

import os
import random

import pytest

from vac.paths import Paths

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "golden")
FIXED_NOW = 1_700_000_000  # 2023-11-14T22:13:20Z; every pure test uses this clock


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true", default=False,
                     help="rewrite golden files from the current output")


@pytest.fixture
def paths(tmp_path) -> Paths:
    """A Paths value rooted in a fresh temporary directory."""
    return Paths(root=str(tmp_path))


@pytest.fixture
def now() -> int:
    return FIXED_NOW


@pytest.fixture
def rng() -> random.Random:
    return random.Random(7)


class Golden:
    """Compare rendered artefacts with files under tests/golden (or rewrite them)."""

    def __init__(self, regen: bool):
        self.regen = regen

    def check(self, actual, relpath: str) -> None:
        path = os.path.join(GOLDEN_DIR, relpath)
        data = actual.encode() if isinstance(actual, str) else actual
        if self.regen or not os.path.exists(path):
            if not self.regen and os.environ.get("CI"):
                pytest.fail(f"golden file {relpath} is missing (run with --regen-golden)")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            return
        with open(path, "rb") as f:
            expected = f.read()
        assert data.decode(errors="replace") == expected.decode(errors="replace"), \
            f"output differs from golden file {relpath} (regenerate with --regen-golden)"


@pytest.fixture
def golden(request) -> Golden:
    return Golden(request.config.getoption("--regen-golden"))


# The real test environment (libvirtd in a netns, LVM on loop): see tests/realenv.py.
from tests.realenv import real_env  # noqa: E402,F401
