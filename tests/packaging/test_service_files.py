"""The systemd unit and the logrotate file say what vacd needs (SPEC §2.6, §11.6 for EL9)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(REPO, "systemd", "vacd.service")


def unit():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNIT, encoding="utf-8")
    return parser


def test_unit_runs_vacd_in_the_foreground_after_libvirtd():
    u = unit()
    assert "libvirtd.service" in u["Unit"]["After"].split()
    assert "network-online.target" in u["Unit"]["After"].split()
    assert "network-online.target" in u["Unit"]["Wants"].split()
    assert u["Service"]["ExecStart"] == "/usr/sbin/vacd --foreground"
    assert u["Service"]["Type"] == "notify"        # vacd sends READY=1 and STATUS=
    assert u["Service"]["Restart"] == "on-failure"
    assert u["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert u["Install"]["WantedBy"] == "multi-user.target"


def test_unit_leaves_guests_and_devices_alone():
    s = unit()["Service"]
    assert s["KillMode"] in ("mixed", "process")
    # LVM needs /dev/mapper and loop devices; iptables may modprobe; /etc/hosts is written
    for option in ("PrivateDevices", "ProtectKernelModules", "DevicePolicy", "ProtectClock",
                   "PrivateNetwork", "User", "DynamicUser"):
        assert option not in s, option
    assert s.get("ProtectSystem", "true") in ("true", "yes")
    assert "AF_NETLINK" in s["RestrictAddressFamilies"]
    assert "AF_UNIX" in s["RestrictAddressFamilies"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verify(tmp_path):
    with open(UNIT, encoding="utf-8") as f:
        text = f.read()
    # the package is not installed here: point ExecStart at an existing binary and drop
    # the man page references, which verify would look up
    text = text.replace("/usr/sbin/vacd", "/bin/true")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("Documentation="))
    (tmp_path / "vacd.service").write_text(text + "\n")
    res = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "vacd.service")],
                         capture_output=True, text=True, timeout=60)
    problems = [line for line in (res.stdout + res.stderr).splitlines()
                if "vacd.service" in line and "libvirtd.service" not in line]
    assert problems == []


def test_logrotate_covers_every_log_daily_keeping_three(paths):
    with open(os.path.join(REPO, "etc", "logrotate.d", "vacd"), encoding="utf-8") as f:
        text = f.read()
    head, body = text.split("{", 1)
    files = [w for w in head.split() if w.startswith("/")]
    expected = [paths.log_file(r).replace(paths.root, "", 1)
                for r in ("supervisor", "factory", "responder", "metadata", "mjf")]
    assert set(expected + ["/var/log/vac-ssmsend", "/var/log/vac-ssmsend-prod"]) == set(files)
    directives = {line.strip() for line in body.split("}")[0].splitlines() if line.strip()}
    assert {"daily", "rotate 3", "missingok"} <= directives
    assert "copytruncate" not in directives         # vacd reopens moved logs itself


def stop_post_script(tmp_path, ssmsend_installed: bool, vac_exit: int):
    """Run the unit's ExecStopPost shell script with stand-ins for vac and ssmsend."""
    line = unit()["Service"]["ExecStopPost"]
    assert line.startswith("-/bin/sh -c '") and line.endswith("'")   # never fails the stop
    script = line[len("-/bin/sh -c '"):-1]
    calls, bindir = tmp_path / "calls", tmp_path / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    fake_vac = bindir / "vac"
    fake_vac.write_text(f"#!/bin/sh\necho vac \"$@\" >>{calls}\nexit {vac_exit}\n")
    names = ["ssmsend"] if ssmsend_installed else []
    for name in names:
        (bindir / name).write_text(f"#!/bin/sh\necho {name} \"$@\" >>{calls}\nexit 1\n")
    for f in bindir.iterdir():
        f.chmod(0o755)
    script = (script.replace("/usr/sbin/vac ", f"{fake_vac} ")
              .replace("/var/log/vac-ssmsend", str(tmp_path / "log")))
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    res = subprocess.run(["/bin/sh", "-c", script], env=env, timeout=60)
    return res.returncode, calls.read_text().splitlines() if calls.exists() else []


def test_stopping_vacd_runs_apel_sync_and_ssmsend_if_installed(tmp_path):
    """SPEC §9.4: stopping vacd queues the sync records and sends them when ssmsend is
    installed; a failing vac or ssmsend never fails the stop."""
    rc, calls = stop_post_script(tmp_path / "a", ssmsend_installed=True, vac_exit=1)
    assert rc == 0
    assert calls == ["vac apel-sync", "ssmsend -c /etc/apel/vac-ssmsend-prod.cfg"]
    rc, calls = stop_post_script(tmp_path / "b", ssmsend_installed=False, vac_exit=0)
    assert rc == 0 and calls == ["vac apel-sync"]


def test_a_missing_packaging_tool_skips_here_but_fails_under_make_test(monkeypatch):
    from tests.packaging import require_tool
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("VAC_REQUIRE_TESTENV", raising=False)
    with pytest.raises(pytest.skip.Exception, match="rpmbuild missing"):
        require_tool("rpmbuild")
    monkeypatch.setenv("VAC_REQUIRE_TESTENV", "1")
    with pytest.raises(pytest.fail.Exception, match="make test"):
        require_tool("rpmbuild")
