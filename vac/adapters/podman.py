"""Rootful podman's command line (the only place vac talks to podman).

Containers are found by the label ``vac.factory=FACTORY``; CPU time (nanoseconds) and
memory (bytes) come from ``podman stats``. Every failure is a CommandError naming the
command; :meth:`Podman.check` turns a missing or broken podman into one PodmanError line.
:meth:`Podman.ensure_network` owns vac's podman network configuration file (the CNI
configuration list that vac.core.containernet renders) in podman's CNI directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from vac.adapters import runner
from vac.adapters.atomicfile import read_text, write_atomic
from vac.errors import CommandError, VacError

FACTORY_LABEL = "vac.factory"
TIMEOUT_SECONDS = 120.0
CNI_CONFIG_DIR = "/etc/cni/net.d"      # podman's default cni_config_dir (containers.conf)


class PodmanError(VacError):
    """podman is missing or cannot be used (one line)."""


@dataclass(frozen=True)
class Container:
    """One container as ``podman ps -a`` lists it."""

    id: str
    name: str
    state: str           # created, running, exited, stopping, paused, ...
    exit_code: int
    exited_at: int = 0   # Unix time (whole seconds) of its exit; 0 if it has not exited


class Podman:
    """Runs ``podman`` through ``run`` (vac.adapters.runner.run by default)."""

    def __init__(self, run: Callable[..., runner.Result] = runner.run,
                 binary: str = "podman", cni_config_dir: str = CNI_CONFIG_DIR):
        self.run, self.binary, self.cni_config_dir = run, binary, cni_config_dir

    def _podman(self, *args: str, timeout: float = TIMEOUT_SECONDS) -> str:
        return self.run([self.binary, *args], timeout=timeout).stdout

    def check(self) -> str:
        """PodmanError unless ``podman info`` answers; returns podman's cgroup manager
        (``cgroupfs`` or ``systemd``; '' if it does not say)."""
        try:
            out = self._podman("info", "--format",
                               "{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}", timeout=60)
        except (CommandError, OSError) as e:
            raise PodmanError(f"podman cannot be used ({e}): install podman "
                              "(Debian/EL9 package podman) to run docker machinetypes") from e
        words = out.split()
        return words[1] if len(words) > 1 else ""

    def ensure_network(self, name: str, conflist_text: str) -> bool:
        """Make podman's network ``name`` the CNI configuration ``conflist_text`` (the file
        ``CNI_CONFIG_DIR/NAME.conflist``, rewritten only if it differs). PodmanError if
        podman's network backend is not CNI (netavark cannot use an existing bridge
        without managing its firewall). True if the file was (re)written."""
        backend = self._podman("info", "--format", "{{.Host.NetworkBackend}}",
                               timeout=60).strip()
        if backend and backend != "cni":
            raise PodmanError(f"podman's network backend is {backend}: vac needs "
                              'network_backend = "cni" in containers.conf (section '
                              "[network]) and the CNI plugins (containernetworking-plugins)")
        path = os.path.join(self.cni_config_dir, name + ".conflist")
        if read_text(path) == conflist_text:
            return False
        try:
            os.makedirs(self.cni_config_dir, exist_ok=True)
            write_atomic(path, conflist_text)
        except OSError as e:
            raise PodmanError(f"cannot write podman network {name} ({path}): {e}") from e
        return True

    def containers(self, factory: str) -> List[Container]:
        """Every container labelled for ``factory``, running or not."""
        out = self._podman("ps", "-a", "--filter", f"label={FACTORY_LABEL}={factory}",
                           "--format", "json")
        try:
            rows = json.loads(out or "[]")
        except ValueError as e:
            raise CommandError(f"podman ps: unreadable output: {e}") from e
        return [Container(r["Id"], (r.get("Names") or [""])[0], r.get("State", ""),
                          int(r.get("ExitCode") or 0),
                          int(r.get("ExitedAt") or 0) if r.get("Exited") else 0)
                for r in rows]

    def create(self, options: Sequence[str], image: str, command: Sequence[str]) -> str:
        """``podman create``; returns the new container's full ID."""
        return self._podman("create", *options, image, *command).strip().splitlines()[-1]

    def start(self, name: str) -> None:
        self._podman("start", name)

    def stop(self, name: str, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_seconds`` (whole seconds)."""
        self._podman("stop", "-t", str(max(0, int(grace_seconds))), name,
                     timeout=TIMEOUT_SECONDS + grace_seconds)

    def remove(self, name: str) -> None:
        """Remove the container (forced, no wait); an unknown name is not an error."""
        self._podman("rm", "-f", "-i", "-t", "0", name)

    def stats(self, name: str) -> Optional[Tuple[int, int]]:
        """(CPU nanoseconds, memory bytes) of a running container; None if not running."""
        try:
            out = self._podman("stats", "--no-stream", "--no-reset", "--format",
                               "{{.ContainerStats.CPUNano}} {{.ContainerStats.MemUsage}}",
                               name, timeout=60)
        except CommandError:
            return None
        try:
            cpu, mem = out.split()[:2]
            return int(cpu), int(mem)
        except ValueError:
            return None

    def has_image(self, ref: str) -> bool:
        try:
            self._podman("image", "exists", ref, timeout=60)
        except CommandError:
            return False
        return True

    def pull(self, ref: str) -> None:
        self._podman("pull", "-q", ref, timeout=1800)
