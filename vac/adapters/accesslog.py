"""The access log of vac.adapters.httpserver: the original's line per request
(``client PID PPID [DD/Mon/YYYY HH:MM:SS] "request line" status -``), cheaply.

A logging call per request cost about 30 µs (a record, the handler's lock, a stat of the
log file, a write and a flush), as much as answering a request from memory. The lines are
kept (from any thread) and handed to logging as one record per pass of the event loop
(:meth:`AccessLog.flush`; a pass ends at least every 0.25 s), marked ``vac_lines`` so that
vac's formatters (vac.vacd.logsetup) still give every line its own timestamp prefix. The
PID, parent PID and date part is formatted at most once a second.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Deque

_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
           "Nov", "Dec")


class AccessLog:
    """Access log lines for ``logger`` at INFO; :meth:`add` from any thread,
    :meth:`flush` from the event loop only."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self._lines: Deque[str] = deque()
        self._second = -1
        self._stamp = ""

    def _pid_and_date(self) -> str:
        """``PID PPID [DD/Mon/YYYY HH:MM:SS]`` of the current second (local time)."""
        now = int(time.time())
        if now != self._second:
            t = time.localtime(now)
            self._stamp = (f"{os.getpid()} {os.getppid()} [{t.tm_mday:02d}/"
                           f"{_MONTHS[t.tm_mon]}/{t.tm_year:04d} {t.tm_hour:02d}:"
                           f"{t.tm_min:02d}:{t.tm_sec:02d}]")
            self._second = now
        return self._stamp

    def add(self, client: str, requestline: str, status: int) -> None:
        """Keep one request's line for :meth:`flush` (any thread)."""
        self._lines.append(f'{client} {self._pid_and_date()} "{requestline}" {status} -')

    def note(self, text: str) -> None:
        """Keep another INFO line of a request (e.g. ``NAME Wrote PATH``) for :meth:`flush`."""
        self._lines.append(text)

    def flush(self) -> None:
        """Log the kept lines as one record (the event loop only)."""
        if not self._lines:
            return
        lines = []
        try:
            while True:
                lines.append(self._lines.popleft())
        except IndexError:
            pass
        if self.logger.isEnabledFor(logging.INFO):
            record = self.logger.makeRecord(self.logger.name, logging.INFO, __file__, 0,
                                            "\n".join(lines), (), None)
            record.vac_lines = len(lines) > 1
            self.logger.handle(record)
