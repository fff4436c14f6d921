"""The APEL spools on disk: apel-archive, the apel-outgoing dirq queue, frozen records.

* ``apel-archive/YYYYMMDD/NAME``: every record, written atomically (temp file + rename).
* ``apel-summary/``: the day summaries of the archive, owned by vac.adapters.apelsummaries.
* ``apel-outgoing``: a dirq ``QueueSimple`` (``[0-9a-f]{8}/[0-9a-f]{14}`` elements) that
  ssmsend reads and empties. Job records enter it by an atomic rename of a file staged in
  the machine directory, so the staged file vanishes the instant the element appears.
* ``<machine dir>/apel-record/``: the frozen record of one machine (``record``, ``name``,
  optional ``outgoing`` staged copy, ``archived`` marker), created by a directory rename
  of ``apel-record.tmp``.
* ``<machine dir>/apel-owed``: empty marker, there while a record is owed but could not be
  frozen yet (e.g. a full disk: an empty file needs no data block). Together with an
  incomplete ``apel-record/`` or a leftover ``apel-record.tmp`` it makes the machine
  count as "APEL record pending" (``pending_state``, read by check-vacd).

* ``<machine dir>/accounting.json``: the accounting inputs fixed when the machine was
  created (``AccountingInputs``), written by the factory then, read back at accounting.

No decisions here: the accounting service says what to write and when.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

from vac.adapters.atomicfile import read_text, remove_temporaries, write_atomic
from vac.errors import StateError
from vac.model import AccountingInputs

ACCOUNTING_FILE = "accounting.json"     # AccountingInputs captured at creation
ACCOUNTING_FORMAT = 1
_ACCOUNTING_FIELDS = tuple(f.name for f in dataclasses.fields(AccountingInputs)
                           if f.name != "from_config")
FROZEN_DIR = "apel-record"
FROZEN_TMP = FROZEN_DIR + ".tmp"
OWED_MARKER = "apel-owed"
_RECORD, _NAME, _OUTGOING, _ARCHIVED = "record", "name", "outgoing", "archived"
_PUBLISH_TRIES = 5
HEAD_BYTES = 1024                     # enough for the Site and SubmitHost lines


@dataclass(frozen=True)
class FrozenRecord:
    """A machine's record as frozen in its directory; ``relname`` is ``YYYYMMDD/NAME``."""

    directory: str
    text: str
    relname: str
    archived: bool
    outgoing_pending: bool

    @property
    def staged_path(self) -> str:
        return os.path.join(self.directory, _OUTGOING)


# --- accounting.json ---------------------------------------------------------------

def write_accounting(machine_dir: str, inputs: AccountingInputs) -> None:
    """``accounting.json``: the machine's accounting inputs, written once at creation."""
    data: Dict[str, Any] = {"format": ACCOUNTING_FORMAT}
    data.update({name: getattr(inputs, name) for name in _ACCOUNTING_FIELDS})
    write_atomic(os.path.join(machine_dir, ACCOUNTING_FILE),
                 json.dumps(data, indent=1, sort_keys=True) + "\n")


def _checked(name: str, value: Any) -> Any:
    """``value`` of field ``name`` if its JSON type fits (numbers as float/int), else raise."""
    if name in ("hs06_per_processor", "hepscore23_per_processor", "fqan") and value is None:
        return None
    if name in ("hs06_per_processor", "hepscore23_per_processor"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif name in ("fizzle_seconds", "memory_kb"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif name == "publish":
        if isinstance(value, bool):
            return value
    elif isinstance(value, str):
        return value
    raise ValueError(f"{name} = {value!r}")


def read_accounting(machine_dir: str) -> Optional[AccountingInputs]:
    """The machine's ``accounting.json``; None if absent (made by an older vac) or unusable
    (the accounting service then says so when it falls back to the configuration)."""
    text = read_text(os.path.join(machine_dir, ACCOUNTING_FILE))
    if text is None:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != ACCOUNTING_FORMAT:
            return None
        return AccountingInputs(**{name: _checked(name, data.get(name))
                                   for name in _ACCOUNTING_FIELDS})
    except ValueError:                    # json.JSONDecodeError is a ValueError
        return None


# --- the frozen record ------------------------------------------------------------------

def _frozen_dir(machine_dir: str) -> str:
    return os.path.join(machine_dir, FROZEN_DIR)


def load_frozen(machine_dir: str) -> Optional[FrozenRecord]:
    """The frozen record of a machine, or None if none was frozen (completely) yet."""
    directory = _frozen_dir(machine_dir)
    text = read_text(os.path.join(directory, _RECORD))
    relname = read_text(os.path.join(directory, _NAME))
    if text is None or relname is None:
        return None
    return FrozenRecord(directory=directory, text=text, relname=relname.strip(),
                        archived=os.path.exists(os.path.join(directory, _ARCHIVED)),
                        outgoing_pending=os.path.exists(os.path.join(directory, _OUTGOING)))


def is_frozen(machine_dir: str) -> bool:
    """True if the machine's record is frozen (its text and name are in ``apel-record/``)."""
    directory = _frozen_dir(machine_dir)
    return all(os.path.isfile(os.path.join(directory, n)) for n in (_RECORD, _NAME))


def mark_owed(machine_dir: str) -> None:
    """Create the empty ``apel-owed`` marker (best effort: a failure only goes unseen by
    check-vacd, the factory still retries and logs)."""
    try:
        os.close(os.open(os.path.join(machine_dir, OWED_MARKER),
                         os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
    except OSError:
        pass


def clear_owed(machine_dir: str) -> None:
    """Remove the ``apel-owed`` marker (no record is owed after all)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(machine_dir, OWED_MARKER))


PENDING_OWED, PENDING_INTERRUPTED, PENDING_INCOMPLETE = "owed", "interrupted", "incomplete"


def pending_state(machine_dir: str) -> Optional[str]:
    """Why the machine's record is pending, or None (none owed, or complete).

    ``incomplete``: frozen, but the archive copy or the outgoing move is missing;
    ``interrupted``: only a leftover ``apel-record.tmp`` (a freeze that was killed);
    ``owed``: the ``apel-owed`` marker (the record could not be frozen yet).
    One directory listing, plus two stats for a frozen record.
    """
    try:
        names = set(os.listdir(machine_dir))
    except OSError:
        return None
    if FROZEN_DIR in names:
        directory = _frozen_dir(machine_dir)
        if not os.path.exists(os.path.join(directory, _ARCHIVED)) or \
                os.path.exists(os.path.join(directory, _OUTGOING)):
            return PENDING_INCOMPLETE
        return None
    if FROZEN_TMP in names:
        return PENDING_INTERRUPTED
    return PENDING_OWED if OWED_MARKER in names else None


def pending_dirs(machines_dir: str) -> List[Tuple[str, str]]:
    """(machine dir, ``pending_state``) of every machine directory with a pending record."""
    try:
        with os.scandir(machines_dir) as it:
            dirs = sorted(e.path for e in it if e.is_dir())
    except OSError:
        return []
    found = []
    for machine_dir in dirs:
        state = pending_state(machine_dir)
        if state is not None:
            found.append((machine_dir, state))
    return found


def freeze(machine_dir: str, text: str, relname: str, outgoing: bool) -> FrozenRecord:
    """Freeze ``text`` under ``relname`` (and a staged outgoing copy) all at once.

    The files are written in a temporary directory that is then renamed into place, so
    a crash leaves either nothing (a stale temporary directory, removed by the next
    call) or the complete frozen record.
    """
    import shutil       # here: roles that only read records never load it
    final = _frozen_dir(machine_dir)
    tmp = os.path.join(machine_dir, FROZEN_TMP)
    try:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        os.mkdir(tmp, 0o755)
        write_atomic(os.path.join(tmp, _RECORD), text)
        write_atomic(os.path.join(tmp, _NAME), relname + "\n")
        if outgoing:
            write_atomic(os.path.join(tmp, _OUTGOING), text)
        os.rename(tmp, final)
        _fsync_dir(machine_dir)         # the frozen name must survive a power cut too
    except (OSError, StateError) as e:
        shutil.rmtree(tmp, ignore_errors=True)     # nothing half-made is left behind
        raise StateError(f"cannot freeze APEL record in {machine_dir}: {e}") from e
    clear_owed(machine_dir)
    return FrozenRecord(directory=final, text=text, relname=relname, archived=False,
                        outgoing_pending=outgoing)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def archive_path(archive_dir: str, relname: str) -> str:
    return os.path.join(archive_dir, relname)


class ArchiveWrite(NamedTuple):
    """What :func:`write_archive` did: the day directory's mtime (ns) just before (None:
    it did not exist) and after the write, and whether the name was already there."""

    path: str
    existed: bool
    before_ns: Optional[int]
    after_ns: int


def write_archive(archive_dir: str, frozen: FrozenRecord) -> ArchiveWrite:
    """Write the archive copy (0644, day directory 0755) and mark it done.

    The name is fixed by the frozen record, so a repeated call overwrites, never adds.
    """
    path = archive_path(archive_dir, frozen.relname)
    day_dir, name = os.path.split(path)
    temp = os.path.join(day_dir, f".{name}.tmp")   # fixed: a retry reuses, never adds
    before = day_mtime_ns(day_dir)
    existed = before is not None and os.path.lexists(path)
    try:
        os.makedirs(day_dir, mode=0o755, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(frozen.text.encode())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
        after = os.stat(day_dir).st_mtime_ns
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise StateError(f"cannot write {path}: {e}") from e
    write_atomic(os.path.join(frozen.directory, _ARCHIVED), "", fsync=False)
    remove_temporaries(frozen.directory)            # of an earlier, interrupted marker
    return ArchiveWrite(path, existed, before, after)


def publish_staged(outgoing_dir: str, frozen: FrozenRecord) -> str:
    """Move the staged copy into the outgoing queue as element ``relname`` (one rename).

    Retries if ssmsend's purge removes the (empty) day directory in between.
    """
    target = os.path.join(outgoing_dir, frozen.relname)
    for _ in range(_PUBLISH_TRIES):
        try:
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            os.chmod(frozen.staged_path, 0o644)
            os.rename(frozen.staged_path, target)
            return target
        except FileNotFoundError:
            if not os.path.exists(frozen.staged_path):
                return target           # already moved by an earlier attempt
            continue                    # the day directory was purged under us
        except OSError as e:
            raise StateError(f"cannot move {frozen.staged_path} to {target}: {e}") from e
    raise StateError(f"cannot move {frozen.staged_path} to {target}: directory keeps vanishing")


def queue_count(outgoing_dir: str) -> int:
    """Messages waiting in the outgoing dirq queue for ssmsend (0 if there is no queue)."""
    if not os.path.isdir(outgoing_dir):
        return 0
    from dirq.QueueSimple import QueueSimple   # not at the top: check-vacd needs stdlib only
    return QueueSimple(outgoing_dir, umask=0o022).count()


def queue_add(outgoing_dir: str, text: str) -> str:
    """Add one message to the outgoing dirq queue (e.g. a sync record); returns its path."""
    from dirq.QueueSimple import QueueSimple   # not at the top: check-vacd needs stdlib only
    try:
        os.makedirs(outgoing_dir, mode=0o755, exist_ok=True)
        queue = QueueSimple(outgoing_dir, umask=0o022)
        return os.path.join(outgoing_dir, queue.add(text))
    except OSError as e:
        raise StateError(f"cannot add to the queue {outgoing_dir}: {e}") from e


# --- reading the archive ----------------------------------------------------------------

def month_day_dirs(archive_dir: str, yyyymm: str) -> List[str]:
    """Archive day directories ``YYYYMM*`` of one month, newest first (at most ~31)."""
    try:
        names = [e.name for e in os.scandir(archive_dir)
                 if e.name.startswith(yyyymm) and e.is_dir()]
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StateError(f"cannot list {archive_dir}: {e}") from e
    return [os.path.join(archive_dir, n) for n in sorted(names, reverse=True)]


def day_file_names(day_dir: str) -> List[str]:
    """File names in one archive day directory, newest first (dot files left out)."""
    try:
        with os.scandir(day_dir) as it:
            names = [e.name for e in it if not e.name.startswith(".")]
    except OSError as e:
        raise StateError(f"cannot list {day_dir}: {e}") from e
    names.sort(reverse=True)
    return names


def read_head(path: str, nbytes: int = HEAD_BYTES) -> Optional[str]:
    """The first ``nbytes`` of a file as text, or None if it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, nbytes).decode("utf-8", "replace")
    except OSError:
        return None                     # e.g. a directory
    finally:
        os.close(fd)


def day_mtime_ns(day_dir: str) -> Optional[int]:
    """The day directory's mtime in ns, or None if it does not exist (or cannot be read)."""
    try:
        return os.stat(day_dir).st_mtime_ns
    except OSError:
        return None


def count_day_entries(day_dir: str) -> int:
    """Names in one archive day directory, dot files left out (one listing, no sort)."""
    try:
        with os.scandir(day_dir) as it:
            return sum(1 for e in it if not e.name.startswith("."))
    except OSError as e:
        raise StateError(f"cannot list {day_dir}: {e}") from e


def day_heads(day_dir: str) -> Iterator[Tuple[str, Optional[str]]]:
    """(name, head of the file or None if unreadable) of a day directory, newest first."""
    for name in day_file_names(day_dir):
        yield name, read_head(os.path.join(day_dir, name))
