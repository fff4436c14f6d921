"""Logging set-up for vacd: one log per role, in the original's line format (SPEC §2.6).

Files: ``Paths.log_file(role)`` (e.g. ``/var/log/vacd-factory``), written through
``logging.handlers.WatchedFileHandler`` so logrotate can move a log away without
``copytruncate``: the next record notices the new inode and reopens the path.

journald (``[settings] log_destination = journald``): records go to the systemd journal
through ``systemd.journal.JournalHandler`` if python-systemd is installed, otherwise to
stderr with a syslog ``<priority>`` prefix, which journald parses for the unit's output.

Roles never install handlers themselves; only vacd (and ``vacd --once``) call this module.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from typing import IO, List, Optional, Sequence

from vac.paths import Paths

LOG_DESTINATIONS = ("files", "journald")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# syslog priorities (RFC 5424) by logging level, for the "<N>" stderr prefix
_SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4,
                    logging.ERROR: 3, logging.CRITICAL: 2}


def format_timestamp(epoch: float) -> str:
    """``Mon DD HH:MM:SS`` in local time with English month names (locale independent)."""
    t = time.localtime(epoch)
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


class VacFormatter(logging.Formatter):
    """``Mon DD HH:MM:SS [pid]: text`` (SPEC §2.6); tracebacks follow unprefixed. A record
    marked ``vac_lines`` (several access log lines, vac.adapters.accesslog) gets the
    prefix on each of its lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if getattr(record, "vac_lines", False):
            prefix = f"{format_timestamp(record.created)} [{record.process}]: "
            return prefix + text.replace("\n", "\n" + prefix)
        if record.levelno >= logging.WARNING and not text.startswith(record.levelname):
            text = f"{record.levelname}: {text}"
        line = f"{format_timestamp(record.created)} [{record.process}]: {text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


class SyslogPrefixFormatter(logging.Formatter):
    """``<priority>vacd-ROLE[pid]: text`` for stderr captured by journald."""

    def __init__(self, ident: str) -> None:
        super().__init__()
        self.ident = ident

    def format(self, record: logging.LogRecord) -> str:
        prio = _SYSLOG_PRIORITY.get(record.levelno, 6)
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        # journald splits lines: prefix every line so continuation lines keep the priority
        return "\n".join(f"<{prio}>{self.ident}[{record.process}]: {part}"
                         for part in text.splitlines() or [""])


def _journal_handler(ident: str) -> Optional[logging.Handler]:
    """python-systemd's JournalHandler if importable, else None."""
    try:
        from systemd import journal  # type: ignore[import-not-found]
    except ImportError:
        return None
    return journal.JournalHandler(SYSLOG_IDENTIFIER=ident)


def reset_handlers() -> None:
    """Close and remove every handler of the root logger (e.g. inherited across fork)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        try:
            handler.close()
        except OSError:
            pass


def make_handler(paths: Paths, role: str, destination: str = "files") -> logging.Handler:
    """A handler for ``role``'s log (file under Paths.log_dir, or journald)."""
    if destination not in LOG_DESTINATIONS:
        raise ValueError(f"log_destination must be one of {', '.join(LOG_DESTINATIONS)}, "
                         f"not {destination!r}")
    ident = f"vacd-{role}"
    if destination == "journald":
        handler = _journal_handler(ident)
        if handler is None:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(SyslogPrefixFormatter(ident))
        return handler
    os.makedirs(os.path.dirname(paths.log_file(role)), exist_ok=True)
    handler = logging.handlers.WatchedFileHandler(paths.log_file(role), encoding="utf-8")
    handler.setFormatter(VacFormatter())
    return handler


def thread_name(role: str) -> str:
    """The name of the thread that runs ``role`` in another role's process (and the
    prefix of the names of the threads it starts)."""
    return f"vacd-{role}"


class ThreadsOf(logging.Filter):
    """Passes the records of the threads of the roles ``roles`` (named by thread_name),
    or, with ``exclude``, every other record."""

    def __init__(self, roles: Sequence[str], exclude: bool = False) -> None:
        super().__init__()
        self.prefixes = tuple(thread_name(r) for r in roles)
        self.exclude = exclude

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName.startswith(self.prefixes) != self.exclude


def setup_role_logging(paths: Paths, role: str, destination: str = "files",
                       level: int = logging.INFO, hosted: Sequence[str] = ()) -> List[IO]:
    """Route all logging of this process to ``role``'s log, except that of the threads
    of the ``hosted`` roles (vac.vacd.hosting), which go to their own; return the open
    streams. The streams are what python-daemon's ``files_preserve`` must keep open.
    """
    reset_handlers()
    root = logging.getLogger()
    streams = []
    for name in [role, *hosted]:
        handler = make_handler(paths, name, destination)
        if hosted:
            handler.addFilter(ThreadsOf(hosted, exclude=True) if name == role
                              else ThreadsOf([name]))
        root.addHandler(handler)
        stream = getattr(handler, "stream", None)
        if stream is not None:
            streams.append(stream)
    root.setLevel(level)
    return streams


def setup_stderr_logging(level: int = logging.INFO) -> None:
    """Log to stderr in the vac line format (``vacd --once``, early start-up errors)."""
    reset_handlers()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(VacFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
