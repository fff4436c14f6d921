"""APEL accounting (SPEC §9): one job record per finished machine, exactly once; apel-sync.

``account_machine`` is what the factory calls for a machine that has shut down. It needs
no configuration: everything the record says comes from the machine directory, including
the accounting inputs captured at creation (``accounting.json``). The record is first
frozen in the machine directory (text, spool name, a staged outgoing copy), then copied
to ``apel-archive`` (atomic overwrite under the frozen name) and moved into the
``apel-outgoing`` dirq queue by a single rename of the staged copy. A crash at any point
leaves a state from which the next call finishes the job without losing or duplicating
the record. The planner does not finalise a machine before its record is frozen, so a
record that cannot be written (full disk) is retried every cycle.
``settle_pending`` completes every record left incomplete, once per cycle, and logs ONE
line while any record is pending.

``sync_months`` builds ``APEL-sync-message: v0.1`` records from the archive (SPEC §9.3),
from the day summaries (vac.core.apelsummary) where they provably match the archive,
reading the records of the other days (and saving their summaries).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from vac.adapters import apelspool, apelsummaries, statefs, statereports
from vac.core import apel, apelsummary, usage
from vac.core.slotstate import why_no_record
from vac.errors import StateError
from vac.model import AccountingInputs, SlotRecord
from vac.paths import Paths
from vac.services import metrics_hooks

log = logging.getLogger(__name__)

Emit = Callable[[str], None]
# accounting inputs for a machine directory without accounting.json (an older vac's)
Fallback = Callable[[SlotRecord], Optional[AccountingInputs]]


def account_machine(paths: Paths, slot: SlotRecord, *, now: float) -> Optional[str]:
    """Write the APEL record of a shut-down machine; returns its archive path or None.

    Safe to call again after a crash or on every later cycle: it completes what is
    missing and never writes a second copy. Raises StateError if the disk refuses
    (the ``apel-owed`` marker then stays for check-vacd).
    """
    if not slot.machine_dir:
        return None
    frozen = apelspool.load_frozen(slot.machine_dir)
    if frozen is None:
        reason = why_no_record(slot)
        if reason:
            log.info("%s: no APEL record: %s", slot.name, reason)
            return None
        if slot.accounting is not None and slot.accounting.from_config:
            log.warning("%s: no usable %s in %s (made by an older vac): APEL record from "
                        "today's configuration", slot.name, apelspool.ACCOUNTING_FILE,
                        slot.machine_dir)
        apelspool.mark_owed(slot.machine_dir)
        frozen = _freeze(slot, now)
    return _complete(paths, slot.name, frozen)


def _complete(paths: Paths, name: str, frozen: apelspool.FrozenRecord) -> str:
    """Write whatever copy of a frozen record is still missing; returns the archive path."""
    path = apelspool.archive_path(paths.apel_archive, frozen.relname)
    if not frozen.archived:
        written = apelspool.write_archive(paths.apel_archive, frozen)
        log.info("%s: APEL record archived as %s", name, path)
        metrics_hooks.count("apel_records")
        _note_archived(paths, frozen, written)
    if frozen.outgoing_pending:
        target = apelspool.publish_staged(paths.apel_outgoing, frozen)
        log.info("%s: APEL record queued for ssmsend as %s", name, target)
    return path


def _note_archived(paths: Paths, frozen: apelspool.FrozenRecord,
                   written: apelspool.ArchiveWrite) -> None:
    """Add the record just archived to its day's summary, if that summary can be trusted
    to have matched the day before the write. Else (no summary yet for a day that
    existed, or a stale one: an earlier write interrupted, a change by hand) the day's
    summary is made again from its records, once: later records are then added to it."""
    day, name = frozen.relname.split("/", 1)
    old = apelsummary.from_json(apelsummaries.read_day_summary(paths.apel_summary, day))
    values = apel.header_values(frozen.text, apelsummary.KEYS)
    new = apelsummary.after_archive(old, written.before_ns, written.after_ns,
                                    written.existed, name, values)
    if new is None:
        try:
            _day_summary(paths, os.path.dirname(written.path), rescan=True)
        except (OSError, StateError) as e:    # a cache: apel-sync reads the day itself
            log.debug("APEL day summary %s not rebuilt: %s", day, e)
        return
    try:
        apelsummaries.write_day_summary(paths.apel_summary, day, apelsummary.to_json(new))
    except StateError as e:           # only a cache: stale now, apel-sync rebuilds it
        log.debug("APEL day summary %s not updated: %s", day, e)


def _freeze(slot: SlotRecord, now: float) -> apelspool.FrozenRecord:
    """Render, check and freeze the record of ``slot`` in its machine directory."""
    acc = slot.accounting
    if acc is None or not slot.machine_dir:            # excluded by why_no_record
        raise ValueError(f"{slot.name}: no accounting inputs or machine directory")
    version = acc.message_version
    if version not in apel.JOB_HEADERS:
        log.warning("%s: apel_message_version %r unknown, using 0.3", slot.name, version)
        version = "0.3"
    text = apel.render_job_record(apel.job_record_input(slot), version)
    problems = apel.check_job_record(text, now)
    outgoing = acc.publish and acc.hs06_per_processor is not None
    if problems:
        log.error("%s: APEL record would be rejected (%s); archived but not sent",
                  slot.name, "; ".join(problems))
        outgoing = False
    day, name = apel.record_name(now, os.path.basename(os.path.normpath(slot.machine_dir)))
    return apelspool.freeze(slot.machine_dir, text, f"{day}/{name}", outgoing)


def complete_pending(paths: Paths, now: float, fallback: Optional[Fallback] = None,
                     pending: Optional[List[Tuple[str, str]]] = None
                     ) -> Tuple[int, List[str]]:
    """Finish the pending records of finalised machines (``pending``: the machine
    directories ``apelspool.pending_dirs`` lists, found now if not given).

    Completes frozen records whose archive or outgoing copy is missing, and redoes the
    record of a finalised machine whose freeze an older vac left half-done
    (``apel-record.tmp``): it is rendered again from the machine directory, with
    ``fallback`` inputs if the directory has no ``accounting.json``. Unfinished machines
    are left to the factory's lifecycle. Returns (records completed, errors).
    """
    done, errors = 0, []
    if pending is None:
        pending = apelspool.pending_dirs(paths.machines_dir)
    for machine_dir, state in pending:
        name = os.path.basename(machine_dir)
        try:
            if state == apelspool.PENDING_INCOMPLETE:
                frozen = apelspool.load_frozen(machine_dir)
                if frozen is not None:
                    _complete(paths, name, frozen)
                    done += 1
            elif _redo_finished(paths, machine_dir, now, fallback):
                done += 1
        except StateError as e:
            errors.append(f"{name}: {e}")
    return done, errors


def _redo_finished(paths: Paths, machine_dir: str, now: float,
                   fallback: Optional[Fallback]) -> bool:
    """Account a finalised machine whose record was never frozen; True if one was made."""
    slot = statefs.read_machine_dir(machine_dir)
    if slot is None or slot.finished_time is None:
        return False
    if slot.accounting is None:
        if fallback is None:
            return False        # no configuration this cycle: try again on a later one
        slot = dataclasses.replace(slot, accounting=fallback(slot))
    if account_machine(paths, slot, now=now) is not None:
        return True
    log.info("%s: dropping the leftover APEL record marker", slot.name)
    import shutil       # here: the responder reads share usage through this module
    shutil.rmtree(os.path.join(machine_dir, apelspool.FROZEN_TMP), ignore_errors=True)
    apelspool.clear_owed(machine_dir)
    return False


def settle_pending(paths: Paths, now: float, failures: Sequence[str] = (),
                   fallback: Optional[Fallback] = None) -> int:
    """Once per factory cycle: complete what is pending, then log ONE line if any record
    is still pending ("N APEL records pending: <first error>"); returns N.

    ``failures``: this cycle's errors from ``account_machine`` (one per machine).
    """
    found = apelspool.pending_dirs(paths.machines_dir)
    _done, errors = complete_pending(paths, now, fallback, found)
    errors = list(failures) + errors
    pending = sum(1 for machine_dir, _state in found if apelspool.pending_state(machine_dir))
    if pending:
        log.error("%d APEL record%s pending: %s", pending, "" if pending == 1 else "s",
                  errors[0] if errors else "retried next cycle")
    return pending


# --- vac apel-sync --------------------------------------------------------------------

def count_month(paths: Paths, yyyymm: str, emit: Emit,
                rescan: bool = False) -> Tuple[Optional[str], Dict[str, int]]:
    """(Site, {SubmitHost: number of jobs}) of one month of the archive, newest first.

    The newest record defines the Site; records naming another Site, or lacking Site
    or SubmitHost, are skipped with a message. Each day comes from its summary where
    that provably matches the day directory (``rescan``: never), else from its records
    (only the head of each file is read, one day's names held at a time).
    """
    days = [(day_dir, _day_summary(paths, day_dir, rescan))
            for day_dir in apelspool.month_day_dirs(paths.apel_archive, yyyymm)]
    apelsummaries.prune_day_summaries(paths.apel_summary, yyyymm,
                                  [os.path.basename(d) for d, _s in days])
    site = apelsummary.month_site(s for _d, s in days)
    counts: Dict[str, int] = {}
    if site is None:
        for day_dir, summary in days:
            _invalid_messages(day_dir, summary, emit)
        return None, counts
    for day_dir, summary in days:
        if apelsummary.needs_messages(summary, site):
            _count_day_records(day_dir, site, counts, emit)
        else:
            _invalid_messages(day_dir, summary, emit)
            apelsummary.add_counts(counts, summary, site)
    return site, counts


def _invalid_messages(day_dir: str, summary: apelsummary.DaySummary, emit: Emit) -> None:
    for name, key in summary.invalid:
        emit(f"No {key} given in {os.path.join(day_dir, name)} !! - please fix this - "
             "skipping")


def _count_day_records(day_dir: str, site: str, counts: Dict[str, int], emit: Emit) -> None:
    """Count one day from its records, with a message for each one skipped."""
    for name, head in apelspool.day_heads(day_dir):
        if head is None:
            continue
        path = os.path.join(day_dir, name)
        values = apel.header_values(head, apelsummary.KEYS)
        missing = apelsummary.missing_key(values)
        if missing is not None:
            emit(f"No {missing} given in {path} !! - please fix this - skipping")
        elif values["Site"] != site:
            emit(f"Site changes from {site} to {values['Site']} - please fix {path} - "
                 "skipping")
        else:
            counts[values["SubmitHost"]] = counts.get(values["SubmitHost"], 0) + 1


def _day_summary(paths: Paths, day_dir: str, rescan: bool) -> apelsummary.DaySummary:
    """The day's summary: the saved one if it provably matches the directory, else one
    made from its records (and saved, unless the directory changed meanwhile)."""
    day = os.path.basename(day_dir)
    now_ns = time.time_ns()             # before looking: see apelsummary.checked
    mtime = apelspool.day_mtime_ns(day_dir)
    saved = None if rescan else apelsummary.from_json(
        apelsummaries.read_day_summary(paths.apel_summary, day))
    verdict = apelsummary.verdict(saved, mtime)
    if saved is not None and verdict == apelsummary.TRUSTED:
        return saved
    if saved is not None and verdict == apelsummary.COUNT and \
            apelspool.count_day_entries(day_dir) == saved.entries and \
            apelspool.day_mtime_ns(day_dir) == mtime:
        _save_summary(paths, day, apelsummary.checked(saved, now_ns))
        return saved
    builder = apelsummary.Builder()
    for name, head in apelspool.day_heads(day_dir):
        builder.add(name, None if head is None else
                    apel.header_values(head, apelsummary.KEYS))
    summary = builder.summary(mtime or 0)
    if mtime is not None and apelspool.day_mtime_ns(day_dir) == mtime:
        _save_summary(paths, day, apelsummary.checked(summary, now_ns) or summary)
    return summary


def _save_summary(paths: Paths, day: str,
                  summary: Optional[apelsummary.DaySummary]) -> None:
    if summary is None:
        return
    try:
        apelsummaries.write_day_summary(paths.apel_summary, day, apelsummary.to_json(summary))
    except StateError as e:           # a cache: the next run reads the records again
        log.debug("APEL day summary %s not saved: %s", day, e)


def sync_months(paths: Paths, months: Iterable[Tuple[int, int]], emit: Emit,
                rescan: bool = False) -> List[str]:
    """Queue one sync record per month and SubmitHost; returns the queued paths.

    A month without records writes nothing (the original crashed, SPEC B14).
    ``rescan``: read every record, ignoring the day summaries (and rewrite them).
    """
    created: List[str] = []
    for year, month in months:
        yyyymm = f"{year:04d}{month:02d}"
        site, counts = count_month(paths, yyyymm, emit, rescan)
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


def share_usage(paths: Paths) -> usage.Usage:
    """Decayed usage per machinetype from ``share-usage`` (empty if absent or unreadable)."""
    return usage.parse(statereports.read_share_usage(paths))


def record_share_usage(paths: Paths, machinetype: str, hs06_seconds: float, now: float,
                       half_life: float) -> None:
    """Decay ``share-usage`` to ``now`` and add a finished machine's HS06 seconds."""
    updated = usage.add(share_usage(paths), machinetype, hs06_seconds, now, half_life)
    statereports.write_share_usage(paths, usage.render(updated))
