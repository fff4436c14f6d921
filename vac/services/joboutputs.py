"""JOBOUTPUTS space accounting of the mjf role: bytes and files per machine, in memory.

A machine's joboutputs/ is scanned once, when the role first sees it (temporary files an
earlier mjf process left behind are removed then). From then on each PUT is checked in
O(1) by vac.core.mjfhttp.check_put against these figures and, if allowed, charged before
any of its body is written (:meth:`JoboutputsLedger.reserve`); :meth:`commit` records the
stored file, :meth:`release` gives the charge back if the upload failed. The mjf role is
the only writer of joboutputs/ while the machine runs (the factory adds its own
``shutdown_message`` only once the machine has stopped).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, NamedTuple, Optional, Tuple

from vac.adapters.atomicfile import TEMP_PREFIX
from vac.core.mjfhttp import JoboutputsLimits, JoboutputsUsage, PutDecision, check_put

log = logging.getLogger(__name__)

IDLE_FORGET_SECONDS = 3600.0   # accounts unused this long are dropped (rescanned if needed)
FORGET_CHECK_SECONDS = 60.0    # how often, at most, to look for such accounts


@dataclass
class _Account:
    """One joboutputs/ directory: stored sizes, and the uploads in progress."""

    sizes: Dict[str, int]
    stored_bytes: int
    uploading: Dict[str, PutDecision] = field(default_factory=dict)
    reserved_bytes: int = 0
    reserved_files: int = 0
    last_used: float = 0.0

    def usage(self) -> JoboutputsUsage:
        return JoboutputsUsage(self.sizes, self.stored_bytes, self.uploading,
                               self.reserved_bytes, self.reserved_files)


class Reservation(NamedTuple):
    """An allowed upload: where it goes and what it was charged (a NamedTuple: one is
    made per PUT, at half the cost of a frozen dataclass)."""

    directory: str
    decision: PutDecision


def scan(directory: str) -> Dict[str, int]:
    """Sizes of the files in ``directory``; removes leftover temporary files."""
    sizes: Dict[str, int] = {}
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return sizes
    for entry in entries:
        try:
            if entry.name.startswith(TEMP_PREFIX):
                os.unlink(entry.path)
            elif not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                sizes[entry.name] = entry.stat(follow_symlinks=False).st_size
        except OSError as e:
            log.warning("%s: %s", entry.path, e)
    return sizes


class JoboutputsLedger:
    """Accounts of every machine's joboutputs/ seen by this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: Dict[str, _Account] = {}
        self._forgotten = 0.0           # when idle accounts were last dropped (monotonic)

    def _account(self, directory: str, now: float) -> _Account:
        account = self._accounts.get(directory)
        if account is None:
            self._forget_idle(now)
            sizes = scan(directory)
            account = _Account(sizes, sum(sizes.values()))
            self._accounts[directory] = account
        account.last_used = now
        return account

    def warm(self, directory: str) -> None:
        """Scan ``directory`` now if not accounted yet (the role's cache warming, when a
        machine appears), so that the machine's first PUT costs no more than its others."""
        with self._lock:
            self._account(directory, time.monotonic())

    def _forget_idle(self, now: float) -> None:
        if now - self._forgotten < FORGET_CHECK_SECONDS:
            return                      # at most once a minute: not O(machines) per new one
        self._forgotten = now
        for directory, account in list(self._accounts.items()):
            if not account.uploading and now - account.last_used > IDLE_FORGET_SECONDS:
                del self._accounts[directory]

    def reserve(self, directory: str, path: str, length: Optional[int],
                limits: JoboutputsLimits) -> Tuple[PutDecision, Optional[Reservation]]:
        """Check ``PUT path`` of ``length`` bytes into ``directory``; charge it if allowed."""
        with self._lock:
            account = self._account(directory, time.monotonic())
            decision = check_put(path, length, account, limits)     # read, not kept
            if decision.status != 201:
                return decision, None
            account.uploading[decision.name] = decision
            account.reserved_bytes += decision.charge
            account.reserved_files += decision.new_file
        return decision, Reservation(directory, decision)

    def _end(self, reservation: Reservation) -> Optional[_Account]:
        account = self._accounts.get(reservation.directory)
        decision = reservation.decision
        if account is None or account.uploading.pop(decision.name, None) is None:
            return None
        account.reserved_bytes -= decision.charge
        account.reserved_files -= decision.new_file
        return account

    def commit(self, reservation: Reservation, size: int) -> None:
        """The upload is stored as ``size`` bytes (its Content-Length)."""
        with self._lock:
            account = self._end(reservation)
            if account is not None:
                name = reservation.decision.name
                account.stored_bytes += size - account.sizes.get(name, 0)
                account.sizes[name] = size

    def release(self, reservation: Reservation) -> None:
        """The upload failed: nothing was stored, give its charge back."""
        with self._lock:
            self._end(reservation)

    def usage(self, directory: str) -> Optional[JoboutputsUsage]:
        """The current figures of ``directory`` (None if not accounted)."""
        with self._lock:
            account = self._accounts.get(directory)
            if account is None:
                return None
            return JoboutputsUsage(dict(account.sizes), account.stored_bytes,
                                   frozenset(account.uploading), account.reserved_bytes,
                                   account.reserved_files)
