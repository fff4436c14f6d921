"""Immutable typed values of the merged configuration: Settings, Machinetype, Config.

Attribute names are the option names of vac.conf(5) (SPEC §1.4-1.6). Units are in the
names or stated below: seconds, MiB (mb_*), GB = 10^9 bytes (disk_gb_*), HS06.
Where every value came from is kept in ``Config.origins``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Optional, Tuple

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Origin:
    """Where a value came from: a file and 1-based line, or the built-in default."""

    file: Optional[str] = None
    line: Optional[int] = None

    @property
    def is_default(self) -> bool:
        return self.file is None

    def __str__(self) -> str:
        if self.file is None:
            return "(default)"
        return f"{self.file}:{self.line}" if self.line else self.file


DEFAULT_ORIGIN = Origin()


@dataclass(frozen=True)
class Settings:
    """The ``[settings]`` section after defaults, aliases and validation."""

    vac_space: str
    factories: Tuple[str, ...] = ()
    description: Optional[str] = None
    gocdb_sitename: Optional[str] = None
    gocdb_cert_file: Optional[str] = None
    gocdb_key_file: Optional[str] = None
    total_processors: Optional[int] = None        # None: processors counted on the host
    overload_per_processor: float = 1.25
    singularity_user: Optional[str] = None
    volume_group: Optional[str] = None             # None: vac_volume_group if it exists
    disk_gb_per_processor: Optional[int] = None    # GB (10^9 bytes)
    udp_timeout_seconds: float = 10.0
    fix_networking: bool = True
    root_public_key: str = "/root/.ssh/id_rsa.pub"
    forward_dev: Optional[str] = None
    version_logger: int = 0                        # messages per day; off by default
    version_logger_hostport: str = "vac-version-logger.gridpp.ac.uk:8884"
    vacmon_hostport: Tuple[str, ...] = ()
    processors_per_superslot: int = 1
    mb_per_processor: int = 2048                   # MiB
    shutdown_time: Optional[int] = None            # Unix seconds
    draining: bool = False
    hs06_per_processor: Optional[float] = None
    machinefeatures_options: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    user_data_options: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    user_data_files: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    # --- new in this implementation ---
    factory_hostname: str = ""                     # resolved by the loader: option or uname
    libvirt_uri: str = "qemu:///system"
    domain_type: str = "kvm"                       # kvm | qemu (TCG, no KVM-only parts)
    cycle_seconds: int = 60                        # pause between factory cycles
    max_creations_per_cycle: int = 1
    apel_message_version: str = "0.3"              # 0.3 | 0.4
    log_destination: str = "files"                 # files | journald
    vacquery_port: int = 995                       # UDP port of every responder in the space
    responder_bind_address: str = ""               # "" = all addresses
    query_allowed_sources: Tuple[str, ...] = ()    # CIDR networks answered besides factories
    query_key_file: Optional[str] = None           # space key for HMAC-SHA256 VacQuery
    query_unkeyed_sources: Tuple[str, ...] = ()    # CIDR networks exempt from the key
    metadata_bind_address: str = "169.254.169.254"
    metadata_port: int = 80
    mjf_bind_address: str = "169.254.169.253"
    mjf_port: int = 80
    metrics_address: str = ""                      # "" = no metrics role; else HOST:PORT
    joboutputs_max_file_bytes: int = 100 * 1024 * 1024
    joboutputs_max_total_bytes: int = 1024 * 1024 * 1024
    joboutputs_max_files: int = 1024
    shutdown_grace_seconds: int = 30               # ACPI shutdown before hard destroy
    check_iptables: bool = True
    share_half_life_seconds: int = 0               # 0: shares by running HS06 only
    fast_cycle_seconds: int = 5                    # pause after a creation whose guests run
    manage_iptables: bool = True                   # vac installs the guest firewall chains
    host_tcp_ports_for_machines: Tuple[int, ...] = ()   # extra TCP ports on .253 for guests
    subspace_min_factories: int = 0                # 0: never by subspaces; smaller: whole
    subspace_size: int = 0                         # factories per subspace; 0: about sqrt(N)


@dataclass(frozen=True)
class Machinetype:
    """One ``[machinetype NAME]`` (local or generated from a vacuum pipe)."""

    name: str
    target_share: float = 0.0
    machine_model: str = "cernvm3"
    root_image: Optional[str] = None
    user_data: Optional[str] = None
    user_data_options: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    user_data_files: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    user_data_proxy: bool = False
    legacy_proxy: bool = False
    min_processors: int = 1
    max_processors: int = 1
    max_wallclock_seconds: int = 86400
    min_wallclock_seconds: Optional[int] = None    # None: = max_wallclock_seconds
    backoff_seconds: int = 10
    fizzle_seconds: int = 600
    heartbeat_file: Optional[str] = None
    heartbeat_seconds: int = 0
    accounting_fqan: Optional[str] = None
    machinegroup: Optional[str] = None             # None: accounting_fqan, else name
    machines_dir_days: float = 3.0
    disk_gb_per_processor: Optional[int] = None    # GB (10^9 bytes)
    root_device: str = "vda"
    scratch_device: str = "vdb"
    image_signing_dn: Optional[str] = None         # regex searched in the signer DN
    container_command: str = "/user_data"
    tmp_binds: Tuple[str, ...] = ()
    cvmfs_repositories: Tuple[str, ...] = ()
    machinetype_path: Optional[str] = None         # None: <state>/machinetypes/NAME
    # --- new in this implementation ---
    hepscore23_per_processor: Optional[float] = None
    config_drive: bool = False                     # attach a config-2 ISO as cdrom
    guest_to_guest: bool = False                   # bridge port not isolated from others
    joboutputs_require_token: bool = False         # JOBOUTPUTS PUTs need the machine token
    wlcg_token_file: Optional[str] = None          # absolute, or under MACHINETYPE_PATH/files
    pipe_prefix: Optional[str] = None              # set for pipe-generated machinetypes
    priority: int = 0                              # tier: higher is created (and preempts) first
    preemptible: bool = False                      # may be preempted for a higher priority
    preemption_grace_seconds: int = 300            # warning before a preempted machine stops

    @property
    def effective_min_wallclock_seconds(self) -> int:
        if self.min_wallclock_seconds is None:
            return self.max_wallclock_seconds
        return self.min_wallclock_seconds

    @property
    def effective_machinegroup(self) -> str:
        return self.machinegroup or self.accounting_fqan or self.name


@dataclass(frozen=True)
class VacuumPipe:
    """A ``[vacuum_pipe PREFIX]`` section before expansion."""

    prefix: str
    vacuum_pipe_url: str
    target_share: float = 0.0
    options: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class Config:
    """The whole merged, validated configuration of one factory."""

    settings: Settings
    machinetypes: Mapping[str, Machinetype] = field(default_factory=lambda: MappingProxyType({}))
    vacuum_pipes: Mapping[str, VacuumPipe] = field(default_factory=lambda: MappingProxyType({}))
    origins: Mapping[Tuple[str, str], Origin] = field(default_factory=lambda: MappingProxyType({}))
    warnings: Tuple[str, ...] = ()
    # machinetype -> its problems (``FILE:LINE: [machinetype NAME] option: ...``): a
    # machinetype with a fault is left out of ``machinetypes`` (nothing of it is created)
    disabled: Mapping[str, Tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def problems(self) -> Tuple[str, ...]:
        """Every problem of the disabled machinetypes, in file order."""
        return tuple(p for name in self.disabled for p in self.disabled[name])

    def origin(self, section: str, option: str) -> Origin:
        """Origin of ``option`` in ``section`` (e.g. ``("machinetype lhcb", "target_share")``)."""
        return self.origins.get((section, option), DEFAULT_ORIGIN)
