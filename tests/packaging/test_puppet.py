"""The Puppet module, applied for real: `puppet apply` of class vac (every option on)
writes the host's real paths inside a private mount namespace whose /etc, /root,
/usr/sbin and /var/lib are overlays (puppet_scratch_root.sh), so every file it writes
lands in a scratch root that the tests read back: file modes, the layered and rendered
/etc/vac.d, the generated root key, squid.conf. Only the package and service resources
are not carried out (noop resource defaults in the test manifest): nothing may install
packages or start daemons on the CI host. What the vac package would have installed
first (/var/lib/vac, /etc/squid/squid.conf.vac, /usr/sbin/vac) is put in the scratch
root beforehand; /usr/sbin/vac runs this checkout. Also: parser/epp validation and
puppet-lint."""

from __future__ import annotations

import glob
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

from tests.packaging import require_tool
from vac.adapters import credentials
from vac.paths import Paths
from vac.services.configload import load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, "puppet")
SCRATCH_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "puppet_scratch_root.sh")
FQDN = "factory1.example.com"
FACTORIES = {"factory1.example.com": "192.0.2.1", "factory2.example.com": "192.0.2.2"}

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _puppet_installed():
    require_tool("puppet")


def puppet_dirs(tmp):
    """Options that keep puppet's config, state and code below ``tmp`` (offline)."""
    for d in ("conf", "var", "code", "modules"):
        os.makedirs(tmp / d, exist_ok=True)
    if not os.path.exists(tmp / "modules" / "vac"):
        os.symlink(MODULE, tmp / "modules" / "vac")
    return ["--confdir", str(tmp / "conf"), "--vardir", str(tmp / "var"),
            "--codedir", str(tmp / "code"), "--modulepath", str(tmp / "modules"),
            "--color=false"]


def puppet(tmp, *args, timeout=300):
    return subprocess.run(["puppet", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp)


def errors(res):
    """Error lines, ignoring facter's complaints about what a container hides from it."""
    return [line for line in (res.stdout + res.stderr).splitlines()
            if "Error" in line and "Facter:" not in line]


def test_parser_and_epp_validate(tmp_path):
    manifests = sorted(glob.glob(os.path.join(MODULE, "manifests", "*.pp")))
    assert {"init.pp", "host.pp", "monitoring.pp", "apel.pp", "squid.pp"} <= \
        {os.path.basename(m) for m in manifests}
    res = puppet(tmp_path, "parser", "validate", *manifests)
    assert res.returncode == 0, res.stdout + res.stderr
    templates = sorted(glob.glob(os.path.join(MODULE, "templates", "**", "*.epp"),
                                 recursive=True))
    assert templates
    res = puppet(tmp_path, "epp", "validate", *templates)
    assert res.returncode == 0, res.stdout + res.stderr


def test_puppet_lint_is_clean():
    require_tool("puppet-lint")
    res = subprocess.run(["puppet-lint", "--relative", "--fail-on-warnings", "puppet"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout + res.stderr == "", res.stdout + res.stderr


# --- puppet apply onto a scratch root --------------------------------------------------

MANIFEST = """
# test only: packages are not installed and services not started on the CI host
Package { noop => true }
Service { noop => true }
class { 'vac':
  space              => 'vac01.example.com',
  factories          => ['factory1.example.com', 'factory2.example.com'],
  subspace           => 'rack1',              # the original's (deprecated) parameter
  etc_path           => 'modules/site/vac.d',
  machinetypes_path  => 'modules/site/machinetypes',
  volume_group       => 'vac_volume_group',
  total_processors   => 2,            # the CI host has 2
  shares             => {'lhcb' => 3, 'atlas' => 1},
  nagios_nrpe        => true,
  apel_bdii_hostport => 'bdii.example.com:2170',
  apel_cert_path     => 'puppet:///modules/site/apel/hostcert.pem',
  apel_key_path      => 'puppet:///modules/site/apel/hostkey.pem',
  local_squid        => true,
  metrics_address    => '127.0.0.1:8995',
}
"""

MACHINETYPE = """[machinetype {name}]
machine_model = cernvm3
root_image = https://repo.example.com/cernvm.iso
user_data = user_data
user_data_proxy = true
"""


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def _site_module(files, cert, key):
    """puppet:///modules/site/...: vac.d and machinetypes layers, the APEL credentials."""
    _write(f"{files}/vac.d/site/10-site.conf", "[settings]\nmb_per_processor = 2048\n")
    _write(f"{files}/vac.d/site/20-space.conf", "# site layer: loses\n")
    _write(f"{files}/vac.d/vac01.example.com/20-space.conf",
           "# space layer: loses to the host's\n")
    _write(f"{files}/vac.d/{FQDN}/20-space.conf", "# host layer: wins\n[settings]\n"
           "hs06_per_processor = 10.5\n")
    _write(f"{files}/vac.d/vac01.example.com:rack1/30-rack.conf",
           MACHINETYPE.format(name="lhcb") + "\n" + MACHINETYPE.format(name="atlas"))
    for name, layer in (("lhcb", "site"), ("atlas", "vac01.example.com")):
        base = f"{files}/machinetypes/{layer}/{name}"
        # a git checkout on the Puppet server: 0644 everywhere
        _write(f"{base}/x509cert.pem", cert)
        _write(f"{base}/x509key.pem", key)
        _write(f"{base}/files/user_data", "#!/bin/sh\necho ##user_data_machine_hostname##\n")
    _write(f"{files}/apel/hostcert.pem", cert)
    _write(f"{files}/apel/hostkey.pem", key)


def _package_payload(upper, python):
    """What `dnf install vac` (and nrpe, apel-ssm) would have put there before Puppet."""
    os.makedirs(upper / "var/lib/vac", exist_ok=True)
    for d in ("etc/nrpe.d", "etc/grid-security", "etc/squid"):
        os.makedirs(upper / d, exist_ok=True)
    shutil.copy(os.path.join(REPO, "etc/squid/squid.conf.vac"), upper / "etc/squid")
    _write(str(upper / "usr/sbin/vac"),
           f"#!/bin/sh\nPYTHONPATH={REPO} exec {python} {REPO}/bin/vac \"$@\"\n", 0o755)
    with open("/etc/hosts", encoding="utf-8") as f:
        hosts = f.read()
    _write(str(upper / "etc/hosts"), hosts + "".join(
        f"{address} {name}\n" for name, address in FACTORIES.items()))


class Scratch:
    """A puppet code/config tree and a scratch root (``upper``) to apply onto."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.upper = tmp / "scratch" / "upper"
        self.site_files = tmp / "modules" / "site" / "files"

    def apply(self):
        """`puppet apply --detailed-exitcodes` of MANIFEST inside the namespace."""
        (self.tmp / "site.pp").write_text(MANIFEST)
        argv = ["unshare", "--mount", "--uts", "--propagation", "private", SCRATCH_ROOT,
                str(self.tmp / "scratch"), FQDN, "puppet", "apply", "--detailed-exitcodes",
                *puppet_dirs(self.tmp), str(self.tmp / "site.pp")]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300)

    def mode(self, path):
        return stat.S_IMODE(os.stat(self.upper / path.lstrip("/")).st_mode)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        message = "puppet apply onto a scratch root needs root and unshare"
        if os.environ.get("VAC_REQUIRE_TESTENV") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("puppet")
    cert_file, key_file, _ = _credentials(str(tmp_path_factory.mktemp("cred")))
    with open(cert_file, encoding="ascii") as c, open(key_file, encoding="ascii") as k:
        cert, key = c.read(), k.read()
    s = Scratch(tmp)
    _site_module(str(s.site_files), cert, key)
    _package_payload(s.upper, sys.executable)
    s.first = s.apply()
    return s


def _mkdir(path):
    os.makedirs(path, exist_ok=True)
    return path


def _credentials(directory):
    from tests.adapters.test_credentials import _write_user_cert
    return _write_user_cert(directory)


def test_first_apply_writes_the_factory_without_errors(scratch):
    res = scratch.first
    out = res.stdout + res.stderr
    assert res.returncode == 2, out                      # changes, no failures
    assert errors(res) == [], out
    assert "subspace and subspace1..subspace9 are deprecated" in out
    assert "apel_bdii_hostport is deprecated and ignored" in out
    assert "Exec[vac-squid-conf]/returns: executed successfully" in out


def test_vac_d_is_layered_rendered_and_valid(scratch):
    vac_d = scratch.upper / "etc/vac.d"
    assert sorted(os.listdir(vac_d)) == ["00-puppet.conf", "10-site.conf", "20-space.conf",
                                         "30-rack.conf", "90-puppet-shares.conf"]
    assert (vac_d / "20-space.conf").read_text().startswith("# host layer: wins")
    for name in os.listdir(vac_d):
        assert scratch.mode(f"/etc/vac.d/{name}") == 0o644, name
    assert (vac_d / "00-puppet.conf").read_text().splitlines()[2:] == [
        "[settings]", "vac_space = vac01.example.com",
        "root_public_key = /root/.ssh/id_ed25519.pub",
        "factories = factory1.example.com factory2.example.com",
        "volume_group = vac_volume_group", "total_processors = 2",
        "metrics_address = 127.0.0.1:8995",
        "# the local Squid (class vac::squid) on 169.254.169.253:3128 is for the machines",
        "host_tcp_ports_for_machines = 3128"]
    # vac reads the rendered directory as a factory would
    _write(str(scratch.upper / "proc/cpuinfo"), "processor\t: 0\n" * 2)
    config = load_config(Paths(str(scratch.upper)), hostname=FQDN, processor_count=2,
                         pipes="none")
    s = config.settings
    assert (s.vac_space, s.volume_group, s.total_processors, s.hs06_per_processor) == \
        ("vac01.example.com", "vac_volume_group", 2, 10.5)
    assert s.metrics_address == "127.0.0.1:8995"
    assert s.host_tcp_ports_for_machines == (3128,)     # the guest firewall lets them reach Squid
    assert config.machinetypes["lhcb"].target_share == 3
    assert config.machinetypes["atlas"].target_share == 1
    assert not config.warnings


def test_private_keys_stay_private_and_vac_accepts_them(scratch):
    for name in ("lhcb", "atlas"):
        base = f"/var/lib/vac/machinetypes/{name}"
        assert scratch.mode(f"{base}/x509key.pem") == 0o600, name
        assert scratch.mode(f"{base}/x509cert.pem") == 0o644, name
        assert scratch.mode(f"{base}/files/user_data") == 0o644, name
        assert scratch.mode(f"{base}/files") == 0o755, name
        # what user_data_proxy = true does: vac refuses keys others can read
        real = str(scratch.upper) + base
        pem = credentials.make_proxy(f"{real}/x509cert.pem", f"{real}/x509key.pem",
                                     expires=1_700_000_000 + 3600, now=1_700_000_000)
        assert "BEGIN CERTIFICATE" in pem
    assert scratch.mode("/etc/grid-security/vac-apel-key.pem") == 0o600
    assert scratch.mode("/etc/grid-security/vac-apel-cert.pem") == 0o644


def test_root_key_is_generated_where_root_public_key_points(scratch):
    assert scratch.mode("/root/.ssh") == 0o700
    assert scratch.mode("/root/.ssh/id_ed25519") == 0o600
    public = (scratch.upper / "root/.ssh/id_ed25519.pub").read_text()
    assert public.startswith("ssh-ed25519 ")
    config = load_config(Paths(str(scratch.upper)), hostname=FQDN, processor_count=2,
                         pipes="none")
    paths = Paths(str(scratch.upper))
    with open(paths.under_root(config.settings.root_public_key), encoding="ascii") as f:
        assert f.read() == public                       # what the machines will get


def test_host_settings_nrpe_and_squid(scratch):
    assert (scratch.tmp / "scratch/overcommit_memory").read_text().strip() == "1"
    assert "vm.overcommit_memory = 1" in \
        (scratch.upper / "etc/sysctl.d/90-vac.conf").read_text()
    assert (scratch.upper / "etc/nrpe.d/nagios-plugins-check-vacd.cfg").read_text() \
        .endswith("command[check-vacd]=/usr/sbin/check-vacd 600\n")
    squid = (scratch.upper / "etc/squid/squid.conf").read_text()
    with open(os.path.join(REPO, "etc/squid/squid.conf.vac"), encoding="utf-8") as f:
        assert squid.startswith(f.read())
    assert squid.endswith("acl localnet src 192.0.2.1/32\nacl localnet src 192.0.2.2/32\n"
                          "cache_peer 192.0.2.2 sibling 3128 3130 default\n")


def test_second_apply_changes_nothing_and_restarts_no_squid(scratch):
    res = scratch.apply()
    out = res.stdout + res.stderr
    assert res.returncode == 0, out                      # --detailed-exitcodes: no change
    changes = [line for line in out.splitlines() if "/Stage[main]/" in line]
    # only the package and service resources the test keeps in noop "would" change
    assert all(re.search(r"/(Package|Service)\[[\w-]+\]/ensure: .*\(noop\)$", line)
               for line in changes), changes
    assert "Exec[vac-squid-conf]" not in out
    assert not re.search(r"Service\[squid\].*refresh", out), out


def test_a_site_chmod_stays_and_a_new_key_comes_private(scratch):
    user_data = scratch.upper / "var/lib/vac/machinetypes/lhcb/files/user_data"
    os.chmod(user_data, 0o600)                           # the site's own choice
    cert_file, key_file, _ = _credentials(str(_mkdir(scratch.tmp / "newcred")))
    with open(key_file, encoding="ascii") as f:
        new_key = f.read()
    _write(str(scratch.site_files / "machinetypes/site/lhcb/x509key.pem"), new_key)
    res = scratch.apply()
    assert res.returncode == 2 and errors(res) == [], res.stdout + res.stderr
    key = "/var/lib/vac/machinetypes/lhcb/x509key.pem"
    assert (scratch.upper / key.lstrip("/")).read_text() == new_key
    assert scratch.mode(key) == 0o600
    assert scratch.mode("/var/lib/vac/machinetypes/lhcb/files/user_data") == 0o600
