"""check-vacd: each of its four states through main() on a --root tree, plus the pure rules."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from vac import nagios
from vac.nagios import (CRITICAL, OK, UNKNOWN, WARNING, Findings, Thresholds, evaluate,
                        parse_seconds, perfdata)
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
    assert "factory_heartbeat_age=5s;600;600;0" in line
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
    assert "responder_heartbeat_age=U;600;600;0" in line
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
    limits = Thresholds(600, 600)
    assert evaluate(ages, Findings(), None, limits) == (OK, "Factory + responder ok")
    assert evaluate(ages, Findings(factory_error=""), None, limits) == \
        (CRITICAL, "factory-error present")
    assert perfdata(dict(ages, mjf=None), None, Thresholds(60, 60)).endswith(
        "mjf_heartbeat_age=U;60;;0")


def _config_report(paths, invalid, disabled):
    from vac.adapters import statereports
    statereports.write_config_report(paths, invalid, disabled)


def test_invalid_configuration_is_critical_naming_the_first_problem(healthy, capsys):
    first = "/etc/vac.conf:3: [settings] mb_per_processor: 'lots' is not valid"
    _config_report(healthy, [first, "/etc/vac.conf:9: [settings] cycle_seconds: 'x'"], {})
    code, line = run(healthy, capsys)
    assert code == CRITICAL
    assert line.startswith("VACD CRITICAL - invalid configuration, no machines are created: "
                           f"{first} (+1 more) (3/8 6/8) | ")


def test_disabled_machinetypes_are_a_warning(healthy, capsys):
    _config_report(healthy, [], {"cms": ["/etc/vac.conf:7: [machinetype cms] root_device: "
                                         "'x-1' is not valid"]})
    code, line = run(healthy, capsys)
    assert code == WARNING
    assert ("Factory + responder ok but 1 machinetype(s) disabled (cms): /etc/vac.conf:7: "
            "[machinetype cms] root_device: 'x-1' is not valid (3/8 6/8)") in line
    _config_report(healthy, [], {})
    assert run(healthy, capsys)[0] == OK


def test_warning_and_critical_options_keep_the_positional_form(healthy, capsys):
    beat(healthy, "factory", 400)
    assert run(healthy, capsys)[0] == OK                       # 600 both
    code, line = run(healthy, capsys, "-w", "300", "-c", "600")
    assert code == WARNING and "No vacd factory heartbeat in 0.11 hours" in line
    assert "factory_heartbeat_age=400s;300;600;0" in line
    assert "metadata_heartbeat_age=5s;300;;0" in line
    assert run(healthy, capsys, "--critical", "350")[0] == CRITICAL
    assert run(healthy, capsys, "350")[0] == CRITICAL           # positional = critical
    assert run(healthy, capsys, "-w", "300", "500")[0] == WARNING


@pytest.mark.parametrize("args", [["-w", "700", "-c", "600"], ["-c", "0"], ["-w", "soon"]])
def test_bad_thresholds_are_usage_errors(paths, capsys, args):
    with pytest.raises(SystemExit) as e:
        nagios.main(args)
    assert e.value.code == UNKNOWN
    assert capsys.readouterr().out.startswith("VACD UNKNOWN - usage error")


def test_every_heartbeat_has_the_same_perfdata_fields():
    perf = perfdata({r: 1.0 for r in ROLES}, (1, 2, 1, 2, 1.0), Thresholds(30, 60))
    beats = [item for item in perf.split() if "_heartbeat_age=" in item]
    assert [b.split("=")[0] for b in beats] == [f"{r}_heartbeat_age" for r in ROLES]
    assert all(re.fullmatch(r"[a-z]+_heartbeat_age=1s;30;(60)?;0", b) for b in beats), beats


def _machine_dir(paths, name, *files):
    mdir = os.path.join(paths.machines_dir, f"1700000000_lhcb_{name}")
    for rel in files:
        os.makedirs(os.path.dirname(os.path.join(mdir, rel)), exist_ok=True)
        open(os.path.join(mdir, rel), "w").close()
    os.makedirs(mdir, exist_ok=True)
    return mdir


def test_warning_while_apel_records_are_pending(healthy, capsys):
    _machine_dir(healthy, "f1-00.example.com", "apel-owed")                 # not frozen
    _machine_dir(healthy, "f1-01.example.com", "apel-record/record",        # not archived
                 "apel-record/name")
    _machine_dir(healthy, "f1-02.example.com", "apel-record.tmp/record")    # interrupted
    _machine_dir(healthy, "f1-03.example.com", "apel-record/record", "apel-record/name",
                 "apel-record/archived")                                    # complete
    _machine_dir(healthy, "f1-04.example.com", "started", "heartbeat")      # owes nothing
    code, line = run(healthy, capsys)
    assert code == WARNING
    assert line.startswith("VACD WARNING - Factory + responder ok but 3 APEL records "
                           "pending (3/8 6/8) | ")
    assert line.endswith("mjf_heartbeat_age=5s;600;;0 apel_records_pending=3;1;;0")
    beat(healthy, "factory", 1800)
    code, line = run(healthy, capsys)
    assert code == CRITICAL and "hours; 3 APEL records pending (3/8" in line


def test_ok_reports_no_pending_records(healthy, capsys):
    code, line = run(healthy, capsys)
    assert code == OK and line.endswith(" apel_records_pending=0;1;;0")


def write_conf(paths, port: int, key_file: str) -> None:
    with open(paths.etc_vac_conf, "w", encoding="ascii") as f:
        f.write(f"[settings]\nvac_space = vac01.example.com\nfactory_hostname = "
                f"factory1.example.com\nvacquery_port = {port}\nquery_key_file = {key_file}\n")


def test_query_probe_asks_the_responder_with_the_space_key(healthy, tmp_path, capsys):
    """--query: a signed factory_query to the local responder; its answer is OK, silence
    or a responder with another key (it ignores the plugin's request) is CRITICAL."""
    from vac.adapters import statefs
    from vac.paths import Paths
    from vac.services.sourcegate import SourceGate
    from tests.services.respondertools import LiveResponder, make_cfg
    from tests.services.test_vacquery_auth import KEY_FILE, install_key
    os.makedirs(os.path.dirname(healthy.etc_vac_conf), exist_ok=True)
    install_key(healthy)
    cfg = make_cfg("factory1.example.com", query_key_file=KEY_FILE)
    other = Paths(str(tmp_path / "other"))
    statefs.ensure_state_dirs(other)
    install_key(other, b"another space's key, 32 bytes!!")
    for root, expected in ((healthy, OK), (other, CRITICAL)):
        with LiveResponder(root, cfg, gate=SourceGate(resolve=lambda n: [])) as live:
            write_conf(healthy, live.address[1], KEY_FILE)
            code, line = run(healthy, capsys, "--query")
        assert code == expected, line
    assert "responder_answer=U;;;0" in line
    assert "No VacQuery answer from the responder on 127.0.0.1:" in line
    code, line = run(healthy, capsys)                        # without --query: not asked
    assert code == OK and "responder_answer" not in line
