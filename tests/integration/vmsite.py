"""Shared set-up for the real-guest integration tests (vac's own adapters on real_env).

A ``site`` is a Paths root under tmp_path, host adapters that run LVM through the shim
and iptables/ip in the test network namespace, an open libvirt connection and vac's NAT
network made by ``vm.ensure_network``; every piece is undone by real_env's clean-ups.
"""

from __future__ import annotations

import os

from vac.adapters import hypervisor, runner
from vac.constants import NAT_NETWORK_NAME
from vac.core.configtypes import Config, Machinetype, Settings
from vac.paths import Paths
from vac.services import vm
from vac.services.hostops import default_host

FACTORY = "vactest.example.com"
BOOT_TIMEOUT = 120     # seconds for a TCG test guest to boot, report back and power off


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


def open_site(real_env, tmp_path) -> dict:
    """paths, host, hv and cfg of a fresh site whose NAT network is up."""
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
    cfg = make_cfg(real_env)
    assert vm.ensure_network(hv, cfg, paths, host=host)
    return dict(paths=paths, host=host, hv=hv, cfg=cfg)
