"""The factory role: one cycle = gather -> decide (core.planner) -> apply (executor).

The cycle flows one way: host facts, slots, the backends' machines (vac.services.
backends), machine directories, volumes and the peers' reports are gathered once
(vac.services.gather); the planner returns the whole decision (lifecycle actions and
creations) as one value; the executor applies it. Nothing is read again in between.

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
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Mapping, Optional, Tuple

from vac.adapters import host as hostfacts, statereports
from vac.adapters import apelsummaries, statefs
from vac.adapters.atomicfile import file_mtime, read_text, write_atomic
from vac.core import apel, pacing, planner
from vac.core.actions import describe
from vac.core.configtypes import Config
from vac.errors import HypervisorError, StateError
from vac.machinemodels import LIBVIRT, backend_of, short_name
from vac.model import HostFacts, SlotRecord
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import accounting, census, cyclereport, metrics_hooks, vacmon, vm, vmnet
from vac.services.backends import BackendMaker, needed_backends, open_backends
from vac.services.backends.base import BackendContext
from vac.services.configreport import (ConfigRead, FactoryMemory, read_config, report_read,
                                       without_backends)
from vac.services.executor import Executor, ensure_dirs
from vac.services.gather import (VolumeLister, cycle_inputs, machines_from_files,
                                 open_cycle_backends, read_slots)
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
    created_backends: Dict[str, str] = field(default_factory=dict)   # name -> backend
    failed: int = 0
    problems: List[str] = field(default_factory=list)   # configuration / hypervisor problems
    record_failures: List[str] = field(default_factory=list)   # APEL records not written
    pending_records: int = 0            # machines whose APEL record is still pending
    peers: Optional[Dict[str, List[str]]] = None        # answering/silent (None: not asked)


def load_factory_config(paths: Paths, pipes: str = "refresh",
                        processor_count: Optional[int] = None) -> Config:
    from vac.services.configload import load_config
    return load_config(paths, pipes=pipes, processor_count=processor_count)


@contextlib.contextmanager
def open_libvirt(cfg: Config, hv_factory: Optional[Callable[[], ContextManager[Any]]]
                 ) -> Iterator[Tuple[Any, Optional[str]]]:
    """The cycle's libvirt connection and None, or None and why it cannot be opened
    (the VM backend and the NAT network are then unavailable this cycle)."""
    try:
        manager = hv_factory() if hv_factory is not None else _libvirt_connect(cfg)
        hv = manager.__enter__()
    except HypervisorError as e:
        yield None, str(e)
        return
    try:
        yield hv, None
    finally:
        manager.__exit__(None, None, None)


def _libvirt_connect(cfg: Config) -> ContextManager[Any]:
    from vac.adapters import hypervisor
    return hypervisor.connect(cfg.settings.libvirt_uri)


def _network_ready(hv: Any, cfg: Config, paths: Paths, facts: HostFacts,
                   ensure: Optional[NetworkCheck] = None) -> bool:
    """vac's NAT network (libvirt's), which VMs and containers share; False if absent."""
    if hv is None:
        return False
    try:
        return bool((ensure or vmnet.ensure_network)(hv, cfg, paths,
                                                     processors=facts.processor_count))
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


NetworkCheck = Callable[..., bool]     # vmnet.ensure_network(hv, cfg, paths, processors=N)


@dataclass
class Seams:
    """Injected effects of a cycle (tests, simulator, benchmarks); None: the real thing.

    ``backends`` maps a backend name ("module:Class", vac.machinemodels) to a maker
    used instead of the registry's class (e.g. vac.sim.fakebackend.FakeBackend)."""

    hv_factory: Optional[Callable[[], ContextManager[Any]]] = None
    rng: Optional[random.Random] = None
    facts: Optional[HostFacts] = None
    vacd_start: Optional[float] = None
    backends: Optional[Mapping[str, BackendMaker]] = None
    volumes: Optional[VolumeLister] = None
    reports: Optional[Callable[[Config], Dict[str, Dict[str, dict]]]] = None
    network: Optional[NetworkCheck] = None


def run_cycle(paths: Paths, *, now: Optional[float] = None, config: Optional[Config] = None,
              memory: Optional[FactoryMemory] = None, **seams: Any) -> CycleResult:
    """One factory cycle: gather -> decide (one pure plan) -> apply. Keyword ``seams``
    are the fields of :class:`Seams`; ``memory`` is what the factory role keeps between
    cycles (the last valid configuration, what it logged). What the cycle did is kept in
    ``last-cycle.json`` (vac.services.cyclereport)."""
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
        statereports.write_role_heartbeat(paths, "factory", now)
    except StateError as e:
        log.error("state directory: %s", e)
    vm.remove_leftover_disks(paths, now)        # of a create killed mid-way (SIGKILL)
    for path in statefs.remove_interrupted_writes(paths, now) + \
            apelsummaries.remove_summary_temporaries(paths.apel_summary):
        log.info("Removed %s, left by an interrupted write", path)
    memory = memory or FactoryMemory()
    facts = opts.facts or hostfacts.host_facts(paths)      # the cycle's one /proc/cpuinfo
    read = read_config(paths, lambda p: load_factory_config(
        p, processor_count=facts.processor_count), memory, config, report_now=False)
    result.config, result.problems = read.lifecycle, list(read.problems)
    if read.lifecycle is None:
        report_read(paths, memory, read)
        log.info("No machines destroyed or created this cycle (no usable configuration)")
        _settle_records(paths, now, result, None)
        return result
    cfg = read.lifecycle
    with open_libvirt(cfg, opts.hv_factory) as (hv, hv_problem):
        if hv_problem:
            result.problems.append(f"hypervisor: {hv_problem}")
        read = _one_way(paths, now, read, memory, opts, (hv, hv_problem), facts, result)
    _side_steps(cfg, paths, now, read.creation is not None)
    _settle_records(paths, now, result, cfg)
    if read.creation is not None and cfg.settings.vacmon_hostport:
        with contextlib.suppress(OSError):
            vacmon.send_cycle_status(cfg, paths, now)
    log.info("================ End cycle ================")
    return result


def _one_way(paths: Paths, now: float, read: ConfigRead, memory: FactoryMemory, opts: Seams,
             libvirt: Tuple[Any, Optional[str]], facts: HostFacts,
             result: CycleResult) -> ConfigRead:
    """Gather (slots, backends' machines, peers) -> decide -> apply."""
    cfg = read.lifecycle
    assert cfg is not None
    hv, hv_problem = libvirt
    log.info("At most %d LMs can be created on this factory", facts.processor_count)
    start = heartbeat_grace_start(paths, now, _DAEMON_START) if opts.vacd_start is None \
        else opts.vacd_start
    slots = read_slots(cfg, paths, facts)
    ctx = BackendContext(cfg, paths, now, facts.processor_count, hv, hv_problem)
    backends = open_cycle_backends(ctx, slots, opts.backends)
    if hv_problem and LIBVIRT not in backends.problems:
        log.error("libvirt unavailable: %s (vac's NAT network needs it: no machines are "
                  "created this cycle)", hv_problem)
    read = without_backends(read, backends.problems)
    report_read(paths, memory, read)
    inputs = cycle_inputs(cfg, read.creation, paths, now, facts, start, slots, backends,
                          volumes=opts.volumes, reports=opts.reports)
    if read.creation is not None and not _network_ready(hv, cfg, paths, facts, opts.network):
        inputs = dataclasses.replace(inputs, blockers=("the NAT network is not ready",))
    if read.creation is not None:       # this factory's own report is always there
        result.peers = cyclereport.peer_states(
            read.creation, {**inputs.reports, cfg.settings.factory_hostname: {}})
    plan = planner.plan(inputs, now, opts.rng or random.Random())
    result.plan = plan
    _log_decision(plan, slots, read, cfg, paths, facts)
    executor = Executor(cfg, paths, backends, now)
    _apply(executor, plan.actions)
    result.record_failures = executor.record_failures
    result.created, result.failed = executor.created, executor.failed
    result.created_names = list(executor.created_names)
    result.created_backends = {a.name: backend_of(
        cfg.machinetypes[a.machinetype].machine_model) or "" for a in plan.creates
        if a.machinetype in cfg.machinetypes}
    return read


def _log_decision(plan: planner.Plan, slots: List[SlotRecord], read: ConfigRead,
                  cfg: Config, paths: Paths, facts: HostFacts) -> None:
    cyclereport.log_slots(plan, slots)
    if read.creation is None:
        log.info("No machines created this cycle: the configuration is invalid (its "
                 "problems are in the log when they change, and in %s)", paths.config_error)
        return
    log.info("Start a LM creation attempt (at most %d this cycle). Load average is %.2f; "
             "superslots (shutdown time: processors) %s", cfg.settings.max_creations_per_cycle,
             facts.load_average, dict(sorted(plan.capacity_superslots.items())))
    cyclereport.log_plan(plan)


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
            volumes: Optional[VolumeLister] = None,
            backends: Optional[Mapping[str, BackendMaker]] = None,
            reports: Optional[Callable[[Config], Dict[str, Dict[str, dict]]]] = None
            ) -> Tuple[Config, planner.Plan, List[str]]:
    """What the next cycle would do, without acting (``vac plan``); raises ConfigError.

    Returns (config, plan, notes); machines of a backend that cannot be asked are
    assumed to be running where the files say they started (noted).
    """
    now = time.time() if now is None else now
    facts = facts or hostfacts.host_facts(paths)
    cfg = load_factory_config(paths, pipes="cache", processor_count=facts.processor_count)
    notes: List[str] = []
    slots = read_slots(cfg, paths, facts)
    with open_libvirt(cfg, hv_factory) as (hv, hv_problem):
        ctx = BackendContext(cfg, paths, now, facts.processor_count, hv, hv_problem)
        opened = open_backends(ctx, needed_backends(cfg, slots), backends)
    for name, problem in sorted(opened.problems.items()):
        notes.append(f"{short_name(name)} not reachable ({problem}): assuming its started "
                     "machines run")
        assumed = [m for m in machines_from_files(slots) if m.backend == name]
        opened.inventories[name] = assumed
    opened.problems.clear()
    inputs = cycle_inputs(cfg, cfg, paths, now, facts, now - 86400, slots, opened,
                          volumes=volumes, reports=reports)
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
    created = result.created_backends if result is not None else {}
    probe = PACE_POLL_SECONDS if cfg is not None and created and \
        cfg.settings.fast_cycle_seconds > 0 else HEARTBEAT_SECONDS
    start = time.time()
    while not control.should_stop():
        waited = time.time() - start
        if waited >= pause or (probe == PACE_POLL_SECONDS and cfg is not None
                               and _due(cfg, paths, waited, created)):
            return
        if control.wait(min(probe, max(0.0, pause - waited))):
            return
        write_heartbeat(paths, "factory")


def _due(cfg: Config, paths: Paths, waited: float, created: Mapping[str, str]) -> bool:
    """pacing.cycle_due with the backends' current view of the created machines
    (``created``: machine name -> its backend)."""
    with open_libvirt(cfg, None) as (hv, hv_problem):
        ctx = BackendContext(cfg, paths, time.time(), 0, hv, hv_problem)
        opened = open_backends(ctx, set(created.values()))
    found = {m.name: m for m in opened.machines if m.name in created}
    return pacing.cycle_due(cfg, waited, list(created), found.get)


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
