"""APEL accounting messages (SPEC §9, PEERS-AND-STANDARDS §2.4): pure rendering and checks.

Individual job records (``APEL-individual-job-message`` v0.3 or v0.4), sync records
(``APEL-sync-message: v0.1``), the spool file names, and the checks the APEL loader applies
to every record it receives. Times are Unix epoch seconds, durations seconds, memory kB.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple

from vac.core.configtypes import Config, Machinetype, Settings
from vac.core.mjf import memory_bytes
from vac.core.slotstate import slot_processors
from vac.model import AccountingInputs, SlotRecord

JOB_HEADER_V03 = "APEL-individual-job-message: v0.3"
JOB_HEADER_V04 = "APEL-individual-job-message: v0.4"
SYNC_HEADER = "APEL-sync-message: v0.1"
JOB_HEADERS = {"0.3": JOB_HEADER_V03, "0.4": JOB_HEADER_V04}
RECORD_END = "%%"

INFRASTRUCTURE_DESCRIPTION = "APEL-VAC"
INFRASTRUCTURE_TYPE = "grid"

# The loader's field lists (apel/db/records/job.py, JobRecord and JobRecord04)
_FIELDS_V03 = ("Site", "SubmitHost", "MachineName", "Queue", "LocalJobId", "LocalUserId",
               "GlobalUserName", "FQAN", "VO", "VOGroup", "VORole", "WallDuration",
               "CpuDuration", "Processors", "NodeCount", "StartTime", "EndTime",
               "InfrastructureDescription", "InfrastructureType", "MemoryReal",
               "MemoryVirtual", "ServiceLevelType", "ServiceLevel")
_FIELDS_V04 = tuple(f for f in _FIELDS_V03 if f != "ServiceLevelType")
_IGNORED_FIELDS = ("SubmitHostType", "UpdateTime")
MANDATORY_FIELDS = ("Site", "LocalJobId", "WallDuration", "CpuDuration", "StartTime",
                    "EndTime")
INT_FIELDS = ("WallDuration", "CpuDuration", "Processors", "NodeCount", "MemoryReal",
              "MemoryVirtual", "StartTime", "EndTime")
SERVICE_LEVEL_TYPES = ("si2k", "hepspec", "hepscore23")   # compared case-insensitively
MAX_FUTURE_SECONDS = 2 * 86400     # the loader rejects EndTime more than 2 days ahead
_NULLS = ("", "none", "null")

_ELEMENT_RE = re.compile(r"^[0-9a-f]{14}$")
_MONTH_RE = re.compile(r"^([0-9]{4})([0-9]{2})$")


@dataclass(frozen=True)
class JobRecordInput:
    """Everything one individual job record says about one finished machine."""

    site: str
    submit_host: str
    machine_name: str                  # machine FQDN
    queue: str                         # machinetype name
    local_job_id: str                  # machine UUID
    local_user_id: str                 # factory hostname
    global_user_name: str              # DN built from the space name
    fqan: Optional[str]
    wall_seconds: int
    cpu_seconds: int
    processors: int
    start_time: int                    # Unix seconds
    end_time: int                      # Unix seconds
    memory_kb: int                     # MemoryReal and MemoryVirtual, kB
    hs06_per_processor: Optional[float] = None
    hepscore23_per_processor: Optional[float] = None
    node_count: int = 1


# --- identities derived from the space -------------------------------------------------

def site_name(vac_space: str, gocdb_sitename: Optional[str] = None) -> str:
    """``gocdb_sitename``, else the space name minus its first label (a dotless space whole).

    The one site-name rule: APEL records and VacQuery replies (``vacquery.site_name``) share it.
    """
    if gocdb_sitename:
        return gocdb_sitename
    _head, dot, rest = vac_space.partition(".")
    return rest if dot and rest else vac_space


def submit_host(vac_space: str, factory_hostname: str) -> str:
    """``<space>/vac-<factory>``, e.g. ``vac01.example.com/vac-factory1.example.com``."""
    return f"{vac_space}/vac-{factory_hostname}"


def global_user_name(vac_space: str) -> str:
    """DN from the space labels in reverse order: ``/DC=com/DC=example/DC=vac01``."""
    return "".join(f"/DC={label}" for label in reversed(vac_space.split(".")) if label)


# --- building the record input ----------------------------------------------------------

def accounting_inputs(settings: Settings, mt: Machinetype, processors: int) -> AccountingInputs:
    """The accounting inputs of a machine created now (frozen in its ``accounting.json``)."""
    hs06 = settings.hs06_per_processor
    return AccountingInputs(
        site=site_name(settings.vac_space, settings.gocdb_sitename),
        submit_host=submit_host(settings.vac_space, settings.factory_hostname),
        local_user_id=settings.factory_hostname,
        global_user_name=global_user_name(settings.vac_space),
        fqan=mt.accounting_fqan or None,
        hs06_per_processor=float(hs06) if hs06 is not None else None,
        hepscore23_per_processor=mt.hepscore23_per_processor,
        message_version=settings.apel_message_version,
        publish=bool(settings.gocdb_sitename),
        fizzle_seconds=int(mt.fizzle_seconds),
        memory_kb=memory_bytes(settings, processors) // 1024)


def inputs_from_config(cfg: Config, slot: SlotRecord) -> Optional[AccountingInputs]:
    """Inputs rebuilt from today's configuration for a machine directory made by an older
    vac (no ``accounting.json``); None if its machinetype is no longer configured.

    HS06 comes from the machine's own ``machinefeatures/hs06`` as before."""
    mt = cfg.machinetypes.get(slot.machinetype or "")
    if mt is None:
        return None
    processors = slot_processors(slot)
    made = accounting_inputs(cfg.settings, mt, processors)
    return dataclasses.replace(
        made, fqan=slot.accounting_fqan or made.fqan,
        hs06_per_processor=(slot.hs06 / processors) if slot.hs06 else None,
        from_config=True)


def job_record_input(slot: SlotRecord) -> JobRecordInput:
    """The record input of a finished machine, from its own directory alone.

    ``slot`` must have start/heartbeat times and accounting inputs (else ValueError)."""
    acc = slot.accounting
    if acc is None or slot.started_time is None or slot.heartbeat_time is None:
        raise ValueError(f"{slot.name}: no accounting inputs, start or heartbeat time")
    processors = slot_processors(slot)
    memory_kb = int(slot.max_rss_bytes) // 1024 if slot.max_rss_bytes else acc.memory_kb
    start, end = int(slot.started_time), int(slot.heartbeat_time)
    return JobRecordInput(
        site=acc.site,
        submit_host=acc.submit_host,
        machine_name=slot.name,
        queue=slot.machinetype or "",
        local_job_id=slot.uuid or "",
        local_user_id=acc.local_user_id,
        global_user_name=acc.global_user_name,
        fqan=acc.fqan or None,
        wall_seconds=end - start,
        cpu_seconds=int(slot.cpu_seconds or 0),
        processors=processors,
        start_time=start,
        end_time=end,
        memory_kb=memory_kb,
        hs06_per_processor=acc.hs06_per_processor,
        hepscore23_per_processor=acc.hepscore23_per_processor)


# --- rendering --------------------------------------------------------------------------

def format_benchmark(value: float) -> str:
    """A benchmark value per processor, rounded to 3 decimals: ``10.5``, ``12.0``."""
    return repr(round(float(value), 3))


def _service_level_lines(rec: JobRecordInput, version: str) -> List[str]:
    hs06, hs23 = rec.hs06_per_processor, rec.hepscore23_per_processor
    if version == "0.4":
        parts = [f"hepspec: {format_benchmark(hs06 if hs06 is not None else 1.0)}"]
        if hs23 is not None:
            parts.append(f"HEPscore23: {format_benchmark(hs23)}")
        return ["ServiceLevel: {" + ", ".join(parts) + "}"]
    if hs06 is None and hs23 is not None:
        return ["ServiceLevelType: HEPscore23", f"ServiceLevel: {format_benchmark(hs23)}"]
    return ["ServiceLevelType: HEPSPEC",
            f"ServiceLevel: {format_benchmark(hs06 if hs06 is not None else 1.0)}"]


def render_job_record(rec: JobRecordInput, version: str = "0.3") -> str:
    """The text of one individual job record, ``%%``-terminated, in loader field order."""
    if version not in JOB_HEADERS:
        raise ValueError(f"unknown APEL message version {version!r} (0.3 or 0.4)")
    lines = [JOB_HEADERS[version],
             f"Site: {rec.site}",
             f"SubmitHost: {rec.submit_host}",
             f"MachineName: {rec.machine_name}",
             f"Queue: {rec.queue}",
             f"LocalJobId: {rec.local_job_id}",
             f"LocalUserId: {rec.local_user_id}",
             f"GlobalUserName: {rec.global_user_name}"]
    if rec.fqan:
        lines.append(f"FQAN: {rec.fqan}")
    lines += [f"WallDuration: {rec.wall_seconds}",
              f"CpuDuration: {rec.cpu_seconds}",
              f"Processors: {rec.processors}",
              f"NodeCount: {rec.node_count}",
              f"StartTime: {rec.start_time}",
              f"EndTime: {rec.end_time}",
              f"InfrastructureDescription: {INFRASTRUCTURE_DESCRIPTION}",
              f"InfrastructureType: {INFRASTRUCTURE_TYPE}",
              f"MemoryReal: {rec.memory_kb}",
              f"MemoryVirtual: {rec.memory_kb}"]
    lines += _service_level_lines(rec, version)
    lines.append(RECORD_END)
    return "\n".join(lines) + "\n"


def render_sync_record(site: str, submit_host_value: Optional[str], number_of_jobs: int,
                       year: int, month: int) -> str:
    """One ``APEL-sync-message: v0.1`` record; Month has no leading zero."""
    lines = [SYNC_HEADER, f"Site: {site}"]
    if submit_host_value:
        lines.append(f"SubmitHost: {submit_host_value}")
    lines += [f"NumberOfJobs: {int(number_of_jobs)}", f"Month: {int(month)}",
              f"Year: {int(year)}", RECORD_END]
    return "\n".join(lines) + "\n"


# --- spool names and months -------------------------------------------------------------

def record_name(now: float, machine_key: str) -> Tuple[str, str]:
    """(``YYYYMMDD``, 14-hex-digit file name) of a job record made at ``now`` (UTC).

    The file name is ``HHMMSS`` followed by 8 hex digits derived from ``machine_key`` (e.g.
    the machine directory name), so each machine has its own stable name, names sort by
    time, and both fit the dirq QueueSimple layout ssmsend reads ([0-9a-f]{8}/[0-9a-f]{14}).
    """
    import hashlib      # here: roles that only read records never load OpenSSL's libcrypto
    t = datetime.fromtimestamp(float(now), tz=timezone.utc)
    digest = hashlib.sha256(machine_key.encode("utf-8", "replace")).hexdigest()[:8]
    return t.strftime("%Y%m%d"), t.strftime("%H%M%S") + digest


def is_record_file_name(name: str) -> bool:
    """True for spool element names (14 lower-case hex digits), False for temp files etc."""
    return bool(_ELEMENT_RE.match(name))


def parse_month(text: str) -> Optional[Tuple[int, int]]:
    """``YYYYMM`` -> (year, month), or None if it cannot be parsed."""
    m = _MONTH_RE.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    return int(m.group(1)), int(m.group(2))


def default_month(now: float) -> Tuple[int, int]:
    """The UTC (year, month) of ``now`` minus one day (the original's default)."""
    t = datetime.fromtimestamp(float(now) - 86400, tz=timezone.utc)
    return t.year, t.month


def header_values(head: str, keys: Tuple[str, ...]) -> Dict[str, str]:
    """The first value of each of ``keys`` found in the leading ``Key: value`` lines."""
    found: Dict[str, str] = {}
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key in keys and key not in found:
            found[key] = value.strip()
            if len(found) == len(keys):
                break
    return found


# --- the APEL loader's rules ------------------------------------------------------------

def _is_null(value: Optional[str]) -> bool:
    return value is None or value.strip().lower() in _NULLS


def _parse_lines(text: str, problems: List[str]) -> Tuple[str, Dict[str, str]]:
    lines = text.strip().splitlines()
    header = lines[0].strip() if lines else ""
    if not lines or lines[-1].strip() != RECORD_END:
        problems.append("record is not terminated by a line %%")
    else:
        lines = lines[:-1]
    fields: Dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if not sep:
            problems.append(f"line without a key-value pair: {line!r}")
            continue
        fields[key.strip()] = value.strip()
    return header, fields


def _check_service_level(version: str, fields: Dict[str, str], problems: List[str]) -> None:
    slt, sl = fields.get("ServiceLevelType"), fields.get("ServiceLevel")
    if version == "0.4":
        if _is_null(sl):
            return
        body = sl.strip()
        if not (body.startswith("{") and body.endswith("}")):
            problems.append(f"ServiceLevel {sl!r} is not a dictionary {{type: value, ...}}")
            return
        for item in filter(None, (p.strip() for p in body[1:-1].split(","))):
            name, sep, value = item.partition(":")
            _check_benchmark(name.strip(), value.strip() if sep else "", problems)
        return
    if _is_null(sl) and _is_null(slt):
        return
    if _is_null(sl) or _is_null(slt):
        problems.append("ServiceLevelType and ServiceLevel must be given together")
        return
    _check_benchmark(slt, sl, problems)


def _check_benchmark(name: str, value: str, problems: List[str]) -> None:
    if name.lower() not in SERVICE_LEVEL_TYPES:
        problems.append(f"ServiceLevelType {name!r} not one of si2k, HEPSPEC, HEPscore23")
    try:
        float(value)
    except ValueError:
        problems.append(f"ServiceLevel {value!r} of {name} is not a number")


def _check_times(fields: Dict[str, str], now: float, problems: List[str]) -> None:
    try:
        start, end = int(fields["StartTime"]), int(fields["EndTime"])
    except (KeyError, ValueError):
        return                         # reported as a missing or integer field
    if end < start:
        problems.append(f"EndTime {end} is before StartTime {start}")
    if end > now + MAX_FUTURE_SECONDS:
        problems.append(f"EndTime {end} is more than 2 days in the future")


def check_job_record(text: str, now: float) -> List[str]:
    """The problems the APEL loader would reject ``text`` for (empty list: acceptable)."""
    problems: List[str] = []
    if any(ord(c) > 127 for c in text):
        problems.append("record contains non-ASCII characters")
    header, fields = _parse_lines(text, problems)
    version = next((v for v, h in JOB_HEADERS.items() if h == header), None)
    if version is None:
        return problems + [f"unknown header {header!r}"]
    allowed = (_FIELDS_V04 if version == "0.4" else _FIELDS_V03) + _IGNORED_FIELDS
    problems += [f"unknown field {k}" for k in fields if k not in allowed]
    problems += [f"mandatory field {k} missing" for k in MANDATORY_FIELDS
                 if _is_null(fields.get(k))]
    for key in INT_FIELDS:
        value = fields.get(key)
        if not _is_null(value) and not re.match(r"^-?[0-9]+$", value.strip()):
            problems.append(f"{key} {value!r} is not an integer")
    _check_service_level(version, fields, problems)
    _check_times(fields, now, problems)
    return problems
