"""vac on EL9's Python: the unit tests run again under Python 3.9 with the oldest library
versions vac supports, those of EL9/EPEL 9 (tools/el9-requirements.txt: cryptography 36,
psutil 5.8, dnspython 2.1, python-daemon 2.3, dirq 1.8, libvirt-python 9.0), in the
virtualenv of tools/py39env.sh (made by make test, cached below the test environment).

Left out there, to keep this run short: integration tests (they need the shared real
environment and run once, under make test), tests marked slow, the fuzz tests (pure
input-robustness loops over code the other tests cover) and tests/packaging (they check
the packaging tools, not vac's code, and include this test)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def python39():
    res = subprocess.run(["bash", os.path.join(REPO, "tools", "py39env.sh")],
                         capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        message = f"no Python 3.9 environment: {res.stderr.strip()}"
        if os.environ.get("VAC_REQUIRE_TESTENV") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return res.stdout.strip()


def test_the_environment_has_python_39_and_the_el9_versions(python39):
    out = subprocess.run([python39, "-c", """
import sys
from importlib.metadata import version
print("%d.%d" % sys.version_info[:2])
for name in ("cryptography", "psutil", "dnspython", "python-daemon", "dirq",
             "setproctitle", "libvirt-python", "prometheus-client"):
    print(name, version(name))
"""], capture_output=True, text=True, check=True, timeout=60).stdout.split("\n")
    assert out[0] == "3.9"
    with open(os.path.join(REPO, "tools", "el9-requirements.txt"), encoding="utf-8") as f:
        pinned = re.findall(r"^([A-Za-z0-9_.-]+)==([0-9.]+)", f.read(), re.M)
    assert sorted(line for line in out[1:] if line) == sorted(f"{n} {v}" for n, v in pinned)
    assert dict(pinned)["cryptography"].startswith("36.")


def test_unit_tests_pass_on_python_39_with_the_oldest_libraries(python39):
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONDONTWRITEBYTECODE="1")
    env.pop("VAC_REQUIRE_TESTENV", None)
    # a short base directory: some tests bind AF_UNIX sockets (108 bytes) below it
    basetemp = tempfile.mkdtemp(prefix="py39-")
    try:
        res = subprocess.run([python39, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "-m", "not integration and not slow", "-k", "not fuzz",
                              "--ignore=tests/packaging", "--basetemp", basetemp, "tests"],
                             cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=1200)
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)
    tail = "\n".join(res.stdout.splitlines()[-40:]) + res.stderr[-2000:]
    assert res.returncode == 0, tail
    summary = res.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed > 850 and "failed" not in summary and "error" not in summary, summary
