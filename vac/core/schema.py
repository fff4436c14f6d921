"""The vac.conf option schema: every option with type, default, unit, help and aliases.

One table per section kind ([settings], [machinetype NAME], [vacuum_pipe PREFIX]). The
loader (core.config), ``vac config``, the man page test and the pipe whitelist all read
these tables; adding an option means adding one ``Option`` here, a field with the same
default in core.configtypes and an entry in man/vac.conf.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from vac.machinemodels import MODELS
from vac.core import options as o

SETTINGS = "settings"
MACHINETYPE = "machinetype"
VACUUM_PIPE = "vacuum_pipe"


@dataclass(frozen=True)
class Option:
    """One option: ``convert`` turns the text into the typed value or raises ValueError."""

    name: str
    convert: o.Converter
    default: object
    type_name: str
    help: str
    unit: str = ""
    aliases: Tuple[str, ...] = ()   # deprecated names; the new name wins if both are given
    default_text: Optional[str] = None  # how the man page / vac config shows the default
    required: bool = False
    from_pipe: bool = False         # accepted from a vacuum pipe document (SPEC §10.1)

    @property
    def shown_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if self.default is None:
            return "unset"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, tuple):
            return " ".join(self.default) or "empty"
        return str(self.default) if self.default != "" else '""'


@dataclass(frozen=True)
class PatternOption:
    """A family of options ``PREFIXxxx`` where xxx may contain a-z 0-9 and _ only.

    Values are collected into the mapping attribute ``field`` keyed by xxx.
    """

    prefix: str
    field: str
    type_name: str
    help: str
    from_pipe: bool = False


def _opt(name: str, convert: o.Converter, default: object, type_name: str, help: str,
         **extra: object) -> Option:
    return Option(name, convert, default, type_name, help, **extra)  # type: ignore[arg-type]


_INT = "integer"
_FLOAT = "number"
_BOOL = "boolean"
_STR = "string"
_PATH = "absolute path"
_SECONDS = "seconds"

SETTINGS_OPTIONS: Tuple[Option, ...] = (
    _opt("vac_space", o.space_name, None, "FQDN-like name", "name of the Vac space this factory "
         "belongs to; used in VacQuery, APEL, GOCDB and user_data", required=True,
         default_text="required"),
    _opt("factories", o.hostnames, (), "host name list", "every factory of the space including "
         "this one; '.' is this factory, a name without a dot gets this factory's domain",
         default_text="empty"),
    _opt("description", o.text, None, _STR, "free-text description of the space (not used)"),
    _opt("gocdb_sitename", o.single_word, None, _STR, "official GOCDB site name: APEL Site, "
         "VacQuery site, enables apel-outgoing records"),
    _opt("gocdb_cert_file", o.absolute_path, None, _PATH, "X.509 certificate allowed to "
         "update the space's GOCDB service entry"),
    _opt("gocdb_key_file", o.absolute_path, None, _PATH, "key of gocdb_cert_file"),
    _opt("total_processors", o.integer(1), None, _INT, "processors that may be allocated to "
         "machines; at most the processors counted on the host; does not change the number "
         "of slots", unit="processors", aliases=("cpu_total",),
         default_text="processors counted in /proc/cpuinfo"),
    _opt("overload_per_processor", o.real(strictly_positive=True), 1.25, _FLOAT,
         "no creation while the load average exceeds this times the processors in use",
         aliases=("overload_per_cpu",)),
    _opt("singularity_user", o.single_word, None, _STR, "accepted for compatibility only "
         "(the singularity model is disabled); must not be root"),
    _opt("volume_group", o.volume_group, None, "LVM volume group", "volume group for one "
         "logical volume per machine; must exist if given",
         default_text="vac_volume_group if it exists, else file-backed disks"),
    _opt("disk_gb_per_processor", o.integer(0), None, _INT, "fixed logical volume size per "
         "processor; unset or 0: computed from the free space of the volume group",
         unit="GB (10^9 bytes)", aliases=("scratch_gb", "disk_gb_per_cpu")),
    _opt("udp_timeout_seconds", o.real(strictly_positive=True), 10.0, _FLOAT,
         "total time budget of one VacQuery round", unit=_SECONDS),
    _opt("fix_networking", o.boolean, True, _BOOL, "run the network repair commands "
         "(bridge, dummy0, sysctl) each cycle"),
    _opt("root_public_key", o.absolute_path, "/root/.ssh/id_rsa.pub", _PATH, "public key "
         "offered to machines via the metadata service"),
    _opt("forward_dev", o.interface, None, "interface name", "forward device of the NAT "
         "network (applied when the network is defined)"),
    _opt("version_logger", o.version_logger, 0, _INT, "factory_status messages per day to "
         "version_logger_hostport; 0 disables (true/false mean 1/0)", unit="messages/day"),
    _opt("version_logger_hostport", o.hostport, "vac-version-logger.gridpp.ac.uk:8884",
         "host:port", "where version_logger sends its UDP messages"),
    _opt("vacmon_hostport", o.hostport_list, (), "host:port list", "VacMon servers that "
         "receive the VacQuery status messages of this factory", default_text="empty"),
    _opt("processors_per_superslot", o.integer(1), 1, _INT, "superslot size and the most "
         "processors of one machine; 1 disables multi-processor machines", unit="processors",
         aliases=("vcpu_per_machine", "cpu_per_machine")),
    _opt("mb_per_processor", o.integer(1), 2048, _INT, "memory given to a machine per "
         "processor", unit="MiB", aliases=("mb_per_cpu",)),
    _opt("shutdown_time", o.unix_time, None, _INT, "deadline for all machines; none is "
         "created that could not finish by then", unit="Unix time seconds"),
    _opt("draining", o.boolean, False, _BOOL, "create no new machines; running ones finish"),
    _opt("hs06_per_processor", o.real(strictly_positive=True), None, _FLOAT, "HEPSPEC06 "
         "per processor; unset: no hs06 MJF files and no apel-outgoing records",
         unit="HS06", aliases=("hs06_per_cpu",)),
    # --- new in this implementation ---
    _opt("factory_hostname", o.fqdn, "", "FQDN", "name of this factory; overrides the "
         "kernel host name; must contain a dot", default_text="uname nodename"),
    _opt("libvirt_uri", o.libvirt_uri, "qemu:///system", "URI", "libvirt connection URI"),
    _opt("domain_type", o.choice("kvm", "qemu"), "kvm", "kvm | qemu", "libvirt domain "
         "type; qemu runs guests with TCG where KVM is unavailable"),
    _opt("cycle_seconds", o.integer(1), 60, _INT, "pause between factory cycles",
         unit=_SECONDS),
    _opt("max_creations_per_cycle", o.integer(1), 1, _INT, "machines created at most per "
         "factory cycle", unit="machines"),
    _opt("apel_message_version", o.choice("0.3", "0.4"), "0.3", "0.3 | 0.4",
         "APEL individual job message format"),
    _opt("log_destination", o.choice("files", "journald"), "files", "files | journald",
         "per-role log files under /var/log, or the systemd journal"),
    _opt("vacquery_port", o.integer(1, 65535), 995, _INT, "UDP port of the responder of "
         "every factory in the space", unit="port"),
    _opt("responder_bind_address", o.ip_address(allow_empty=True), "", "IP address",
         "address the responder binds; empty: all addresses", default_text='"" (all)'),
    _opt("query_allowed_sources", o.ip_networks, (), "IP address/network list",
         "besides the addresses of factories (resolved every minute) and this host's "
         "loopback, the sources whose VacQuery requests are answered, e.g. VacMon or "
         "monitoring hosts; everybody else gets nothing", default_text="empty"),
    _opt("query_key_file", o.absolute_path, None, _PATH, "file (mode 0600) holding the "
         "space key: requests and replies carry an HMAC-SHA256 made with it, and "
         "unauthenticated requests and replies are ignored; unset: the original protocol"),
    _opt("query_unkeyed_sources", o.ip_networks, (), "IP address/network list",
         "with query_key_file, peers still accepted without an HMAC (their requests "
         "answered, their replies believed) while a space migrates to a key",
         default_text="empty"),
    _opt("metadata_bind_address", o.ip_address(), "169.254.169.254", "IP address",
         "address of the EC2/OpenStack metadata service"),
    _opt("metadata_port", o.integer(1, 65535), 80, _INT, "port of the metadata service",
         unit="port"),
    _opt("mjf_bind_address", o.ip_address(), "169.254.169.253", "IP address",
         "address of the Machine/Job Features and JOBOUTPUTS service"),
    _opt("mjf_port", o.integer(1, 65535), 80, _INT, "port of the MJF service", unit="port"),
    _opt("metrics_address", o.listen_address, "", "host:port", "where the metrics role "
         "serves Prometheus /metrics and /status.json (TCP, plain HTTP, no "
         "authentication: bind it to a management address); empty: no metrics role",
         default_text='"" (off)'),
    _opt("joboutputs_max_file_bytes", o.integer(1), 100 * 1024 * 1024, _INT, "largest file "
         "a machine may PUT into JOBOUTPUTS", unit="bytes"),
    _opt("joboutputs_max_total_bytes", o.integer(1), 1024 * 1024 * 1024, _INT, "most bytes "
         "one machine may store in JOBOUTPUTS, uploads in progress included", unit="bytes"),
    _opt("joboutputs_max_files", o.integer(1), 1024, _INT, "most files one machine may "
         "store in JOBOUTPUTS, uploads in progress included", unit="files"),
    _opt("shutdown_grace_seconds", o.integer(0), 30, _INT, "time between the ACPI shutdown "
         "request and the hard destroy", unit=_SECONDS),
    _opt("check_iptables", o.boolean, True, _BOOL, "check the NAT iptables rules each "
         "cycle and log what is missing"),
    _opt("share_half_life_seconds", o.integer(0), 0, _INT, "fair share with a memory: "
         "finished machines' HS06 x seconds count, decayed with this half-life; 0: shares "
         "by running HS06 only", unit=_SECONDS),
    _opt("fast_cycle_seconds", o.integer(0), 5, _INT, "pause before the next cycle when "
         "the last one created machines and their guests are running; 0: always "
         "cycle_seconds", unit=_SECONDS),
    _opt("manage_iptables", o.boolean, True, _BOOL, "install, check and repair each cycle "
         "the iptables chains VAC_INP and VAC_FWD that keep machines away from the "
         "factory's other services and from each other (see NETWORK SECURITY); false: the "
         "site keeps equivalent rules itself and check_iptables warns about missing ones"),
    _opt("host_tcp_ports_for_machines", o.port_list, (), "port list", "TCP ports on "
         "169.254.169.253 that machines may connect to besides DNS and MJF, e.g. 3128 for "
         "the factory's own Squid", default_text="empty"),
    _opt("subspace_min_factories", o.integer(0), 0, _INT, "0: the space is asked whole "
         "every cycle, as by Vac 03.01; else a space of at least this many factories is "
         "polled by subspaces (each factory asks its own subspace, and one member of every "
         "other subspace for that subspace's sums; see docs/SPACE-SCALE.md)",
         unit="factories"),
    _opt("subspace_size", o.integer(0), 0, _INT, "factories per subspace; 0: about the "
         "square root of the number of factories", unit="factories"),
)

MACHINETYPE_OPTIONS: Tuple[Option, ...] = (
    _opt("target_share", o.real(0), 0.0, _FLOAT, "desired share of the space's capacity "
         "(HS06-weighted); 0: never created", from_pipe=True),
    _opt("machine_model", o.choice(*MODELS), "cernvm3", "cernvm3 | cernvm4 | vm-raw | docker",
         "how machines are made: VMs with libvirt, or docker containers with podman; "
         "singularity is disabled (no Apptainer on this platform)",
         aliases=("vm_model",), from_pipe=True),
    _opt("root_image", o.nonempty, None, "URL or path", "boot image: http(s):// URL "
         "(cached), /absolute/path, or a name under MACHINETYPE_PATH/files", required=True,
         default_text="required", from_pipe=True),
    _opt("user_data", o.nonempty, None, "URL or path", "contextualisation template: "
         "http(s):// URL, /absolute/path or a name under MACHINETYPE_PATH/files",
         from_pipe=True),
    _opt("user_data_proxy", o.boolean, False, _BOOL, "insert an X.509 proxy made from "
         "MACHINETYPE_PATH/x509cert.pem and x509key.pem", from_pipe=True),
    _opt("legacy_proxy", o.boolean, False, _BOOL, "make a legacy Globus proxy instead of "
         "an RFC 3820 one", from_pipe=True),
    _opt("min_processors", o.integer(1), 1, _INT, "fewest processors of one machine",
         unit="processors", from_pipe=True),
    _opt("max_processors", o.integer(1), 1, _INT, "most processors of one machine; "
         "at least min_processors", unit="processors", from_pipe=True),
    _opt("max_wallclock_seconds", o.integer(1), 86400, _INT, "longest life of a machine",
         unit=_SECONDS, from_pipe=True),
    _opt("min_wallclock_seconds", o.integer(0), None, _INT, "least remaining time needed "
         "to create a machine", unit=_SECONDS, default_text="max_wallclock_seconds",
         from_pipe=True),
    _opt("backoff_seconds", o.integer(0), 10, _INT, "pause after the last abort in the "
         "space before this machinetype starts again", unit=_SECONDS, from_pipe=True),
    _opt("fizzle_seconds", o.integer(0), 600, _INT, "machines stopping sooner have "
         "fizzled (no work)", unit=_SECONDS, from_pipe=True),
    _opt("heartbeat_file", o.file_name, None, "file name", "file the machine must keep "
         "fresh in JOBOUTPUTS", from_pipe=True),
    _opt("heartbeat_seconds", o.integer(0), 0, _INT, "largest age of heartbeat_file after "
         "fizzle_seconds; 0: only its existence is checked", unit=_SECONDS, from_pipe=True),
    _opt("accounting_fqan", o.fqan, None, "VOMS FQAN", "FQAN of APEL records and VacQuery "
         "messages, e.g. /lhcb/Role=NULL/Capability=NULL", from_pipe=True),
    _opt("machinegroup", o.single_word, None, _STR, "fair-share group",
         default_text="accounting_fqan, else NAME"),
    _opt("machines_dir_days", o.real(), 3.0, _FLOAT, "age after which machine directories "
         "are deleted; <= 0: never", unit="days", aliases=("machineoutputs_days",)),
    _opt("disk_gb_per_processor", o.integer(0), None, _INT, "logical volume size per "
         "processor, used when not larger than the [settings] value",
         unit="GB (10^9 bytes)", from_pipe=True),
    _opt("root_device", o.device, "vda", "device name", "guest device of the root disk "
         "(virtio if it contains vd, else ide)", from_pipe=True),
    _opt("scratch_device", o.device, "vdb", "device name", "guest device of the scratch "
         "logical volume", from_pipe=True),
    _opt("image_signing_dn", o.regex, None, "regular expression", "must match the signer "
         "DN of a signed CernVM image", aliases=("cernvm_signing_dn",), from_pipe=True),
    _opt("container_command", o.nonempty, "/user_data", _STR, "docker model: the command "
         "the container runs (split on white space)", from_pipe=True),
    _opt("tmp_binds", o.absolute_paths, (), "absolute path list", "docker model: each "
         "path gets a new empty read-write directory below the machine's mnt/",
         default_text="empty", from_pipe=True),
    _opt("cvmfs_repositories", o.file_names, (), "name list", "docker model: bind /cvmfs "
         "read-only into the container and list each repository first (autofs)",
         default_text="empty", from_pipe=True),
    _opt("machinetype_path", o.absolute_path, None, _PATH, "directory of this "
         "machinetype's local files", default_text="/var/lib/vac/machinetypes/NAME, or PREFIX for pipe machinetypes"),
    # --- new in this implementation ---
    _opt("hepscore23_per_processor", o.real(strictly_positive=True), None, _FLOAT,
         "HEPscore23 per processor for accounting", unit="HEPscore23"),
    _opt("config_drive", o.boolean, False, _BOOL, "attach a config-2 ISO with the "
         "metadata as a cdrom"),
    _opt("priority", o.integer(), 0, _INT, "priority tier: eligible machinetypes of a "
         "higher priority are created first and may preempt preemptible lower ones"),
    _opt("preemptible", o.boolean, False, _BOOL, "machines of this type may be preempted "
         "to make room for a higher-priority machinetype"),
    _opt("preemption_grace_seconds", o.integer(0), 300, _INT, "how long a preempted "
         "machine of this type is warned (MJF shutdowntime) before it is shut down",
         unit=_SECONDS),
    _opt("guest_to_guest", o.boolean, False, _BOOL, "machines of this machinetype may "
         "exchange traffic with every other machine of the factory (e.g. a cache machine); "
         "other machines never reach each other. Fixed when a machine is created"),
    _opt("joboutputs_require_token", o.boolean, False, _BOOL, "JOBOUTPUTS PUTs must carry "
         "the machine's token (Authorization: Bearer TOKEN, see ##user_data_machine_token##)"
         " besides coming from the machine's address. Fixed when a machine is created"),
    _opt("wlcg_token_file", o.nonempty, None, "path", "file with a WLCG (JWT) token, "
         "absolute or under MACHINETYPE_PATH/files; delivered as "
         "##user_data_option_wlcg_token## and at /vac/wlcg_token of the metadata service "
         "(read on every request); refused if group or others may read or write it"),
)

VACUUM_PIPE_OPTIONS: Tuple[Option, ...] = (
    _opt("vacuum_pipe_url", o.url(("http", "https", "file")), None, "URL", "where the pipe "
         "JSON document is published", required=True, default_text="required"),
    _opt("target_share", o.real(0), 0.0, _FLOAT, "total share of all machinetypes of the "
         "pipe, divided in proportion to their shares in the pipe"),
)

SETTINGS_PATTERNS: Tuple[PatternOption, ...] = (
    PatternOption("machinefeatures_option_", "machinefeatures_options", _STR,
                  "extra $MACHINEFEATURES file XXX with this value"),
    PatternOption("user_data_option_", "user_data_options", _STR,
                  "space-wide value of ##user_data_option_XXX## (machinetypes override)"),
    PatternOption("user_data_file_", "user_data_files", "path",
                  "space-wide file whose content replaces ##user_data_option_XXX##"),
)

MACHINETYPE_PATTERNS: Tuple[PatternOption, ...] = (
    PatternOption("user_data_option_", "user_data_options", _STR,
                  "value of ##user_data_option_XXX##", from_pipe=True),
    PatternOption("user_data_file_", "user_data_files", "path", "file whose content "
                  "replaces ##user_data_option_XXX## (bare name in a pipe)", from_pipe=True),
)

# Deprecated options that are ignored, with the warning given (SPEC §1.4, §1.5).
IGNORED_SETTINGS: Dict[str, str] = {
    "total_machines": "total_machines is deprecated and ignored - use total_processors",
    "delete_old_files": "delete_old_files is deprecated and ignored - old files are always "
                        "deleted",
    "mb_per_machine": "mb_per_machine is not an option and is ignored - use mb_per_processor",
}
IGNORED_MACHINETYPE: Dict[str, str] = {
    "root_public_key": "root_public_key is ignored here - use root_public_key in [settings]",
    "rootpublickey": "rootpublickey is ignored - use root_public_key in [settings]",
    "user_data_proxy_cert": "user_data_proxy_cert is ignored - use user_data_proxy = true",
    "user_data_proxy_key": "user_data_proxy_key is ignored - use user_data_proxy = true",
    "log_machineoutputs": "log_machineoutputs is deprecated and ignored",
}

TABLES: Dict[str, Tuple[Option, ...]] = {
    SETTINGS: SETTINGS_OPTIONS,
    MACHINETYPE: MACHINETYPE_OPTIONS,
    VACUUM_PIPE: VACUUM_PIPE_OPTIONS,
}
PATTERNS: Dict[str, Tuple[PatternOption, ...]] = {
    SETTINGS: SETTINGS_PATTERNS,
    MACHINETYPE: MACHINETYPE_PATTERNS,
    VACUUM_PIPE: (),  # other options of [vacuum_pipe] are checked as machinetype options
}


def option(kind: str, name: str) -> Optional[Option]:
    """The Option called ``name`` in section kind ``kind``, or None."""
    for item in TABLES[kind]:
        if item.name == name:
            return item
    return None


def pipe_keys() -> Tuple[str, ...]:
    """Machinetype keys a vacuum pipe may set (besides ``suffix`` and the patterns)."""
    return tuple(item.name for item in MACHINETYPE_OPTIONS if item.from_pipe)


def alias_map(kind: str) -> Dict[str, str]:
    """Deprecated alias -> new option name for section kind ``kind``."""
    return {alias: item.name for item in TABLES[kind] for alias in item.aliases}
