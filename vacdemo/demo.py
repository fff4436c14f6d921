"""``python -m vacdemo.demo run|config|clean --root DIR``: the embedded demo factory of ``make demo``.

``run`` uses the real test environment made by ``tools/testenv.sh`` ($TESTENV_DIR/env.json:
libvirtd in the network namespace ``vacns``, a volume group on a loop device with its LV
shims, the test guest ISO), writes the demo configuration below DIR (space
demo.vac.test, this host as the only factory, three slots, VM machinetypes ``work`` and
``idle`` and, if podman can be used, the container machinetype ``cont``
(vacdemo.democontainer) with target shares 2:1:1), then runs ``vacd --foreground`` inside the namespace and
prints each machine's progress until Ctrl-C (or ``--duration`` seconds): vacd gets
SIGTERM and stops; the guests finish by themselves. ``config`` only writes and checks the
configuration. Before vacd starts, ``vac selftest`` checks the host and boots the test
guest once. ``clean`` stops a demo vacd, destroys the demo's domains and logical
volumes, removes the NAT network if the demo made it, the demo's line in
/etc/netns/vacns/hosts and DIR (only a demo tree); running it twice is harmless.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from typing import Dict, List, Optional

from vacdemo import democontainer, demoenv
from vac.adapters.atomicfile import write_atomic
from vac.cli import main as vac_main
from vacdemo.demowatch import Watcher, timeline, timeline_text, watch_vacd
from vac.paths import Paths

MARKER = ".vac-demo"
STATE_FILE = "demo.json"
EVENTS_FILE = "demo-events.jsonl"
DEMO_CONF_NAME = "10-demo.conf"
SLOTS = 3                      # concurrent TCG guests: at most 3 on 2 cores
METRICS_ADDRESS = "127.0.0.1:8995"   # inside the namespace (vac.conf(5) metrics_address)
GUEST_IMAGE = "demo-guest.iso"

SETTINGS = """\
# Embedded demo configuration written by "python -m vacdemo.demo" (make demo). See vac.conf(5).
[settings]
vac_space = demo.vac.test
factory_hostname = {factory}
factories = {factory}
description = vac demo factory (make demo)
# {domain_reason}
domain_type = {domain_type}
libvirt_uri = {libvirt_uri}
volume_group = {volume_group}
# TCG guests keep 2 cores busy: do not let the load average veto creations
overload_per_processor = 1000
mb_per_processor = 256
disk_gb_per_processor = 1
hs06_per_processor = 10.0
gocdb_sitename = DEMO-SITE
cycle_seconds = 5
max_creations_per_cycle = 1
udp_timeout_seconds = 2
shutdown_grace_seconds = 5
version_logger = 0
# Prometheus /metrics and /status.json on the namespace's loopback
metrics_address = {metrics_address}
"""

MACHINETYPE = """
[machinetype {name}]
target_share = {share}
root_image = {image}
user_data = {name}.user_data
heartbeat_file = heartbeat
heartbeat_seconds = 120
max_wallclock_seconds = 600
fizzle_seconds = {fizzle}
backoff_seconds = {backoff}
accounting_fqan = {fqan}
"""

MACHINETYPES = (
    # name, target_share, fizzle_seconds, backoff_seconds, accounting_fqan
    ("work", 2, 40, 60, "/demo/Role=production/Capability=NULL"),
    ("idle", 1, 40, 60, "/demo/Role=NULL/Capability=NULL"),
)

USER_DATA_HEAD = """#!/bin/sh
# vac demo: {what}, as a vacuum VM would.
# Made for ##user_data_machine_hostname## (job ##user_data_uuid##)
# by ##user_data_manager_version##.
say() {{ echo "VACDEMO $*"; }}
get() {{ wget -q -O - "$1" 2>/dev/null; }}
put() {{ vac-put "$JOBOUTPUTS/$1" "/tmp/$1" | sed "s|^|VACDEMO put $1: |"; }}
cpu=$(get "$JOBFEATURES/allocated_cpu"); wall=$(get "$JOBFEATURES/wall_limit_secs")
hs06=$(get "$MACHINEFEATURES/hs06"); stop=$(get "$MACHINEFEATURES/shutdowntime")
say "MJF allocated_cpu=$cpu wall_limit_secs=$wall hs06=$hs06 shutdowntime=$stop"
"""

WORK_USER_DATA = USER_DATA_HEAD.format(what="finds work, heartbeats, ends with 200") + """\
say "found work: @STEPS@ steps of @STEP@ s"
i=1
while [ $i -le @STEPS@ ]; do
  echo "$(date +%s) step $i/@STEPS@ load $(cut -d' ' -f1-3 /proc/loadavg)" > /tmp/heartbeat
  put heartbeat
  sleep @STEP@
  i=$((i + 1))
done
echo "200 Success" > /tmp/shutdown_message
put shutdown_message
"""

IDLE_USER_DATA = USER_DATA_HEAD.format(what="finds no work and ends early with 300") + """\
echo "$(date +%s) looking for work" > /tmp/heartbeat
put heartbeat
say "no work in the queue"
echo "300 Nothing to do" > /tmp/shutdown_message
put shutdown_message
"""

WORK_STEPS, WORK_STEP_SECONDS = 12, 5      # the work machine runs about 60 s


def factory_hostname(hostname: str) -> str:
    """This host's FQDN, or ``<hostname>.demo.vac.test`` when it has no dot."""
    hostname = hostname.strip().rstrip(".").lower() or "localhost"
    return hostname if "." in hostname else f"{hostname}.demo.vac.test"


def render_config(factory: str, env: demoenv.DemoEnv, domain_type: str,
                  domain_reason: str, container_image: Optional[str] = None) -> str:
    """The text of ``etc/vac.d/10-demo.conf``; with ``container_image``, the docker
    machinetype ``cont`` too."""
    text = SETTINGS.format(factory=factory, domain_type=domain_type,
                           domain_reason=domain_reason, libvirt_uri=env.libvirt_uri,
                           volume_group=env.volume_group, metrics_address=METRICS_ADDRESS)
    for name, share, fizzle, backoff, fqan in MACHINETYPES:
        text += MACHINETYPE.format(name=name, share=share, image=GUEST_IMAGE, fizzle=fizzle,
                                   backoff=backoff, fqan=fqan)
    if container_image:
        c = democontainer
        text += MACHINETYPE.format(name=c.NAME, share=c.SHARE, image=f"docker://{container_image}",
                                   fizzle=c.FIZZLE, backoff=c.BACKOFF, fqan=c.FQAN)
        text += c.SECTION_EXTRA
    return text


def fizzle_seconds() -> Dict[str, int]:
    """machinetype -> fizzle_seconds, the container machinetype's included."""
    fizzle = {name: f for name, _share, f, _b, _q in MACHINETYPES}
    fizzle[democontainer.NAME] = democontainer.FIZZLE
    return fizzle


def kinds() -> Dict[str, str]:
    """machinetype -> the kind of machine the demo output shows."""
    found = {name: "VM" for name, *_rest in MACHINETYPES}
    found[democontainer.NAME] = "container"
    return found


def user_data_files() -> Dict[str, str]:
    """machinetype -> user_data template (``cont``: the container's)."""
    work = WORK_USER_DATA.replace("@STEPS@", str(WORK_STEPS))
    return {"work": work.replace("@STEP@", str(WORK_STEP_SECONDS)),
            "idle": IDLE_USER_DATA, democontainer.NAME: democontainer.user_data()}


def write_demo_tree(root: str, env: Optional[demoenv.DemoEnv] = None,
                    domain_type: Optional[str] = None,
                    container_image: Optional[str] = None) -> str:
    """Write the demo configuration, files and fake cpuinfo below ``root``; return the
    configuration file. ``domain_type`` None: chosen by :func:`demoenv.choose_domain_type`;
    ``container_image`` None: no container machinetype."""
    env = env or demoenv.load_env(required=False)
    paths = Paths.from_root(root)
    reason = "domain_type given on the command line"
    if domain_type is None:
        domain_type, reason = demoenv.choose_domain_type()
    os.makedirs(paths.etc_vac_d, exist_ok=True)
    write_atomic(os.path.join(paths.root, MARKER), "vac demo tree\n")
    factory = factory_hostname(demoenv.hostname())
    conf = os.path.join(paths.etc_vac_d, DEMO_CONF_NAME)
    write_atomic(conf, render_config(factory, env, domain_type, reason, container_image))
    cpuinfo = paths.under_root("/proc/cpuinfo")     # more slots than this host has cores
    os.makedirs(os.path.dirname(cpuinfo), exist_ok=True)
    write_atomic(cpuinfo, "".join(f"processor\t: {i}\n\n" for i in range(SLOTS)))
    for name, text in user_data_files().items():
        if name == democontainer.NAME and not container_image:
            continue
        files = os.path.join(paths.machinetype_dir(name), "files")
        os.makedirs(files, exist_ok=True)
        write_atomic(os.path.join(files, f"{name}.user_data"), text)
        if name == democontainer.NAME:
            continue
        image = os.path.join(files, GUEST_IMAGE)
        if os.path.lexists(image):
            os.unlink(image)
        os.symlink(env.guest_iso, image)
    _update_state(paths.root, factory=factory, slots=SLOTS, domain_type=domain_type,
                  container_image=container_image, **env.as_dict())
    return conf


def read_state(root: str) -> dict:
    """The demo's own record (demo.json) of what it set up below and around ``root``."""
    try:
        with open(os.path.join(root, STATE_FILE)) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return {}


def _update_state(root: str, **values: object) -> None:
    state = read_state(root)
    state.update(values)
    write_atomic(os.path.join(root, STATE_FILE), json.dumps(state, indent=1) + "\n")


def configure(root: str, domain_type: Optional[str] = None, containers: bool = True) -> int:
    """Write the demo tree, check it and print the effective configuration (with the
    container machinetype if ``containers`` and podman can be used; its image is built
    by ``run``)."""
    image = democontainer.image_tag() if containers and \
        democontainer.unavailable() is None else None
    conf = write_demo_tree(root, domain_type=domain_type, container_image=image)
    print(f"vac demo: configuration written to {conf}")
    status = vac_main(["--root", root, "config", "--check"])
    if status != 0:
        return status
    return vac_main(["--root", root, "config"])


# --- run -------------------------------------------------------------------------------

def user_commands(root: str, netns: str) -> List[str]:
    """What a user can run in another terminal while the demo runs."""
    bindir = os.path.dirname(os.path.abspath(sys.executable))
    prefix = f"ip netns exec {netns} {bindir}"
    return [f"{prefix}/vac --root {root} {sub}" for sub in ("machines", "machinetypes",
                                                             "factories", "plan")] + \
        [f"{prefix}/check-vacd --root {root}",
         f"ip netns exec {netns} curl -s http://{METRICS_ADDRESS}/metrics    # or /status.json",
         f"tail -f {Paths.from_root(root).log_file('factory')}",
         "make demo-clean    # afterwards: remove every domain, LV, network and file the demo made"]


class Stop:
    """SIGINT/SIGTERM set this flag; the main loop stops vacd."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, *_args: object) -> None:
        self.requested = True


def run(root: str, duration: Optional[float], lock: bool,
        domain_type: Optional[str], containers: bool = True) -> int:
    """Prepare, start vacd in the namespace, watch it; exit status 0 on a clean stop."""
    root = os.path.abspath(root)
    env = demoenv.load_env(required=True)
    lock_fd = demoenv.take_lock(env, print) if lock else None
    try:
        image, why = democontainer.choose_image(env.testenv_dir, containers)
        if why:
            print(f"vac demo: no container machinetype ({why}); the VM machinetypes run")
        write_demo_tree(root, env, domain_type, image)
        if vac_main(["--root", root, "config", "--check"]) != 0:
            return 1
        return _run_prepared(root, env, duration)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _run_prepared(root: str, env: demoenv.DemoEnv, duration: Optional[float]) -> int:
    state = read_state(root)
    factory = str(state["factory"])
    _update_state(root, ran=True)
    created = demoenv.add_hosts_line(factory, env.netns)
    _update_state(root, hosts_netns=env.netns,
                  hosts_file_created=created or bool(state.get("hosts_file_created")))
    if demoenv.reset_network(env):
        _update_state(root, made_network=True)
    print("vac demo: checking this host with vac selftest (see vac(1)):", flush=True)
    if not demoenv.run_selftest(root, env, print):
        print("vac demo: the self-test failed: apply the fixes of its FAIL lines and run "
              "the demo again")
        return 1
    image = state.get("container_image")
    print(f"vac demo: factory {factory} with {SLOTS} slots, space demo.vac.test, "
          f"domain_type {state['domain_type']}, root {root}")
    print("vac demo: VM machinetypes work and idle (libvirt)"
          + (f", container machinetype {democontainer.NAME} (podman, image {image})"
             if image else ""))
    print("vac demo: while it runs, try in another terminal:")
    for line in user_commands(root, env.netns):
        print(f"    {line}")
    stop = Stop()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        pid = demoenv.start_vacd(root, env, containers=bool(image))
        print(f"vac demo: vacd started as pid {pid} in netns {env.netns}; Ctrl-C stops it"
              + (f"; stopping by itself after {duration:.0f} s" if duration else ""),
              flush=True)
        watcher = Watcher(Paths.from_root(root), lambda text: print(text, flush=True),
                          os.path.join(root, EVENTS_FILE), fizzle_seconds(), kinds())
        status = watch_vacd(watcher, pid, lambda: stop.requested, duration)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    paths = Paths.from_root(root)
    print(timeline_text(timeline(paths, os.path.join(root, EVENTS_FILE))))
    print("vac demo: guests still running finish by themselves; "
          "'make demo-clean' removes everything the demo made")
    return status


# --- clean -----------------------------------------------------------------------------

def clean(root: str, lock: bool = True) -> int:
    """Remove everything the demo made below and around ``root``; safe to repeat.

    With ``lock``, waits for the test environment lock first (tests may be using the NAT
    network and libvirtd)."""
    root = os.path.abspath(root)
    if not os.path.exists(root):
        print(f"vac demo: {root} does not exist; nothing to clean")
        return 0
    if root == "/" or not os.path.exists(os.path.join(root, MARKER)):
        print(f"vac demo: {root} is not a demo tree (no {MARKER}); not removed",
              file=sys.stderr)
        return 1
    state = read_state(root)
    env = demoenv.DemoEnv(testenv_dir=str(state.get("testenv_dir") or demoenv.testenv_dir()))
    ran = bool(state.get("ran"))         # only "config": nothing outside the tree
    lock_fd = demoenv.take_lock(env, print) if ran and lock else None
    try:
        problems = demoenv.clean_machines(Paths.from_root(root), state, print) if ran else []
        if ran and state.get("container_image") and state.get("factory"):
            removed = democontainer.remove_containers(str(state["factory"]))
            if removed:
                print(f"vac demo: removed {removed} container(s)")
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    if state.get("hosts_netns"):
        demoenv.remove_hosts_line(str(state["hosts_netns"]),
                                  bool(state.get("hosts_file_created")))
    if problems:
        print("vac demo: not removing " + root + " because: " + "; ".join(problems),
              file=sys.stderr)
        return 1
    shutil.rmtree(root)
    print(f"vac demo: removed {root}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vacdemo.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "config", "clean"))
    parser.add_argument("--root", required=True, metavar="DIR",
                        help="directory that holds the demo factory's whole file tree")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="run: stop vacd by itself after SECONDS (default: until Ctrl-C)")
    parser.add_argument("--domain-type", choices=("kvm", "qemu"),
                        help="run/config: override the automatic choice (kvm only if "
                             "KVM can run guests here, else qemu = TCG)")
    parser.add_argument("--no-lock", action="store_true",
                        help="run, clean: do not take the test environment lock (the caller "
                             "holds it, e.g. the end-to-end test)")
    parser.add_argument("--no-containers", action="store_true",
                        help="run/config: leave out the container machinetype "
                             f"{democontainer.NAME} (default: in if podman can be used)")
    args = parser.parse_args(argv)
    if args.action == "clean":
        return clean(args.root, not args.no_lock)
    if args.action == "config":
        return configure(args.root, args.domain_type, not args.no_containers)
    try:
        return run(args.root, args.duration, not args.no_lock, args.domain_type,
                   not args.no_containers)
    except demoenv.DemoError as e:
        print(f"vac demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:          # Ctrl-C before vacd started (e.g. waiting for the lock)
        print("vac demo: interrupted before vacd started", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
