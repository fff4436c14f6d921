"""Graceful preemption with a real guest and a real vacd (integration, real_env).

The demo factory (``python -m vacdemo.demo run``: vacd with all four roles in the namespace,
TCG guests from the test ISO) runs with ``etc/vac.conf`` on top of the demo
configuration: one processor, the demo machinetypes switched off, and a preemptible
``low`` machinetype whose guest reads ``$MACHINEFEATURES/shutdowntime`` every 2 s and
powers off, without a shutdown message, as soon as it moves. Once ``low`` fills the
factory a ``high`` machinetype of priority 10 is added. The guest must see its MJF
shutdowntime move and stop within the grace; the factory must record the code-100
preemption message, account the machine (APEL record), not back ``low`` off and create
``high`` in the room made.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e.test_end_to_end import (STOP_SECONDS, _read, archive_records, diagnostics,
                                       machines, record_field, start_demo)
from tests.realenv import console_tail
from vacdemo import demo
from vac.adapters.atomicfile import write_atomic
from vac.constants import PREEMPTED_MESSAGE
from vac.paths import Paths

pytestmark = pytest.mark.integration

GRACE = 40
LIMIT_SECONDS = 240
OVERRIDES = """[settings]
total_processors = 1

[machinetype work]
target_share = 0

[machinetype idle]
target_share = 0

[machinetype low]
target_share = 1
root_image = demo-guest.iso
user_data = low.user_data
max_wallclock_seconds = 3600
fizzle_seconds = 5
backoff_seconds = 600
preemptible = yes
preemption_grace_seconds = {grace}
"""
HIGH = """
[machinetype high]
target_share = 1
priority = 10
root_image = demo-guest.iso
user_data = high.user_data
max_wallclock_seconds = 3600
fizzle_seconds = 15
"""
LOW_USER_DATA = """#!/bin/sh
say() { echo "VACPREEMPT $*"; }
get() { wget -q -O - "$1" 2>/dev/null; }
first=$(get "$MACHINEFEATURES/shutdowntime")
say "shutdowntime $first"
i=0
while [ $i -lt 150 ]; do
  now=$(get "$MACHINEFEATURES/shutdowntime")
  if [ -n "$now" ] && [ "$now" != "$first" ]; then
    say "shutdowntime moved from $first to $now: shutting down"
    exit 0
  fi
  sleep 2
  i=$((i + 1))
done
"""
HIGH_USER_DATA = """#!/bin/sh
echo "VACPREEMPT high running"
sleep 120
"""


def _write_tree(root: str, guest_iso: str) -> Paths:
    paths = Paths.from_root(root)
    os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
    write_atomic(paths.etc_vac_conf, OVERRIDES.format(grace=GRACE))
    for name, text in (("low", LOW_USER_DATA), ("high", HIGH_USER_DATA)):
        files = os.path.join(paths.machinetype_dir(name), "files")
        os.makedirs(files, exist_ok=True)
        write_atomic(os.path.join(files, f"{name}.user_data"), text)
        os.symlink(guest_iso, os.path.join(files, demo.GUEST_IMAGE))
    return paths


def _wait(what: str, proc, check, start: float):
    while True:
        found = check()
        if found:
            return found
        assert proc.poll() is None, f"the demo exited early waiting for {what}"
        assert time.monotonic() - start < LIMIT_SECONDS, f"no {what} in {LIMIT_SECONDS} s"
        time.sleep(1)


def _low_watching_mjf(paths: Paths):
    """A running low machine whose guest has read its shutdowntime (and passed fizzle)."""
    return next((m for m in machines(paths) if m.machinetype == "low" and not m.finished
                 and m.ctime("started") and time.time() - m.ctime("started") > 6
                 and "VACPREEMPT shutdowntime " in _read(m.path("console.log"))), None)


def test_preempted_real_guest_stops_in_grace_and_high_takes_the_room(real_env, tmp_path):
    root = str(tmp_path / "demo")
    paths = _write_tree(root, real_env.guest_iso)
    out = str(tmp_path / "demo.out")
    proc = start_demo(real_env, root, out, ["--no-containers"])     # VMs only

    def stop_and_clean():
        if proc.poll() is None:
            proc.terminate()
            proc.wait(STOP_SECONDS)
        assert demo.clean(root, lock=False) == 0
    real_env.add_cleanup(stop_and_clean)
    start = time.monotonic()
    try:
        low = _wait("low guest reading MJF", proc, lambda: _low_watching_mjf(paths), start)
        original = int(low.text("machinefeatures", "shutdowntime"))
        with open(paths.etc_vac_conf, "a") as f:          # vacd reads it every cycle
            f.write(HIGH)
        added = time.time()
        _wait("high machine", proc, lambda: [m for m in machines(paths)
                                             if m.machinetype == "high"], start)
        _wait("finished low machine", proc, lambda: os.path.exists(low.path("finished")),
              start)
        check_preempted(paths, low, original, added)
    except (AssertionError, TimeoutError) as e:
        pytest.fail(f"{e}\n{diagnostics(real_env, paths, out)}", pytrace=False)


def check_preempted(paths: Paths, low, original: int, added: float) -> None:
    until = int(low.text("preempted").split()[0])
    assert low.text("preempted").split()[1] == "high"
    assert added - 10 <= until - GRACE <= time.time()
    assert int(low.text("machinefeatures", "shutdowntime")) == until < original
    assert int(low.text("jobfeatures", "shutdowntime_job")) == until
    console = _read(low.path("console.log"))
    where = f"{low.dir}\n{console_tail(low.path('console.log'), 40)}"
    assert f"VACPREEMPT shutdowntime moved from {original} to {until}" in console, where
    # it stopped by itself inside the grace: the clean-up destroy wrote code 100
    assert low.message == PREEMPTED_MESSAGE.format(for_machinetype="high"), where
    job_id = low.text("jobfeatures", "job_id")
    records = [t for t in archive_records(paths) if record_field(t, "LocalJobId") == job_id]
    assert len(records) == 1
    # EndTime is when the factory saw the machine stopped ("finished" may come a cycle later,
    # once the frozen record is archived)
    stopped = int(record_field(records[0], "EndTime"))
    assert stopped < until + 5, "the guest did not stop within the grace"
    log = _read(paths.log_file("factory"))
    assert (f"{low.name}: destroying: clean up after the machine stopped" in log or
            f"{low.name}: destroying: paused without shutting down" in log)   # powering off
    assert f"{low.name}: preempting low" in log
    assert "For low: " in log
    assert not any("For low: " in line and "backing off" in line for line in log.splitlines())
    high = [m for m in machines(paths) if m.machinetype == "high"]
    assert high and high[0].created >= stopped - 1
