"""Three factories in one space, each in its own network namespace with its own host name
(``unshare --uts``) and --root, joined by one bridge; responders on port 995.

``vac machines`` from any factory lists the slots of all three; with one responder
stopped the others still answer and the command names the silent factory. A fourth
namespace on the bridge, not in ``factories``, gets no reply at all until it takes the
address listed in ``query_allowed_sources``. With real
factory cycles (f1 on the real libvirtd through the ``real_env`` fixture, f2 and f3 on
libvirt's test driver), the planners see each other's machines and the space's
machinetype split converges to the target shares 1:3.
Needs root (namespaces, bridge); creates and removes its own namespaces only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Iterator, Optional

import pytest

from vac.adapters import statefs
from vac.paths import Paths
from tests.services.respondertools import add_machine, write

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOMAIN = "vac.test"
SUBNET = "10.231.0"
FACTORIES = [f"f{i}.{DOMAIN}" for i in (1, 2, 3)]
MONITOR = f"monitor.{DOMAIN}"
STRANGER_ADDRESS, MONITOR_ADDRESS = f"{SUBNET}.9", f"{SUBNET}.10"
CONF = """[settings]
vac_space = vac01.{domain}
factories = f1 f2 f3
udp_timeout_seconds = 2
query_allowed_sources = """ + MONITOR_ADDRESS + """

[machinetype lhcb]
target_share = 1
root_image = /images/test.img
user_data = /images/user_data

[machinetype atlas]
target_share = 3
root_image = /images/test.img
user_data = /images/user_data
"""

ATLAS = """
[machinetype atlas]
target_share = 3
root_image = /images/test.img
user_data = /user_data
"""
LHCB = """
[machinetype lhcb]
target_share = 1
root_image = /images/test.img
user_data = /user_data
"""
SETTINGS = """[settings]
vac_space = vac01.{domain}
factories = f1 f2 f3
udp_timeout_seconds = 2
"""
# f1 runs only atlas; f2 and f3 must make up lhcb's share for the whole space.
PLANNING_CONF = [SETTINGS + ATLAS, SETTINGS + LHCB + ATLAS, SETTINGS + LHCB + ATLAS]
PROCESSORS = 8
REAL_FACTORY = 0        # f1's machines are real qemu domains on the real libvirtd


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Space:
    """Namespaces, bridge, factory roots and responder processes of the test."""

    def __init__(self, tmp: str, count: int = 3):
        tag = f"vqmf{os.getpid() % 100000}"
        self.hub = tag + "h"
        self.numbers = range(1, count + 1)
        self.names = [f"f{i}.{DOMAIN}" for i in self.numbers]
        self.ns = [f"{tag}f{i}" for i in self.numbers]
        self.outsider = tag + "m"          # a host on the bridge outside ``factories``
        self.tmp = tmp
        self.hosts = os.path.join(tmp, "hosts")
        self.roots = [os.path.join(tmp, f"f{i}") for i in self.numbers]
        self.outsider_root = os.path.join(tmp, "monitor")
        self.responders: list = []

    def setup_network(self) -> None:
        ip("netns", "add", self.hub)
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "br0", "up")
        for i, ns in enumerate(self.ns + [self.outsider], start=1):
            address = f"{SUBNET}.{i}" if ns != self.outsider else STRANGER_ADDRESS
            ip("netns", "add", ns)
            ip("link", "add", f"vh{i}", "netns", self.hub, "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            ip("-n", self.hub, "link", "set", f"vh{i}", "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        write(self.hosts, "127.0.0.1 localhost\n" + "".join(
            f"{SUBNET}.{i} f{i}.{DOMAIN} f{i}\n" for i in self.numbers))

    def setup_roots(self, planning: bool = False) -> None:
        now = int(time.time())
        for i, (root, factory) in enumerate(zip(self.roots, FACTORIES)):
            paths = Paths(root)
            if planning:
                write(paths.etc_vac_conf, PLANNING_CONF[i].format(domain=DOMAIN, root=root))
                write(os.path.join(root, "user_data"), "##user_data_uuid##\n")
                continue
            write(paths.etc_vac_conf, CONF.format(domain=DOMAIN))
            statefs.ensure_state_dirs(paths)
            statefs.write_counts(paths, 1, 2, 1, 2, 1.0)
            add_machine(paths, factory, 0, ("lhcb", "atlas", "atlas")[i], now - 100)
        write(Paths(self.outsider_root).etc_vac_conf, CONF.format(domain=DOMAIN))

    def as_factory(self, index: int, *command: str) -> list:
        """``command`` on factory ``index`` (-1: the host outside ``factories``)."""
        ns, name = (self.ns[index], self.names[index]) if index >= 0 else (self.outsider,
                                                                           MONITOR)
        return ["ip", "netns", "exec", ns, "unshare", "--uts", "--mount", sys.executable,
                "-m", "tests.integration.nsrun", name, self.hosts, "--", *command]

    def start_responders(self, module: str = "vac.services.responder", *extra: str,
                         stagger: float = 0.0, extra_for: Optional[dict] = None) -> None:
        for i, root in enumerate(self.roots):
            if stagger:       # first cycles 2 s from now, one factory after the other
                extra = extra[:-2] + ("--start-at", str(time.time() + 2 + i * stagger))
            log = open(os.path.join(root, "responder.log"), "w")
            own = tuple((extra_for or {}).get(i, ()))
            self.responders.append(subprocess.Popen(
                self.as_factory(i, sys.executable, "-m", module, "--root", root,
                                "--stats-seconds", "1", *extra, *own),
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        for i, root in enumerate(self.roots):
            deadline = time.monotonic() + 30
            while "listening on 0.0.0.0:995" not in self.log(i):
                assert self.responders[i].poll() is None, self.log(i)
                assert time.monotonic() < deadline, self.log(i)
                time.sleep(0.05)

    def log(self, index: int) -> str:
        with open(os.path.join(self.roots[index], "responder.log")) as f:
            return f.read()

    def answered_sources(self, index: int) -> set:
        """Sources the counters lines of responder ``index`` say were answered."""
        return set(re.findall(r"(\d+\.\d+\.\d+\.\d+)=\d+", " ".join(
            line.split("; answered sources ", 1)[1].split(";")[0]
            for line in self.log(index).splitlines() if "; answered sources " in line)))

    def vac(self, index: int, *args: str) -> subprocess.CompletedProcess:
        root = self.roots[index] if index >= 0 else self.outsider_root
        return subprocess.run(
            self.as_factory(index, sys.executable, os.path.join(REPO, "bin", "vac"),
                            "--root", root, *args),
            cwd=REPO, capture_output=True, text=True, timeout=60,
            env=dict(os.environ, PYTHONPATH=REPO))

    def stop_responder(self, index: int) -> None:
        proc = self.responders[index]
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)

    def teardown(self) -> None:
        for proc in self.responders:        # all at once: each takes a while to stop
            if proc.poll() is None:
                proc.terminate()
        for i in range(len(self.responders)):
            self.stop_responder(i)
        for ns in self.ns + [self.outsider, self.hub]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@contextlib.contextmanager
def running_space(tmp: str, planning: bool, libvirt_uri: str = "") -> Iterator[Space]:
    """Network, roots and per-factory processes; everything removed afterwards.
    ``libvirt_uri``: the real libvirtd the REAL_FACTORY's planning cycles use."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"):
        pytest.skip("needs root, ip and unshare")
    made = Space(tmp)
    try:
        made.setup_network()
        made.setup_roots(planning=planning)
        if planning:
            made.start_responders("tests.integration.factoryhost", "--cycles", "14",
                                  "--processors", str(PROCESSORS), "--start-at", "0",
                                  stagger=0.15,
                                  extra_for={REAL_FACTORY: ["--libvirt-uri", libvirt_uri]})
        else:
            made.start_responders()
        yield made
    finally:
        made.teardown()


@pytest.fixture
def space(tmp_path):
    with running_space(str(tmp_path), planning=False) as made:
        yield made


def destroy_real_machines(uri: str) -> None:
    """Remove the REAL_FACTORY's domains from the real libvirtd (left by a killed run)."""
    from vac.adapters import hypervisor
    prefix = FACTORIES[REAL_FACTORY].split(".")[0] + "-"
    with hypervisor.connect(uri) as hv:
        for info in hv.list_domains():
            if info.name.startswith(prefix) and info.name.endswith("." + DOMAIN):
                hv.destroy_domain(info.name)
                hv.undefine_domain(info.name)


@pytest.fixture
def planning_space(tmp_path, real_env):
    destroy_real_machines(real_env.libvirt_uri)
    real_env.add_cleanup(lambda: destroy_real_machines(real_env.libvirt_uri))
    with running_space(str(tmp_path), planning=True,
                       libvirt_uri=real_env.libvirt_uri) as made:
        yield made


def machine_names(stdout: str) -> list:
    return sorted(line.split()[0] for line in stdout.splitlines()[1:] if line.strip())


def test_each_factory_lists_all_and_names_the_silent_one(space):
    everything = sorted(f"f{i}-0{s}" for i in (1, 2, 3) for s in (0, 1))
    for index in range(3):
        done = space.vac(index, "machines")
        assert done.returncode == 0, done.stderr
        assert machine_names(done.stdout) == everything
        assert "f1-00           lhcb             Running" in done.stdout
    factories = space.vac(1, "-J", "factories")
    assert factories.returncode == 0, factories.stderr
    assert '"factory": "f3.vac.test"' in factories.stdout
    for index in range(3):          # every factory's queries were answered everywhere
        wait_for(lambda: space.answered_sources(index) >= {f"{SUBNET}.{j}" for j in (1, 2, 3)},
                 space.log(index))

    space.stop_responder(2)
    start = time.monotonic()
    done = space.vac(0, "machines")
    assert done.returncode == 1
    assert "No reply from factory f3.vac.test" in done.stderr
    assert machine_names(done.stdout) == [n for n in everything if not n.startswith("f3")]
    assert time.monotonic() - start < 15
    mts = space.vac(1, "machinetype", "atlas")
    assert mts.returncode == 1 and "f3.vac.test" in mts.stderr
    assert [line.split()[0] for line in mts.stdout.splitlines()[1:]] == ["f1", "f2"]


def running_split(space: Space) -> dict:
    """machinetype -> running machines over the space, as `vac machinetypes -J` says."""
    done = space.vac(0, "-J", "machinetypes")
    totals: dict = {}
    for reply in json.loads(done.stdout or "[]"):
        totals[reply["machinetype"]] = (totals.get(reply["machinetype"], 0)
                                        + reply["running_machines"])
    return totals


def real_domains(uri: str) -> list:
    from vac.adapters import hypervisor
    with hypervisor.connect(uri) as hv:
        return sorted(i.name for i in hv.list_domains()
                      if i.name.startswith("f1-") and i.name.endswith("." + DOMAIN))


def test_planners_share_the_space_1_to_3(planning_space, real_env):
    """Real factory cycles see each other's machines via VacQuery: f1 creates real qemu
    domains on the real libvirtd, f2 and f3 test-driver domains. With shares
    lhcb:atlas = 1:3 and f1 running only atlas, f2 and f3 make up lhcb's share of the
    whole space (6 of 24), not 1:3 of their own slots (4 of 24)."""
    deadline = time.monotonic() + 120
    while not all("cycles done" in planning_space.log(i) for i in range(3)):
        for i in range(3):
            assert planning_space.responders[i].poll() is None, planning_space.log(i)
        assert time.monotonic() < deadline, [planning_space.log(i)[-3000:] for i in range(3)]
        time.sleep(0.2)
    split = running_split(planning_space)
    assert sum(split.values()) == 3 * PROCESSORS, split
    assert abs(split["lhcb"] - 3 * PROCESSORS // 4) <= 1, split
    # f1's machines are real: the real libvirtd runs all of them, as the space reports
    assert real_domains(real_env.libvirt_uri) == [f"f1-{s:02d}.{DOMAIN}"
                                                  for s in range(PROCESSORS)]
    for i in range(3):      # every responder was asked by all three factories' planners
        assert planning_space.answered_sources(i) >= {f"{SUBNET}.{j}" for j in (1, 2, 3)}, \
            planning_space.log(i)


def wait_for(condition, what, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_outsider_gets_nothing_until_it_is_a_listed_monitor(space):
    """Anti-amplification across real namespaces: a host outside ``factories`` gets no
    datagram back for any query; given the query_allowed_sources address it is answered."""
    for command in ("machines", "machinetypes", "factories"):
        done = space.vac(-1, command)
        assert done.returncode == 1 and done.stdout.count("\n") == 1, done.stdout
        assert all(f"No reply from factory {f}" in done.stderr for f in FACTORIES)
    for index in range(3):
        wait_for(lambda: f"refused sources {STRANGER_ADDRESS}=" in space.log(index),
                 space.log(index))
        assert STRANGER_ADDRESS not in space.answered_sources(index)
    ip("-n", space.outsider, "addr", "del", f"{STRANGER_ADDRESS}/24", "dev", "eth0")
    ip("-n", space.outsider, "addr", "add", f"{MONITOR_ADDRESS}/24", "dev", "eth0")
    done = space.vac(-1, "machines")
    assert done.returncode == 0, done.stderr
    assert len(machine_names(done.stdout)) == 6
