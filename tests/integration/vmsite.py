"""Shared set-up for the real-guest integration tests (vac's own adapters on real_env).

A ``site`` is a Paths root under tmp_path, host adapters that run LVM through the shim
and iptables/ip in the test network namespace, an open libvirt connection and vac's NAT
network made by ``vm.ensure_network``; every piece is undone by real_env's clean-ups.
"""

from __future__ import annotations

import gzip
import os
import secrets
import time
from typing import Optional

import pytest

from vac.adapters import contextfiles, hypervisor, runner, statefs
from vac.constants import NAT_NETWORK_NAME
from vac.core import naming
from vac.core.configtypes import Config, Machinetype, Settings
from vac.paths import Paths
from vac.services import vm
from vac.services.hostops import default_host
from vac.services.userdata import make_user_data

FACTORY = "vactest.example.com"
BOOT_TIMEOUT = 120     # seconds for a TCG test guest to boot, report back and power off
# vac.conf of a 2-slot factory root (``factory_root``) running the test guest
ROOT_SETTINGS = """[settings]
vac_space = space.example.com
factory_hostname = {factory}
total_processors = 2
overload_per_processor = 1000
domain_type = qemu
libvirt_uri = {uri}
volume_group = {vg}
mb_per_processor = 256
disk_gb_per_processor = 1
shutdown_grace_seconds = 5
version_logger = 0
"""
GUEST_MACHINETYPE = """
[machinetype {name}]
target_share = 1
root_image = {{iso}}
fizzle_seconds = 0
backoff_seconds = 0
max_wallclock_seconds = 3600
"""


def make_cfg(real_env, **settings) -> Config:
    values = dict(vac_space="space.example.com", factory_hostname=FACTORY, total_processors=4,
                  domain_type="qemu", libvirt_uri=real_env.libvirt_uri,
                  volume_group=real_env.volume_group, mb_per_processor=256)
    values.update(settings)
    return Config(settings=Settings(**values))


def machinetype(image: str, model: str = "cernvm3", **kw) -> Machinetype:
    return Machinetype(name="vactest", machine_model=model, root_image=image,
                       disk_gb_per_processor=kw.pop("disk_gb_per_processor", 1), **kw)


def remove_network(hv) -> None:
    """Stop and undefine vac's NAT network (no-op when absent)."""
    hv.destroy_network(NAT_NETWORK_NAME)
    hv.undefine_network(NAT_NETWORK_NAME)


def link_guest_dir(real_env, paths: Paths) -> None:
    """Make the absolute root_image of the test guest resolve below paths.root."""
    guest_dir = os.path.dirname(real_env.guest_iso)
    os.makedirs(os.path.dirname(paths.under_root(guest_dir)), exist_ok=True)
    os.symlink(guest_dir, paths.under_root(guest_dir))


def open_site(real_env, tmp_path, **settings) -> dict:
    """paths, host, hv and cfg (``settings`` override make_cfg's) of a fresh site whose
    NAT network (with vac's guest firewall) is up."""
    paths = Paths(root=str(tmp_path / "root"))
    for d in paths.state_subdirs():
        os.makedirs(d, exist_ok=True)
    os.makedirs(os.path.dirname(paths.etc_hosts), exist_ok=True)
    shim_path = real_env.env["PATH"]

    def run(argv, timeout=120.0, check=True, env=None, input_text=None):
        return runner.run(argv, timeout=timeout, check=check,
                          env={**(env or {}), "PATH": shim_path}, input_text=input_text)

    host = default_host(paths, run=run, netns_prefix=real_env.netns_argv([]))
    stack = hypervisor.connect(real_env.libvirt_uri)
    hv = stack.__enter__()
    real_env.add_cleanup(lambda: stack.__exit__(None, None, None))
    remove_network(hv)                           # leftovers of an interrupted run
    real_env.add_cleanup(lambda: remove_network(hv))
    cfg = make_cfg(real_env, **settings)
    assert vm.ensure_network(hv, cfg, paths, host=host)
    return dict(paths=paths, host=host, hv=hv, cfg=cfg)


def remove_machines(real_env, hv, names) -> None:
    """Destroy the domains and remove the logical volumes ``names``, then vac's network."""
    for name in names:
        hv.destroy_domain(name)
        real_env.remove_lv(name)
    remove_network(hv)


def factory_root(real_env, tmp_path, conf: str, names, **fields):
    """(paths, hv): a --root whose vac.conf is ``conf`` formatted with ``fields`` and the
    test environment's uri, vg and (guest) iso, with a 2-processor cpuinfo and the guest
    ISO; the domains and LVs ``names`` are removed now and at the end."""
    paths = Paths(root=str(tmp_path / "root"))
    os.makedirs(os.path.dirname(paths.etc_vac_conf))
    os.makedirs(paths.state_dir)                   # made by the package; vacd needs it
    with open(paths.etc_vac_conf, "w") as f:
        f.write(conf.format(uri=real_env.libvirt_uri, vg=real_env.volume_group,
                            iso=real_env.guest_iso, **fields))
    cpuinfo = paths.under_root("/proc/cpuinfo")
    os.makedirs(os.path.dirname(cpuinfo))
    with open(cpuinfo, "w") as f:
        f.write("processor\t: 0\n\nprocessor\t: 1\n\n")
    link_guest_dir(real_env, paths)
    stack = hypervisor.connect(real_env.libvirt_uri)
    hv = stack.__enter__()
    remove_machines(real_env, hv, names)
    real_env.add_cleanup(lambda: stack.__exit__(None, None, None))
    real_env.add_cleanup(lambda: remove_machines(real_env, hv, names))
    return paths, hv


def write_template(paths: Paths, mt_name: str, file_name: str, text: str) -> None:
    """A user_data template under the machinetype's files/ directory."""
    files = os.path.join(paths.machinetype_dir(mt_name), "files")
    os.makedirs(files, exist_ok=True)
    with open(os.path.join(files, file_name), "w") as f:
        f.write(text)


def prepare_machine(site, mt, ordinal: int, uuid: str,
                    created: int = 1_700_000_000) -> vm.VmRequest:
    """What the factory does before create_vm: slot file, MJF files, token, user_data."""
    paths, cfg = site["paths"], site["cfg"]
    name = naming.machine_name(FACTORY, ordinal)
    mdir = paths.machine_dir(created, mt.name, name)
    for sub in ("machinefeatures", "jobfeatures", "joboutputs"):
        os.makedirs(os.path.join(mdir, sub))
    statefs.write_slot_file(paths, name, created, mt.name, mt.machine_model)
    for rel, text in {"jobfeatures/allocated_cpu": "1\n", "jobfeatures/wall_limit_secs": "3600",
                      "jobfeatures/job_id": uuid, "machinefeatures/total_cpu": "1"}.items():
        with open(os.path.join(mdir, rel), "w") as f:
            f.write(text)
    token = secrets.token_urlsafe(32)
    contextfiles.write_machine_token(mdir, token, mt.joboutputs_require_token)
    user_data = make_user_data(cfg, paths, mt, machine_name=name, uuid=uuid,
                               shutdown_time=int(time.time()) + 3600, now=time.time(),
                               machine_token=token)
    with open(os.path.join(mdir, "user_data"), "wb") as f:
        f.write(user_data)
    return vm.VmRequest(machine_name=name, ordinal=ordinal, machinetype=mt, processors=1,
                        uuid=uuid, machine_dir=mdir)


def guest_file(real_env, name: str) -> Optional[bytes]:
    """The content of ``name`` (e.g. ``usr/local/bin/vac-udp``) in the test guest's initrd
    (gzip'd newc cpio), or None if the guest has no such file."""
    with gzip.open(real_env.guest_initrd, "rb") as f:
        data = f.read()
    pos = 0
    while data.startswith(b"070701", pos):
        size, name_size = int(data[pos + 54:pos + 62], 16), int(data[pos + 94:pos + 102], 16)
        start = pos + 110
        entry = data[start:start + name_size - 1].decode(errors="replace")
        body = (start + name_size + 3) & ~3
        if entry == name:
            return data[body:body + size]
        if entry == "TRAILER!!!":
            break
        pos = (body + size + 3) & ~3
    return None


def require_guest_tool(real_env, name: str, marker: bytes = b"") -> None:
    """Fail clearly when the shared test guest lacks a tool of tools/guest (it was built
    from another checkout): run ``tools/testenv.sh install`` from this one."""
    content = guest_file(real_env, name)
    if content is None or marker not in content:
        pytest.fail(f"the test guest {real_env.guest_initrd} has no {name}"
                    f"{' with ' + marker.decode() if marker else ''}: it was built from "
                    "another checkout; run tools/testenv.sh install from this one",
                    pytrace=False)
