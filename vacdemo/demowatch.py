"""Progress of the demo factory, read from its files (``make demo``, tests/e2e).

:class:`Watcher` polls the state directory of a running factory and reports each machine's
transitions once: created, running (``started``), heartbeat (``joboutputs/heartbeat`` PUT by
the guest), shutdown_message, finalised (``finished``), APEL record (``apel-record/`` frozen
in the machine directory, copied to ``apel-archive``), plus the factory log's back-off
lines. Every event is also appended as one JSON line to an events file, so the first
heartbeat time survives later heartbeats overwriting the file.

:func:`timeline` turns the machine directories (file ctimes) and the events file into one
line per machine: seconds from creation to first heartbeat, shutdown message,
finalisation and APEL record.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from vac.adapters import netlink
from vac.adapters.atomicfile import file_ctime, file_mtime
from vac.paths import Paths
from vacdemo import demoenv

Emit = Callable[[str], None]
BACKOFF_RE = re.compile(r"For (\S+): .*not eligible: (backing off after abort at \d+ until (\d+))")
PROBLEM_WORDS = ("Traceback", "failed", "Failed", "cannot", "error")


def _read(path: str, limit: int = 4096) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode(errors="replace").strip()
    except OSError:
        return ""


def split_dir_name(name: str) -> Optional[Tuple[int, str, str]]:
    """``CREATED_MACHINETYPE_NAME`` -> (created, machinetype, machine name), else None."""
    parts = name.split("_", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1], parts[2]


def apel_archive_file(paths: Paths, mdir: str) -> Optional[str]:
    """The archive copy of the machine's frozen APEL record, if it exists."""
    relname = _read(os.path.join(mdir, "apel-record", "name"))
    if not relname:
        return None
    path = os.path.join(paths.apel_archive, relname)
    return path if os.path.exists(path) else None


def record_field(text: str, key: str) -> str:
    """The value of ``Key: value`` in an APEL record ('' if absent)."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return ""


@dataclass
class MachineSeen:
    """What the watcher has already reported about one machine directory."""

    created: int
    machinetype: str
    name: str
    events: Dict[str, float] = field(default_factory=dict)
    heartbeats: int = 0
    last_heartbeat_mtime: Optional[float] = None
    finished_polls: int = 0

    @property
    def done(self) -> bool:
        """Accounting reported: nothing more can happen to this machine directory."""
        return "apel" in self.events or "no-apel" in self.events


class Watcher:
    """Report machine transitions and back-off lines of the factory below ``paths``."""

    def __init__(self, paths: Paths, emit: Emit, events_file: Optional[str] = None,
                 fizzle_seconds: Optional[Dict[str, int]] = None,
                 kinds: Optional[Dict[str, str]] = None):
        self.paths = paths
        self.kinds = dict(kinds or {})      # machinetype -> "VM", "container"
        self.emit = emit
        self.events_file = events_file
        self.fizzle = dict(fizzle_seconds or {})
        self.seen: Dict[str, MachineSeen] = {}
        self.log_offset = 0
        self.backoffs: Dict[str, str] = {}

    def poll(self) -> None:
        """One look at the machine directories and the new lines of the factory log."""
        try:
            names = sorted(os.listdir(self.paths.machines_dir))
        except OSError:
            names = []
        for dname in names:
            parsed = split_dir_name(dname)
            if parsed is None:
                continue
            m = self.seen.get(dname)
            if m is None:
                m = self.seen[dname] = MachineSeen(*parsed)
            if not m.done:                 # finished machines: no more stat()s per poll
                self._machine(os.path.join(self.paths.machines_dir, dname), m)
        self._factory_log()

    def _event(self, m: MachineSeen, kind: str, when: float, text: str) -> None:
        if kind not in m.events:
            m.events[kind] = when
        short = m.name.split(".", 1)[0]
        self.emit(f"{_clock(when)}  {short:<8} {m.machinetype:<6} {text}")
        if self.events_file:
            line = json.dumps({"machine": m.name, "machinetype": m.machinetype,
                               "created": m.created, "event": kind, "time": when,
                               "text": text})
            with open(self.events_file, "a") as f:
                f.write(line + "\n")

    def _machine(self, mdir: str, m: MachineSeen) -> None:
        j = lambda *p: os.path.join(mdir, *p)  # noqa: E731 - local path helper
        if "created" not in m.events:
            kind = self.kinds.get(m.machinetype)
            self._event(m, "created", float(m.created),
                        f"created ({kind})" if kind else "created")
        started = file_ctime(j("started"))
        if started is not None and "running" not in m.events:
            self._event(m, "running", started, f"running (ip {_read(j('ip')) or '?'})")
        self._heartbeat(j("joboutputs", "heartbeat"), m)
        message_time = file_ctime(j("joboutputs", "shutdown_message"))
        if message_time is not None and "shutdown_message" not in m.events:
            text = _read(j("joboutputs", "shutdown_message"))
            self._event(m, "shutdown_message", message_time, f'shutdown_message "{text}"')
        finished = file_ctime(j("finished"))
        self._accounting(mdir, m, finished is not None)     # the record comes first
        if finished is not None and "finalised" not in m.events:
            self._event(m, "finalised", finished, "finalised by the factory")

    def _heartbeat(self, path: str, m: MachineSeen) -> None:
        mtime = file_mtime(path)
        if mtime is None or mtime == m.last_heartbeat_mtime:
            return
        m.last_heartbeat_mtime = mtime
        m.heartbeats += 1
        kind = "heartbeat" if m.heartbeats == 1 else "heartbeat-again"
        self._event(m, kind, mtime, f"heartbeat #{m.heartbeats}: {_read(path, 200)}")

    def _accounting(self, mdir: str, m: MachineSeen, finished: bool) -> None:
        archive = apel_archive_file(self.paths, mdir)
        if archive is not None:
            text = _read(archive)
            self._event(m, "apel", file_ctime(archive) or 0.0,
                        f"APEL record {os.path.relpath(archive, self.paths.state_dir)} "
                        f"(WallDuration {record_field(text, 'WallDuration')} s)")
            return
        if not finished:
            return
        m.finished_polls += 1
        if m.finished_polls >= 3:         # a record is made before the machine is finalised
            fizzle = self.fizzle.get(m.machinetype)
            why = f"ran less than fizzle_seconds {fizzle}" if fizzle is not None else "fizzled"
            self._event(m, "no-apel", m.events.get("finalised", 0.0),
                        f"no APEL record ({why})")

    def _factory_log(self) -> None:
        path = self.paths.log_file("factory")
        try:
            with open(path, "rb") as f:
                f.seek(self.log_offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self.log_offset += end + 1
        for line in chunk[:end].decode(errors="replace").splitlines():
            self._log_line(line)

    def _log_line(self, line: str) -> None:
        found = BACKOFF_RE.search(line)
        if found:
            machinetype, why, until = found.groups()
            if self.backoffs.get(machinetype) != until:
                self.backoffs[machinetype] = until
                self.emit(f"{line[7:15]}  factory  {machinetype:<6} back-off: {why} "
                          f"(no new {machinetype} machines until then)")
        elif any(word in line for word in PROBLEM_WORDS):
            self.emit(f"factory log: {line}")


# --- watching the demo's vacd -----------------------------------------------------------

STOP_WAIT_SECONDS = 45.0       # vacd gives its roles 30 s after SIGTERM
POLL_SECONDS = 1.0
DNSMASQ_CHECK_SECONDS = 15.0


def _warn_without_dnsmasq(watcher: Watcher) -> None:
    """Say so when the NAT network's dnsmasq is gone (new guests would get no DHCP lease)."""
    if any(m.events for m in watcher.seen.values()) and not netlink.stale_dnsmasq_pids():
        watcher.emit("vac demo: WARNING: no dnsmasq serves the vac NAT network (something "
                     "killed it): new guests get no DHCP lease and are destroyed with "
                     "700; restart the demo")


def watch_vacd(watcher: Watcher, pid: int, stopped: Callable[[], bool],
               duration: Optional[float]) -> int:
    """Report progress until ``stopped()``, ``duration`` seconds or vacd's exit; then stop
    vacd (SIGTERM). 0 if vacd stopped cleanly, else 1."""
    paths = watcher.paths
    end = time.monotonic() + duration if duration else None
    exited: Optional[int] = None
    checked = 0.0
    while not stopped() and (end is None or time.monotonic() < end):
        watcher.poll()
        if time.monotonic() - checked > DNSMASQ_CHECK_SECONDS:
            checked = time.monotonic()
            _warn_without_dnsmasq(watcher)
        exited = demoenv.reap(pid)
        if exited is not None:
            watcher.emit(f"vac demo: vacd exited by itself with status {exited}; see "
                         f"{paths.log_file('supervisor')}")
            return 1
        time.sleep(POLL_SECONDS)
    watcher.emit("vac demo: stopping vacd (SIGTERM; machines are left running)")
    exited = demoenv.stop_vacd(pid, STOP_WAIT_SECONDS)
    watcher.poll()
    watcher.emit(f"vac demo: vacd stopped (exit status {exited})")
    return 0 if exited == 0 else 1



def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


# --- the timeline ----------------------------------------------------------------------

def read_events(events_file: str) -> List[dict]:
    """Events written by a Watcher (bad lines skipped)."""
    events = []
    try:
        with open(events_file) as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        pass
    return events


def machine_timeline(paths: Paths, dname: str, first_heartbeat: Optional[float]) -> dict:
    """Times (Unix seconds, None if absent) of one machine's lifecycle, from file ctimes."""
    created, machinetype, name = split_dir_name(dname) or (0, "", dname)
    mdir = os.path.join(paths.machines_dir, dname)
    archive = apel_archive_file(paths, mdir)
    return {"machine": name, "machinetype": machinetype, "created": float(created),
            "running": file_ctime(os.path.join(mdir, "started")),
            "first_heartbeat": first_heartbeat,
            "shutdown_message": file_ctime(os.path.join(mdir, "joboutputs", "shutdown_message")),
            "message": _read(os.path.join(mdir, "joboutputs", "shutdown_message")),
            "finalised": file_ctime(os.path.join(mdir, "finished")),
            "apel": file_ctime(archive) if archive else None}


def timeline(paths: Paths, events_file: str) -> List[dict]:
    """One :func:`machine_timeline` per machine directory, oldest first."""
    first: Dict[str, float] = {}
    for ev in read_events(events_file):
        if ev.get("event") == "heartbeat":
            key = f"{int(ev['created'])}_{ev['machinetype']}_{ev['machine']}"
            first.setdefault(key, float(ev["time"]))
    try:
        names = sorted(n for n in os.listdir(paths.machines_dir) if split_dir_name(n))
    except OSError:
        names = []
    return [machine_timeline(paths, n, first.get(n)) for n in names]


COLUMNS = ("running", "first_heartbeat", "shutdown_message", "finalised", "apel")


def timeline_text(rows: List[dict]) -> str:
    """A table: seconds after creation of each step ('-' if it did not happen)."""
    head = ("%-22s %-6s %-19s %8s %10s %9s %10s %6s  %s" %
            ("machine", "type", "created (UTC)", "running", "heartbeat", "shutdown",
             "finalised", "APEL", "shutdown_message"))
    lines = [head]
    for r in rows:
        rel = ["%.0f" % (r[c] - r["created"]) if r[c] else "-" for c in COLUMNS]
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["created"]))
        lines.append("%-22s %-6s %-19s %8s %10s %9s %10s %6s  %s" % (
            r["machine"], r["machinetype"], created, *rel, r["message"] or "-"))
    lines.append("(seconds after creation: created -> running -> first heartbeat -> "
                 "shutdown_message -> finalised; APEL record; '-' = did not happen)")
    return "\n".join(lines)
