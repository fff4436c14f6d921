"""rpmbuild -ba vac.spec (through tools/build-rpm.sh) builds both packages with the
expected payload and scriptlets (SPEC §11.4, checklist row 117)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.packaging import require_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



def rpm_query(package: str, *flags: str) -> str:
    return subprocess.run(["rpm", "-qp", *flags, package], check=True, capture_output=True,
                          text=True, timeout=60).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    require_tool("rpmbuild")
    top = tmp_path_factory.mktemp("rpm")
    res = subprocess.run([os.path.join(REPO, "tools", "build-rpm.sh"), str(top)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    paths = res.stdout.split()
    daemon = next(p for p in paths if os.path.basename(p).startswith("vac-0"))
    command = next(p for p in paths if os.path.basename(p).startswith("vac-command-"))
    srpm = next(p for p in paths if p.endswith(".src.rpm"))
    return daemon, command, srpm


def test_both_noarch_packages_and_the_source_package_are_built(built):
    daemon, command, srpm = built
    for p in built:
        assert os.path.getsize(p) > 0
    assert rpm_query(daemon, "--qf", "%{NAME} %{ARCH} %{LICENSE}") == "vac noarch BSD-2-Clause"
    assert rpm_query(command, "--qf", "%{NAME} %{ARCH}") == "vac-command noarch"


def test_daemon_package_files(built):
    files = set(rpm_query(built[0], "-l").split())
    expected = {
        "/usr/sbin/vacd", "/usr/sbin/check-vacd", "/usr/sbin/vac-ssmsend-cron",
        "/usr/lib/systemd/system/vacd.service", "/etc/logrotate.d/vacd",
        "/etc/apel/vac-ssmsend-prod.cfg", "/etc/cron.d/vac-ssmsend",
        "/usr/share/vac/vac-ssmsend.in", "/etc/squid/squid.conf.vac",
        "/var/lib/vac/tmp", "/var/lib/vac/imagecache", "/var/lib/vac/machinetypes",
        "/var/lib/vac/pipescache", "/var/lib/vac/apel-archive", "/var/lib/vac/apel-outgoing",
        "/var/lib/vac/slots", "/var/lib/vac/finishes", "/var/lib/vac/machines",
    }
    assert expected <= files, expected - files
    assert any(f.startswith("/usr/share/man/man8/vacd.8") for f in files)
    assert any(f.startswith("/usr/share/man/man8/check-vacd.8") for f in files)
    assert not any("/site-packages/vac/" in f for f in files)       # owned by vac-command
    assert "vac-command = " in rpm_query(built[0], "-R")


def test_command_package_files(built):
    files = set(rpm_query(built[1], "-l").split())
    assert {"/usr/sbin/vac", "/etc/vac.d", "/var/lib/vac/VERSION"} <= files
    # example configurations are documentation, never live configuration
    assert not any(f.startswith("/etc/vac.d/") for f in files)
    if os.path.exists(os.path.join(REPO, "etc", "vac.conf")):
        assert "/usr/share/doc/vac/examples/vac.conf" in files
        assert "/etc/vac.conf" not in files
    assert any(f.startswith("/usr/share/man/man1/vac.1") for f in files)
    if os.path.exists(os.path.join(REPO, "man", "vac.conf.5")):
        assert any(f.startswith("/usr/share/man/man5/vac.conf.5") for f in files)
    sitelib = [f for f in files if "/site-packages/vac/" in f]
    for module in ("daemon.py", "nagios.py", "paths.py", "cli/__init__.py"):
        assert any(f.endswith("/site-packages/vac/" + module) for f in sitelib), module
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert "/usr/sbin/vacd" not in files


def test_installed_payload_runs(built, tmp_path):
    """Install both packages below a temporary root (no scripts, no dependencies) and run
    the installed entry points with the system python3 on that tree."""
    res = subprocess.run(["rpm", "-i", "--root", str(tmp_path), "--dbpath",
                          str(tmp_path / "rpmdb"), "--nodeps", "--noscripts", "--notriggers",
                          built[0], built[1]], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    vacd = tmp_path / "usr/sbin/vacd"
    assert vacd.read_text().startswith("#!/usr/bin/python3 -s\n") and os.access(vacd, os.X_OK)
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no system python3")
    sitelib = next(str(p.parent) for p in tmp_path.glob("usr/lib/python3*/site-packages/vac"))
    env = dict(os.environ, PYTHONPATH=sitelib)
    out = subprocess.run(["/usr/bin/python3", str(vacd), "--version"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("vacd "), out.stderr
    check = subprocess.run(["/usr/bin/python3", str(tmp_path / "usr/sbin/check-vacd"),
                            "--root", str(tmp_path)], env=env, capture_output=True,
                           text=True, timeout=60)
    # the freshly installed state directory exists but no vacd has run yet
    assert check.returncode == 2
    assert check.stdout.startswith("VACD CRITICAL - No vacd factory heartbeat file")


def test_scriptlets_cron_restart_and_erase(built):
    scripts = rpm_query(built[0], "--scripts")
    post = scripts.split("postinstall scriptlet")[1].split("scriptlet")[0]
    assert "vac-ssmsend-cron --template /usr/share/vac/vac-ssmsend.in" in post
    preun = scripts.split("preuninstall scriptlet")[1].split("scriptlet")[0]
    assert "if [ $1 -eq 0 ]" in preun
    assert "disable --now vacd.service" in preun
    assert "rm -f /etc/cron.d/vac-ssmsend" in preun
    postun = scripts.split("postuninstall scriptlet")[1]
    assert "if [ $1 -ge 1 ]" in postun and "try-restart vacd.service" in postun
    assert "ghost" not in scripts
    assert "/etc/cron.d/vac-ssmsend" in rpm_query(built[0], "--configfiles")


def test_cron_helper_writes_a_random_minute_and_keeps_it(tmp_path):
    helper = os.path.join(REPO, "tools", "vac-ssmsend-cron")
    template = os.path.join(REPO, "etc", "cron.d", "vac-ssmsend.in")
    subprocess.run([helper, "--root", str(tmp_path), "--template", template], check=True,
                   timeout=30)
    cron = tmp_path / "etc/cron.d/vac-ssmsend"
    lines = [line for line in cron.read_text().splitlines() if "ssmsend -c" in line]
    minute = int(lines[0].split()[0])
    assert 0 <= minute <= 59
    assert "0 12 * * * root /usr/sbin/vac apel-sync" in cron.read_text()
    subprocess.run([helper, "--root", str(tmp_path), "--template", template], check=True,
                   timeout=30)
    again = [line for line in cron.read_text().splitlines() if "ssmsend -c" in line]
    assert again == lines
