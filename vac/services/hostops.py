"""The host-side adapters the VM services use, bundled so tests can inject doubles."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import vac
from vac.adapters import runner
from vac.adapters.images import ImageCache
from vac.adapters.lvm import Lvm
from vac.adapters.netlink import NetLink
from vac.paths import Paths

EMULATORS = ("/usr/libexec/qemu-kvm", "/usr/bin/qemu-kvm", "/usr/bin/qemu-system-x86_64")


@dataclass
class HostOps:
    """LVM, bridge/firewall commands, image cache, qemu-img runner, clock and sleep."""

    lvm: Lvm
    net: NetLink
    images: ImageCache
    run: Callable[..., runner.Result] = runner.run
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    emulators: Sequence[str] = field(default_factory=lambda: EMULATORS)

    def find_emulator(self) -> Optional[str]:
        """The first existing qemu-kvm style binary (SPEC §3.4.1), or None."""
        for path in self.emulators:
            if os.access(path, os.X_OK):
                return path
        return None


def default_host(paths: Paths, run: Callable[..., runner.Result] = runner.run,
                 netns_prefix: Sequence[str] = (), fetch: Optional[Callable] = None) -> HostOps:
    """Real adapters; ``netns_prefix`` runs bridge commands in libvirtd's namespace."""
    ca_dir = paths.grid_security_certificates
    images = ImageCache(paths.imagecache, paths.tmp, user_agent=f"Vac {vac.__version__}",
                        ca_dir=ca_dir if os.path.isdir(ca_dir) else None, fetch=fetch)
    return HostOps(lvm=Lvm(run=run), net=NetLink(run=run, prefix=netns_prefix),
                   images=images, run=run)
