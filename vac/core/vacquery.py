"""VacQuery 01.03 messages (SPEC §7): requests, responses, cookies and strict validation.

Pure: no sockets, no clock, no randomness (callers pass ``time_sent`` and the salt bytes).
Every message is one JSON object per UDP datagram. Units: times are Unix seconds (int),
disk and memory in KiB (``*_kb``), ``bytes_per_processor`` in bytes, HS06 as floats.

Parsing never raises past :func:`parse_request` / :func:`parse_response`: malformed input
comes back as an error string the responder counts and logs.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

from vac.constants import VACQUERY_VERSION
from vac.core.apel import site_name  # noqa: F401  (re-exported: replies carry the site)
from vac.errors import ProtocolError

MAX_REQUEST_BYTES = 1024        # responder receive buffer (SPEC §2.4)
MAX_REPLY_BYTES = 10240         # client receive buffer (SPEC §7.1)
UNSOLICITED_COOKIE = "0"        # VacMon and version-logger messages

MACHINES_QUERY = "machines_query"
MACHINETYPES_QUERY = "machinetypes_query"
FACTORY_QUERY = "factory_query"
MACHINE_STATUS = "machine_status"
MACHINETYPE_STATUS = "machinetype_status"
FACTORY_STATUS = "factory_status"
# this implementation's polling of big spaces (vac.core.subspaces): the optional request
# field naming the subspace whose sums are wanted, and the reply carrying them
SUBSPACE_FIELD = "subspace"
SUBSPACE_STATUS = "subspace_status"

# request message_type -> (legacy method, reply message_type)
REQUEST_TYPES: Mapping[str, Tuple[Optional[str], str]] = {
    MACHINES_QUERY: ("machines", MACHINE_STATUS),
    MACHINETYPES_QUERY: ("machinetypes", MACHINETYPE_STATUS),
    FACTORY_QUERY: ("factories", FACTORY_STATUS),
}
LEGACY_METHODS: Mapping[str, str] = {"machines": MACHINES_QUERY,
                                     "machinetypes": MACHINETYPES_QUERY,
                                     "factories": FACTORY_QUERY}
# Legacy method sent alongside message_type (SPEC §7.2: absent in machinetypes queries).
_SENT_METHOD = {MACHINES_QUERY: "machines", FACTORY_QUERY: "factories"}

# --- field schemas (SPEC §7.4 + B27) ------------------------------------------------
# name -> (allowed JSON types, nullable). ``float`` fields accept ints too.
INT, FLOAT, STR = (int,), (int, float), (str,)

COMMON_FIELDS: Mapping[str, Tuple[tuple, bool]] = {
    "message_type": (STR, False), "vac_version": (STR, False), "daemon_version": (STR, False),
    "vacquery_version": (STR, False), "cookie": (STR, False), "space": (STR, False),
    "factory": (STR, False), "time_sent": (INT, False), "site": (STR, False),
}

MACHINE_FIELDS: Mapping[str, Tuple[tuple, bool]] = {
    "num_machines": (INT, False), "machine": (STR, False), "state": (STR, False),
    "machine_model": (STR, True), "uuid": (STR, True), "created_time": (INT, True),
    "started_time": (INT, True), "heartbeat_time": (INT, True), "num_cpus": (INT, False),
    "num_processors": (INT, False), "cpu_seconds": (INT, False),
    "cpu_percentage": (FLOAT, False), "hs06": (FLOAT, False), "machinetype": (STR, True),
    "shutdown_message": (STR, True), "shutdown_time": (INT, True),
}

MACHINETYPE_FIELDS: Mapping[str, Tuple[tuple, bool]] = {
    "num_machinetypes": (INT, False), "machinetype": (STR, False),
    "bytes_per_processor": (INT, False), "running_hs06": (FLOAT, False),
    "running_machines": (INT, False), "running_cpus": (INT, False),
    "running_processors": (INT, False), "num_before_fizzle": (INT, False),
    "shutdown_message": (STR, True), "shutdown_time": (INT, True),
    "shutdown_machine": (STR, True), "max_wallclock_seconds": (INT, False),
    "min_wallclock_seconds": (INT, False), "max_processors": (INT, False),
    "min_processors": (INT, False),
}

FACTORY_FIELDS: Mapping[str, Tuple[tuple, bool]] = dict(
    {k: (INT, False) for k in (
        "running_cpus", "running_processors", "running_machines", "max_cpus",
        "max_processors", "max_machines", "total_cpus", "total_machines",
        "root_disk_avail_kb", "root_disk_avail_inodes", "vac_disk_avail_kb",
        "daemon_disk_avail_kb", "vac_disk_avail_inodes", "daemon_disk_avail_inodes",
        "boot_time", "factory_heartbeat_time", "responder_heartbeat_time",
        "mjf_heartbeat_time", "metadata_heartbeat_time", "swap_used_kb", "swap_free_kb",
        "mem_used_kb", "mem_total_kb")},
    running_hs06=(FLOAT, False), max_hs06=(FLOAT, False), total_hs06=(FLOAT, False),
    load_average=(FLOAT, False), kernel_version=(STR, False), os_issue=(STR, False),
)

# Present only when the machine / machinetype has an accounting FQAN.
OPTIONAL_FIELDS: Mapping[str, Tuple[tuple, bool]] = {"fqan": (STR, False), "vo": (STR, False)}

# machinetype_status fields of this implementation, present only when the scheduling
# features that need them are configured (share half-life, preemption); original
# factories neither send nor read them.
MACHINETYPE_EXTENSIONS: Mapping[str, Tuple[tuple, bool]] = {
    "decayed_hs06_seconds": (FLOAT, False), "preemptible_processors": (INT, False),
    "preempted_for_processors": (INT, False)}

# subspace_status: a subspace's sums of one machinetype (sent only when asked for them)
SUBSPACE_FIELDS: Mapping[str, Tuple[tuple, bool]] = dict(
    num_machinetypes=(INT, False), machinetype=(STR, False),
    decayed_hs06_seconds=(FLOAT, False), preempted_for_processors=(INT, False),
    running_hs06=(FLOAT, False), num_before_fizzle=(INT, False),
    running_machines=(INT, False), running_processors=(INT, False),
    shutdown_message=(STR, True), shutdown_time=(INT, True), shutdown_machine=(STR, True),
    subspace=(STR, False), subspace_factories=(INT, False), subspace_answered=(INT, False),
    subspace_age=(INT, False), preemptible_factories=((list,), False))

BODY_FIELDS: Mapping[str, Mapping[str, Tuple[tuple, bool]]] = {
    MACHINE_STATUS: MACHINE_FIELDS, MACHINETYPE_STATUS: MACHINETYPE_FIELDS,
    FACTORY_STATUS: FACTORY_FIELDS, SUBSPACE_STATUS: SUBSPACE_FIELDS,
}

# Keys a client insists on before accepting a reply (SPEC §7.5 step 4).
CLIENT_REQUIRED: Mapping[str, Tuple[str, ...]] = {
    MACHINETYPE_STATUS: ("factory", "num_machinetypes", "machinetype", "running_hs06",
                         "num_before_fizzle", "shutdown_message", "shutdown_time",
                         "shutdown_machine"),
    MACHINE_STATUS: ("factory", "num_machines", "machine", "state", "uuid", "created_time",
                     "started_time", "heartbeat_time", "cpu_seconds", "cpu_percentage",
                     "hs06", "machinetype", "shutdown_message", "shutdown_time"),
    FACTORY_STATUS: ("factory",),
    SUBSPACE_STATUS: ("factory", "num_machinetypes", "machinetype", "running_hs06",
                      "num_before_fizzle", "shutdown_message", "shutdown_time", "subspace",
                      "subspace_factories"),
}


# --- identity helpers ----------------------------------------------------------------

def make_salt(random_bytes: bytes) -> str:
    """Salt of one query batch: the base64 text of 32 random bytes (passed in)."""
    if len(random_bytes) != 32:
        raise ValueError("the VacQuery salt needs exactly 32 random bytes")
    return base64.b64encode(random_bytes).decode("ascii")


def cookie(salt: str, factory: str) -> str:
    """Lower-case hex SHA-256 of salt + the target factory's canonical name."""
    import hashlib      # here: the responder never needs it (nor OpenSSL's libcrypto)
    return hashlib.sha256((salt + factory).encode("utf-8")).hexdigest()


def version_string(version: str, client_name: Optional[str] = "-") -> str:
    """``Vac <version> <clientname>`` (client name omitted when None)."""
    return f"Vac {version} {client_name}" if client_name else f"Vac {version}"


def vo_of_fqan(fqan: str) -> str:
    """First path element of an FQAN: ``/lhcb/Role=NULL`` -> ``lhcb``."""
    return fqan.strip("/").split("/", 1)[0]


# --- requests --------------------------------------------------------------------------

class Request(NamedTuple):
    """A decoded request; ``message_type`` is canonical even for legacy ``method`` forms.
    (A NamedTuple: the responder makes one per datagram.)"""

    message_type: str
    space: str
    cookie: str
    vac_version: str = ""
    vacquery_version: str = ""
    # keyed requests only (vac.core.vqauth); None when absent or not the right type
    target: Optional[str] = None
    time_sent: Optional[int] = None
    nonce: Optional[str] = None
    subspace: Optional[str] = None      # key of the subspace whose sums are asked for

    @property
    def reply_type(self) -> str:
        return REQUEST_TYPES[self.message_type][1]


def request_dict(message_type: str, space: str, cookie_hex: str, version: str,
                 client_name: Optional[str] = "-") -> Dict[str, Any]:
    """Request object as the original sent it (with the legacy ``method`` where it had one)."""
    if message_type not in REQUEST_TYPES:
        raise ValueError(f"unknown VacQuery request type {message_type!r}")
    if message_type == FACTORY_QUERY:
        client_name = None      # factory queries omit the client name (SPEC §7.2)
    msg: Dict[str, Any] = {"vac_version": version_string(version, client_name),
                           "vacquery_version": VACQUERY_VERSION, "space": space,
                           "cookie": cookie_hex}
    if message_type in _SENT_METHOD:
        msg["method"] = _SENT_METHOD[message_type]
    msg["message_type"] = message_type
    return msg


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as a compact UTF-8 JSON datagram with sorted keys."""
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode("utf-8")


_scan_once = json.JSONDecoder().scan_once


def _loads(text: str) -> Any:
    """json.loads(text), through the C scanner directly when ``text`` is exactly one
    JSON value (what every VacQuery peer sends), else through json.loads itself."""
    try:
        obj, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    return obj if end == len(text) else json.loads(text)


def _load_object(data: bytes, limit: int) -> Dict[str, Any]:
    if len(data) > limit:
        raise ProtocolError(f"datagram of {len(data)} bytes exceeds {limit}")
    try:
        obj = _loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError(f"not UTF-8 JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"not a JSON object but {type(obj).__name__}")
    return obj


def decode_request(data: bytes) -> Request:
    """Strictly decode a request datagram; raises ProtocolError naming the problem.
    (On the responder's per-datagram path: plain ``type() is str`` checks, JSON
    strings are exactly ``str``.)"""
    obj = _load_object(data, MAX_REQUEST_BYTES)
    get = obj.get
    mtype, method = get("message_type"), get("method")
    if type(mtype) is str and mtype in REQUEST_TYPES and (method is None
                                                         or type(method) is str):
        pass
    elif mtype is None and type(method) is str and method in LEGACY_METHODS:
        mtype = LEGACY_METHODS[method]
    else:
        raise ProtocolError(_type_problem(mtype, method))
    space, cookie_hex = get("space"), get("cookie")
    if type(space) is not str or not space:
        raise ProtocolError("missing or non-string space")
    if type(cookie_hex) is not str or not cookie_hex:
        raise ProtocolError("missing or non-string cookie")
    vac_version, vacquery_version = get("vac_version", ""), get("vacquery_version", "")
    if type(vac_version) is not str or type(vacquery_version) is not str:
        raise ProtocolError("vac_version/vacquery_version must be strings")
    target, time_sent, nonce = get("target"), get("time_sent"), get("nonce")
    subspace = get(SUBSPACE_FIELD)
    return Request(mtype, space, cookie_hex, vac_version, vacquery_version,
                   target if type(target) is str else None,
                   time_sent if type(time_sent) is int else None,
                   nonce if type(nonce) is str else None,
                   subspace if type(subspace) is str else None)


def _type_problem(mtype: Any, method: Any) -> str:
    """Why message_type / method do not name a request type."""
    if not isinstance(mtype, (str, type(None))) or not isinstance(method, (str, type(None))):
        return "message_type/method must be strings"
    if mtype is not None:
        return f"unknown message_type {mtype[:40]!r}"
    if method is None:
        return "neither message_type nor method"
    return f"unknown method {method[:40]!r}"


def parse_request(data: bytes) -> Tuple[Optional[Request], Optional[str]]:
    """(request, None) or (None, error text); never raises."""
    try:
        return decode_request(data), None
    except ProtocolError as e:
        return None, str(e)


# --- responses ------------------------------------------------------------------------

def response(message_type: str, body: Mapping[str, Any], *, space: str, factory: str,
             cookie_hex: str, version: str, time_sent: int, site: str,
             client_name: Optional[str] = "-") -> Dict[str, Any]:
    """A complete response: the common envelope of SPEC §7.4 plus the type's ``body``."""
    if message_type not in BODY_FIELDS:
        raise ValueError(f"unknown VacQuery response type {message_type!r}")
    vac_version = version_string(version, client_name)
    msg: Dict[str, Any] = dict(body)
    msg.update(message_type=message_type, vac_version=vac_version, daemon_version=vac_version,
               vacquery_version=VACQUERY_VERSION, cookie=cookie_hex, space=space,
               factory=factory, time_sent=int(time_sent), site=site)
    return msg


def _type_ok(value: Any, types: tuple, nullable: bool) -> bool:
    if value is None:
        return nullable
    if isinstance(value, bool):
        return False
    return isinstance(value, types)


def _schemas() -> Dict[str, Tuple[Dict[str, Tuple[tuple, bool]], Tuple[str, ...]]]:
    """reply type -> (every field's (types, nullable), the fields it must have)."""
    optional = set(OPTIONAL_FIELDS) | set(MACHINETYPE_EXTENSIONS) | {
        "preemptible_factories"}
    result = {}
    for mtype, body in BODY_FIELDS.items():
        schema = dict(COMMON_FIELDS)
        schema.update(body)
        schema.update(OPTIONAL_FIELDS)
        if mtype == MACHINETYPE_STATUS:
            schema.update(MACHINETYPE_EXTENSIONS)
        result[mtype] = (schema, tuple(k for k in schema if k not in optional))
    return result


_SCHEMAS = _schemas()


def validate_response(msg: Mapping[str, Any], strict: bool = True) -> List[str]:
    """Problems with a response object. ``strict`` requires every field of SPEC §7.4
    (what this implementation sends); otherwise only the keys a client needs (§7.5)
    must be present, and the types of whatever is present are checked."""
    mtype = msg.get("message_type")
    if not isinstance(mtype, str) or mtype not in _SCHEMAS:
        return [f"unknown message_type {str(mtype)[:40]!r}"]
    schema, every = _SCHEMAS[mtype]
    required = every if strict else CLIENT_REQUIRED[mtype]
    problems = [f"missing {k}" for k in required if k not in msg]
    for key, value in msg.items():
        kind = schema.get(key)
        if kind is None or type(value) in kind[0]:     # decoded JSON: exact types
            continue
        if not _type_ok(value, *kind):
            problems.append(f"{key} has wrong type {type(value).__name__}")
    return problems


def decode_response(data: bytes, strict: bool = False) -> Dict[str, Any]:
    """Decode and validate a reply datagram; raises ProtocolError."""
    obj = _load_object(data, MAX_REPLY_BYTES)
    problems = validate_response(obj, strict=strict)
    if problems:
        raise ProtocolError("; ".join(problems))
    return obj


def parse_response(data: bytes, strict: bool = False
                   ) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """(reply, None) or (None, error text); never raises."""
    try:
        return decode_response(data, strict=strict), None
    except ProtocolError as e:
        return None, str(e)


def reply_matches(reply: Mapping[str, Any], reply_type: str, space: str, salt: str,
                  expected_cookie: Optional[str] = None) -> Optional[str]:
    """Why a validated reply does not belong to our query batch, or None if it does.
    ``expected_cookie``: cookie(salt, reply's factory), if the caller has it already."""
    if reply.get("message_type") != reply_type:
        return f"unexpected message_type {reply.get('message_type')!r}"
    if reply.get("space") != space:
        return f"wrong space {reply.get('space')!r}"
    if expected_cookie is None:
        expected_cookie = cookie(salt, str(reply.get("factory")))
    if reply.get("cookie") != expected_cookie:
        return "wrong cookie"
    return None
