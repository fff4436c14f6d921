"""The EL9 RPMs (SPEC §11.4): `make rpm-el9` (tools/build-rpm.sh) builds the source RPM,
rebuilds the binary RPMs from it for EL9 on this Debian host (Python 3.9, EL9 macros),
and rpmlint passes them; what they carry is what an EL9 host can install and run."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.packaging import require_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITELIB = "/usr/lib/python3.9/site-packages"


def rpm_query(package: str, *flags: str) -> str:
    return subprocess.run(["rpm", "-qp", *flags, package], check=True, capture_output=True,
                          text=True, timeout=60).stdout


def py39() -> str:
    """The Python 3.9 of tools/py39env.sh (cached; made by make test)."""
    res = subprocess.run(["bash", os.path.join(REPO, "tools", "py39env.sh")],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(vac, vac-command, source RPM, TOPDIR) from one `tools/build-rpm.sh TOPDIR`."""
    require_tool("rpmbuild")
    require_tool("rpmlint")
    top = tmp_path_factory.mktemp("rpm")
    res = subprocess.run([os.path.join(REPO, "tools", "build-rpm.sh"), str(top)], cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    paths = res.stdout.split()
    daemon = next(p for p in paths if os.path.basename(p).startswith("vac-0"))
    command = next(p for p in paths if os.path.basename(p).startswith("vac-command-"))
    srpm = next(p for p in paths if p.endswith(".src.rpm"))
    return daemon, command, srpm, top


def test_source_rpm_is_the_release_artefact(built, tmp_path):
    daemon, command, srpm, _ = built
    assert os.path.basename(daemon) == "vac-04.00.00-1.el9.noarch.rpm"
    assert os.path.basename(command) == "vac-command-04.00.00-1.el9.noarch.rpm"
    assert rpm_query(daemon, "--qf", "%{NAME} %{ARCH} %{LICENSE} %{SOURCERPM}") == \
        f"vac noarch BSD-2-Clause {os.path.basename(srpm)}"
    assert set(rpm_query(srpm, "-l").split()) == {"vac.spec", "vac-04.00.00.tar.gz"}
    buildrequires = rpm_query(srpm, "--requires")
    for name in ("python3-devel", "python3-setuptools", "systemd-rpm-macros"):
        assert name in buildrequires
    # `make srpm` alone makes the same source package
    res = subprocess.run([os.path.join(REPO, "tools", "build-rpm.sh"), "--srpm",
                          str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert [os.path.basename(p) for p in res.stdout.split()] == [os.path.basename(srpm)]


def _minimum_versions():
    """{distribution: version} of tools/el9-requirements.txt."""
    with open(os.path.join(REPO, "tools", "el9-requirements.txt"), encoding="utf-8") as f:
        return dict(re.findall(r"^([A-Za-z0-9_.-]+)==([0-9.]+)", f.read(), re.M))


def test_requires_python_abi_39_and_the_el9_library_versions(built):
    requires = rpm_query(built[1], "--requires").splitlines()
    assert "python(abi) = 3.9" in requires
    assert not any(r.startswith("python(abi)") and r != "python(abi) = 3.9" for r in requires)
    minimum = _minimum_versions()
    # setup.py's minimums, as rpm's dependency generator states them; libvirt-python's
    # is EL 9.0's 8.0.0, below the 9.0.0 the Python 3.9 tests build against
    for dist in ("cryptography", "psutil", "dnspython", "dirq"):
        version = minimum[dist]
        while version.endswith(".0"):          # the generator writes 2.1.0 as 2.1
            version = version[:-2]
        assert f"python3.9dist({dist}) >= {version}" in requires, (dist, requires)
    assert "python3.9dist(libvirt-python) >= 8" in requires
    # optional imports are recommendations, never requirements
    assert not any("setproctitle" in r or "daemon" in r for r in requires)
    assert rpm_query(built[1], "--recommends").splitlines() == ["python3-setproctitle >= 1.2.2"]
    # nothing of the build host leaks in: only EL9 paths
    for package in built[:2]:
        for r in rpm_query(package, "--requires").splitlines():
            assert not r.startswith("/") or r in ("/bin/sh", "/usr/bin/python3"), r


def test_daemon_package_requires_recommends_and_config_files(built):
    daemon = built[0]
    requires = rpm_query(daemon, "--requires").splitlines()
    for name in ("crontabs", "libvirt", "qemu-kvm", "lvm2", "dnsmasq", "logrotate",
                 "vac-command = 04.00.00-1.el9"):
        assert name in requires, name
    assert rpm_query(daemon, "--recommends").splitlines() == [
        "apel-ssm", "python3-daemon >= 2.3.0", "python3-prometheus_client >= 0.16"]
    flags = dict(line.rsplit(" ", 1) for line in rpm_query(
        daemon, "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]").splitlines())
    for conf in ("/etc/logrotate.d/vac", "/etc/apel/vac-ssmsend-prod.cfg",
                 "/etc/squid/squid.conf.vac"):
        assert flags[conf] == "cn", conf                       # %config(noreplace)
    assert flags["/etc/cron.d/vac-ssmsend"] == "cng"            # ... and %ghost


def test_daemon_package_files_and_documentation(built):
    files = set(rpm_query(built[0], "-l").split())
    expected = {
        "/usr/sbin/vacd", "/usr/sbin/check-vacd", "/usr/libexec/vac/vac-ssmsend-cron",
        "/usr/lib/systemd/system/vacd.service", "/etc/logrotate.d/vac",
        "/etc/apel/vac-ssmsend-prod.cfg", "/etc/cron.d/vac-ssmsend",
        "/usr/share/vac/vac-ssmsend.in", "/etc/squid/squid.conf.vac",
        "/usr/share/vac/grafana/vac-dashboard.json", "/usr/share/vac/prometheus/vac-rules.yml",
        "/var/lib/vac/tmp", "/var/lib/vac/imagecache", "/var/lib/vac/machinetypes",
        "/var/lib/vac/pipescache", "/var/lib/vac/apel-archive", "/var/lib/vac/apel-outgoing",
        "/var/lib/vac/slots", "/var/lib/vac/finishes", "/var/lib/vac/machines",
        "/usr/share/man/man8/vacd.8.gz", "/usr/share/man/man8/check-vacd.8.gz",
        "/usr/share/doc/vac/README.md", "/usr/share/doc/vac/APEL.md",
        "/usr/share/doc/vac/examples/example.vac.conf",
        "/usr/share/doc/vac/puppet/manifests/init.pp",
        "/usr/share/doc/vac/puppet/README.md",
    }
    assert expected <= files, expected - files
    docs = set(rpm_query(built[0], "--docfiles").split())
    assert "/usr/share/doc/vac/examples/example.vac.conf" in docs
    assert not any("/site-packages/" in f for f in files)       # owned by vac-command
    assert not any(f.startswith("/etc/vac.d/") or f == "/etc/vac.conf" for f in files)


def test_command_package_files_bytecode_and_compressed_man_pages(built):
    files = set(rpm_query(built[1], "-l").split())
    assert {"/usr/sbin/vac", "/etc/vac.d", "/var/lib/vac/VERSION",
            "/usr/share/man/man1/vac.1.gz", "/usr/share/man/man5/vac.conf.5.gz"} <= files
    for module in ("vacd/daemon", "nagios", "paths", "cli/__init__", "adapters/credentials"):
        package, _, name = f"vac/{module}".rpartition("/")
        assert f"{SITELIB}/{package}/{name}.py" in files, module
        for suffix in (".cpython-39.pyc", ".cpython-39.opt-1.pyc"):
            assert f"{SITELIB}/{package}/__pycache__/{name}{suffix}" in files, module
    assert any(re.fullmatch(SITELIB + r"/vac-[0-9.]+-py3\.9\.egg-info/requires\.txt", f)
               for f in files)
    assert not any("python3.11" in f or "cpython-311" in f for f in files)
    assert not any(re.search(r"/man/man\d/[^/]+\.\d$", f) for f in files)
    with open(os.path.join(built[3], "rpmbuild.log"), encoding="utf-8") as f:
        log = f.read()
    # under dash, Debian's brp-compress failed here ("read: Illegal option -d"), unseen
    assert not [line for line in log.splitlines() if line.startswith("/usr/lib/rpm/brp-")
                or "Illegal option" in line], log


def test_installed_payload_runs_on_python_39(built, tmp_path):
    """Install both packages below a temporary root (no scripts, no dependencies) and run
    the installed entry points with Python 3.9 and EL9's library versions; the byte-code
    the package ships is the one Python 3.9 loads."""
    res = subprocess.run(["rpm", "-i", "--root", str(tmp_path), "--dbpath",
                          str(tmp_path / "rpmdb"), "--nodeps", "--noscripts", "--notriggers",
                          built[0], built[1]], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for command in ("vac", "vacd", "check-vacd"):
        script = tmp_path / "usr/sbin" / command
        assert script.read_text().startswith("#!/usr/bin/python3 -s\n"), command
        assert os.access(script, os.X_OK)
    python = py39()
    sitelib = str(tmp_path) + SITELIB
    env = dict(os.environ, PYTHONPATH=sitelib, PYTHONDONTWRITEBYTECODE="1")
    magic = subprocess.run([python, "-c", "import importlib.util as u; "
                            "print(u.MAGIC_NUMBER.hex())"], capture_output=True, text=True,
                           check=True, timeout=60).stdout.strip()
    with open(f"{sitelib}/vac/vacd/__pycache__/daemon.cpython-39.pyc", "rb") as f:
        assert f.read(4).hex() == magic
    out = subprocess.run([python, str(tmp_path / "usr/sbin/vacd"), "--version"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("vacd "), out.stderr
    check = subprocess.run([python, str(tmp_path / "usr/sbin/check-vacd"),
                            "--root", str(tmp_path)], env=env, capture_output=True,
                           text=True, timeout=60)
    # the freshly installed state directory exists but no vacd has run yet
    assert check.returncode == 2
    assert check.stdout.startswith("VACD CRITICAL - No vacd factory heartbeat file")


def _scriptlet(scripts: str, name: str) -> str:
    return scripts.split(f"{name} scriptlet")[1].split(" scriptlet (using")[0]


def test_scriptlets_are_the_systemd_macros_plus_cron(built):
    scripts = rpm_query(built[0], "--scripts")
    post = _scriptlet(scripts, "postinstall")
    assert "/usr/libexec/vac/vac-ssmsend-cron --template /usr/share/vac/vac-ssmsend.in" in post
    assert "systemd-update-helper install-system-units vacd.service" in post
    preun = _scriptlet(scripts, "preuninstall")
    assert "systemd-update-helper remove-system-units vacd.service" in preun
    erase = preun.split("if [ $1 -eq 0 ]; then")[1]
    assert "rm -f /etc/cron.d/vac-ssmsend" in erase
    postun = _scriptlet(scripts, "postuninstall")
    assert "if [ $1 -ge 1 ]" in postun
    assert "systemd-update-helper mark-restart-system-units vacd.service" in postun


def _justified_warnings():
    """Warning ids that vac.spec's header justifies ("#  - id ...: why")."""
    with open(os.path.join(REPO, "vac.spec"), encoding="utf-8") as f:
        header = f.read().split("%bcond_without check")[0]
    return set(re.findall(r"^#  - ([a-z0-9%-]+)", header.replace("%%", "%"), re.M))


def test_rpmlint_no_errors_and_every_warning_justified_in_the_spec(built):
    with open(os.path.join(built[3], "rpmlint.txt"), encoding="utf-8") as f:
        report = f.read()
    assert re.search(r"checked; 0 errors, \d+ warnings", report), report
    assert "/tools/rpmlint-el9.toml" in report                  # EL9's policy
    warnings = set(re.findall(r"^\S+: W: (\S+)", report, re.M))
    assert warnings <= _justified_warnings(), warnings - _justified_warnings()
    assert {"invalid-url"} <= warnings
