"""A real guest is contextualised by vac's OWN metadata and MJF services (integration).

The metadata and MJF roles run in threads inside the test network namespace, bound to
169.254.169.254:80 and 169.254.169.253:80 on vac's NAT bridge. The test guest fetches the
user_data made by make_user_data, reads $JOBFEATURES/allocated_cpu and wall_limit_secs,
finds its PUT refused without its token (``joboutputs_require_token``), reads the token
from /vac/machine_token (the same as ``##user_data_machine_token##``), PUTs ``heartbeat``
and ``shutdown_message`` ("200 Success") with it and powers off; the factory's
view of the slot (statefs.read_slot, and the factory's own gather + lifecycle
planning) then shows both, and the planner accounts the machine with "200 Success".
"""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from tests.integration.vmsite import (BOOT_TIMEOUT, FACTORY, link_guest_dir, machinetype,
                                      open_site, prepare_machine, require_guest_tool)
from tests.realenv import console_tail, read_console as read, wait_for
from tests.services.ctxhelpers import running_role
from vac.adapters import statefs
from vac.core import planner
from vac.core.actions import Account
from vac.constants import STATE_SHUTDOWN
from vac.model import HostFacts
from vac.services import gather, metadata_httpd, mjf_httpd, vm
from vac.services.backends.base import BackendContext

pytestmark = pytest.mark.integration

CREATED = 1_700_000_000
TEMPLATE = """#!/bin/sh
# made for ##user_data_machine_hostname## (##user_data_uuid##) by ##user_data_manager_version##
cpu=$(wget -q -O - "##user_data_jobfeatures_url##/allocated_cpu")
wall=$(wget -q -O - "$JOBFEATURES/wall_limit_secs")
echo "VACTEST mjf allocated_cpu=$cpu wall_limit_secs=$wall"
echo "VACTEST missing key: $(wget -q -O - "$JOBFEATURES/max_swap_bytes" || echo absent)"
cat /proc/loadavg > /tmp/hb
vac-put "$JOBOUTPUTS/heartbeat" /tmp/hb | sed 's/^/VACTEST put without token: /'
token=$(wget -q -O - http://169.254.169.254/vac/machine_token)
[ -n "$token" ] && [ "$token" = "##user_data_machine_token##" ] && echo "VACTEST token matches"
export VAC_PUT_AUTH="Bearer ##user_data_machine_token##"
vac-put "##user_data_joboutputs_url##/heartbeat" /tmp/hb | sed 's/^/VACTEST put heartbeat: /'
echo "200 Success" > /tmp/sm
vac-put "$JOBOUTPUTS/shutdown_message" /tmp/sm | sed 's/^/VACTEST put shutdown_message: /'
vac-put "$JOBOUTPUTS/../slots/x" /tmp/sm | sed 's/^/VACTEST put traversal: /'
"""


@pytest.fixture
def ctx_site(real_env, tmp_path):
    return open_site(real_env, tmp_path)


def test_guest_reads_mjf_and_puts_joboutputs_through_vac_services(real_env, ctx_site):
    require_guest_tool(real_env, "usr/local/bin/vac-put", b"VAC_PUT_AUTH")
    paths, hv = ctx_site["paths"], ctx_site["hv"]
    files = os.path.join(paths.machinetype_dir("vactest"), "files")
    os.makedirs(files)
    with open(os.path.join(files, "ctx.user_data"), "w") as f:
        f.write(TEMPLATE)
    link_guest_dir(real_env, paths)
    mt = machinetype(real_env.guest_iso, user_data="ctx.user_data", heartbeat_file="heartbeat",
                     joboutputs_require_token=True)
    req = prepare_machine(ctx_site, mt, 0, "0b6c3c57-3f6e-4a55-9d1e-3a2b0c1d2e3f",
                          created=CREATED)
    console = os.path.join(req.machine_dir, "console.log")
    with running_role(metadata_httpd.run_role, paths, ctx_site["cfg"], netns=real_env.netns), \
            running_role(mjf_httpd.run_role, paths, ctx_site["cfg"], netns=real_env.netns):
        vm.create_vm(hv, ctx_site["cfg"], paths, req, host=ctx_site["host"])
        statefs.write_started(req.machine_dir, time.time())    # as the factory's executor
        real_env.add_cleanup(lambda: vm.destroy_vm(hv, ctx_site["cfg"], paths, req.machine_name,
                                                   grace_seconds=0, wait=False,
                                                   host=ctx_site["host"]))
        try:
            wait_for(lambda: hv.domain(req.machine_name) is None, BOOT_TIMEOUT, interval=0.2,
                     what="the guest to power off")
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n{console_tail(console)}", pytrace=False)
    log = read(console)
    assert "VACTEST mjf allocated_cpu=1 wall_limit_secs=3600" in log, console_tail(console)
    assert "VACTEST missing key: absent" in log
    assert "VACTEST put without token: HTTP/1.1 401" in log      # joboutputs_require_token
    assert "VACTEST token matches" in log             # /vac/machine_token = its user_data's
    assert "VACTEST put heartbeat: HTTP/1.1 201" in log
    assert "VACTEST put shutdown_message: HTTP/1.1 201" in log
    assert "VACTEST put traversal: HTTP/1.1 403" in log
    slot = statefs.read_slot(paths, FACTORY, 0, heartbeat_file="heartbeat")
    assert slot.shutdown_message == "200 Success"
    assert slot.heartbeat_file_mtime is not None
    _assert_factory_sees_heartbeat_and_message(ctx_site, mt, req.machine_name)
    assert not os.path.exists(os.path.join(paths.slots_dir, "x"))
    vm.destroy_vm(hv, ctx_site["cfg"], paths, req.machine_name, grace_seconds=5,
                  host=ctx_site["host"])


def _assert_factory_sees_heartbeat_and_message(site, mt, name: str) -> None:
    """The factory's own cycle reading (gather + lifecycle planning, machinetype's
    heartbeat_file from the config) sees the heartbeat and the "200 Success" message and
    plans to account and finalise the machine with it."""
    cfg = dataclasses.replace(site["cfg"], machinetypes={mt.name: mt})
    facts = HostFacts(processor_count=4, load_average=0.0)
    now = time.time()
    slots = gather.read_slots(cfg, site["paths"], facts)
    ctx = BackendContext(cfg, site["paths"], now, facts.processor_count, site["hv"])
    inputs = gather.cycle_inputs(cfg, None, site["paths"], now, facts, now - 86400, slots,
                                 gather.open_cycle_backends(ctx, slots),
                                 volumes=lambda _cfg, _paths: [])
    (slot,) = [s for s in inputs.slots if s.name == name]
    assert slot.shutdown_message == "200 Success" and slot.heartbeat_file_mtime is not None
    plan, _capacity = planner.plan_lifecycle(inputs, time.time())
    assert plan.states[name] == STATE_SHUTDOWN
    accounted = [a for a in plan.actions if isinstance(a, Account) and a.slot.name == name]
    assert accounted and accounted[0].slot.shutdown_message == "200 Success"
