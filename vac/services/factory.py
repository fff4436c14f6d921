"""The factory role: one cycle = gather -> decide (core.planner) -> apply (executor).

SPEC §2.3, §3.1. With an invalid configuration the cycle creates nothing but still looks
after running machines: it finalises and accounts the ones that stopped and destroys the
ones past their shutdown time, with the last valid configuration (or the valid parts of
the files: vac.services.configreport), "failures look like planned draining". An
exception inside a cycle is logged with its traceback by :func:`run_role` and the next
cycle runs. Everything needed between cycles is on disk (SPEC §2.8), so ``run_cycle`` can
be called from a fresh process every time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Dict, List, Optional, Tuple

from vac.adapters import host as hostfacts
from vac.adapters import statefs
from vac.adapters.atomicfile import file_mtime, read_text, write_atomic
from vac.core import apel, pacing, planner
from vac.core.actions import describe
from vac.core.configtypes import Config
from vac.core.slotstate import MachineDirInfo
from vac.errors import HypervisorError, StateError, VacError
from vac.model import DomainInfo, DomainState, HostFacts, SlotRecord
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import accounting, census, cyclereport, metrics_hooks, peers, vacmon, vm
from vac.services.configreport import FactoryMemory, read_config
from vac.services.executor import Executor, ensure_dirs
from vac.services.rolekit import write_heartbeat

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 60          # role heartbeat at least this often while waiting
PACE_POLL_SECONDS = 1.0         # how often the guests of a fast cycle are looked at
DEFAULT_PAUSE_SECONDS = 60      # between cycles when the configuration could not be read
_DAEMON_START: Optional[float] = None   # run_role's start (None under vacd --once)
MJF_UP_MARKER = "mjf-up-since"  # state file: Unix time the MJF server was first seen up
MJF_DOWN_SECONDS = 180          # an mjf-heartbeat older than this: the MJF server is down


@dataclass
class CycleResult:
    """What one cycle did (for vacd --once, tests and the simulator)."""

    now: float
    config: Optional[Config] = None     # the configuration acted on (None: none usable)
    plan: Optional[planner.Plan] = None
    created: int = 0
    created_names: List[str] = field(default_factory=list)
    failed: int = 0
    problems: List[str] = field(default_factory=list)   # configuration / hypervisor problems
    record_failures: List[str] = field(default_factory=list)   # APEL records not written
    pending_records: int = 0            # machines whose APEL record is still pending
    peers: Optional[Dict[str, List[str]]] = None        # answering/silent (None: not asked)


def load_factory_config(paths: Paths, pipes: str = "refresh") -> Config:
    from vac.services.configload import load_config
    return load_config(paths, pipes=pipes)


def query_reports(cfg: Config, paths: Paths) -> Dict[str, Dict[str, dict]]:
    """machinetype_status reports of every factory in the space that answers."""
    if not cfg.settings.factories:
        return {}
    try:
        return {f: dict(r) for f, r in peers.query_machinetypes(
            cfg, client_name="vacd-factory", paths=paths).items()}
    except Exception:  # peers are optional (SPEC §6.5): a broken query must not stop us
        log.exception("VacQuery of the space failed; using this factory's own report")
        return {}


def own_report(cfg: Config, paths: Paths, slots: List[SlotRecord],
               now: float) -> Dict[str, dict]:
    """This factory's machinetype_status bodies from its files (what its responder says)."""
    from vac.services.responder import machinetype_bodies
    return {body["machinetype"]: body for body in machinetype_bodies(cfg, paths, slots, now)}


def domains_from_files(slots: List[SlotRecord]) -> List[DomainInfo]:
    """Assumed domains when the hypervisor cannot be asked (``vac plan`` only)."""
    return [DomainInfo(s.name, s.uuid or "", DomainState.RUNNING, s.cpu_seconds or 0.0)
            for s in slots if s.is_used and s.started_time and s.finished_time is None]


def volume_names(cfg: Config, paths: Paths) -> List[str]:
    """Names of the logical volumes in the usable volume group ([] if none or unknown)."""
    from vac.adapters.lvm import Lvm
    lvm = Lvm()
    try:
        vg = lvm.usable_volume_group(cfg.settings.volume_group)
    except VacError as e:
        log.warning("not checking logical volumes: %s", e)
        return []
    return [name for name, _size in lvm.list_lvs_quiet(vg.name)] if vg else []


VolumeLister = Callable[[Config, Paths], List[str]]


def gather(cfg: Config, paths: Paths, hv: Any, facts: HostFacts, vacd_start: float,
           volumes: Optional[VolumeLister] = None) -> planner.CycleInputs:
    """Slots, domains, LVs and machine directories for the planner (reports come later)."""
    slots = read_slots(cfg, paths, facts)
    domains = hv.list_domains() if hv is not None else domains_from_files(slots)
    dirs = [MachineDirInfo(*entry) for entry in statefs.machine_dir_ages(paths)]
    return planner.CycleInputs(cfg, slots, domains, facts, {}, vacd_start, dirs,
                               volumes=(volumes or volume_names)(cfg, paths))


def read_slots(cfg: Config, paths: Paths, facts: HostFacts) -> List[SlotRecord]:
    """Slot snapshots; an unfinished machine made by an older vac (no accounting.json)
    gets its accounting inputs from today's configuration."""
    hb_files = {name: mt.heartbeat_file for name, mt in cfg.machinetypes.items()}
    slots = statefs.read_slots(paths, cfg.settings.factory_hostname, facts.processor_count,
                               hb_files)
    return [dataclasses.replace(s, accounting=apel.inputs_from_config(cfg, s))
            if s.machine_dir and s.accounting is None and s.finished_time is None else s
            for s in slots]


def gather_reports(cfg: Config, paths: Paths, facts: HostFacts,
                   now: float) -> Dict[str, Dict[str, dict]]:
    """Peer reports; this factory's own files stand in when its responder is silent."""
    return with_own_report(cfg, paths, facts, now, query_reports(cfg, paths))


def with_own_report(cfg: Config, paths: Paths, facts: HostFacts, now: float,
                    reports: Dict[str, Dict[str, dict]]) -> Dict[str, Dict[str, dict]]:
    """``reports`` plus this factory's own files if its responder did not answer."""
    factory = cfg.settings.factory_hostname
    if factory not in reports:
        log.info("No report from this factory's responder; using its own slot files")
        reports[factory] = own_report(cfg, paths, read_slots(cfg, paths, facts), now)
    return reports


def _connect(cfg: Config, hv_factory: Optional[Callable[[], ContextManager[Any]]]):
    if hv_factory is not None:
        return hv_factory()
    from vac.adapters import hypervisor
    return hypervisor.connect(cfg.settings.libvirt_uri)


def _network_ready(hv: Any, cfg: Config, paths: Paths, vm_module: Any) -> bool:
    try:
        return bool(vm_module.ensure_network(hv, cfg, paths))
    except Exception:  # network repair is one guarded step of the cycle
        log.exception("Checking the NAT network failed")
        return False


def _side_steps(cfg: Config, paths: Paths, now: float, valid: bool) -> None:
    """Version logger (SPEC §3.1 step 6) and space census (step 7, hourly), only with a
    valid configuration; each guarded so it never stops the cycle."""
    steps = (("version logger", vacmon.maybe_log_version), ("census", census.maybe_update))
    for what, step in steps if valid else ():
        try:
            step(cfg, paths, now)
        except Exception:  # one side step's boundary
            log.exception("%s failed", what)


@dataclass
class Seams:
    """Injected effects of a cycle (tests, simulator); None means the real thing."""

    hv_factory: Optional[Callable[[], ContextManager[Any]]] = None
    rng: Optional[random.Random] = None
    facts: Optional[HostFacts] = None
    vacd_start: Optional[float] = None
    vm_module: Any = None
    volumes: Optional[VolumeLister] = None


def run_cycle(paths: Paths, *, now: Optional[float] = None, config: Optional[Config] = None,
              memory: Optional[FactoryMemory] = None, **seams: Any) -> CycleResult:
    """One factory cycle. Keyword ``seams`` are the fields of :class:`Seams`
    (``hv_factory()`` returns a context manager yielding a hypervisor); ``memory`` is what
    the factory role keeps between cycles (the last valid configuration, what it logged).
    What the cycle did is kept in ``last-cycle.json`` (vac.services.cyclereport)."""
    started = time.monotonic()
    result = _run_cycle(paths, now, config, memory, **seams)
    seconds = time.monotonic() - started
    cyclereport.write(paths, result, seconds)
    metrics_hooks.observe_cycle(seconds)
    return result


def _run_cycle(paths: Paths, now: Optional[float], config: Optional[Config],
               memory: Optional[FactoryMemory], **seams: Any) -> CycleResult:
    now = time.time() if now is None else now
    opts = Seams(**seams)
    result = CycleResult(now)
    log.info("=============== Start cycle ===============")
    try:                            # a full disk or a broken tree: the cycle still runs
        ensure_dirs(paths)
        statefs.write_role_heartbeat(paths, "factory", now)
    except StateError as e:
        log.error("state directory: %s", e)
    vm.remove_leftover_disks(paths, now)        # of a create killed mid-way (SIGKILL)
    for path in statefs.remove_interrupted_writes(paths, now):
        log.info("Removed %s, left by an interrupted write", path)
    read = read_config(paths, load_factory_config, memory or FactoryMemory(), config)
    result.config, result.problems = read.lifecycle, list(read.problems)
    cfg = read.lifecycle
    if cfg is None:
        log.info("No machines destroyed or created this cycle (no usable configuration)")
        _settle_records(paths, now, result, None)
        return result
    if opts.vm_module is None:
        opts.vm_module = vm
    try:
        with _connect(cfg, opts.hv_factory) as hv:
            _cycle_with_hv(cfg, paths, hv, now, result, opts, read.creation)
    except HypervisorError as e:
        log.error("libvirt: %s (this cycle stops here)", e)
        result.problems.append(f"hypervisor: {e}")
    _side_steps(cfg, paths, now, read.creation is not None)
    _settle_records(paths, now, result, cfg)
    if read.creation is not None and cfg.settings.vacmon_hostport:
        with contextlib.suppress(OSError):
            vacmon.send_cycle_status(cfg, paths, now)
    log.info("================ End cycle ================")
    return result


def _cycle_with_hv(cfg: Config, paths: Paths, hv: Any, now: float, result: CycleResult,
                   opts: Seams, creation: Optional[Config]) -> None:
    """Lifecycle with ``cfg``, then creation with ``creation`` (None: create nothing)."""
    facts = opts.facts or hostfacts.host_facts(paths)
    log.info("At most %d LMs can be created on this factory", facts.processor_count)
    start = heartbeat_grace_start(paths, now, _DAEMON_START) if opts.vacd_start is None \
        else opts.vacd_start
    inputs = gather(cfg, paths, hv, facts, start, opts.volumes)
    plan, capacity = planner.plan_lifecycle(inputs, now)
    result.plan = plan
    cyclereport.log_slots(plan, list(inputs.slots))
    executor = Executor(cfg, paths, hv, now, opts.vm_module)
    _apply(executor, plan.actions)
    result.record_failures = executor.record_failures
    blockers = () if _network_ready(hv, cfg, paths, opts.vm_module) else \
        ("the NAT network is not ready",)
    if creation is None:
        log.info("No machines created this cycle: the configuration is invalid (its "
                 "problems are in the log when they change, and in %s)", paths.config_error)
        return
    reports = query_reports(creation, paths)
    result.peers = cyclereport.peer_states(creation, reports)
    inputs = dataclasses.replace(inputs, config=creation, blockers=blockers,
                                 reports=with_own_report(creation, paths, facts, now, reports))
    done = len(plan.actions)
    log.info("Start a LM creation attempt (at most %d this cycle). Load average is %.2f; "
             "superslots (shutdown time: processors) %s", cfg.settings.max_creations_per_cycle,
             facts.load_average, dict(sorted(capacity.superslots.items())))
    planner.plan_creation(inputs, capacity, now, opts.rng or random.Random(), plan)
    cyclereport.log_plan(plan)
    _apply(executor, plan.actions[done:])
    result.created, result.failed = executor.created, executor.failed
    result.created_names = list(executor.created_names)


def _settle_records(paths: Paths, now: float, result: CycleResult,
                    cfg: Optional[Config]) -> None:
    """Complete pending APEL records (needs no configuration: records are made from the
    machine directories) and log one summary line while any is pending."""
    fallback = (lambda slot: apel.inputs_from_config(cfg, slot)) if cfg else None
    try:
        result.pending_records = accounting.settle_pending(
            paths, now, result.record_failures, fallback)
    except Exception:  # one side step's boundary
        log.exception("completing pending APEL records failed")


def heartbeat_grace_start(paths: Paths, now: float, daemon_start: Optional[float]) -> float:
    """Unix time the heartbeat_file grace starts from (SPEC §3.8 "vacd start time").

    Machines can only write their heartbeat file through the MJF server, so the grace
    runs from the time the MJF server was last seen coming up (its role heartbeat fresh),
    persisted in ``MJF_UP_MARKER`` so that ``vacd --once`` (a fresh process each cycle)
    enforces like the daemon; never earlier than ``daemon_start`` (this vacd's start).
    While the MJF server is down the grace restarts, so no machine is killed for not
    reporting then.
    """
    marker = paths.state(MJF_UP_MARKER)
    beat = file_mtime(paths.heartbeat("mjf"))
    if beat is None or now - beat > MJF_DOWN_SECONDS:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)
        return now
    try:
        up_since = float(read_text(marker) or "")
    except ValueError:              # missing or unreadable: the MJF server is up from now
        with contextlib.suppress(StateError):     # a full disk: retried next cycle
            write_atomic(marker, f"{int(now)}\n")
        up_since = now
    return up_since if daemon_start is None else max(up_since, daemon_start)


def _apply(executor: Executor, actions: List[Any]) -> None:
    for action in actions:
        log.debug("apply: %s", describe(action))
        executor.apply(action)


def preview(paths: Paths, *, now: Optional[float] = None,
            hv_factory: Optional[Callable[[], ContextManager[Any]]] = None,
            facts: Optional[HostFacts] = None, rng: Optional[random.Random] = None,
            volumes: Optional[VolumeLister] = None) -> Tuple[Config, planner.Plan, List[str]]:
    """What the next cycle would do, without acting (``vac plan``); raises ConfigError.

    Returns (config, plan, notes); if the hypervisor cannot be asked, machines the files
    say are running are assumed to be running (noted).
    """
    now = time.time() if now is None else now
    cfg = load_factory_config(paths, pipes="cache")
    facts = facts or hostfacts.host_facts(paths)
    notes: List[str] = []
    try:
        with _connect(cfg, hv_factory) as hv:
            inputs = gather(cfg, paths, hv, facts, now - 86400, volumes)
    except HypervisorError as e:
        notes.append(f"hypervisor not reachable ({e}): assuming started machines run")
        inputs = gather(cfg, paths, None, facts, now - 86400, volumes)
    inputs = dataclasses.replace(inputs, reports=gather_reports(cfg, paths, facts, now))
    return cfg, planner.plan(inputs, now, rng or random.Random()), notes


def run_role(paths: Paths, control: RoleControl) -> None:
    """The factory loop: a cycle, then ``cycle_seconds`` (heartbeat every 60 s meanwhile)."""
    global _DAEMON_START
    _DAEMON_START = time.time()
    write_heartbeat(paths, "factory", _DAEMON_START)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(paths.factory_version_logged)     # version logger fires once per start
    memory = FactoryMemory()
    while not control.should_stop():
        control.take_reload()          # the configuration is re-read every cycle anyway
        result = None
        try:
            result = run_cycle(paths, memory=memory)
        except Exception:  # the cycle boundary: log and run the next one
            log.exception("factory cycle failed")
        _pause(paths, control, result)


def _pause(paths: Paths, control: RoleControl, result: Optional[CycleResult]) -> None:
    """Wait for the next cycle: ``cycle_seconds``, or sooner once the guests the last
    cycle created are booting (vac.core.pacing); heartbeat at least every 60 s."""
    cfg = result.config if result is not None else None
    pause = cfg.settings.cycle_seconds if cfg is not None else DEFAULT_PAUSE_SECONDS
    created = result.created_names if result is not None else []
    probe = PACE_POLL_SECONDS if cfg is not None and created and \
        cfg.settings.fast_cycle_seconds > 0 else HEARTBEAT_SECONDS
    start = time.time()
    while not control.should_stop():
        waited = time.time() - start
        if waited >= pause or (probe == PACE_POLL_SECONDS and cfg is not None
                               and _due(cfg, waited, created)):
            return
        if control.wait(min(probe, max(0.0, pause - waited))):
            return
        write_heartbeat(paths, "factory")


def _due(cfg: Config, waited: float, created: List[str]) -> bool:
    """pacing.cycle_due with the hypervisor's current view of the created guests."""
    try:
        with _connect(cfg, None) as hv:
            return pacing.cycle_due(cfg, waited, created, hv.domain)
    except HypervisorError as e:
        log.warning("cannot look at the new guests (%s); next cycle after cycle_seconds", e)
        return False


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m vac.services.factory --root T --once``: one cycle, log to stderr."""
    parser = argparse.ArgumentParser(prog="vac.services.factory")
    parser.add_argument("--root", default="/")
    parser.add_argument("--once", action="store_true", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s")
    run_cycle(Paths.from_root(args.root))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
