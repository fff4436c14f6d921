"""vacd stops on SIGTERM and a real test guest keeps running (checklist row 31, SPEC §2.8).

The stand-in factory creates the guest the way vac's factory does: a transient libvirt
domain, so qemu is a child of libvirtd (in the test network namespace), not of vacd.
"""

from __future__ import annotations

import json
import os
from xml.sax.saxutils import escape

import pytest

from tests.daemon.vacdproc import Vacd, make_root, wait_for
from vac.adapters import hypervisor
from vac.model import DomainState

pytestmark = pytest.mark.integration

DOMAIN = "vacd-sigterm-guest"


def guest_xml(env) -> str:
    """A small TCG guest booting the test kernel and initrd (no disk, no network)."""
    return f"""<domain type='qemu'>
  <name>{DOMAIN}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>{escape(env.guest_kernel)}</kernel>
    <initrd>{escape(env.guest_initrd)}</initrd>
    <cmdline>{escape(env.guest_cmdline)}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='pty'><target port='0'/></serial>
  </devices>
</domain>"""


def domain_state(uri):
    with hypervisor.connect(uri) as hv:
        info = hv.domain(DOMAIN)
    return None if info is None else info.state


def test_sigterm_leaves_a_real_guest_running(real_env, paths):
    uri = real_env.libvirt_uri

    def destroy():
        with hypervisor.connect(uri) as hv:
            hv.destroy_domain(DOMAIN)
    if domain_state(uri) is not None:
        destroy()
    make_root(paths)
    with open(paths.state("standin-guest.json"), "w", encoding="utf-8") as f:
        json.dump({"uri": uri, "xml": guest_xml(real_env)}, f)
    real_env.add_cleanup(destroy)
    vacd = Vacd(paths, registry="tests.daemon.standin_roles:REAL_GUEST")
    try:
        vacd.wait_roles(("factory", "metadata", "mjf"))
        wait_for(lambda: os.path.exists(paths.state("standin-guest.created")), timeout=60,
                 what="the guest to be created")
        assert domain_state(uri) == DomainState.RUNNING
    finally:
        code = vacd.stop()
    assert code == 0
    assert domain_state(uri) == DomainState.RUNNING
    assert "machines are left running" in open(paths.log_file("supervisor"),
                                               encoding="utf-8").read()
