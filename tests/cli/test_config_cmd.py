"""``vac --root T config [--check]``: effective values with origins, every problem listed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vac.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SITE = """# site-wide settings
[settings]
vac_space = vac01.example.com
factory_hostname = factory1.example.com
mb_per_processor = 4096
overload_per_processor = 1.5
cpu_total = 2
user_data_option_site = example

[machinetype lhcb]
root_image = https://repo.example.org/cernvm4.iso
target_share = 1
accounting_fqan = /lhcb/Role=NULL/Capability=NULL
"""
MAIN = """[settings]
mb_per_processor = 3072   ; overrides 10-site.conf

[machinetype lhcb]
max_processors = 2
"""
FIVE_MISTAKES_SITE = """[settings]
mb_per_processor = lots

[machinetype Bad_Name]
root_image = cernvm.iso

[machinetype lhcb]
root_image = cernvm.iso
min_processors = 8
max_processors = 4
"""
FIVE_MISTAKES_MAIN = """[settings]
factory_hostname = factory1.example.com

[targetshares]
lhcb = 0.5
"""


def make_tree(root, files):
    for relpath, text in files.items():
        path = os.path.join(root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return str(root)


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path, {"etc/vac.d/10-site.conf": SITE, "etc/vac.conf": MAIN,
                                "etc/vac.d/20-ignored.conf.rpmsave": "[settings]\nx = y\n",
                                "proc/cpuinfo": "processor\t: 0\nprocessor\t: 1\n"})


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_config_shows_later_value_with_file_and_line(tree, capsys):
    status, out, err = run(capsys, "--root", tree, "config")
    assert status == 0
    site, main_conf = f"{tree}/etc/vac.d/10-site.conf", f"{tree}/etc/vac.conf"
    lines = out.splitlines()
    assert any(line.startswith("mb_per_processor = 3072 ") and line.endswith(f"# {main_conf}:2")
               for line in lines), out
    assert any(line.startswith("overload_per_processor = 1.5 ")
               and line.endswith(f"# {site}:6") for line in lines)
    assert any(line.startswith("udp_timeout_seconds = 10.0 ") and line.endswith("# (default)")
               for line in lines)
    assert "cpu_total is deprecated - please use total_processors instead" in err
    assert "20-ignored" not in out + err


def test_config_output_golden(tree, capsys, golden):
    status, out, _ = run(capsys, "--root", tree, "config")
    assert status == 0
    golden.check(out.replace(tree, "T"), "config/vac-config.txt")


def test_check_valid_config(tree, capsys):
    status, out, _ = run(capsys, "--root", tree, "config", "--check")
    assert status == 0
    assert out.startswith("Configuration OK: 1 machinetype(s)")


def test_check_lists_every_problem_and_exits_1(tmp_path, capsys):
    root = make_tree(tmp_path, {"etc/vac.d/10-site.conf": FIVE_MISTAKES_SITE,
                                "etc/vac.conf": FIVE_MISTAKES_MAIN})
    status, out, err = run(capsys, "--root", root, "config", "--check")
    assert status == 1
    site, main_conf = f"{root}/etc/vac.d/10-site.conf", f"{root}/etc/vac.conf"
    expected = [
        f"{site}:1: [settings] vac_space: is missing",
        f"{site}:2: [settings] mb_per_processor: 'lots' is not valid (expected an integer",
        f"{site}:4: [machinetype bad_name] NAME: name 'bad_name' is not valid",
        f"{site}:10: [machinetype lhcb] max_processors: 4 is less than min_processors 8",
        f"{main_conf}:5: [targetshares] lhcb: obsolete section [targetshares]",
    ]
    for text in expected:
        assert f"  {text}" in err, err
    assert "5 problem(s) found" in err


def test_missing_files_are_skipped_and_reported_as_missing_settings(tmp_path, capsys):
    status, _, err = run(capsys, "--root", str(tmp_path), "config", "--check")
    assert status == 1
    assert "[settings]: section is missing" in err


def test_run_conf_wins_over_etc(tree, capsys):
    make_tree(tree, {"var/run/vac.conf": "[settings]\nmb_per_processor = 1000\n"})
    _, out, _ = run(capsys, "--root", tree, "config")
    assert f"# {tree}/var/run/vac.conf:2" in out


def test_installed_entry_point_runs(tree):
    result = subprocess.run([sys.executable, os.path.join(REPO, "bin", "vac"), "--root", tree,
                             "config", "--check"], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO), timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("parts", [("vac.conf",), ("vac.d",), ("vac.conf", "vac.d")])
def test_shipped_examples_are_valid(tmp_path, capsys, parts):
    """etc/vac.d as it is, and etc/example.vac.conf installed as /etc/vac.conf."""
    import shutil
    os.makedirs(tmp_path / "etc")
    for part in parts:
        source = os.path.join(REPO, "etc", "example.vac.conf" if part == "vac.conf" else part)
        copy = shutil.copytree if os.path.isdir(source) else shutil.copy
        copy(source, tmp_path / "etc" / part)
    make_tree(tmp_path, {"var/run/vac.conf": "[settings]\nfactory_hostname = factory1."
                         "example.com\n", "proc/cpuinfo": "processor\t: 0\n" * 8})
    status, out, err = run(capsys, "--root", str(tmp_path), "config", "--check")
    assert (status, err) == (0, ""), err
    assert "Configuration OK" in out


def test_json_output_has_values_and_origins(tree, capsys):
    import json
    status, out, _ = run(capsys, "--root", tree, "-J", "config")
    assert status == 0
    data = json.loads(out)
    assert data["settings"]["mb_per_processor"] == {"value": 3072,
                                                    "origin": f"{tree}/etc/vac.conf:2"}
    assert data["machinetypes"]["lhcb"]["max_processors"]["value"] == 2
    assert data["settings"]["user_data_option_site"]["value"] == "example"
    assert any("cpu_total" in w for w in data["warnings"])


def test_json_check_of_invalid_config(tmp_path, capsys):
    import json
    root = make_tree(tmp_path, {"etc/vac.conf": "[settings]\nmb_per_processor = x\n"})
    status, out, _ = run(capsys, "--root", root, "-J", "config", "--check")
    data = json.loads(out)
    assert status == 1 and data["valid"] is False and len(data["problems"]) >= 2


def test_pipes_from_cache_on_request(tree, capsys):
    import json
    make_tree(tree, {
        "etc/vac.d/30-pipe.conf": "[vacuum_pipe vo]\nvacuum_pipe_url = https://vo.example.org/"
                                  "vo.pipe\ntarget_share = 3\n",
        "var/lib/vac/pipescache/vo.pipe": json.dumps(
            {"machinetypes": [{"suffix": "prod", "root_image": "https://vo.example.org/i.iso",
                               "target_share": 1}]})})
    _, out, _ = run(capsys, "--root", tree, "config")
    assert "[machinetype vo-prod]" not in out and "[vacuum_pipe vo]" in out
    _, out, _ = run(capsys, "--root", tree, "config", "--pipes", "cache")
    assert "[machinetype vo-prod]\n# generated from [vacuum_pipe vo]\ntarget_share = 3.0" in out
