"""Values the planner returns and the executor applies: one action per decision, with its reason.

Times are Unix epoch seconds; CPU in seconds; HS06 totals per factory.
The executor performs these in list order and makes no decisions of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from vac.model import SlotRecord


@dataclass(frozen=True)
class WriteHeartbeat:
    """Rewrite a running machine's ``heartbeat`` file (``CPUSECONDS [PERCENT]``)."""

    name: str
    machine_dir: str
    cpu_seconds: float
    cpu_percentage: Optional[float]
    reason: str = "machine is running"


@dataclass(frozen=True)
class LowerShutdownTime:
    """Rewrite ``machinefeatures/shutdowntime`` and ``jobfeatures/shutdowntime_job``."""

    name: str
    machine_dir: str
    shutdown_time: int
    reason: str


@dataclass(frozen=True)
class Destroy:
    """Destroy a machine (ACPI shutdown, ``grace_seconds``, hard destroy, remove its LV).

    ``shutdown_message`` is written to ``joboutputs/shutdown_message`` only if the machine
    has not written one itself. ``machine_dir`` is None for zombies without a directory.
    ``backend`` is the backend that runs the machine (vac.machinemodels, "module:Class");
    None: no machine to stop, only its logical volume to remove.
    """

    name: str
    reason: str
    machine_dir: Optional[str] = None
    shutdown_message: Optional[str] = None
    grace_seconds: int = 0
    backend: Optional[str] = None


@dataclass(frozen=True)
class Account:
    """Write the accounting record (APEL) of a started machine that has finished."""

    slot: SlotRecord
    reason: str


@dataclass(frozen=True)
class Finalise:
    """Create ``finished`` for a shut-down machine and update ``finishes/MACHINETYPE``."""

    slot: SlotRecord
    started: bool
    reason: str


@dataclass(frozen=True)
class ExpireMachineDir:
    """Delete a whole ``machines/CREATED_MACHINETYPE_NAME`` directory."""

    path: str
    reason: str


@dataclass(frozen=True)
class WriteCounts:
    """Rewrite ``counts``: running machines, slots, processors, max processors, HS06."""

    running_machines: int
    slots: int
    running_processors: int
    max_processors: int
    running_hs06: float
    reason: str = "totals after this cycle's lifecycle actions"


@dataclass(frozen=True)
class Preempt:
    """Preempt a running machine to make room for ``for_machinetype``.

    The executor lowers ``machinefeatures/shutdowntime`` and ``jobfeatures/shutdowntime_job``
    to ``grace_until`` (the guest sees it at once through MJF) and writes the ``preempted``
    marker, so later cycles shut it down when the grace ends (code 100 shutdown message).
    """

    name: str
    machine_dir: str
    machinetype: str
    for_machinetype: str
    processors: int
    grace_until: int
    reason: str


@dataclass(frozen=True)
class RecordUsage:
    """Add a finished machine's HS06 x wall seconds to its machinetype's decayed usage."""

    machinetype: str
    hs06_seconds: float
    reason: str = "machine finished (share_half_life_seconds)"


@dataclass(frozen=True)
class Create:
    """Create a machine of ``machinetype`` in slot ``ordinal`` (``name``)."""

    ordinal: int
    name: str
    machinetype: str
    processors: int
    shutdown_time: int
    reason: str


Action = Union[WriteHeartbeat, LowerShutdownTime, Destroy, Account, Finalise,
               ExpireMachineDir, WriteCounts, Preempt, RecordUsage, Create]


def describe(action: Action) -> str:
    """One human-readable line for logs and ``vac plan``."""
    if isinstance(action, WriteHeartbeat):
        pct = "-" if action.cpu_percentage is None else f"{action.cpu_percentage:.1f}%"
        return f"{action.name}: heartbeat {action.cpu_seconds:.0f} CPU s {pct}"
    if isinstance(action, LowerShutdownTime):
        return f"{action.name}: lower shutdown time to {action.shutdown_time} ({action.reason})"
    if isinstance(action, Destroy):
        msg = f" with message {action.shutdown_message!r}" if action.shutdown_message else ""
        return f"{action.name}: destroy{msg} ({action.reason})"
    if isinstance(action, Account):
        return f"{action.slot.name}: account ({action.reason})"
    if isinstance(action, Finalise):
        return f"{action.slot.name}: finalise ({action.reason})"
    if isinstance(action, ExpireMachineDir):
        return f"expire {action.path} ({action.reason})"
    if isinstance(action, WriteCounts):
        return (f"counts: {action.running_machines} machines, {action.slots} slots, "
                f"{action.running_processors}/{action.max_processors} processors, "
                f"{action.running_hs06:.2f} HS06")
    if isinstance(action, Preempt):
        return (f"{action.name}: preempt {action.machinetype} ({action.processors} "
                f"processor(s)) for {action.for_machinetype}, shutdown time lowered to "
                f"{action.grace_until} ({action.reason})")
    if isinstance(action, RecordUsage):
        return (f"usage of {action.machinetype}: add {action.hs06_seconds:.0f} HS06 s "
                f"({action.reason})")
    return (f"{action.name}: create {action.machinetype} with {action.processors} "
            f"processor(s) finishing at {action.shutdown_time} ({action.reason})")
