"""The state directory (SPEC §0.4, §3.3): read slot snapshots, write lifecycle files.

Readers (responder, HTTP services, check-vacd, vac CLI) never write here. The factory is
the only writer of lifecycle state; every write is atomic (temp file + rename in the same
directory). Times read back are file ctimes, as in the original (SPEC App. A.2).
"""

from __future__ import annotations

import os
from typing import Iterator, List, Mapping, Optional, Tuple, Union

from vac.adapters import apelspool
from vac.adapters.atomicfile import (file_ctime, file_mtime, make_temp, read_text,
                                    remove_temporaries, write_atomic)
from vac.core import naming
from vac.errors import StateError
from vac.model import SlotRecord
from vac.paths import Paths

PREEMPTED_FILE = "preempted"            # in a machine directory (vac.core.preemption)


# --- small readers -----------------------------------------------------------

def _read_int(path: str) -> Optional[int]:
    text = read_text(path)
    try:
        return int(float(text.strip())) if text is not None else None
    except ValueError:
        return None


def _read_float(path: str) -> Optional[float]:
    text = read_text(path)
    try:
        return float(text.strip()) if text is not None else None
    except ValueError:
        return None


def _read_stripped(path: str) -> Optional[str]:
    text = read_text(path)
    if text is None:
        return None
    text = text.strip()
    return text or None


def parse_slot_file(text: Optional[str]) -> Optional[Tuple[int, str, str]]:
    """``CREATED MACHINETYPE MODEL`` -> (created, machinetype, model), or None if unparsable."""
    if not text:
        return None
    words = text.split()
    if len(words) < 2:
        return None
    try:
        created = int(words[0])
    except ValueError:
        return None
    model = words[2] if len(words) > 2 else "cernvm3"
    return created, words[1], model


def parse_heartbeat(text: Optional[str]) -> Tuple[Optional[float], Optional[float]]:
    """``CPUSECONDS [PERCENT]`` -> (cpu_seconds, cpu_percentage)."""
    if not text:
        return None, None
    words = text.split()
    values: List[Optional[float]] = []
    for word in words[:2]:
        try:
            values.append(float(word))
        except ValueError:
            values.append(None)
    while len(values) < 2:
        values.append(None)
    return values[0], values[1]


# --- slot snapshots ----------------------------------------------------------

def read_slot(paths: Paths, factory: str, ordinal: int,
              heartbeat_file: Optional[str] = None) -> SlotRecord:
    """Snapshot of slot ``ordinal`` of ``factory`` from the files (never raises on content).

    ``heartbeat_file`` is the machinetype's joboutputs heartbeat file name, if any.
    """
    name = naming.machine_name(factory, ordinal)
    return _slot_record(paths, ordinal, name, parse_slot_file(read_text(paths.slot_file(name))),
                        heartbeat_file)


def _slot_record(paths: Paths, ordinal: int, name: str,
                 parsed: Optional[Tuple[int, str, str]],
                 heartbeat_file: Optional[str]) -> SlotRecord:
    """The snapshot of a slot whose ``slots/NAME`` file parsed as ``parsed``."""
    if parsed is None:
        return SlotRecord(ordinal=ordinal, name=name)
    created, machinetype, model = parsed
    mdir = paths.machine_dir(created, machinetype, name)
    if not os.path.isdir(mdir):
        return SlotRecord(ordinal=ordinal, name=name, created=created,
                          machinetype=machinetype, machine_model=model)
    return _read_machine_dir(ordinal, name, created, machinetype, model, mdir, heartbeat_file)


def _read_machine_dir(ordinal: int, name: str, created: int, machinetype: str, model: str,
                      mdir: str, heartbeat_file: Optional[str]) -> SlotRecord:
    j = lambda *p: os.path.join(mdir, *p)  # noqa: E731 - local path helper
    cpu_seconds, cpu_percentage = parse_heartbeat(read_text(j("heartbeat")))
    hb_file_mtime = None
    if heartbeat_file and "/" not in heartbeat_file:
        hb_file_mtime = file_mtime(j("joboutputs", heartbeat_file))
    return SlotRecord(
        ordinal=ordinal, name=name, created=created, machinetype=machinetype,
        machine_model=model, machine_dir=mdir,
        started_time=file_ctime(j("started")),
        heartbeat_time=file_ctime(j("heartbeat")),
        heartbeat_mtime=file_mtime(j("heartbeat")),
        finished_time=file_ctime(j("finished")),
        cpu_seconds=cpu_seconds, cpu_percentage=cpu_percentage,
        shutdown_time_job=_read_int(j("jobfeatures", "shutdowntime_job")),
        processors=_read_int(j("jobfeatures", "allocated_cpu")),
        hs06=_read_float(j("machinefeatures", "hs06")),
        max_rss_bytes=_read_int(j("jobfeatures", "max_rss_bytes")),
        uuid=_read_stripped(j("jobfeatures", "job_id")),
        ip=_read_stripped(j("ip")),
        accounting_fqan=_read_stripped(j("accounting_fqan")),
        heartbeat_file_mtime=hb_file_mtime,
        shutdown_message=_read_stripped(j("joboutputs", "shutdown_message")),
        shutdown_message_time=file_ctime(j("joboutputs", "shutdown_message")),
        accounting=apelspool.read_accounting(mdir),
        record_frozen=apelspool.is_frozen(mdir),
        **_read_preempted(j(PREEMPTED_FILE)),
    )


def read_machine_dir(path: str) -> Optional[SlotRecord]:
    """Snapshot of one ``machines/CREATED_MT_NAME`` directory by its path (ordinal -1)."""
    parts = os.path.basename(os.path.normpath(path)).split("_")
    if len(parts) != 3 or not parts[0].isdigit() or not os.path.isdir(path):
        return None
    return _read_machine_dir(-1, parts[2], int(parts[0]), parts[1], "", path, None)


def _read_preempted(path: str) -> dict:
    """preempted_until and preempted_for from ``preempted`` (``UNTIL MACHINETYPE``)."""
    words = (read_text(path) or "").split()
    try:
        return {"preempted_until": int(words[0]),
                "preempted_for": words[1] if len(words) > 1 else None}
    except (IndexError, ValueError):
        return {}


def read_slots(paths: Paths, factory: str, slot_count: int,
               heartbeat_files: Optional[Mapping[str, Optional[str]]] = None) -> List[SlotRecord]:
    """Snapshots of slots 0..slot_count-1; ``heartbeat_files`` maps machinetype -> file name."""
    records = []
    for ordinal in range(slot_count):
        name = naming.machine_name(factory, ordinal)
        parsed = parse_slot_file(read_text(paths.slot_file(name)))
        hb_name = heartbeat_files.get(parsed[1]) if parsed and heartbeat_files else None
        records.append(_slot_record(paths, ordinal, name, parsed, hb_name))
    return records


def machine_dir_for(paths: Paths, factory: str, ordinal: int) -> Optional[str]:
    """The current machine directory of a slot (used by the HTTP services), or None."""
    name = naming.machine_name(factory, ordinal)
    parsed = parse_slot_file(read_text(paths.slot_file(name)))
    if parsed is None:
        return None
    mdir = paths.machine_dir(parsed[0], parsed[1], name)
    return mdir if os.path.isdir(mdir) else None


def slot_file_of(paths: Paths, factory: str, ordinal: int) -> str:
    """The path of slot ``ordinal``'s file (``slots/NAME``)."""
    return paths.slot_file(naming.machine_name(factory, ordinal))


def file_signature(path: str) -> Optional[Tuple[int, ...]]:
    """(inode, size, mtime ns) of ``path``, which changes whenever it is rewritten
    atomically (a slot file for a new machine); None if it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def read_finished(paths: Paths, machinetype: str) -> Optional[SlotRecord]:
    """Snapshot of the machine named by ``finishes/MT`` (``CREATED MT NAME``), or None.

    Used by the responder for the last outcome of a machinetype (added by VacQuery).
    """
    words = (read_text(paths.finishes_file(machinetype)) or "").split()
    if len(words) != 3 or not words[0].isdigit() or words[1] != machinetype:
        return None
    created, name = int(words[0]), words[2]
    mdir = paths.machine_dir(created, machinetype, name)
    if not os.path.isdir(mdir):
        return None
    return _read_machine_dir(-1, name, created, machinetype, "", mdir, None)


def iter_machine_dirs(paths: Paths) -> Iterator[Tuple[str, int, str, str]]:
    """(path, created, machinetype, machine name) for every ``machines/`` entry in 3 parts."""
    try:
        entries = sorted(os.listdir(paths.machines_dir))
    except OSError:
        return
    for entry in entries:
        parts = entry.split("_")
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        yield os.path.join(paths.machines_dir, entry), int(parts[0]), parts[1], parts[2]


def read_counts(paths: Paths) -> Optional[Tuple[int, int, int, int, float]]:
    """``counts``: (running machines, slots, running processors, max processors, running HS06)."""
    text = read_text(paths.counts)
    if not text:
        return None
    words = text.split()
    try:
        return (int(words[0]), int(words[1]), int(words[2]), int(words[3]), float(words[4]))
    except (ValueError, IndexError):
        return None


# --- writers (factory only) ----------------------------------------------------

def ensure_state_dirs(paths: Paths) -> None:
    """Create the state directory tree (mode 0755) if missing.

    Tries every directory; raises StateError naming those that cannot be made (e.g. a
    file where ``apel-archive`` should be), so the others are still there.
    """
    problems = []
    for directory in (paths.state_dir,) + paths.state_subdirs():
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        except OSError as e:
            problems.append(f"{directory}: {e.strerror or e}")
    if problems:
        raise StateError("cannot create " + "; ".join(problems))


def write_slot_file(paths: Paths, machine_name: str, created: int, machinetype: str,
                    machine_model: str) -> None:
    os.makedirs(paths.slots_dir, mode=0o755, exist_ok=True)
    write_atomic(paths.slot_file(machine_name), f"{int(created)} {machinetype} {machine_model}")


def write_counts(paths: Paths, running_machines: int, slots: int, running_processors: int,
                 max_processors: int, running_hs06: float) -> None:
    write_atomic(paths.counts, f"{running_machines} {slots} {running_processors} "
                               f"{max_processors} {running_hs06:.2f}\n")


# --- lifecycle writers (factory only; every file atomic) ---------------------------------

MACHINE_SUBDIRS = ("machinefeatures", "jobfeatures", "joboutputs")


def make_machine_dir(paths: Paths, created: int, machinetype: str, machine_name: str) -> str:
    """Create ``machines/CREATED_MT_NAME/`` and its MJF/joboutputs subdirectories (0755)."""
    mdir = paths.machine_dir(created, machinetype, machine_name)
    for sub in ("",) + MACHINE_SUBDIRS:
        os.makedirs(os.path.join(mdir, sub), mode=0o755, exist_ok=True)
    return mdir


def write_machine_file(machine_dir: str, relpath: str, content: Union[str, bytes],
                       mode: int = 0o644) -> None:
    """Atomic write of ``machine_dir/relpath`` (e.g. ``ip``, ``jobfeatures/job_id``)."""
    write_atomic(os.path.join(machine_dir, relpath), content, mode=mode)


def write_features(machine_dir: str, subdir: str, files: Mapping[str, str]) -> None:
    """Write every key file of ``machinefeatures/`` or ``jobfeatures/``."""
    for key, value in files.items():
        write_atomic(os.path.join(machine_dir, subdir, key), value)


def has_started(machine_dir: str) -> bool:
    """Whether the machine was made whole and started (its ``started`` file exists)."""
    return os.path.exists(os.path.join(machine_dir, "started"))


def write_started(machine_dir: str, now: float) -> None:
    """``started`` (Unix time + newline; its ctime is the start time) and the first heartbeat."""
    write_atomic(os.path.join(machine_dir, "started"), f"{int(now)}\n")
    write_atomic(os.path.join(machine_dir, "heartbeat"), "0.0 0.0\n")


def write_heartbeat(machine_dir: str, cpu_seconds: float,
                    cpu_percentage: Optional[float]) -> None:
    """Machine ``heartbeat``: ``CPUSECONDS`` or ``CPUSECONDS PERCENT`` (one decimal)."""
    text = f"{cpu_seconds:.0f}" if cpu_percentage is None else \
        f"{cpu_seconds:.0f} {cpu_percentage:.1f}"
    write_atomic(os.path.join(machine_dir, "heartbeat"), text + "\n", fsync=False)


def write_preempted(machine_dir: str, grace_until: int, for_machinetype: str) -> None:
    """``preempted``: the machine is being preempted for ``for_machinetype`` and is shut
    down at ``grace_until`` (Unix seconds); later cycles read it back into the slot."""
    write_atomic(os.path.join(machine_dir, PREEMPTED_FILE),
                 f"{int(grace_until)} {for_machinetype}\n")


def write_finished(machine_dir: str) -> None:
    """Empty ``finished``; its ctime is the time the factory finalised the machine."""
    write_atomic(os.path.join(machine_dir, "finished"), "")


def write_shutdown_message(machine_dir: str, message: str) -> bool:
    """Write ``joboutputs/shutdown_message`` unless the machine wrote one (it always wins).

    Atomic and never overwriting: a temp file is hard-linked to the target name.
    Returns True if Vac's message was written.
    """
    directory = os.path.join(machine_dir, "joboutputs")
    target = os.path.join(directory, "shutdown_message")
    if os.path.exists(target):
        return False
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = make_temp(directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(message + "\n")
        os.chmod(tmp, 0o644)
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def update_finishes(paths: Paths, machinetype: str) -> Optional[str]:
    """Point ``finishes/MT`` at the most recently created finished machine of that type.

    Content ``CREATED MT NAME`` (the directory name with underscores as spaces).
    """
    newest = None
    for path, _created, mt, _name in iter_machine_dirs(paths):
        if mt == machinetype and os.path.exists(os.path.join(path, "finished")):
            newest = os.path.basename(path)          # sorted: the last one is newest
    if newest is None:
        return None
    os.makedirs(paths.finishes_dir, mode=0o755, exist_ok=True)
    write_atomic(paths.finishes_file(machinetype), newest.replace("_", " "))
    return newest


def machine_dir_ages(paths: Paths) -> List[Tuple[str, str, Optional[float], bool]]:
    """(path, machinetype, mtime of its ``heartbeat`` or None, APEL record pending) for
    every machine directory."""
    return [(path, mt, file_mtime(os.path.join(path, "heartbeat")),
             apelspool.pending_state(path) is not None)
            for path, _created, mt, _name in iter_machine_dirs(paths)]


def remove_machine_dir(paths: Paths, path: str) -> None:
    """Delete a whole machine directory (only below ``machines/``)."""
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(paths.machines_dir):
        raise ValueError(f"{path} is not a machine directory")
    import shutil       # here: the roles that only read machine directories never load it
    shutil.rmtree(path, ignore_errors=True)


def clean_machine_dir(machine_dir: str) -> List[str]:
    """Remove the temporary files of interrupted writes anywhere in a finalised machine's
    directory (nothing writes there any more); returns their paths."""
    return remove_temporaries(machine_dir, recursive=True)


SHARED_TEMP_SECONDS = 60     # older temporary files in the state directory are leftovers


def remove_interrupted_writes(paths: Paths, now: float) -> List[str]:
    """Temporary files a killed factory cycle left in its own directories: ``slots/`` and
    ``finishes/`` (only the factory writes there, one cycle at a time) and the state
    directory itself (shared with the roles' heartbeats: only files older than
    SHARED_TEMP_SECONDS). Returns the removed paths."""
    return (remove_temporaries(paths.slots_dir) + remove_temporaries(paths.finishes_dir)
            + remove_temporaries(paths.state_dir, older_than=now - SHARED_TEMP_SECONDS))
