"""vac selftest with doubles: the order of the checks, and each FAIL with its fix
(the real run on the test environment is tests/integration/test_selftest_real.py)."""

from __future__ import annotations

import contextlib
import os

from vac.errors import HypervisorError
from vac.services import selftest
from vac.services.hostops import default_host
from vac.sim.fakehypervisor import FakeHypervisor
from tests.adapters.recording import RecordingRunner

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
ORDER = ["configuration", "libvirt", "virtualisation", "volume group", "NAT network",
         "host name", "iptables", "metadata address", "test machine"]
CONF = """[settings]
vac_space = st.example.com
factory_hostname = st1.example.com
domain_type = {domain_type}
volume_group = vg1
"""


def _root(paths, domain_type="qemu", extra=""):
    os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
    with open(paths.etc_vac_conf, "w") as f:
        f.write(CONF.format(domain_type=domain_type) + extra)


def _host(paths, **answers):
    with open(os.path.join(DATA, "iptables-save-libvirt.txt")) as f:
        saved = f.read()
    runner = RecordingRunner({"vgs": "  21474836480 4194304\n", "lvs": "  a 1000000000\n",
                              "ip": " inet 169.254.169.254/16 scope global virbr1\n",
                              "iptables-save": saved, **answers})
    return default_host(paths, run=runner)


class Clock:
    def __init__(self, hv=None, stop=None):
        self.now, self.hv, self.stop = 0.0, hv, stop

    def sleep(self, seconds):
        self.now += seconds
        if self.stop:
            for info in self.hv.list_domains():
                self.hv.power_off(info.name)


def _run(paths, hv=None, image=None, host=None, usable=("qemu", "no KVM here"), clock=None,
         connect=None):
    hv = hv or FakeHypervisor()
    hv.domain_types = {"qemu", "kvm"}
    clock = clock or Clock()
    seams = selftest.Seams(host=host or _host(paths),
                           connect=connect or (lambda uri: contextlib.nullcontext(hv)),
                           choose_domain_type=lambda: usable, sleep=clock.sleep,
                           monotonic=lambda: clock.now)
    return {c.name: c for c in selftest.run_selftest(paths, image, seams)}, hv


def test_all_pass_in_order_and_the_test_machine_is_gone(paths):
    _root(paths)
    checks, hv = _run(paths)
    assert list(checks) == ORDER
    assert all(c.ok for c in checks.values()), [c.line() for c in checks.values()]
    assert "domain_type = qemu will be used" in checks["virtualisation"].detail
    assert "vg1: 20.5 GB of 21.5 GB free" == checks["volume group"].detail
    assert "created now" in checks["NAT network"].detail
    assert hv.list_domains() == [] and "was destroyed" in checks["test machine"].detail


def test_kvm_configured_where_kvm_cannot_run_fails_with_the_fix(paths):
    _root(paths, domain_type="kvm")
    checks, _ = _run(paths, usable=("qemu", "qemu (TCG): /dev/kvm does not exist"))
    line = checks["virtualisation"].line()
    assert line.startswith("FAIL  virtualisation: domain_type = kvm but KVM cannot run "
                           "guests here: qemu (TCG): /dev/kvm does not exist -- fix: set "
                           "domain_type = qemu in [settings]")


def test_libvirt_down_still_checks_the_host_and_fails_the_rest(paths):
    _root(paths)

    def down(uri):
        raise HypervisorError(f"Failed to open libvirt connection to {uri}: no socket")
    checks, _ = _run(paths, connect=down)
    assert list(checks) == ["configuration", "libvirt", "host name", "iptables",
                            "metadata address", "test machine"]
    assert "systemctl enable --now libvirtd" in checks["libvirt"].fix
    assert not checks["test machine"].ok and checks["host name"].ok


def test_problems_of_host_parts_each_name_their_fix(paths):
    _root(paths, extra="factory_hostname = st1\n")
    host = _host(paths, vgs="", **{"iptables-save": "*filter\nCOMMIT\n"})
    checks, _ = _run(paths, host=host)
    assert not checks["configuration"].ok and "fully qualified" in checks["configuration"].detail
    assert "vgcreate" in checks["volume group"].fix
    assert checks["host name"].fix.startswith("hostnamectl set-hostname")
    assert "7 NAT rule(s) for virbr1 missing" in checks["iptables"].detail


def test_a_test_machine_that_stops_at_once_fails(paths, tmp_path):
    _root(paths)
    image = tmp_path / "t.iso"
    image.write_bytes(b"x")
    hv = FakeHypervisor()
    checks, _ = _run(paths, hv=hv, image=str(image), clock=Clock(hv, stop=True))
    assert checks["test machine"].line().startswith(
        f"FAIL  test machine: vac-selftest-{os.getpid()} (booting {image}): it stopped by "
        "itself -- fix: see ")
    checks, _ = _run(paths, image=str(tmp_path / "missing.iso"))
    assert checks["test machine"].detail.endswith("missing.iso does not exist")
