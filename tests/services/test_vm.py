"""VM services on FakeHypervisor with recorded commands (checklist rows 36-41, 45-48, 52)."""

from __future__ import annotations

import logging
import os
import uuid as uuidlib
import xml.etree.ElementTree as ET

import pytest

from tests.adapters.pki import make_pki, signed_image
from tests.adapters.recording import RecordingRunner
from vac.adapters.images import ImageCache
from vac.adapters.lvm import Lvm
from vac.adapters.netlink import NetLink
from vac.constants import NAT_NETWORK_NAME
from vac.core import netxml
from vac.core.configtypes import Config, Machinetype, Settings
from vac.errors import HypervisorError, ImageError, StorageError
from vac.services import vm
from vac.services.hostops import HostOps
from vac.sim.fakehypervisor import FakeHypervisor, FakeNetworkInfo

FACTORY = "f1.example.com"
NAME = "f1-03.example.com"
IPT = os.path.join(os.path.dirname(__file__), "..", "data", "iptables-save-libvirt.txt")


def cfg(**settings) -> Config:
    values = dict(vac_space="space.example.com", factory_hostname=FACTORY, total_processors=8,
                  domain_type="qemu")
    values.update(settings)
    return Config(settings=Settings(**values))


class FakeVolumes:
    """LVs that exist according to the recorded lvcreate/lvremove commands."""

    def __init__(self):
        self.names = set()

    def lvcreate(self, argv):
        self.names.add(argv[argv.index("--name") + 1])
        return ""

    def lvremove(self, argv):
        self.names.discard(argv[-1].split("/", 1)[1])
        return ""

    def lvs(self, _argv):
        return "".join(f"  {n} 4194304\n" for n in sorted(self.names))


def answers(vg=True, volumes=None, **extra):
    with open(IPT, encoding="utf-8") as f:
        ipt = f.read()
    volumes = volumes or FakeVolumes()
    base = {"vgs": "  21474836480 4194304\n" if vg else "", "lvs": volumes.lvs,
            "lvcreate": volumes.lvcreate, "lvremove": volumes.lvremove,
            "iptables-save": ipt, "ip": "", "qemu-img": '{"format": "qcow2"}'}
    base.update(extra)
    return base


@pytest.fixture
def env(paths, tmp_path, monkeypatch):
    # fix_networking must not kill the real vac network's dnsmasq (real guests need DHCP)
    monkeypatch.setattr("vac.adapters.netlink.stale_dnsmasq_pids", lambda: [])
    for d in paths.state_subdirs():
        os.makedirs(d, exist_ok=True)
    os.makedirs(os.path.dirname(paths.etc_hosts), exist_ok=True)
    image = paths.under_root("/srv/images/cernvm.iso")     # absolute root_image, below root
    os.makedirs(os.path.dirname(image))
    with open(image, "wb") as f:
        f.write(b"iso")

    def make(runner: RecordingRunner) -> HostOps:
        (tmp_path / "mounts").write_text("")
        return HostOps(lvm=Lvm(run=runner, dev_dir=str(tmp_path / "dev"),
                               mounts_file=str(tmp_path / "mounts"), is_block=lambda _p: True),
                       net=NetLink(run=runner), run=runner, sleep=lambda _s: None,
                       images=ImageCache(paths.imagecache, paths.tmp, user_agent="Vac test"),
                       emulators=(str(tmp_path / "no-qemu-kvm"),))
    return dict(paths=paths, image=image, make=make, tmp=tmp_path)


def request(env, model="cernvm3", **mt) -> vm.VmRequest:
    machinetype = Machinetype(name="lhcb", machine_model=model,
                              root_image="/srv/images/cernvm.iso", **mt)
    machine_dir = env["paths"].machine_dir(1_700_000_000, "lhcb", NAME)
    return vm.VmRequest(machine_name=NAME, ordinal=3, machinetype=machinetype, processors=2,
                        uuid=str(uuidlib.uuid4()), machine_dir=machine_dir)


# --- network ---------------------------------------------------------------------------

def test_ensure_network_defines_starts_autostarts_and_writes_hosts(env, caplog):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    caplog.set_level(logging.INFO)
    assert vm.ensure_network(hv, cfg(forward_dev="eth0"), env["paths"], host=env["make"](runner))
    net = hv.network(NAT_NETWORK_NAME)
    assert (net.persistent, net.active, net.autostart) == (True, True, True)
    root = ET.fromstring(net.xml)
    assert root.find("forward").get("dev") == "eth0"
    assert len(root.findall("ip/dhcp/host")) == 100
    assert ["ip", "addr", "add", "169.254.169.254/16", "dev", "virbr1"] in runner.calls
    hosts = open(env["paths"].etc_hosts).read()
    assert hosts.count("# added by Vac") == 100
    assert "iptables NAT check passed for virbr1" in caplog.text
    assert vm.ensure_network(hv, cfg(), env["paths"], host=env["make"](runner))
    assert open(env["paths"].etc_hosts).read() == hosts


def test_wrong_address_network_is_replaced(env, caplog):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    hv.define_network(netxml.network_xml(FACTORY, 3).replace("169.254.169.253", "10.0.0.1"))
    hv.start_network(NAT_NETWORK_NAME)
    assert vm.ensure_network(hv, cfg(), env["paths"], host=env["make"](runner))
    assert netxml.has_factory_address(hv.network(NAT_NETWORK_NAME).xml)
    assert "defined with wrong IP address - removing!" in caplog.text
    assert ["ip", "link", "delete", "virbr1"] in runner.calls


def test_start_failure_runs_fix_networking_unless_disabled(env, caplog):
    for fix in (True, False):
        hv, runner = FakeHypervisor(), RecordingRunner(answers())
        hv.fail["start_network"] = HypervisorError("cannot start network: virbr1 exists")
        assert not vm.ensure_network(hv, cfg(fix_networking=fix), env["paths"],
                                     host=env["make"](runner))
        assert (["ip", "link", "set", "virbr1", "down"] in runner.calls) is fix
    assert "Did you disable Zeroconf?" in caplog.text


def test_more_slots_add_dhcp_hosts_to_existing_network(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    vm.ensure_network(hv, cfg(), env["paths"], host=env["make"](runner))
    vm.ensure_network(hv, cfg(total_processors=130), env["paths"], host=env["make"](runner))
    xml = hv.network(NAT_NETWORK_NAME).xml
    assert netxml.missing_dhcp_hosts(xml, FACTORY, 130) == []


def test_transient_network_made_persistent(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    hv.networks[NAT_NETWORK_NAME] = FakeNetworkInfo(
        NAT_NETWORK_NAME, netxml.network_xml(FACTORY, 1), active=True, persistent=False,
        autostart=False)
    assert vm.ensure_network(hv, cfg(), env["paths"], host=env["make"](runner))
    net = hv.network(NAT_NETWORK_NAME)
    assert (net.persistent, net.active, net.autostart) == (True, True, True)


def test_iptables_warnings_do_not_veto(env, caplog):
    hv = FakeHypervisor()
    runner = RecordingRunner(answers(**{"iptables-save": "*nat\nCOMMIT\n"}))
    assert vm.ensure_network(hv, cfg(), env["paths"], host=env["make"](runner))
    assert caplog.text.count("Failed to match") == 7
    assert "iptables NAT check failed for virbr1" in caplog.text
    runner = RecordingRunner(answers(**{"iptables-save": ""}))
    vm.ensure_network(hv, cfg(check_iptables=False, manage_iptables=False), env["paths"],
                      host=env["make"](runner))
    assert "iptables-save" not in runner.commands()


# --- create ----------------------------------------------------------------------------

def test_cernvm3_on_lv(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    req = request(env, disk_gb_per_processor=5)
    vm.create_vm(hv, cfg(), env["paths"], req, host=env["make"](runner))
    assert hv.domain(NAME).uuid == req.uuid
    assert ["lvcreate", "--yes", "--name", NAME, "-L", f"{(10 * 10 ** 9 // 4194304) * 4194304}B",
            "vac_volume_group"] in runner.calls
    root = ET.fromstring(hv.domain_xml(NAME))
    assert root.find("devices/disk/source").get("dev") == \
        os.path.join(str(env["tmp"]), "dev", "vac_volume_group", NAME)
    assert root.find("cpu") is None


def test_missing_clean_traffic_filter_warns_and_omits_it(env, caplog):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    hv.nwfilters = set()
    vm.create_vm(hv, cfg(), env["paths"], request(env), host=env["make"](runner))
    assert ET.fromstring(hv.domain_xml(NAME)).find("devices/interface/filterref") is None
    assert "no nwfilter clean-traffic" in caplog.text
    hv2 = FakeHypervisor()
    vm.create_vm(hv2, cfg(), env["paths"], request(env), host=env["make"](runner))
    assert ET.fromstring(hv2.domain_xml(NAME)).find(
        "devices/interface/filterref").get("filter") == "clean-traffic"


def test_cernvm4_without_vg_uses_sparse_file_unlinked_after_start(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers(vg=False))
    vm.create_vm(hv, cfg(), env["paths"], request(env, "cernvm4"), host=env["make"](runner))
    source = ET.fromstring(hv.domain_xml(NAME)).find("devices/disk/source").get("file")
    assert os.path.basename(source).startswith("root.disk.")
    assert not os.path.exists(source)
    assert "lvcreate" not in runner.commands()


def test_vm_raw_overlay_with_backing_format_and_scratch(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    vm.create_vm(hv, cfg(), env["paths"], request(env, "vm-raw", scratch_device="vdc"),
                 host=env["make"](runner))
    create = [c for c in runner.calls if c[:2] == ["qemu-img", "create"]][0]
    assert create[:8] == ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"]
    assert create[8] == env["image"]
    targets = [t.get("dev") for t in ET.fromstring(hv.domain_xml(NAME)).iter("target")
               if t.get("dev")]
    assert targets[:2] == ["vda", "vdc"]
    assert os.listdir(env["paths"].tmp) == []


@pytest.mark.parametrize("mt_path, system_dir", [
    ("/srv/mtpath", "/srv/mtpath"),          # a system path (e.g. from a vacuum pipe)
    (None, "/var/lib/vac/machinetypes/lhcb")])
def test_relative_root_image_is_found_below_root(env, mt_path, system_dir):
    files = os.path.join(env["paths"].under_root(system_dir), "files")
    os.makedirs(files)
    with open(os.path.join(files, "local.iso"), "wb") as f:
        f.write(b"iso")
    hv, runner = FakeHypervisor(), RecordingRunner(answers(vg=False))
    req = request(env)
    req = vm.VmRequest(**{**req.__dict__, "machinetype": Machinetype(
        name="lhcb", root_image="local.iso", machinetype_path=mt_path)})
    vm.create_vm(hv, cfg(), env["paths"], req, host=env["make"](runner))
    assert os.path.join(files, "local.iso") in hv.domain_xml(NAME)


def assert_nothing_left(hv, env, runner):
    assert hv.domain(NAME) is None
    assert runner.answers["lvs"]([]) == ""          # no logical volume left
    assert os.listdir(env["paths"].tmp) == []


def test_domain_failure_removes_lv(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    hv.fail["create_domain"] = HypervisorError("cannot create domain: boom")
    with pytest.raises(HypervisorError, match=r"^Exception \(cannot create domain: boom\) when"):
        vm.create_vm(hv, cfg(), env["paths"], request(env), host=env["make"](runner))
    assert runner.commands().count("lvcreate") == 1
    assert_nothing_left(hv, env, runner)


def test_domain_failure_removes_overlay_and_scratch_lv(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    hv.fail["create_domain"] = HypervisorError("cannot create domain: boom")
    with pytest.raises(HypervisorError):
        vm.create_vm(hv, cfg(), env["paths"], request(env, "vm-raw"), host=env["make"](runner))
    assert_nothing_left(hv, env, runner)


def test_kvm_without_emulator_fails_cleanly(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    with pytest.raises(HypervisorError, match="no qemu-kvm emulator found"):
        vm.create_vm(hv, cfg(domain_type="kvm"), env["paths"], request(env),
                     host=env["make"](runner))
    assert_nothing_left(hv, env, runner)


def test_lv_creation_failure(env):
    from vac.errors import CommandError
    runner = RecordingRunner(answers(lvcreate=CommandError(["lvcreate"], 5, "Insufficient")))
    hv = FakeHypervisor()
    with pytest.raises(StorageError, match="^cannot create logical volume"):
        vm.create_vm(hv, cfg(), env["paths"], request(env), host=env["make"](runner))
    assert hv.calls.count("create_domain") == 0
    assert_nothing_left(hv, env, runner)


def test_missing_volume_group(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers(vg=False))
    with pytest.raises(StorageError, match="^volume_group site_vg does not exist"):
        vm.create_vm(hv, cfg(volume_group="site_vg"), env["paths"], request(env),
                     host=env["make"](runner))
    assert runner.commands() == ["vgs"]
    assert_nothing_left(hv, env, runner)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.mark.parametrize("case,pattern,message", [
    ("good", r"/CN=cvm-sign01\.cern\.ch$", None),
    ("tampered", r"/CN=cvm-sign01\.cern\.ch$", "^Failed to verify signature for"),
    ("good", r"/CN=other\.cern\.ch$", "^Signing DN /DC=ch/DC=cern/OU=computers/CN=cvm-sign01"),
])
def test_image_signing_dn_enforced(env, pki, case, pattern, message):
    os.makedirs(os.path.dirname(env["paths"].grid_security_certificates), exist_ok=True)
    os.symlink(pki.ca_dir, env["paths"].grid_security_certificates)
    signed_image(env["image"], pki.signer_key, pki.signer_cert, tamper=case == "tampered")
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    req = request(env, image_signing_dn=pattern)
    if message is None:
        vm.create_vm(hv, cfg(), env["paths"], req, host=env["make"](runner))
        assert hv.domain(NAME) is not None
        return
    with pytest.raises(ImageError, match=message) as info:
        vm.create_vm(hv, cfg(), env["paths"], req, host=env["make"](runner))
    assert "lvcreate" not in runner.commands() and "\n" not in str(info.value)
    assert_nothing_left(hv, env, runner)


def test_unreachable_image_url_fails_cleanly(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    req = vm.VmRequest(**{**request(env).__dict__, "machinetype": Machinetype(
        name="lhcb", root_image="https://127.0.0.1:9/cernvm.iso")})
    with pytest.raises(ImageError, match=r"^Failed to fetch https://127.0.0.1:9/cernvm.iso \(") \
            as info:
        vm.create_vm(hv, cfg(), env["paths"], req, host=env["make"](runner))
    assert "\n" not in str(info.value) and "lvcreate" not in runner.commands()
    assert_nothing_left(hv, env, runner)


def test_not_a_vm_model(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    with pytest.raises(Exception, match="is not a VM model"):
        vm.create_vm(hv, cfg(), env["paths"], request(env, "docker"), host=env["make"](runner))


# --- destroy ---------------------------------------------------------------------------

def test_destroy_running_vm_removes_lv(env, caplog):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    host = env["make"](runner)
    vm.create_vm(hv, cfg(), env["paths"], request(env), host=host)
    lv = env["tmp"] / "dev" / "vac_volume_group" / NAME
    lv.parent.mkdir(parents=True)
    lv.write_text("")
    vm.destroy_vm(hv, cfg(), env["paths"], NAME, grace_seconds=30, host=host)
    assert hv.domain(NAME) is None
    assert runner.calls[-1] == ["lvremove", "-f", f"vac_volume_group/{NAME}"]
    assert hv.calls.index("shutdown_domain") < hv.calls.index("destroy_domain")


def test_destroy_waits_for_acpi_then_hard_destroys(env):
    hv, runner = FakeHypervisor(), RecordingRunner(answers(vg=False))
    host = env["make"](runner)
    hv.create_domain(f"<domain><name>{NAME}</name></domain>")
    hv.shutdown_domain = lambda name: True          # a guest that ignores ACPI
    clock = iter(range(0, 1000, 10))
    host.monotonic = lambda: next(clock)
    vm.destroy_vm(hv, cfg(), env["paths"], NAME, grace_seconds=30, host=host)
    assert hv.domain(NAME) is None


def test_destroy_of_a_guest_already_powering_off_sends_no_acpi(env):
    """A guest that is shutting down by itself (e.g. preempted) gets no power-button press
    (its ACPI handler would race vac's shutdown message); it is destroyed all the same."""
    from dataclasses import replace
    from vac.model import DomainState
    hv, runner = FakeHypervisor(), RecordingRunner(answers(vg=False))
    hv.create_domain(f"<domain><name>{NAME}</name></domain>")
    dom = hv.domains[NAME]
    dom.info = replace(dom.info, state=DomainState.SHUTDOWN)
    vm.destroy_vm(hv, cfg(), env["paths"], NAME, grace_seconds=0, wait=False,
                  host=env["make"](runner))
    assert "shutdown_domain" not in hv.calls and "destroy_domain" in hv.calls


def test_destroy_absent_vm_is_fine(env, caplog):
    hv, runner = FakeHypervisor(), RecordingRunner(answers())
    caplog.set_level(logging.INFO)
    vm.destroy_vm(hv, cfg(), env["paths"], NAME, grace_seconds=30, host=env["make"](runner))
    assert f"VM {NAME} has already gone" in caplog.text


def test_leftover_disks_of_a_killed_create_are_removed(env):
    tmp = env["paths"].tmp
    os.makedirs(tmp, exist_ok=True)
    now = 1_700_000_000
    for name, age in (("root.disk.old", 3600), ("root.disk.new", 10), ("image.part", 3600)):
        with open(os.path.join(tmp, name), "w"):
            pass
        os.utime(os.path.join(tmp, name), (now - age, now - age))
    assert vm.remove_leftover_disks(env["paths"], now) == 1
    assert sorted(os.listdir(tmp)) == ["image.part", "root.disk.new"]   # others not ours
    assert vm.remove_leftover_disks(env["paths"].__class__(root=str(env["tmp"] / "x")), now) == 0
