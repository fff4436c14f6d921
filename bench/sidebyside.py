"""What the side-by-side benchmarks share: the baseline revision's ``vac`` extracted into
a temporary directory (run from it through PYTHONPATH), and writing the results."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from typing import Iterator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# main before the event-loop HTTP server: thread per connection, 128-connection cap,
# per-read timeouts, JOBOUTPUTS checked without counting uploads, bind retried every 10 s
BASELINE_REV = "38e2225"


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[str]:
    """A directory holding ``vac/`` of git revision ``rev``, for PYTHONPATH."""
    archive = subprocess.run(["git", "-C", REPO, "archive", rev, "vac"], check=True,
                             capture_output=True).stdout
    with tempfile.TemporaryDirectory() as into:
        subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
        yield into


def write_results(path: str, text: str) -> None:
    """Write ``text`` to bench/results/... and show it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(text, end="")
