"""Paths(root): every file and directory location vac touches, rooted anywhere (--root)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Paths:
    """All system locations of one factory, below ``root`` (``/`` in production).

    Tests and multi-factory set-ups on one host pass another root; nothing in vac
    may build a system path except through this value.
    """

    root: str = "/"

    def _p(self, *parts: str) -> str:
        return os.path.join(self.root, *[p.lstrip("/") for p in parts])

    # --- configuration -------------------------------------------------
    @property
    def etc_vac_d(self) -> str:
        return self._p("etc/vac.d")

    @property
    def etc_vac_conf(self) -> str:
        return self._p("etc/vac.conf")

    @property
    def run_vac_conf(self) -> str:
        return self._p("var/run/vac.conf")

    @property
    def etc_hosts(self) -> str:
        return self._p("etc/hosts")

    @property
    def grid_security_certificates(self) -> str:
        return self._p("etc/grid-security/certificates")

    def under_root(self, path: str) -> str:
        """Map an absolute path from the configuration (e.g. root_public_key) below root."""
        return self._p(path) if os.path.isabs(path) else path

    # --- state directory -----------------------------------------------
    @property
    def state_dir(self) -> str:
        return self._p("var/lib/vac")

    def state(self, *parts: str) -> str:
        return os.path.join(self.state_dir, *parts)

    @property
    def version_file(self) -> str:
        return self.state("VERSION")

    @property
    def tmp(self) -> str:
        return self.state("tmp")

    @property
    def imagecache(self) -> str:
        return self.state("imagecache")

    @property
    def pipescache(self) -> str:
        return self.state("pipescache")

    def pipe_cache_file(self, prefix: str) -> str:
        return self.state("pipescache", prefix + ".pipe")

    @property
    def machinetypes_dir(self) -> str:
        return self.state("machinetypes")

    def machinetype_dir(self, name: str) -> str:
        return self.state("machinetypes", name)

    @property
    def slots_dir(self) -> str:
        return self.state("slots")

    def slot_file(self, machine_name: str) -> str:
        return self.state("slots", machine_name)

    @property
    def machines_dir(self) -> str:
        return self.state("machines")

    def machine_dir(self, created: int, machinetype: str, machine_name: str) -> str:
        """Per-machine directory ``machines/CREATED_MACHINETYPE_NAME``."""
        return self.state("machines", f"{int(created)}_{machinetype}_{machine_name}")

    @property
    def finishes_dir(self) -> str:
        return self.state("finishes")

    def finishes_file(self, machinetype: str) -> str:
        return self.state("finishes", machinetype)

    @property
    def counts(self) -> str:
        return self.state("counts")

    def heartbeat(self, role: str) -> str:
        """Heartbeat file of a daemon role (factory, responder, metadata, mjf)."""
        return self.state(f"{role}-heartbeat")

    def pidfile(self, role: str) -> str:
        return self.state(f"{role}.pid")

    @property
    def vacd_pidfile(self) -> str:
        return self.state("vacd.pid")

    @property
    def factory_error(self) -> str:
        return self.state("factory-error")

    @property
    def config_error(self) -> str:
        """Present while the configuration is invalid: every problem (factory-written)."""
        return self.state("config-error")

    @property
    def machinetypes_disabled(self) -> str:
        """Present while machinetypes are disabled: their problems (factory-written)."""
        return self.state("machinetypes-disabled")

    @property
    def last_cycle(self) -> str:
        """What the last factory cycle did, with its plan (factory-written JSON)."""
        return self.state("last-cycle.json")

    @property
    def metrics_dir(self) -> str:
        """prometheus_client's multiprocess files of the roles (emptied at vacd start)."""
        return self.state("metrics")

    @property
    def factory_version_logged(self) -> str:
        return self.state("factory-version-logged")

    @property
    def census_updated(self) -> str:
        return self.state("census-updated")

    @property
    def gocdb_updated(self) -> str:
        return self.state("gocdb-updated")

    @property
    def space_census(self) -> str:
        return self.state("space-census")

    @property
    def space_catalogue(self) -> str:
        return self.state("space-catalogue.json")

    @property
    def apel_archive(self) -> str:
        return self.state("apel-archive")

    @property
    def apel_summary(self) -> str:
        """Day summaries of apel-archive for ``vac apel-sync`` (a cache, see apelspool)."""
        return self.state("apel-summary")

    @property
    def apel_outgoing(self) -> str:
        return self.state("apel-outgoing")

    # --- logs ----------------------------------------------------------
    @property
    def log_dir(self) -> str:
        return self._p("var/log")

    def log_file(self, role: str) -> str:
        """Per-role log, e.g. ``/var/log/vacd-factory``."""
        return self._p("var/log", f"vacd-{role}")

    # --- helpers -------------------------------------------------------
    def state_subdirs(self) -> tuple:
        """Directories vac creates under the state directory (SPEC §11.5)."""
        return (self.tmp, self.imagecache, self.machinetypes_dir, self.pipescache,
                self.apel_archive, self.apel_outgoing, self.slots_dir,
                self.finishes_dir, self.machines_dir, self.space_census)

    @classmethod
    def from_root(cls, root: Optional[str]) -> "Paths":
        return cls(root=os.path.abspath(root) if root else "/")
