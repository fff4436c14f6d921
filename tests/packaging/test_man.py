"""mandoc -Tlint reports nothing on every man page; they name what vacd really offers."""

from __future__ import annotations

import glob
import os
import subprocess

import pytest

from tests.packaging import require_tool
from vac import nagios
from vac.vacd import daemon

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = sorted(glob.glob(os.path.join(REPO, "man", "*.[1-8]")))


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_mandoc_lint_is_silent(page):
    require_tool("mandoc")
    res = subprocess.run(["mandoc", "-Tlint", "-Wall", page], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and res.stdout + res.stderr == "", res.stdout + res.stderr


def test_my_pages_exist():
    names = {os.path.basename(p) for p in PAGES}
    assert {"vac.1", "vacd.8", "check-vacd.8"} <= names


def _options(parser):
    return {o for action in parser._actions for o in action.option_strings
            if action.help != "==SUPPRESS==" and o.startswith("--") and o != "--help"}


@pytest.mark.parametrize("page,parser", [("vacd.8", daemon.build_parser),
                                         ("check-vacd.8", nagios.build_parser)])
def test_every_option_is_documented(page, parser):
    with open(os.path.join(REPO, "man", page), encoding="utf-8") as f:
        text = f.read().replace("\\-", "-")
    for option in _options(parser()):
        assert option in text, f"{option} missing from {page}"


def test_every_vac_command_is_documented():
    import argparse

    from vac.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    hidden = {c.dest for c in sub._choices_actions if c.help == argparse.SUPPRESS}
    with open(os.path.join(REPO, "man", "vac.1"), encoding="utf-8") as f:
        text = f.read()
    for name in sub.choices:
        if name not in hidden and name != "scan":
            assert f".BR {name} " in text or f".B {name}\n" in text, f"vac {name} missing"
