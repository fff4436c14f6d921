"""Six factories in one space polling by subspaces, each in its own network namespace
(the three-factory test's set-up), f6 speaking only the original protocol: no subspace
options, so its responder ignores the ``subspace`` field and it asks everybody itself.

Real factory cycles (libvirt's test driver) in real namespaces over real UDP: the new
factories count other subspaces by one member's sums, f6 is still asked and counted,
and the space's split still converges to the target shares 1:3.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from vac.paths import Paths
from tests.integration.test_multifactory import (ATLAS, DOMAIN, LHCB, SUBNET, Space,
                                                 running_split, write)

pytestmark = pytest.mark.integration

COUNT, PROCESSORS, ORIGINAL = 6, 4, 5          # f6 (index 5) is the original factory
SETTINGS = """[settings]
vac_space = vac01.{domain}
factories = f1 f2 f3 f4 f5 f6
udp_timeout_seconds = 2
"""
SUBSPACES = "subspace_min_factories = 4\nsubspace_size = 2\n"


@pytest.fixture
def space(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces)")
    made = Space(str(tmp_path), COUNT)
    try:
        made.setup_network()
        for i, root in enumerate(made.roots):
            conf = SETTINGS + ("" if i == ORIGINAL else SUBSPACES) + \
                (ATLAS if i == 0 else LHCB + ATLAS)          # f1 runs only atlas
            write(Paths(root).etc_vac_conf, conf.format(domain=DOMAIN))
            write(os.path.join(root, "user_data"), "##user_data_uuid##\n")
        made.start_responders("tests.integration.factoryhost", "--cycles", "10",
                              "--processors", str(PROCESSORS), "--pause", "0.9",
                              "--start-at", "0", stagger=0.15)
        yield made
    finally:
        made.teardown()


def test_subspace_polling_with_an_original_factory_reaches_the_shares(space):
    deadline = time.monotonic() + 120
    while not all("cycles done" in space.log(i) for i in range(COUNT)):
        for i in range(COUNT):
            assert space.responders[i].poll() is None, space.log(i)
        assert time.monotonic() < deadline, [space.log(i)[-3000:] for i in range(COUNT)]
        time.sleep(0.2)
    split = running_split(space)
    assert sum(split.values()) == COUNT * PROCESSORS, split
    assert abs(split["lhcb"] - COUNT * PROCESSORS // 4) <= 1, split
    # the new factories counted other subspaces by one member's sums ...
    by_sums = [int(m) for i in range(COUNT) if i != ORIGINAL
               for m in re.findall(r"(\d+) of \d+ other subspaces counted by their sums",
                                   space.log(i))]
    assert by_sums and max(by_sums) >= 1, [space.log(i)[-2000:] for i in range(COUNT)]
    assert "Space polled by subspaces" not in space.log(ORIGINAL)
    for i in range(COUNT):
        digest = os.path.exists(Paths(space.roots[i]).state("subspace-digest"))
        assert digest == (i != ORIGINAL), i
    # ... the original factory asked everybody else and was answered by all ...
    original = f"{SUBNET}.{ORIGINAL + 1}"
    for i in range(COUNT):
        if i != ORIGINAL:
            assert original in space.answered_sources(i), (i, space.log(i)[-2000:])
    # ... and was still asked, directly or for its subspace's sums, by every factory
    asked_it = space.answered_sources(ORIGINAL)
    assert asked_it >= {f"{SUBNET}.{j}" for j in range(1, COUNT + 1) if j != ORIGINAL + 1}, \
        asked_it
