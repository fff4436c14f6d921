"""vac machines / machinetype / machinetypes / factories: golden text, JSON, exit status."""

from __future__ import annotations

import json
import os
import time

import pytest

from vac import cli
from vac.adapters import statefs
from vac.cli import status_cmd
from vac.core import vacquery as vq
from tests.core.test_vacquery import factory_body, machine_body, machinetype_body
from tests.services.respondertools import LiveResponder, add_machine, make_cfg, write

NOW = 1_700_000_000
F1, F2 = "factory1.example.com", "factory2.example.com"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def m(name, **kw):
    return dict(machine_body(), machine=name, **kw)


MACHINES = {F1: {
    "factory1-00.example.com": m("factory1-00.example.com", started_time=NOW - 18756,
                                 heartbeat_time=NOW - 60, cpu_seconds=18190,
                                 cpu_percentage=99.12, num_cpus=1),
    "factory1-01.example.com": m("factory1-01.example.com", state="Starting",
                                 created_time=NOW - 95, machinetype="atlas-multicore-prod",
                                 machine_model="docker", num_cpus=8),
    "factory1-02.example.com": m("factory1-02.example.com", state="Shut down",
                                 shutdown_message="300 Nothing to do here at all",
                                 machine_model="singularity"),
}, F2: {
    "factory2-00.example.com": m("factory2-00.example.com", state="Shut down",
                                 machinetype=None, machine_model=None),
    "averyveryverylongfactoryname-10.example.com": m(
        "averyveryverylongfactoryname-10.example.com", started_time=NOW - 60,
        heartbeat_time=NOW - 60),
}}


def test_machines_golden(golden):
    golden.check("\n".join(status_cmd.machines_lines(MACHINES, NOW)) + "\n",
                 "vacquery/cli_machines.txt")


def test_machine_line_matches_spec_example():
    reply = m("factory1-03.example.com", machinetype="lhcb-prod", started_time=NOW - 18756,
              heartbeat_time=NOW, cpu_seconds=int(18756 * 0.973), cpu_percentage=99.1,
              num_cpus=1)
    assert status_cmd.machine_line(reply, NOW) == (
        "factory1-03     lhcb-prod        Running     1 VM  5.21 hrs 97.3%       99.1%")


def test_machinetype_golden(golden):
    result = {F1: {"lhcb": machinetype_body()},
              F2: {"lhcb": dict(machinetype_body(), shutdown_time=None, shutdown_message=None,
                                running_machines=12, running_hs06=123.45)},
              "legacy.example.com": {"lhcb": {"total_machines": 3, "total_hs06": 3.0,
                                              "shutdown_time": None,
                                              "shutdown_message": None}},
              "factory3.example.com": {"atlas": machinetype_body()}}
    golden.check("\n".join(status_cmd.machinetype_lines(result, "lhcb")) + "\n",
                 "vacquery/cli_machinetype.txt")
    golden.check("\n".join(status_cmd.machinetypes_lines(result)) + "\n",
                 "vacquery/cli_machinetypes.txt")


def test_factories_golden(golden):
    result = {F2: dict(factory_body(), factory=F2, vac_version="Vac 04.00.00 -"),
              F1: dict(factory_body(), factory=F1, vac_version="Vac 03.01.00 -",
                       load_average=12.345, mem_total_kb=131072000, mem_used_kb=65536000)}
    golden.check("\n".join(status_cmd.factories_lines(result)) + "\n",
                 "vacquery/cli_factories.txt")


# --- end to end through `vac` against a live responder ------------------------------

@pytest.fixture
def space(paths, monkeypatch):
    """A factory root whose configuration names F1 (live) and F2 (nobody listening)."""
    now = int(time.time())
    statefs.ensure_state_dirs(paths)
    statefs.write_counts(paths, 1, 2, 1, 2, 1.0)
    add_machine(paths, F1, 0, "lhcb", now - 100)
    live = LiveResponder(paths, make_cfg(F1)).__enter__()
    port = live.address[1]
    write(paths.etc_vac_conf, "[settings]\nvac_space = vac01.example.com\n"
          f"factory_hostname = {F1}\nfactories = factory1\nvacquery_port = {port}\n"
          "udp_timeout_seconds = 0.5\n")
    monkeypatch.setattr("vac.adapters.dns.resolve_ipv4", lambda name, timeout=2.0: "127.0.0.1")
    yield paths
    live.__exit__(None, None, None)


def test_vac_machines_text_and_exit_status(space, capsys):
    assert cli.main(["--root", space.root, "machines"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("MACHINE") and len(out) == 3
    assert out[1].startswith("factory1-00     lhcb") and "Running" in out[1]
    assert cli.main(["--root", space.root, "-t", "0.3", "machines", ".", F2]) == 1
    captured = capsys.readouterr()
    assert "No reply from factory factory2.example.com" in captured.err
    assert len(captured.out.splitlines()) == 3


def test_vac_json_outputs(space, capsys):
    assert cli.main(["--root", space.root, "-J", "machines"]) == 0
    replies = json.loads(capsys.readouterr().out)
    assert [r["machine"] for r in replies] == ["factory1-00.example.com",
                                               "factory1-01.example.com"]
    assert cli.main(["--root", space.root, "--json", "machinetype", "lhcb"]) == 0
    (reply,) = json.loads(capsys.readouterr().out)
    assert reply["message_type"] == vq.MACHINETYPE_STATUS and reply["running_machines"] == 1
    assert cli.main(["--root", space.root, "-J", "factories"]) == 0
    (reply,) = json.loads(capsys.readouterr().out)
    assert reply["factory"] == F1 and reply["running_machines"] == 1


def test_vac_machinetype_and_factories_text(space, capsys):
    assert cli.main(["--root", space.root, "machinetype", "lhcb"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("factory1         1   1.0 -")
    assert cli.main(["--root", space.root, "machinetype"]) == 2
    assert "requires an argument" in capsys.readouterr().err
    assert cli.main(["--root", space.root, "machinetypes"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert cli.main(["--root", space.root, "factories"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["factory1", "1/2", "1/2"]


def test_space_override(space, capsys):
    assert cli.main(["--root", space.root, "-s", "vac02.example.com", "-t", "0.3",
                     "factories"]) == 1
    assert "No reply from factory factory1.example.com" in capsys.readouterr().err


def test_config_error(paths, capsys):
    write(paths.etc_vac_conf, "[settings]\nvac_space = \n")
    assert cli.main(["--root", paths.root, "machines"]) == 1
    assert "Reading configuration fails with error" in capsys.readouterr().err
    assert os.path.exists(paths.etc_vac_conf)


def test_vac_uses_the_space_key_below_root(space, capsys):
    """With query_key_file the command signs with the key below --root; a keyed
    responder ignores the same command without it; an open key file is an error."""
    from vac.services.sourcegate import SourceGate
    from tests.services.test_vacquery_auth import KEY_FILE, install_key
    path = install_key(space)
    keyed = make_cfg(F1, query_key_file=KEY_FILE)
    with LiveResponder(space, keyed, gate=SourceGate(resolve=lambda n: [])) as live:
        conf = (f"[settings]\nvac_space = vac01.example.com\nfactory_hostname = {F1}\n"
                f"factories = factory1\nvacquery_port = {live.address[1]}\n"
                "udp_timeout_seconds = 0.5\n")
        write(space.etc_vac_conf, conf + f"query_key_file = {KEY_FILE}\n")
        assert cli.main(["--root", space.root, "machines"]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 3
        write(space.etc_vac_conf, conf)
        assert cli.main(["--root", space.root, "machines"]) == 1
        assert "No reply from factory" in capsys.readouterr().err
        write(space.etc_vac_conf, conf + f"query_key_file = {KEY_FILE}\n")
        os.chmod(path, 0o640)
        assert cli.main(["--root", space.root, "machines"]) == 1
        assert "query_key_file" in capsys.readouterr().err
