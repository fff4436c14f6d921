"""The machine models vac can run, and the backend that runs each: the registry.

As Ganeti maps hypervisor names to classes, each line maps one ``machine_model`` to

* ``kind``: what ``vac machines`` shows (``VM``, ``DC`` for a Docker-style container,
  ``SC`` for a Singularity container, as the original did);
* ``backend``: the class implementing
  :class:`vac.services.backends.base.MachineBackend`, as ``"module:Class"``. It is imported
  only when a machinetype of the model is configured or a slot holds such a machine;
* ``unavailable``: why this build cannot run the model (a machinetype of it is disabled
  with this message, and ``backend`` is None);
* ``mjf_paths``: where the machine finds machinefeatures, jobfeatures and joboutputs
  inside its own file system (None: only over HTTP from 169.254.169.253, as VMs do). The
  user_data patterns ``##user_data_machinefeatures_url##`` etc. give these.

Adding a machine model is one new backend module and one line in ``MODELS``. Pure data
(foundation: no imports of vac layers), so core validates ``machine_model`` against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Optional, Tuple

LIBVIRT = "vac.services.backends.libvirt:LibvirtBackend"
PODMAN = "vac.services.backends.podman:PodmanBackend"
NO_APPTAINER = ("this build cannot run it: Apptainer (Singularity) cannot be installed "
                "from the package registries of this platform (Debian 12 and PyPI have "
                "none); use machine_model = docker, which runs OCI images with podman")


@dataclass(frozen=True)
class MachineModel:
    """One registry line (see the module docstring)."""

    name: str
    kind: str
    backend: Optional[str]
    mjf_paths: Optional[Tuple[str, str, str]] = None
    unavailable: Optional[str] = None

    @property
    def backend_name(self) -> str:
        """Short name of the backend: the last part of its module (``libvirt``)."""
        return short_name(self.backend or "")


def short_name(backend: str) -> str:
    """``libvirt`` for ``vac.services.backends.libvirt:LibvirtBackend``."""
    return backend.partition(":")[0].rsplit(".", 1)[-1]


MODELS: Mapping[str, MachineModel] = MappingProxyType({m.name: m for m in (
    MachineModel("cernvm3", "VM", LIBVIRT),
    MachineModel("cernvm4", "VM", LIBVIRT),
    MachineModel("vm-raw", "VM", LIBVIRT),
    MachineModel("docker", "DC", PODMAN,
                 ("/etc/machinefeatures", "/etc/jobfeatures", "/var/spool/joboutputs")),
    MachineModel("singularity", "SC", None,
                 ("/tmp/machinefeatures", "/tmp/jobfeatures", "/tmp/joboutputs"),
                 unavailable=NO_APPTAINER),
)})
DEFAULT_MODEL = "cernvm3"        # a slot file without a model (SPEC §3.3) and the default


def machine_model(name: Optional[str]) -> Optional[MachineModel]:
    """The registry line of ``name`` (None: unknown, or no name)."""
    return MODELS.get(name or "")


def kind_of(name: Optional[str]) -> str:
    """``VM``/``DC``/``SC`` for ``vac machines``; ``??`` for an unknown model."""
    model = machine_model(name)
    return model.kind if model is not None else "??"


def backend_of(name: Optional[str]) -> Optional[str]:
    """The ``"module:Class"`` of the backend running ``name`` (None: unknown model)."""
    model = machine_model(name)
    return model.backend if model is not None else None
