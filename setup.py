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
    install_requires=[
        "libvirt-python",
        "dnspython",
        "psutil",
        "python-daemon",
        "cryptography",
        "dirq",
        "setproctitle",
    ],
    extras_require={
        "test": ["pytest", "hypothesis"],
    },
    entry_points={
        "console_scripts": [
            "vacd = vac.daemon:main",
            "vac = vac.cli:main",
            "check-vacd = vac.nagios:main",
        ],
    },
)
