"""The machine backends of one factory cycle, found through the registry.

vac.machinemodels maps each machine model to its backend class (``"module:Class"``);
:func:`open_backends` imports and instantiates the backends a cycle needs (those of the
configured machinetypes and of the machines in the slots) and asks each for its
inventory once. A backend that cannot be imported or asked is kept with its problem:
its machinetypes are disabled for the cycle and its machines are left alone.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set

from vac.core.configtypes import Config
from vac.errors import VacError
from vac.machinemodels import DEFAULT_MODEL, backend_of
from vac.model import MachineInfo, SlotRecord
from vac.services.backends.base import BackendContext, BackendUnavailable, MachineBackend

log = logging.getLogger(__name__)

# backend name ("module:Class") -> how to make it (tests and the simulator inject fakes)
BackendMaker = Callable[[BackendContext], MachineBackend]


def load_backend(spec: str) -> BackendMaker:
    """Import the class named ``"package.module:Class"``; BackendUnavailable if it cannot."""
    module_name, _, attr = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise BackendUnavailable(f"backend {spec} cannot be loaded: {e}") from e
    return cls


def needed_backends(cfg: Optional[Config], slots: Iterable[SlotRecord]) -> Set[str]:
    """Backends of the configured machinetypes' models and of the models in used slots."""
    models = {mt.machine_model for mt in cfg.machinetypes.values()} if cfg else set()
    models |= {s.machine_model or DEFAULT_MODEL for s in slots if s.is_used}
    return {b for b in (backend_of(m) for m in models) if b}


@dataclass
class CycleBackends:
    """The cycle's backends by name: open ones with their inventory, or their problem."""

    open: Dict[str, MachineBackend] = field(default_factory=dict)
    inventories: Dict[str, List[MachineInfo]] = field(default_factory=dict)
    problems: Dict[str, str] = field(default_factory=dict)

    def get(self, name: Optional[str]) -> Optional[MachineBackend]:
        return self.open.get(name or "")

    @property
    def machines(self) -> List[MachineInfo]:
        """Every machine of this factory that an open backend listed."""
        return [m for name in sorted(self.inventories) for m in self.inventories[name]]

    def lookup(self, names: Sequence[str]) -> Dict[str, MachineInfo]:
        """Fresh view of ``names`` from every open backend (for fast pacing)."""
        found: Dict[str, MachineInfo] = {}
        for backend in self.open.values():
            try:
                found.update({m.name: m for m in backend.inventory() if m.name in names})
            except VacError as e:
                log.warning("cannot look at the new machines: %s", e)
        return found


def open_backends(ctx: BackendContext, names: Iterable[str],
                  makers: Optional[Mapping[str, BackendMaker]] = None) -> CycleBackends:
    """Instantiate each named backend and take its inventory (once per cycle)."""
    result = CycleBackends()
    for name in sorted(names):
        try:
            maker = (makers or {}).get(name) or load_backend(name)
            backend = maker(ctx)
            result.inventories[name] = backend.inventory()
            result.open[name] = backend
        except VacError as e:
            result.problems[name] = str(e)
    return result
