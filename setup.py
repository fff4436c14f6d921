"""Install the vac package and its console scripts (vacd, vac, check-vacd)."""

import re

from setuptools import find_packages, setup

with open("vac/__init__.py", encoding="utf-8") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="vac",
    version=VERSION,
    description="Vac: autonomous vacuum-model VM factory for WLCG/GridPP worker hosts",
    license="BSD-2-Clause",
    python_requires=">=3.9",
    packages=find_packages(include=["vac", "vac.*"]),
    include_package_data=True,
    package_data={"vac": ["data/*", "data/**/*"]},
    # Minimum versions: those of EL9/EPEL 9 (tools/el9-requirements.txt, vac.spec).
    install_requires=[
        "libvirt-python>=8.0.0",
        "dnspython>=2.1.0",
        "psutil>=5.8.0",
        "cryptography>=36.0.1",
        "dirq>=1.8",
    ],
    # Optional imports (vac.spec: Recommends): python-daemon only for vacd without
    # --foreground (systemd runs it in the foreground), setproctitle only for ps output.
    extras_require={
        "daemon": ["python-daemon>=2.3.0"],
        "proctitle": ["setproctitle>=1.2.2"],
        # only for the metrics role (metrics_address): Debian 12 has 0.16, EPEL 9 0.21
        "metrics": ["prometheus-client>=0.16"],
        "test": ["pytest", "hypothesis", "python-daemon>=2.3.0", "setproctitle>=1.2.2",
                 "prometheus-client>=0.16"],
    },
    entry_points={
        "console_scripts": [
            "vacd = vac.vacd.daemon:main",
            "vac = vac.cli:main",
            "check-vacd = vac.nagios:main",
        ],
    },
)
