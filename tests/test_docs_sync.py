"""man/vac.conf.5 documents exactly the options of the schema, with their type, unit, default."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Dict, Optional

import pytest

from vac.core import schema

MAN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "man",
                   "vac.conf.5")
SECTIONS = {
    schema.SETTINGS: "[settings] OPTIONS",
    schema.MACHINETYPE: "[machinetype NAME] OPTIONS",
    schema.VACUUM_PIPE: "[vacuum_pipe PREFIX] SECTIONS",
}


def _unescape(text: str) -> str:
    return text.replace("\\-", "-").replace("\\e", "\\")


def documented() -> Dict[str, Dict[str, str]]:
    """Section heading -> {option name (or PREFIX for XXX patterns): its paragraph text}."""
    with open(MAN, encoding="utf-8") as f:
        lines = f.read().split("\n")
    found: Dict[str, Dict[str, str]] = {}
    heading, name = "", None  # type: str, Optional[str]
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            heading = _unescape(line[3:].strip().strip('"'))
            found.setdefault(heading, {})
            name = None
        elif line == ".TP" and i + 1 < len(lines):
            match = re.match(r"\.BI? (\S+)( XXX)?$", lines[i + 1])
            name = _unescape(match.group(1)) if match else None
            if name:
                found[heading][name] = ""
        elif name and not line.startswith(".B"):
            found[heading][name] += " " + _unescape(line)
    return found


@pytest.mark.parametrize("kind", list(SECTIONS))
def test_every_schema_option_documented_and_no_unknown_ones(kind):
    in_man = set(documented()[SECTIONS[kind]])
    in_schema = {o.name for o in schema.TABLES[kind]} | {p.prefix for p in schema.PATTERNS[kind]}
    assert in_schema - in_man == set(), f"missing from man/vac.conf.5: {in_schema - in_man}"
    assert in_man - in_schema == set(), f"documented but unknown: {in_man - in_schema}"


@pytest.mark.parametrize("kind", list(SECTIONS))
def test_type_unit_and_default_stated(kind):
    pages = documented()[SECTIONS[kind]]
    for option in schema.TABLES[kind]:
        text = " ".join(pages[option.name].split())
        assert f"Type: {option.type_name}" in text, option.name
        assert f"default: {option.shown_default}." in text, option.name
        if option.unit:
            assert f"unit: {option.unit}" in text, option.name
        for alias in option.aliases:
            assert alias in text, option.name


@pytest.mark.skipif(not shutil.which("mandoc"), reason="mandoc not installed")
def test_man_page_lints_clean():
    result = subprocess.run(["mandoc", "-Tlint", MAN], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_network_security_lists_the_default_guest_firewall():
    """The rules vac.conf(5) gives sites that keep their own iptables are vac's own."""
    from vac.core import iptables
    from vac.core.configtypes import Settings
    with open(MAN, encoding="utf-8") as f:
        page = _unescape(f.read())
    for line in iptables.site_rules(iptables.guest_firewall(Settings(vac_space="s.x"))) \
            .splitlines():
        assert line in page, line
