"""Fixed protocol, network and file-format values shared by every layer (no imports)."""

# VacQuery (SPEC §0.3, §7)
VACQUERY_VERSION = "VacQuery 01.03"
UDP_BUFFER_BYTES = 16 * 1024 * 1024

# Private NAT network (SPEC §4)
NAT_NETWORK_NAME = "vac_169.254.0.0"
NAT_NETWORK_ADDRESS = "169.254.0.0"
NAT_NETMASK = "255.255.0.0"
NAT_BRIDGE = "virbr1"
FACTORY_ADDRESS = "169.254.169.253"   # MJF/JOBOUTPUTS server, gateway and DNS for machines
METADATA_ADDRESS = "169.254.169.254"  # EC2/OpenStack "magic IP"
MAC_PREFIX = "56:4D"
VNC_BASE_PORT = 5900

MJF_BASE_URL = "http://" + FACTORY_ADDRESS
MACHINEFEATURES_URL = MJF_BASE_URL + "/machinefeatures"
JOBFEATURES_URL = MJF_BASE_URL + "/jobfeatures"
JOBOUTPUTS_URL = MJF_BASE_URL + "/joboutputs"

# Machine states (SPEC §3.2), used verbatim on the wire
STATE_UNKNOWN = "Unknown"
STATE_SHUTDOWN = "Shut down"
STATE_STARTING = "Starting"
STATE_RUNNING = "Running"
STATE_PAUSED = "Paused"
STATE_ZOMBIE = "Zombie"

# Machine models
VM_MODELS = ("cernvm3", "cernvm4", "vm-raw")
CONTAINER_MODELS = ("docker", "singularity")
MACHINE_MODELS = VM_MODELS + CONTAINER_MODELS

# Shutdown message codes (SPEC §3.11)
ABORT_CODE_MIN = 300
HEARTBEAT_NOT_CREATED = "700 Heartbeat file not created"
HEARTBEAT_NOT_UPDATED = "700 Heartbeat file not updated"
# Vacuum convention code 100 (a success: never backs off); vac adds whom it made room for
PREEMPTED_MESSAGE = "100 Shutdown as requested by the VM's host/hypervisor (preempted for {for_machinetype})"

# Timing constants (seconds)
CENSUS_INTERVAL_SECONDS = 3600
CENSUS_COUNT_SECONDS = 86400
CENSUS_EXPIRE_SECONDS = 172800
COUNTING_WINDOW_SECONDS = 3600  # running/starting windows in machinetype_status
DEFAULT_FILE_DISK_GB_PER_PROCESSOR = 40
MIN_STATE_FREE_BYTES = 1024 ** 3  # 1 GiB free in the state directory to create machines

GB = 10 ** 9     # disk sizes
MIB = 1024 ** 2  # memory sizes

DAEMON_ROLES = ("factory", "responder", "metadata", "mjf")
METRICS_ROLE = "metrics"          # started only when metrics_address is set
