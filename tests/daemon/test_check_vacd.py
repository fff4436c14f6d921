"""check-vacd: each of its four states through main() on a --root tree, plus the pure rules."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from vac import nagios
from vac.nagios import (CRITICAL, OK, UNKNOWN, WARNING, evaluate, parse_seconds, perfdata)
from tests.daemon.vacdproc import REPO, run_env

SYSTEM_PYTHON = "/usr/bin/python3"
ROLES = ("factory", "responder", "metadata", "mjf")
# Monitoring Plugins output: one line, "SERVICE STATE - text | 'label'=value[UOM];w;c;min;max"
PLUGIN_LINE = re.compile(r"^VACD (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+"
                         r"( \| ([a-z0-9_]+=[-0-9.U]+[a-z%]*(;[0-9.]*){0,4} ?)+)?$")


def beat(paths, role, age=0.0):
    path = paths.heartbeat(role)
    with open(path, "w", encoding="ascii") as f:
        f.write(f"{int(time.time())}\n")
    t = time.time() - age
    os.utime(path, (t, t))


@pytest.fixture
def healthy(paths):
    os.makedirs(paths.state_dir)
    for role in ROLES:
        beat(paths, role, 5)
    with open(paths.counts, "w", encoding="ascii") as f:
        f.write("3 8 6 8 60.5\n")
    return paths


def run(paths, capsys, *args):
    code = nagios.main(["--root", paths.root, *args])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and PLUGIN_LINE.match(out.rstrip("\n")), out
    return code, out.rstrip("\n")


def test_ok_with_counts_and_perfdata(healthy, capsys):
    code, line = run(healthy, capsys)
    assert code == OK
    assert line.startswith("VACD OK - Factory + responder ok (3/8 6/8) | ")
    assert "running_machines=3;;;0;8" in line and "running_processors=6;;;0;8" in line
    assert "factory_heartbeat_age=5s;;600;0" in line
    assert "metadata_heartbeat_age=5s;600;;0" in line


def test_critical_for_a_stale_factory_heartbeat(healthy, capsys):
    beat(healthy, "factory", 1800)
    code, line = run(healthy, capsys, "600")
    assert code == CRITICAL
    assert "VACD CRITICAL - No vacd factory heartbeat in 0.50 hours (3/8 6/8)" in line


def test_critical_for_a_missing_responder_heartbeat_and_factory_error(healthy, capsys):
    os.unlink(healthy.heartbeat("responder"))
    with open(healthy.factory_error, "w", encoding="utf-8") as f:
        f.write("Failed to create the NAT network\nsecond line\n")
    code, line = run(healthy, capsys)
    assert code == CRITICAL
    assert ("No vacd responder heartbeat file; Failed to create the NAT network (3/8 6/8)"
            in line)
    assert "responder_heartbeat_age=U;;600;0" in line
    assert "second line" not in line


def test_warning_for_stale_metadata_or_mjf(healthy, capsys):
    beat(healthy, "mjf", 700)
    code, line = run(healthy, capsys)
    assert code == WARNING
    assert "Factory + responder ok but No vacd mjf heartbeat in 0.19 hours" in line
    code, line = run(healthy, capsys, "800")       # a larger threshold accepts it
    assert code == OK


def test_unknown_when_vac_is_not_installed(paths, capsys):
    code, line = run(paths, capsys)
    assert code == UNKNOWN
    assert line.startswith("VACD UNKNOWN - vac is not installed")


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON),
                    reason="needs root and the system python3 to run the plugin as nobody")
def test_unknown_when_the_state_directory_is_unreadable(healthy):
    os.chmod(healthy.state_dir, 0o700)
    # the venv's interpreter may sit below /root; the plugin only needs the stdlib
    res = subprocess.run([SYSTEM_PYTHON, "-m", "vac.nagios", "--root", healthy.root],
                         cwd=REPO, env=run_env(), capture_output=True, text=True, timeout=30,
                         user=65534, group=65534)
    assert res.returncode == UNKNOWN, res.stdout + res.stderr
    assert res.stdout.startswith("VACD UNKNOWN - cannot read")


def test_usage_errors_are_unknown(paths, capsys):
    with pytest.raises(SystemExit) as e:
        nagios.main(["--bogus"])
    assert e.value.code == UNKNOWN
    assert capsys.readouterr().out.startswith("VACD UNKNOWN - usage error")


@pytest.mark.parametrize("text,value", [(None, 600), ("300", 300), ("abc", 600),
                                        ("0", 600), ("-5", 600)])
def test_seconds_argument(text, value):
    assert parse_seconds(text) == value


def test_evaluate_without_counts_has_no_suffix():
    ages = {r: 1.0 for r in ROLES}
    assert evaluate(ages, None, None, 600) == (OK, "Factory + responder ok")
    assert evaluate(ages, "", None, 600) == (CRITICAL, "factory-error present")
    assert perfdata(dict(ages, mjf=None), None, 60).endswith("mjf_heartbeat_age=U;60;;0")
