"""Meta-tests keeping the layering honest (DESIGN-GUIDE §5.1, house rules §5.5).

- core is pure: no OS, clock, socket, subprocess, randomness, HTTP, libvirt, psutil or DNS;
- adapters never import services, and of core only the value/identity modules;
- libvirt is imported in exactly one module, subprocess in exactly one module;
- no shell=True, os.system or os.popen anywhere in the package.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from typing import Iterator, List, Set, Tuple

import pytest

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vac")

CORE_FORBIDDEN = {"os", "time", "socket", "subprocess", "random", "urllib", "http",
                  "libvirt", "psutil", "dns", "requests", "shutil", "tempfile", "threading",
                  "multiprocessing", "signal", "fcntl", "glob", "pathlib"}
ADAPTER_ALLOWED_CORE = {"vac.core.configtypes", "vac.core.naming"}
LIBVIRT_MODULE = os.path.join("adapters", "hypervisor.py")
SUBPROCESS_MODULE = os.path.join("adapters", "runner.py")


def _modules() -> Iterator[Tuple[str, ast.AST]]:
    for dirpath, _dirs, files in os.walk(PKG):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    yield os.path.relpath(path, PKG), ast.parse(f.read(), path)


def _imports(tree: ast.AST) -> Set[str]:
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = list(_modules())


def test_core_is_pure():
    problems: List[str] = []
    for rel, tree in MODULES:
        if not rel.startswith("core" + os.sep):
            continue
        for name in _imports(tree):
            top = name.split(".")[0]
            if top in CORE_FORBIDDEN:
                problems.append(f"vac/{rel} imports {name}")
            if name.startswith(("vac.adapters", "vac.services")):
                problems.append(f"vac/{rel} imports {name}")
    assert not problems, "\n".join(problems)


def test_adapters_do_not_reach_up():
    problems: List[str] = []
    for rel, tree in MODULES:
        if not rel.startswith("adapters" + os.sep):
            continue
        for name in _imports(tree):
            if name.startswith("vac.services") or name.startswith("vac.cli"):
                problems.append(f"vac/{rel} imports {name}")
            if name.startswith("vac.core.") and not any(
                    name == ok or name.startswith(ok + ".") for ok in ADAPTER_ALLOWED_CORE):
                problems.append(f"vac/{rel} imports {name}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("library,owner", [("libvirt", LIBVIRT_MODULE),
                                           ("subprocess", SUBPROCESS_MODULE)])
def test_single_import_site(library, owner):
    importers = sorted(rel for rel, tree in MODULES
                       if any(n.split(".")[0] == library for n in _imports(tree)))
    assert importers in ([], [owner]), f"{library} imported by {importers}"


def test_no_shells():
    problems: List[str] = []
    for rel, tree in MODULES:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr in ("system", "popen") \
                        and isinstance(func.value, ast.Name) and func.value.id == "os":
                    problems.append(f"vac/{rel}:{node.lineno} os.{func.attr}")
                for kw in node.keywords:
                    if kw.arg == "shell" and isinstance(kw.value, ast.Constant) and kw.value.value:
                        problems.append(f"vac/{rel}:{node.lineno} shell=True")
    assert not problems, "\n".join(problems)


def test_no_bare_except():
    problems = [f"vac/{rel}:{node.lineno}" for rel, tree in MODULES for node in ast.walk(tree)
                if isinstance(node, ast.ExceptHandler) and node.type is None]
    assert not problems, "bare except: " + ", ".join(problems)


# --- boundaries of issue 14: backends, vacd's process code, no test glue installed -----

BACKENDS_DIR = os.path.join("services", "backends") + os.sep
CONCRETE_BACKENDS = ("vac.services.backends.libvirt", "vac.services.backends.podman",
                     "vac.adapters.podman")


def test_concrete_backends_are_reached_only_through_the_registry():
    """The cycle knows backends by vac.machinemodels' names, never by import."""
    problems = [f"vac/{rel} imports {name}" for rel, tree in MODULES
                if not rel.startswith(BACKENDS_DIR)
                for name in _imports(tree) if name.startswith(CONCRETE_BACKENDS)]
    assert not problems, "\n".join(problems)


def test_python_daemon_only_in_vacd_package():
    problems = [f"vac/{rel} imports {name}" for rel, tree in MODULES
                if not rel.startswith("vacd" + os.sep)
                for name in _imports(tree) if name.split(".")[0] == "daemon"]
    assert not problems, "\n".join(problems)


def test_installed_package_has_no_test_or_demo_glue():
    """The demo lives in vacdemo/, tests in tests/: the RPM ships neither."""
    problems = [f"vac/{rel} imports {name}" for rel, tree in MODULES
                for name in _imports(tree) if name.split(".")[0] in ("tests", "vacdemo")]
    problems += [f"vac/{rel}" for rel, _tree in MODULES
                 if os.path.basename(rel).startswith(("demo", "test_", "conftest"))]
    assert not problems, "\n".join(problems)


# Heavy libraries each vacd role must not load just by being imported (issue 15 row 6,
# bench/bench_memory.py): every process's resident pages count in vacd's memory, and
# what vacd's parent loads is in every role it forks.
HEAVY = ("libvirt", "cryptography", "dns", "psutil", "prometheus_client", "hypothesis",
         "ssl", "hashlib", "http.client", "urllib.request")
# stdlib modules of 0.5-1.2 MiB each that the light roles do without
STDLIB = ("xml.etree.ElementTree", "email.utils", "tempfile", "shutil", "ctypes.util")
ROLE_MODULES = {"vac.vacd.daemon": HEAVY + STDLIB + ("random", "subprocess"),
                "vac.services.responder": HEAVY + STDLIB,
                "vac.services.metadata_httpd": HEAVY + STDLIB + ("random",),
                "vac.services.mjf_httpd": HEAVY + STDLIB + ("random",),
                "vac.services.metrics_role": HEAVY + STDLIB,
                "vac.services.factory": tuple(h for h in HEAVY if h != "hashlib")}


def test_roles_import_only_what_they_need():
    """A fresh interpreter per entry module (vacd's parent, each role) imports it and
    names the heavy modules that came with it; they belong where they are used."""
    script = ("import importlib, json, sys; importlib.import_module(sys.argv[1]); "
              "print(json.dumps(sorted(h for h in sys.argv[2:] if h in sys.modules)))")
    procs = {name: subprocess.Popen([sys.executable, "-c", script, name, *heavy],
                                    stdout=subprocess.PIPE, text=True,
                                    cwd=os.path.dirname(PKG))
             for name, heavy in ROLE_MODULES.items()}
    loaded = {name: json.loads(proc.communicate(timeout=120)[0]) for name, proc in procs.items()}
    assert loaded == {name: [] for name in ROLE_MODULES}
