"""APEL accounting (SPEC §9): one job record per finished machine, exactly once; apel-sync.

``account_machine`` is what the factory calls when it finalises a machine. Its record is
first frozen in the machine directory (text, spool name, a staged outgoing copy), then
copied to ``apel-archive`` (atomic overwrite under the frozen name) and moved into the
``apel-outgoing`` dirq queue by a single rename of the staged copy. A crash at any point
leaves a state from which the next call finishes the job without losing or duplicating
the record: the archive copy is rewritten under the same name, and the outgoing copy is
either still staged (moved now) or already in the queue (nothing to do).
``complete_pending`` does the same for every machine directory, for records whose
machine was finalised although its record could not be finished (e.g. a full disk).

``sync_months`` builds ``APEL-sync-message: v0.1`` records from the archive (SPEC §9.3).
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from vac.adapters import apelspool
from vac.core import apel
from vac.core.configtypes import Config
from vac.errors import StateError
from vac.model import SlotRecord
from vac.paths import Paths

log = logging.getLogger(__name__)

Emit = Callable[[str], None]


def why_no_record(cfg: Config, slot: SlotRecord) -> Optional[str]:
    """The reason a finished machine gets no record (SPEC §9.1), or None if it gets one."""
    if not slot.machine_dir:
        return "no machine directory"
    if slot.started_time is None:
        return "never started"
    if slot.heartbeat_time is None:
        return "no heartbeat time"
    mt = cfg.machinetypes.get(slot.machinetype or "")
    if mt is None:
        return f"machinetype {slot.machinetype} is no longer configured"
    ran = slot.heartbeat_time - slot.started_time
    if ran < mt.fizzle_seconds:
        return f"ran {int(ran)}s, less than fizzle_seconds {mt.fizzle_seconds}"
    return None


def account_machine(cfg: Config, paths: Paths, slot: SlotRecord, *,
                    now: float) -> Optional[str]:
    """Write the APEL record of a finished machine; returns its archive path or None.

    Safe to call again after a crash or on every later cycle: it completes what is
    missing and never writes a second copy. Raises StateError if the disk refuses.
    """
    if not slot.machine_dir:
        return None
    frozen = apelspool.load_frozen(slot.machine_dir)
    if frozen is None:
        reason = why_no_record(cfg, slot)
        if reason:
            log.info("%s: no APEL record: %s", slot.name, reason)
            return None
        frozen = _freeze(cfg, slot, now)
    return _complete(paths, slot.name, frozen)


def _complete(paths: Paths, name: str, frozen: apelspool.FrozenRecord) -> str:
    """Write whatever copy of a frozen record is still missing; returns the archive path."""
    path = apelspool.archive_path(paths.apel_archive, frozen.relname)
    if not frozen.archived:
        path = apelspool.write_archive(paths.apel_archive, frozen)
        log.info("%s: APEL record archived as %s", name, path)
    if frozen.outgoing_pending:
        target = apelspool.publish_staged(paths.apel_outgoing, frozen)
        log.info("%s: APEL record queued for ssmsend as %s", name, target)
    return path


def complete_pending(paths: Paths) -> int:
    """Finish every frozen record left incomplete in ``machines/`` (e.g. by a full disk).

    Cheap enough for every factory cycle (one directory listing and a stat per machine).
    Returns how many records were completed; a failing one is logged and retried later.
    """
    done = 0
    for machine_dir, frozen in apelspool.pending_frozen(paths.machines_dir):
        name = os.path.basename(machine_dir)
        try:
            _complete(paths, name, frozen)
            done += 1
        except StateError as e:
            log.error("%s: APEL record still incomplete: %s", name, e)
    return done


def _freeze(cfg: Config, slot: SlotRecord, now: float) -> apelspool.FrozenRecord:
    """Render, check and freeze the record of ``slot`` in its machine directory."""
    settings = cfg.settings
    version = settings.apel_message_version
    if version not in apel.JOB_HEADERS:
        log.warning("%s: apel_message_version %r unknown, using 0.3", slot.name, version)
        version = "0.3"
    text = apel.render_job_record(apel.job_record_input(cfg, slot), version)
    problems = apel.check_job_record(text, now)
    outgoing = bool(settings.gocdb_sitename) and slot.hs06 is not None
    if problems:
        log.error("%s: APEL record would be rejected (%s); archived but not sent",
                  slot.name, "; ".join(problems))
        outgoing = False
    day, name = apel.record_name(now, os.path.basename(os.path.normpath(slot.machine_dir)))
    return apelspool.freeze(slot.machine_dir, text, f"{day}/{name}", outgoing)


# --- vac apel-sync --------------------------------------------------------------------

def count_month(paths: Paths, yyyymm: str,
                emit: Emit) -> Tuple[Optional[str], Dict[str, int]]:
    """(Site, {SubmitHost: number of jobs}) of one month of the archive, newest first.

    The newest record defines the Site; records naming another Site, or lacking Site
    or SubmitHost, are skipped with a message. Reads only the head of each file and
    holds one day directory's file names at a time.
    """
    site: Optional[str] = None
    counts: Dict[str, int] = {}
    for day_dir in apelspool.month_day_dirs(paths.apel_archive, yyyymm):
        for name in apelspool.day_file_names(day_dir):
            path = os.path.join(day_dir, name)
            head = apelspool.read_head(path)
            if head is None:
                continue
            values = apel.header_values(head, ("Site", "SubmitHost"))
            if _skip(values, site, path, emit):
                continue
            site = site or values["Site"]
            host = values["SubmitHost"]
            counts[host] = counts.get(host, 0) + 1
    return site, counts


def _skip(values: Dict[str, str], site: Optional[str], path: str, emit: Emit) -> bool:
    for key in ("Site", "SubmitHost"):
        if not values.get(key):
            emit(f"No {key} given in {path} !! - please fix this - skipping")
            return True
    if site is not None and values["Site"] != site:
        emit(f"Site changes from {site} to {values['Site']} - please fix {path} - skipping")
        return True
    return False


def sync_months(paths: Paths, months: Iterable[Tuple[int, int]], emit: Emit) -> List[str]:
    """Queue one sync record per month and SubmitHost; returns the queued paths.

    A month without records writes nothing (the original crashed, SPEC B14).
    """
    created: List[str] = []
    for year, month in months:
        yyyymm = f"{year:04d}{month:02d}"
        site, counts = count_month(paths, yyyymm, emit)
        if site is None:
            emit(f"No APEL records found for {yyyymm} - no sync record written")
            continue
        for host, number in counts.items():
            text = apel.render_sync_record(site, host, number, year, month)
            try:
                path = apelspool.queue_add(paths.apel_outgoing, text)
            except StateError as e:
                emit(f"Failed to create sync record for {yyyymm} {host}: {e}")
                continue
            emit(f"Created {path}")
            created.append(path)
    return created


def complete_pending_step(cfg: Config, paths: Paths, now: float) -> int:
    """Factory side step: ``complete_pending`` with the side-step signature (cfg, paths, now)."""
    return complete_pending(paths)
