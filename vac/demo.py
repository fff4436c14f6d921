"""``python -m vac.demo run|clean --root DIR``: the embedded demo factory behind ``make demo``.

``run`` writes the demo configuration below DIR (space demo.vac.test, two machinetypes
with target shares 1:2, TCG guests), validates it exactly as ``vac --root DIR config
--check`` does and prints the effective configuration. ``clean`` removes DIR (only if
it is a demo tree).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import List, Optional

from vac.adapters.atomicfile import write_atomic
from vac.cli import main as vac_main
from vac.paths import Paths

MARKER = ".vac-demo"
DEMO_CONF_NAME = "10-demo.conf"
DEMO_CONF = """\
# Embedded demo configuration written by "python -m vac.demo run" (make demo).
[settings]
vac_space = demo.vac.test
factory_hostname = factory1.vac.test
factories = .
domain_type = qemu
mb_per_processor = 512
hs06_per_processor = 10.0
gocdb_sitename = DEMO-SITE
fix_networking = true

[machinetype small]
target_share = 1
machine_model = vm-raw
root_image = demo-guest.img
user_data = user_data
max_wallclock_seconds = 3600
fizzle_seconds = 120
backoff_seconds = 60
accounting_fqan = /demo/Role=NULL/Capability=NULL

[machinetype large]
target_share = 2
machine_model = vm-raw
root_image = demo-guest.img
user_data = user_data
max_wallclock_seconds = 7200
fizzle_seconds = 120
backoff_seconds = 60
accounting_fqan = /demo/Role=production/Capability=NULL
"""


def write_demo_tree(root: str) -> str:
    """Write the demo configuration below ``root``; return the file written."""
    paths = Paths.from_root(root)
    os.makedirs(paths.etc_vac_d, exist_ok=True)
    write_atomic(os.path.join(paths.root, MARKER), "vac demo tree\n")
    conf = os.path.join(paths.etc_vac_d, DEMO_CONF_NAME)
    write_atomic(conf, DEMO_CONF)
    return conf


def run(root: str) -> int:
    """Write the demo tree, check it and print it; exit status (0 = valid)."""
    conf = write_demo_tree(root)
    print(f"vac demo: configuration written to {conf}")
    status = vac_main(["--root", root, "config", "--check"])
    if status != 0:
        return status
    return vac_main(["--root", root, "config"])


def clean(root: str) -> int:
    """Remove the demo tree ``root`` if it carries the demo marker."""
    root = os.path.abspath(root)
    if not os.path.exists(root):
        return 0
    if root == "/" or not os.path.exists(os.path.join(root, MARKER)):
        print(f"vac demo: {root} is not a demo tree (no {MARKER}); not removed",
              file=sys.stderr)
        return 1
    shutil.rmtree(root)
    print(f"vac demo: removed {root}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vac.demo", description=__doc__)
    parser.add_argument("action", choices=("run", "clean"))
    parser.add_argument("--root", required=True, metavar="DIR",
                        help="directory that holds the demo factory's whole file tree")
    args = parser.parse_args(argv)
    return run(args.root) if args.action == "run" else clean(args.root)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
