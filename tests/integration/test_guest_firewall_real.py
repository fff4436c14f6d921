"""Real guests attack the factory and each other; vac's guest firewall stops them.

Three test guests on vac's NAT network (made by ``vm.ensure_network``, which installs the
firewall, and ``vm.create_vm``): A and C listen on TCP 7777; C's machinetype has
``guest_to_guest = true`` (a cache machine). B then probes, in parallel:

* a real VacQuery ``machines_query`` (UDP 995, the vac-udp helper of the test guest) to the
  responder at 169.254.169.253, 169.254.169.254 and the factory's other address 10.99.0.1:
  must get no reply (today: every machine name and UUID);
* A directly (switched by the bridge), then A routed through the factory: no connection;
* C (guest_to_guest): connects;
* a factory service bound to all addresses (TCP 2222): not reachable; TCP 3128 on
  169.254.169.253 (``host_tcp_ports_for_machines = 3128``) reachable, but not on 10.99.0.1;
* still reachable: DHCP (its lease), metadata (its user_data), MJF, DNS on .253 and the
  outside world through NAT (an HTTP server and a peer factory's responder in another
  namespace behind 10.99.0.1; the latter's reply also shows that vac-udp works).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import subprocess
import threading

import pytest

from tests.integration.vmsite import (BOOT_TIMEOUT, link_guest_dir, machinetype, open_site,
                                      prepare_machine, require_guest_tool, write_template)
from tests.realenv import console_tail, read_console, wait_for
from tests.services.ctxhelpers import in_thread, running_role, setns
from vac.core import iptables, naming
from vac.rolecontrol import RoleControl
from vac.services import metadata_httpd, mjf_httpd, vm
from vac.services.responder import Responder

pytestmark = pytest.mark.integration

A, C, B = 0, 1, 2                  # slot ordinals: victim, cache machine, prober
HOST_OTHER = "10.99.0.1"           # the factory's address towards the "outside world"
OUTSIDE = "10.99.0.2"              # a host out there, reached through NAT
LISTENER = """#!/bin/sh
printf '#!/bin/sh\\necho BANNER-%s\\n' "$(hostname)" > /tmp/banner
chmod +x /tmp/banner
nc -ll -p 7777 -e /tmp/banner &
# A's replies to the prober go back through the factory too (a symmetric routed attack)
p=##user_data_option_prober##
[ -z "$p" ] || ip route add $p/32 via 169.254.169.253
echo "VACTEST listening ip=$(cat /run/vactest.ip)"
sleep 600
"""
PROBER = """#!/bin/sh
# the test writes jobfeatures/go once A and C listen (B cannot see A to find out itself)
until [ "$(wget -q -O - $JOBFEATURES/go)" = go ]; do sleep 1; done
got() { echo "VACTEST $1 $2 got=<$(tr -d '<>\\r\\n' | head -c 200)>"; }
tcp() { (sleep 3) | timeout 4 nc -w 3 $1 $2 2>/dev/null | got tcp $3; }
http() { timeout 4 busybox wget -q -O - $1 2>/dev/null | got http $2; }
q='{"message_type":"machines_query","space":"##user_data_space##","cookie":"probe","vacquery_version":"VacQuery 01.03","vac_version":"Vac probe"}'
for dst in 169.254.169.253 169.254.169.254 %(other)s %(outside)s; do
  (echo "$q" | vac-udp $dst 995 3 | got udp995 $dst) &
done
tcp %(a)s 7777 switched-to-isolated &
tcp %(c)s 7777 switched-to-guest_to_guest &
http http://169.254.169.253:2222/ok.txt factory-other-port &
http http://%(other)s:3128/ok.txt factory-other-address &
http http://169.254.169.253:3128/ok.txt factory-allowed-port &
http http://%(outside)s:8080/ok.txt outside-world &
wget -q -O - $MACHINEFEATURES/total_cpu | got mjf total_cpu
timeout 5 nslookup %(name)s 169.254.169.253 2>&1 | got dns .253
wait
ip route add %(a)s/32 via 169.254.169.253
tcp %(a)s 7777 routed-to-isolated
echo "VACTEST probes done"
"""


@contextlib.contextmanager
def outside_world(real_env, www: str):
    """A namespace joined to the test netns by a veth: the factory side gets HOST_OTHER,
    the other side OUTSIDE with an HTTP server on port 8080 serving ``www``; yields the
    namespace's name."""
    ns, veth = f"vacout-{os.getpid()}", f"vo{os.getpid() % 100000}"
    ip = lambda *a: subprocess.run(["ip", *a], check=True, capture_output=True)  # noqa: E731
    try:
        ip("netns", "add", ns)
        ip("link", "add", veth + "a", "netns", real_env.netns, "type", "veth", "peer", "name",
           veth + "b", "netns", ns)
        ip("-n", real_env.netns, "addr", "add", HOST_OTHER + "/24", "dev", veth + "a")
        ip("-n", ns, "addr", "add", OUTSIDE + "/24", "dev", veth + "b")
        for where, dev in ((real_env.netns, veth + "a"), (ns, veth + "b"), (ns, "lo")):
            ip("-n", where, "link", "set", dev, "up")
        real_env.serve_http(OUTSIDE, 8080, www, netns=ns)
        yield ns
    finally:
        subprocess.run(["ip", "-n", real_env.netns, "link", "del", veth + "a"],
                       capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _answering(cfg, address: str):
    """``cfg`` for a peer factory out in the world that answers ``address`` (the factory's
    NAT address, as if it were one of its ``factories``): strangers get nothing."""
    settings = dataclasses.replace(cfg.settings, query_allowed_sources=(address + "/32",))
    return dataclasses.replace(cfg, settings=settings)


@contextlib.contextmanager
def running_responder(paths, cfg, netns: str):
    """vac's real VacQuery responder on UDP 995 of every address in ``netns`` (the
    factory's own, or a peer factory's out in the world)."""
    control = RoleControl()
    responder = Responder(paths, load=lambda: cfg, bind=("", 995))

    def body():
        setns(netns)
        responder.serve(control)
    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    wait_for(lambda: responder.sock is not None, 20, what="the responder to bind")
    try:
        yield
    finally:
        control.request_stop()
        thread.join(20)


def banner(address: str) -> str:
    """What the listener at address:7777 says to the factory itself (empty if nothing)."""
    try:
        with socket.create_connection((address, 7777), timeout=5) as sock:
            return sock.recv(100).decode(errors="replace").strip()
    except OSError as e:
        return f"<{e}>"


def test_guests_reach_only_their_services(real_env, tmp_path):
    require_guest_tool(real_env, "usr/local/bin/vac-udp")
    site = open_site(real_env, tmp_path, host_tcp_ports_for_machines=(3128,))
    real_env.run(["iptables", "-Z", iptables.FORWARD_CHAIN], netns=True)    # count afresh
    paths, hv, cfg = site["paths"], site["hv"], site["cfg"]
    link_guest_dir(real_env, paths)
    ips = {k: naming.machine_ip(k) for k in (A, B, C)}
    write_template(paths, "vactest", "listen.user_data", LISTENER)
    write_template(paths, "vactest", "probe.user_data", PROBER % dict(
        a=ips[A], c=ips[C], other=HOST_OTHER, outside=OUTSIDE,
        name=naming.machine_name(cfg.settings.factory_hostname, A)))
    listener = machinetype(real_env.guest_iso, user_data="listen.user_data",
                           user_data_options={"prober": ips[B]})
    cache = machinetype(real_env.guest_iso, user_data="listen.user_data", guest_to_guest=True)
    prober = machinetype(real_env.guest_iso, user_data="probe.user_data")
    www = tmp_path / "www"
    www.mkdir()
    (www / "ok.txt").write_text("SERVED\n")
    for port in (2222, 3128):                 # factory services bound to every address
        real_env.serve_http("0.0.0.0", port, str(www))
    requests = {k: prepare_machine(site, mt, k, f"00000000-0000-4000-8000-00000000000{k}")
                for k, mt in ((A, listener), (C, cache), (B, prober))}
    consoles = {k: os.path.join(r.machine_dir, "console.log") for k, r in requests.items()}
    for req in requests.values():
        real_env.add_cleanup(lambda r=req: vm.destroy_vm(hv, cfg, paths, r.machine_name,
                                                         grace_seconds=0, wait=False,
                                                         host=site["host"]))
    with outside_world(real_env, str(www)) as out_ns, \
            running_responder(paths, cfg, real_env.netns), \
            running_responder(paths, _answering(cfg, HOST_OTHER), out_ns), \
            running_role(metadata_httpd.run_role, paths, cfg, netns=real_env.netns), \
            running_role(mjf_httpd.run_role, paths, cfg, netns=real_env.netns):
        for k in (A, C, B):                   # boot together; B waits for "go"
            vm.create_vm(hv, cfg, paths, requests[k], host=site["host"])
        for k in (A, C):
            _wait_console(consoles[k], "VACTEST listening", real_env)
        with open(os.path.join(requests[B].machine_dir, "jobfeatures", "go"), "w") as f:
            f.write("go")
        _wait_console(consoles[B], "VACTEST probes done", real_env)
        banners = in_thread(lambda: {k: banner(ips[k]) for k in (A, C)}, netns=real_env.netns)
    log = read_console(consoles[B])
    got = dict(re.findall(r"VACTEST (\S+ \S+) got=<([^>\n]*)>", log))
    failure = f"{got}\n{console_tail(consoles[B])}"
    # the listeners were up (the factory itself reaches both), and vac-udp works: a peer
    # factory's responder out in the world answers through the NAT
    assert banners[A].startswith("BANNER-") and banners[C].startswith("BANNER-"), banners
    assert '{"cookie":"probe"' in got.get(f"udp995 {OUTSIDE}", ""), \
        "no VacQuery reply from the outside: is vac-udp in the test guest (tools/testenv.sh " \
        f"install)?\n{failure}"
    # never: the responder on any factory address, other guests, other factory services
    for dst in ("169.254.169.253", "169.254.169.254", HOST_OTHER):
        assert got.get(f"udp995 {dst}") == "", failure
    for probe in ("tcp switched-to-isolated", "tcp routed-to-isolated",
                  "http factory-other-port", "http factory-other-address"):
        assert got.get(probe) == "", failure
    # still: the cache machine, the allowed port, MJF, DNS, the outside world (and DHCP
    # and metadata, or the prober would not have run)
    assert got.get("tcp switched-to-guest_to_guest", "").startswith("BANNER-"), failure
    assert got.get("http factory-allowed-port") == "SERVED", failure
    assert got.get("http outside-world") == "SERVED", failure
    assert got.get("mjf total_cpu") == "1", failure
    assert "Address" in got.get("dns .253", "") and "timed out" not in got["dns .253"], failure
    assert _forward_drops(real_env) > 0, "the routed attempt was not dropped by VAC_FWD"


def _wait_console(path: str, line: str, real_env) -> None:
    try:
        wait_for(lambda: line in read_console(path), BOOT_TIMEOUT, interval=0.5,
                 what=f"{line!r} on {os.path.basename(os.path.dirname(path))}")
    except TimeoutError as exc:
        pytest.fail(f"{exc}\n{console_tail(path)}\n{real_env.diagnostics()}", pytrace=False)


def _forward_drops(real_env) -> int:
    """Packets counted by VAC_FWD's drop rule (the routed guest-to-guest attempt)."""
    out = real_env.run(["iptables", "-L", iptables.FORWARD_CHAIN, "-v", "-x", "-n"],
                       netns=True, check=False).stdout
    counts = [int(line.split()[0]) for line in out.splitlines()
              if "DROP" in line and line.split()[0].isdigit()]
    return sum(counts)
