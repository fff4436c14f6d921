"""How the factory reads its configuration each cycle, and tells what is wrong with it.

"Failures look like planned draining": a configuration with a global problem stops
creation only. The factory then looks after running machines (finalise, account,
destroy at their shutdown time) with the last valid configuration it read, or, when it
has read none since it started, with the valid parts of the files (ConfigError.fallback).
A faulty machinetype only disables that machinetype (Config.disabled): nothing of it is
created, and its running machines are looked after with its last valid definition if
the factory read one, else from their own directories (their own shutdown time, no
heartbeat_file check, 3-day directory expiry).

Problems, disabled machinetypes and warnings are logged once per change, not every cycle,
and written to the state files ``config-error`` and ``machinetypes-disabled`` (statefs)
that check-vacd and vacd's systemd status read.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, List, Mapping, Optional, Tuple

from vac.adapters import statereports
from vac.core.configtypes import Config
from vac.errors import ConfigError, VacError
from vac.machinemodels import backend_of
from vac.paths import Paths

log = logging.getLogger(__name__)


@dataclass
class FactoryMemory:
    """What the factory role keeps between cycles (empty in a fresh process)."""

    last_good: Optional[Config] = None      # the last configuration read without problems
    reported: Optional[Tuple] = None        # (problems, disabled, warnings) last logged


@dataclass
class ConfigRead:
    """One cycle's configurations: for running machines, and for creating new ones."""

    lifecycle: Optional[Config]             # None: no usable configuration at all
    creation: Optional[Config]              # None: the configuration is invalid
    problems: List[str] = field(default_factory=list)
    warnings: Tuple[str, ...] = ()
    acting: str = ""                        # what the lifecycle acts with, if invalid


def read_config(paths: Paths, load: Callable[[Paths], Config], memory: FactoryMemory,
                given: Optional[Config] = None, *, report_now: bool = True) -> ConfigRead:
    """Load the configuration (or take ``given``), remember it if valid, and report it
    (unless ``report_now`` is False: the caller calls :func:`report_read` later)."""
    try:
        cfg = given or load(paths)
    except ConfigError as e:
        fallback = e.fallback
        read = ConfigRead(memory.last_good or fallback, None, [str(p) for p in e.problems],
                          fallback.warnings if fallback is not None else (),
                          "the last valid configuration" if memory.last_good else
                          "the valid parts of the files")
    else:
        lifecycle = with_last_definitions(cfg, memory.last_good)
        memory.last_good = lifecycle
        read = ConfigRead(lifecycle, cfg, [], cfg.warnings)
    if report_now:
        report_read(paths, memory, read)
    return read


def report_read(paths: Paths, memory: FactoryMemory, read: ConfigRead) -> None:
    """Log what changed since the last report; keep the state files in step."""
    report(paths, memory, read.problems, read.creation if read.creation is not None
           else read.lifecycle, read.warnings, read.acting)


def without_backends(read: ConfigRead, problems: Mapping[str, str]) -> ConfigRead:
    """``read`` with the machinetypes whose backend is unavailable this cycle disabled
    for creation (``problems``: backend "module:Class" -> one line), naming the problem."""
    cfg = read.creation
    if cfg is None or not problems:
        return read
    off = {name: (f"machine_model {mt.machine_model}: {problems[backend_of(mt.machine_model)]}",)
           for name, mt in cfg.machinetypes.items() if backend_of(mt.machine_model) in problems}
    if not off:
        return read
    creation = dataclasses.replace(
        cfg, machinetypes=MappingProxyType({n: mt for n, mt in cfg.machinetypes.items()
                                            if n not in off}),
        disabled=MappingProxyType({**cfg.disabled, **off}))
    return dataclasses.replace(read, creation=creation)


def with_last_definitions(cfg: Config, last: Optional[Config]) -> Config:
    """``cfg`` plus the last valid definition of each of its disabled machinetypes."""
    if last is None or not cfg.disabled:
        return cfg
    kept = {name: last.machinetypes[name] for name in cfg.disabled
            if name in last.machinetypes}
    if not kept:
        return cfg
    return dataclasses.replace(cfg, machinetypes=MappingProxyType({**cfg.machinetypes,
                                                                   **kept}))


def report(paths: Paths, memory: FactoryMemory, problems: List[str], cfg: Optional[Config],
           warnings: Tuple[str, ...], acting: str) -> None:
    """Log what changed since the last report; keep the state files in step."""
    disabled = dict(cfg.disabled) if cfg is not None and not problems else {}
    key = (tuple(problems), tuple(disabled.items()), tuple(warnings))
    if key != memory.reported:
        was_invalid = bool(memory.reported and memory.reported[0])
        memory.reported = key
        for warning in warnings:
            log.warning("configuration: %s", warning)
        if problems:
            log.error("The configuration is invalid: no machines are created until it is "
                      "fixed; running machines are looked after with %s (%d problem(s)):",
                      acting if cfg is not None else "nothing (no usable configuration)",
                      len(problems))
            for problem in problems:
                log.error("configuration: %s", problem)
        elif was_invalid:
            log.info("The configuration is valid again: creating machines again")
        for name, found in disabled.items():
            log.warning("machinetype %s is disabled (no machines of it are created; the "
                        "other machinetypes are): %s", name, "; ".join(found))
    try:
        statereports.write_config_report(paths, problems, disabled)
    except (OSError, VacError) as e:
        log.error("Cannot write the configuration report files: %s", e)
