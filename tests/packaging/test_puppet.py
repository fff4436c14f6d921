"""The Puppet module: parser/epp validation, an offline `puppet apply --noop` of class vac
with every option switched on, and the rendered /etc/vac.d files pass vac's config check."""

from __future__ import annotations

import glob
import os
import subprocess

import pytest

from tests.packaging import require_tool
from vac.paths import Paths
from vac.services.configload import load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, "puppet")

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _puppet_installed():
    require_tool("puppet")


def puppet(tmp, *args, timeout=300):
    """Run puppet with its config, state and code below ``tmp`` (offline, no server)."""
    for d in ("conf", "var", "code", "modules"):
        os.makedirs(tmp / d, exist_ok=True)
    if not os.path.exists(tmp / "modules" / "vac"):
        os.symlink(MODULE, tmp / "modules" / "vac")
    argv = ["puppet", *args]
    if args[0] == "apply":
        argv += ["--confdir", str(tmp / "conf"), "--vardir", str(tmp / "var"),
                 "--codedir", str(tmp / "code"), "--modulepath", str(tmp / "modules"),
                 "--color=false"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=tmp)


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


CLASS = """class { 'vac':
  space            => 'vac01.example.com',
  factories        => ['factory1.example.com', 'factory2.example.com'],
  subspaces        => ['rack1'],
  volume_group     => 'vac_volume_group',
  total_processors => 8,
  shares           => {'lhcb' => 3, 'atlas' => 1},
  nagios_nrpe      => true,
  apel_cert_path   => '%(tmp)s/cert.pem',
  apel_key_path    => '%(tmp)s/key.pem',
  local_squid      => true,
}
"""


def test_apply_noop_accepts_the_module(tmp_path):
    (tmp_path / "cert.pem").write_text("cert\n")
    (tmp_path / "key.pem").write_text("key\n")
    res = puppet(tmp_path, "apply", "--noop", "--detailed-exitcodes", "-e",
                 CLASS % {"tmp": tmp_path})
    out = res.stdout + res.stderr
    assert res.returncode in (0, 2), out
    assert errors(res) == [], out
    for resource in ("Package[vac]", "Vac::Layered_dir[/etc/vac.d]",
                     "File[/etc/vac.d/00-puppet.conf]",
                     "File[/etc/vac.d/90-puppet-shares.conf]", "Service[vacd]",
                     "File[/var/lib/vac/machinetypes]",
                     "File[/etc/nrpe.d/nagios-plugins-check-vacd.cfg]",
                     "File[/etc/grid-security/vac-apel-key.pem]",
                     "Exec[vac-squid-conf]", "Service[ksm]"):
        assert resource in out, resource
    assert "(noop)" in out
    assert not os.path.exists("/etc/vac.d/00-puppet.conf") or "Managed by Puppet" in \
        open("/etc/vac.d/00-puppet.conf", encoding="utf-8").read()


RENDER = """
file { '%(out)s/00-puppet.conf':
  content => epp('vac/vac.d/00-puppet.conf.epp', {
    'space'     => 'vac01.example.com',
    'factories' => ['factory1.example.com', 'f2.example.com'],
    'volume_group' => 'vac_volume_group', 'total_processors' => 8 }),
}
file { '%(out)s/90-puppet-shares.conf':
  content => epp('vac/vac.d/90-puppet-shares.conf.epp', { 'shares' => {'example' => 2} }),
}
file { '%(out)s/nrpe.cfg':
  content => epp('vac/nrpe-check-vacd.cfg.epp', { 'seconds' => 900 }),
}
"""

MACHINETYPE = """[machinetype example]
machine_model = cernvm3
root_image = https://repo.example.com/cernvm.iso
user_data = https://repo.example.com/user_data
"""


def test_rendered_vac_d_is_a_valid_configuration(tmp_path):
    root = tmp_path / "root"
    out = root / "etc" / "vac.d"
    out.mkdir(parents=True)
    res = puppet(tmp_path, "apply", "-e", RENDER % {"out": out})
    assert res.returncode == 0 and errors(res) == [], res.stdout + res.stderr
    assert (out / "nrpe.cfg").read_text().endswith(
        "command[check-vacd]=/usr/sbin/check-vacd 900\n")
    (out / "50-site.conf").write_text(MACHINETYPE)
    config = load_config(Paths(str(root)), hostname="factory1.example.com",
                         processor_count=8, pipes="none")
    assert config.settings.vac_space == "vac01.example.com"
    assert config.settings.volume_group == "vac_volume_group"
    assert config.settings.total_processors == 8
    assert config.machinetypes["example"].target_share == 2
