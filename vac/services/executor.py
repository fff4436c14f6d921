"""Apply the planner's actions through the adapters (SPEC §3.3, §3.7-3.10). No decisions.

Each action is applied on its own: a failure is logged with its traceback and the next
action still runs (a half-created machine has no ``started`` file and is cleaned up by the
next cycle). Machine creation failures are also written to ``factory-error``.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any, Callable, Dict, List

from vac.adapters import apelspool, contextfiles, statefs, statereports
from vac.adapters.atomicfile import read_text
from vac.core import apel, mjf, naming
from vac.core.actions import (Account, Action, Create, Destroy, ExpireMachineDir, Finalise,
                              LowerShutdownTime, Preempt, RecordUsage, WriteCounts,
                              WriteHeartbeat, describe)
from vac.core.configtypes import Config
from vac.core.metrics import finish_code, is_fizzle
from vac.errors import StateError, VacError
from vac.machinemodels import backend_of, machine_model
from vac.model import SlotRecord
from vac.paths import Paths
from vac.services import accounting, machinevolumes, metrics_hooks, userdata, vacmon
from vac.services.backends import CycleBackends
from vac.services.backends.base import MachineRequest
from vac.services.hostops import default_host

log = logging.getLogger(__name__)

TOKEN_BYTES = 32        # random bytes of a machine token (43 URL-safe base64 characters)


class Executor:
    """Performs actions for one cycle through the cycle's machine backends."""

    def __init__(self, cfg: Config, paths: Paths, backends: CycleBackends, now: float):
        self.cfg, self.paths, self.backends, self.now = cfg, paths, backends, now
        self.created = 0
        self.created_names: List[str] = []
        self.failed = 0
        self.record_failures: List[str] = []   # "NAME: error" of records not written
        self._handlers: Dict[type, Callable[[Any], None]] = {
            WriteHeartbeat: self._heartbeat, LowerShutdownTime: self._lower,
            Destroy: self._destroy, Account: self._account, Finalise: self._finalise,
            ExpireMachineDir: self._expire, WriteCounts: self._counts, Preempt: self._preempt,
            RecordUsage: self._usage, Create: self._create}

    def apply(self, action: Action) -> bool:
        """Apply one action; True if it succeeded."""
        try:
            self._handlers[type(action)](action)
            return True
        except StateError as e:        # e.g. a full disk: one line, no traceback
            log.error("failed: %s: %s", describe(action), e)
        except Exception:  # one action's boundary: log and carry on with the cycle
            log.exception("failed: %s", describe(action))
        self.failed += 1
        return False

    # --- lifecycle -----------------------------------------------------------------
    def _heartbeat(self, a: WriteHeartbeat) -> None:
        statefs.write_heartbeat(a.machine_dir, a.cpu_seconds, a.cpu_percentage)

    def _lower(self, a: LowerShutdownTime) -> None:
        log.info("%s: lowering shutdown time to %d (%s)", a.name, a.shutdown_time, a.reason)
        self._write_shutdown_time(a.machine_dir, a.shutdown_time)

    @staticmethod
    def _write_shutdown_time(machine_dir: str, shutdown_time: int) -> None:
        for (sub, key), value in mjf.lowered_shutdown_time(shutdown_time).items():
            statefs.write_machine_file(machine_dir, f"{sub}/{key}", value)

    def _preempt(self, a: Preempt) -> None:
        """MJF shutdown times first (the guest sees them at once), then the marker."""
        log.info("%s: preempting %s (%d processor(s)) for %s: shutdown time now %d (%s)",
                 a.name, a.machinetype, a.processors, a.for_machinetype, a.grace_until,
                 a.reason)
        self._write_shutdown_time(a.machine_dir, a.grace_until)
        statefs.write_preempted(a.machine_dir, a.grace_until, a.for_machinetype)

    def _usage(self, a: RecordUsage) -> None:
        accounting.record_share_usage(self.paths, a.machinetype, a.hs06_seconds, self.now,
                                      self.cfg.settings.share_half_life_seconds)

    def _destroy(self, a: Destroy) -> None:
        log.info("%s: destroying: %s", a.name, a.reason)
        backend = self.backends.get(a.backend)
        if backend is not None:
            backend.destroy(a.name, grace_seconds=a.grace_seconds, wait=a.grace_seconds > 0)
        elif a.backend in self.backends.problems:
            raise StateError(f"cannot destroy {a.name}: backend {a.backend} is unavailable "
                             f"({self.backends.problems[a.backend]})")
        else:                              # no machine to stop: only its logical volume
            mount = os.path.join(a.machine_dir, "mnt") if a.machine_dir else None
            machinevolumes.remove_lv(self.cfg, default_host(self.paths), a.name, mount)
        if a.shutdown_message and a.machine_dir:
            if statefs.write_shutdown_message(a.machine_dir, a.shutdown_message):
                log.info("%s: wrote shutdown message %r", a.name, a.shutdown_message)

    def _account(self, a: Account) -> None:
        """Write the record; a refusal is collected for the cycle's one summary line
        (the machine is not finalised, so the next cycle retries). ``a.slot`` is the
        slot as this cycle's earlier actions left it (vac.core.projection)."""
        slot = a.slot
        try:
            accounting.account_machine(self.paths, slot, now=self.now)
        except StateError as e:
            self.record_failures.append(f"{slot.name}: {e}")
            self.failed += 1

    def _finalise(self, a: Finalise) -> None:
        slot = a.slot
        if not slot.machine_dir:
            return
        for path in statefs.clean_machine_dir(slot.machine_dir):    # before `finished`:
            log.info("%s: removed %s, left by an interrupted write", slot.name, path)
        log.info("%s: create finished file (%s)", slot.name, a.reason)
        statefs.write_finished(slot.machine_dir)
        if slot.machinetype:
            statefs.update_finishes(self.paths, slot.machinetype)
        if metrics_hooks.enabled():
            self._count_finish(slot, a.started)
        if a.started and self.cfg.settings.vacmon_hostport:
            vacmon.send_machine_status(self.cfg, self.paths, slot, self.now)

    def _count_finish(self, slot: SlotRecord, started: bool) -> None:
        """finishes by shutdown-message code; fizzles of started machines."""
        machinetype = slot.machinetype or ""
        metrics_hooks.count("finishes", machinetype=machinetype,
                            code=finish_code(slot.shutdown_message))
        mt = self.cfg.machinetypes.get(machinetype)
        if started and is_fizzle(slot, mt.fizzle_seconds if mt else 0):
            metrics_hooks.count("fizzles", machinetype=machinetype)

    def _expire(self, a: ExpireMachineDir) -> None:
        log.info("Deleting expired %s (%s)", a.path, a.reason)
        statefs.remove_machine_dir(self.paths, a.path)

    def _counts(self, a: WriteCounts) -> None:
        statefs.write_counts(self.paths, a.running_machines, a.slots, a.running_processors,
                             a.max_processors, a.running_hs06)

    # --- creation --------------------------------------------------------------------
    def _create(self, a: Create) -> None:
        log.info("%s: creating with machinetype %s, %d processor(s), finishing at %d (%s)",
                 a.name, a.machinetype, a.processors, a.shutdown_time, a.reason)
        try:
            self._create_machine(a)
        except (VacError, OSError) as e:
            log.error("%s: LM creation fails with: %s", a.name, e)
            statereports.write_factory_error(self.paths, f"LM creation fails with: {e}")
            self.failed += 1
            metrics_hooks.count("creation_failures", machinetype=a.machinetype)
            return
        self.created += 1
        self.created_names.append(a.name)
        metrics_hooks.count("creations", machinetype=a.machinetype)
        log.info("%s: LM created", a.name)
        statereports.write_role_heartbeat(self.paths, "factory", self.now)
        statereports.clear_factory_error(self.paths)

    def _create_machine(self, a: Create) -> None:
        """SPEC §3.3 steps 1-9; the machine token exists and the backend names the UUID
        before user_data is templated (B5); the backend leaves a running machine or nothing."""
        mt = self.cfg.machinetypes[a.machinetype]
        backend = self.backends.get(backend_of(mt.machine_model))
        if backend is None:
            raise VacError(f"no backend for machine_model {mt.machine_model}")
        created = int(self.now)
        # slot file first: a crash before the directory exists leaves a free slot, a crash
        # after it a Starting machine the next cycle cleans up; never an orphan directory
        statefs.write_slot_file(self.paths, a.name, created, mt.name, mt.machine_model)
        mdir = statefs.make_machine_dir(self.paths, created, mt.name, a.name)
        s = self.cfg.settings
        apelspool.write_accounting(mdir, apel.accounting_inputs(s, mt, a.processors))
        if mt.accounting_fqan:
            statefs.write_machine_file(mdir, "accounting_fqan", mt.accounting_fqan)
        statefs.write_features(mdir, "machinefeatures",
                               mjf.machinefeatures(s, a.processors, a.shutdown_time))
        statefs.write_features(mdir, "jobfeatures",
                               mjf.jobfeatures(s, a.processors, a.shutdown_time, created))
        token = secrets.token_urlsafe(TOKEN_BYTES)
        contextfiles.write_machine_token(mdir, token, mt.joboutputs_require_token)
        key = read_text(self.paths.under_root(s.root_public_key))
        if key is not None:
            statefs.write_machine_file(mdir, "root_public_key", key)
        statefs.write_machine_file(mdir, "ip", naming.machine_ip(a.ordinal))
        backend.create(MachineRequest(
            machine_name=a.name, ordinal=a.ordinal, machinetype=mt, processors=a.processors,
            machine_dir=mdir, shutdown_time=a.shutdown_time,
            identify=lambda machine_uuid: self._identify(a, mdir, machine_uuid, token)))
        statefs.write_started(mdir, self.now)

    def _identify(self, a: Create, mdir: str, machine_uuid: str, token: str) -> None:
        """The machine's job_id and user_data, once its backend has named its UUID.
        user_data is mode 0600 (it may hold the machine token, a proxy or a WLCG token),
        0700 for a container, which runs it (container_command /user_data, as root)."""
        statefs.write_machine_file(mdir, "jobfeatures/job_id", machine_uuid)
        mt = self.cfg.machinetypes[a.machinetype]
        if mt.user_data:
            data = userdata.make_user_data(self.cfg, self.paths, mt, machine_name=a.name,
                                           uuid=machine_uuid, shutdown_time=a.shutdown_time,
                                           now=self.now, machine_token=token)
            model = machine_model(mt.machine_model)
            runs_it = model is not None and model.kind != "VM"
            statefs.write_machine_file(mdir, "user_data", data, mode=0o700 if runs_it else 0o600)


def ensure_dirs(paths: Paths) -> None:
    """The state tree the executor writes into; StateError names what cannot be made."""
    statefs.ensure_state_dirs(paths)
