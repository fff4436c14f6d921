"""Start and observe a real vacd process on a --root tree (helpers for tests/daemon)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Callable, List, Optional

import psutil

from tests import realenv
from vac.paths import Paths

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MINIMAL_CONF = """[settings]
vac_space = vac01.example.com
factory_hostname = factory1.example.com
factories = factory1.example.com
total_processors = 2
"""


def wait_for(predicate: Callable[[], object], timeout: float = 15.0,
             what: str = "condition") -> object:
    """realenv.wait_for (50 ms polls) with a 15 s default, failing as an assertion."""
    try:
        return realenv.wait_for(predicate, timeout, what=what)
    except TimeoutError as e:
        raise AssertionError(str(e)) from None


def make_root(paths: Paths, conf: str = MINIMAL_CONF) -> None:
    os.makedirs(paths.state_dir, exist_ok=True)
    os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
    with open(paths.etc_vac_conf, "w", encoding="utf-8") as f:
        f.write(conf)


def vacd_argv(paths: Paths, *extra: str,
              registry: Optional[str] = "tests.daemon.standin_roles:REGISTRY") -> List[str]:
    argv = [sys.executable, "-m", "vac.vacd.daemon", "--root", paths.root]
    if registry:
        argv += ["--role-registry", registry]
    return argv + list(extra)


def run_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Vacd:
    """A foreground vacd child of the test process."""

    def __init__(self, paths: Paths, *extra: str, registry: Optional[str] = None) -> None:
        self.paths = paths
        reg = registry or "tests.daemon.standin_roles:REGISTRY"
        self.proc = subprocess.Popen(vacd_argv(paths, "--foreground", *extra, registry=reg),
                                     cwd=REPO, env=run_env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def children(self) -> dict:
        """Role name (from the process name) -> pid of vacd's live children."""
        try:
            kids = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return {}
        out = {}
        for kid in kids:
            try:
                if kid.status() != psutil.STATUS_ZOMBIE:
                    out[kid.name()] = kid.pid
            except psutil.NoSuchProcess:
                continue
        return out

    def wait_roles(self, roles, timeout: float = 15.0) -> dict:
        names = {f"vacd-{r}" for r in roles}
        return wait_for(lambda: (lambda c: c if names <= set(c) else None)(self.children()),
                        timeout, f"children {sorted(names)}")

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, self.proc.stderr_text = self.proc.communicate(timeout=timeout)
            return self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            for pid in self.children().values():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
        if self.proc.stdout and not self.proc.stdout.closed:
            self.stop()


def log_text(paths: Paths, role: str) -> str:
    try:
        with open(paths.log_file(role), encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""
