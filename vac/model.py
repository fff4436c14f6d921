"""Frozen value types shared by every layer: domains, slot records, host facts.

Times are Unix epoch seconds; CPU in seconds; memory in bytes unless the name says MiB.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Optional


class DomainState(enum.Enum):
    """Hypervisor domain states, translated from libvirt at the adapter boundary."""

    NOSTATE = "nostate"
    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"      # being shut down
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    PMSUSPENDED = "pmsuspended"

    @property
    def is_active(self) -> bool:
        """True for the states the original counted as running (running or blocked)."""
        return self in (DomainState.RUNNING, DomainState.BLOCKED)


@dataclass(frozen=True)
class DomainInfo:
    """One hypervisor domain as seen in a cycle."""

    name: str
    uuid: str
    state: DomainState
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class MachineInfo:
    """One machine of this factory as its backend sees it in a cycle (any model).

    ``backend`` names the backend that listed it (vac.machinemodels, "module:Class");
    ``state`` is translated into DomainState by that backend; ``cpu_seconds`` is the CPU
    time it has used so far (for the heartbeat file and APEL), ``memory_bytes`` its
    current memory use (None where the backend cannot tell).
    """

    name: str
    uuid: str
    state: DomainState
    cpu_seconds: float = 0.0
    memory_bytes: Optional[int] = None
    backend: str = ""


@dataclass(frozen=True)
class AccountingInputs:
    """What a machine's APEL record needs besides its own times, fixed when it is created.

    Written to ``accounting.json`` in the machine directory at creation, so the record no
    longer depends on the configuration of the day the machine finishes (SPEC §9).
    ``from_config`` is True only for a machine directory made by an older vac, whose
    inputs were rebuilt from today's configuration (never written to disk).
    """

    site: str
    submit_host: str                     # <space>/vac-<factory hostname>
    local_user_id: str                   # factory hostname
    global_user_name: str                # DN built from the space name
    fqan: Optional[str]
    hs06_per_processor: Optional[float]  # None: record archived but not sent
    hepscore23_per_processor: Optional[float]
    message_version: str                 # "0.3" or "0.4"
    publish: bool                        # queue for ssmsend (gocdb_sitename was set)
    fizzle_seconds: int                  # a machine that ran less gets no record
    memory_kb: int                       # allocated memory, if max_rss_bytes is absent
    from_config: bool = False


@dataclass(frozen=True)
class SlotRecord:
    """Everything the state directory says about one slot (read-only snapshot).

    ``created`` .. ``model`` come from ``slots/NAME``; the rest from the machine directory
    ``machines/CREATED_MACHINETYPE_NAME`` (None where a file is absent or unreadable).
    """

    ordinal: int
    name: str
    created: Optional[int] = None
    machinetype: Optional[str] = None
    machine_model: Optional[str] = None
    machine_dir: Optional[str] = None          # path, set only if the directory exists
    started_time: Optional[float] = None       # ctime of ``started``
    heartbeat_time: Optional[float] = None     # ctime of ``heartbeat``
    heartbeat_mtime: Optional[float] = None    # mtime of ``heartbeat`` (expiry)
    finished_time: Optional[float] = None      # ctime of ``finished``
    cpu_seconds: Optional[float] = None        # first word of ``heartbeat``
    cpu_percentage: Optional[float] = None     # second word of ``heartbeat``
    shutdown_time_job: Optional[int] = None    # jobfeatures/shutdowntime_job
    processors: Optional[int] = None           # jobfeatures/allocated_cpu
    hs06: Optional[float] = None               # machinefeatures/hs06
    max_rss_bytes: Optional[int] = None        # jobfeatures/max_rss_bytes
    uuid: Optional[str] = None                 # jobfeatures/job_id
    ip: Optional[str] = None
    accounting_fqan: Optional[str] = None
    heartbeat_file_mtime: Optional[float] = None   # mtime of joboutputs/<heartbeat_file>
    shutdown_message: Optional[str] = None     # stripped joboutputs/shutdown_message
    shutdown_message_time: Optional[float] = None  # its ctime
    accounting: Optional[AccountingInputs] = None  # accounting.json (None if absent)
    record_frozen: bool = False                # apel-record/ holds the frozen APEL record
    preempted_until: Optional[int] = None      # ``preempted``: end of the preemption grace
    preempted_for: Optional[str] = None        # ``preempted``: machinetype it makes room for

    @property
    def is_used(self) -> bool:
        """The slot file names a machine whose directory exists."""
        return self.created is not None and self.machine_dir is not None

    def updated(self, **changes: Any) -> "SlotRecord":
        """``dataclasses.replace(self, **changes)`` without running ``__init__`` over all
        the fields again (the planner projects every slot each cycle; SlotRecord has no
        ``__post_init__``). An unknown field name raises TypeError, as with replace."""
        unknown = changes.keys() - self.__dict__.keys()
        if unknown:
            raise TypeError(f"SlotRecord has no field {sorted(unknown)[0]!r}")
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new


@dataclass(frozen=True)
class HostFacts:
    """Facts about the factory host gathered once per cycle (psutil / statvfs)."""

    processor_count: int
    load_average: float                 # max of the 1, 5 and 15 minute averages
    load_average_15: float = 0.0
    mem_total_bytes: int = 0
    mem_available_bytes: int = 0
    state_free_bytes: int = 0           # free bytes in the state directory's filesystem
