"""etc/example.vac.conf, shipped as /usr/share/doc/vac/examples/example.vac.conf: once an
admin has changed the lines its "CHANGE:" comments point at, the real `vac config
--check` accepts it with no warning, and every changed value is the one in effect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO, "etc", "example.vac.conf")
OPTION_LINE = re.compile(r"^#?([a-z_]+) = ")

# what a site writes on the marked lines
SITE = {
    "vac_space": "vac01.gridpp.example.ac.uk",
    "factories": "wn01.gridpp.example.ac.uk wn02.gridpp.example.ac.uk",
    "factory_hostname": "wn01.gridpp.example.ac.uk",
    "gocdb_sitename": "UKI-EXAMPLE-UNI",
    "user_data_option_cvmfs_proxy": "http://squid.gridpp.example.ac.uk:3128",
    "root_image": "https://repo.gridpp.example.ac.uk/images/cernvm3.iso",
    "user_data": "https://repo.gridpp.example.ac.uk/example/user_data",
    "accounting_fqan": "/example/Role=NULL/Capability=NULL",
}


def marked_lines(lines: List[str]) -> List[Tuple[int, str]]:
    """(index, option) of the option line each "# CHANGE:" comment points at: the first
    "option = value" or "#option = value" line after it."""
    marked = []
    for i, line in enumerate(lines):
        if line.startswith("# CHANGE:"):
            j = next(j for j in range(i + 1, len(lines)) if OPTION_LINE.match(lines[j]))
            assert all(lines[k].startswith("# ") for k in range(i + 1, j)), lines[i:j + 1]
            marked.append((j, OPTION_LINE.match(lines[j]).group(1)))
    return marked


def changed_example(values: Dict[str, str]) -> str:
    with open(EXAMPLE, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for index, option in marked_lines(lines):
        lines[index] = f"{option} = {values[option]}"
    return "\n".join(lines) + "\n"


def vac(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", "vac"), "--root",
                           str(root), *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=REPO))


def test_the_marked_lines_are_the_site_specific_ones():
    with open(EXAMPLE, encoding="utf-8") as f:
        text = f.read()
    assert "vac config --check" in text and "vac.conf(5)" in text
    assert [option for _, option in marked_lines(text.splitlines())] == list(SITE)


def test_changed_example_passes_the_check_without_warnings(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "vac.conf").write_text(changed_example(SITE))
    check = vac(tmp_path, "config", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stderr == ""
    assert check.stdout.strip() == \
        "Configuration OK: 1 machinetype(s), 0 vacuum pipe(s), 0 warning(s)"
    shown = vac(tmp_path, "config")
    assert shown.returncode == 0, shown.stderr
    for option, value in SITE.items():
        assert re.search(rf"^{option} = {re.escape(value)} +# {tmp_path}/etc/vac.conf:\d+$",
                         shown.stdout, re.M), option
    assert re.search(r"^root_public_key = /root/\.ssh/id_ed25519\.pub ", shown.stdout, re.M)


def test_a_wrong_value_on_a_marked_line_is_named_with_its_line(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "vac.conf").write_text(
        changed_example(dict(SITE, factory_hostname="wn01")))
    check = vac(tmp_path, "config", "--check")
    assert check.returncode == 1
    assert re.search(r"etc/vac\.conf:\d+: \[settings\] factory_hostname", check.stdout +
                     check.stderr), check.stdout + check.stderr
