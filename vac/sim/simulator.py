"""Scheduling simulator: many factories in one process, a fake clock, FakeBackends.

Each factory runs the real planner (vac.core.planner) every ``cycle_seconds`` of simulated
time; its slots live in memory as SlotRecords, updated the way the executor updates the
files (vac.core.projection); the other factories' reports are exchanged in memory with
vac.core.status (what each responder would say) and each factory's own report is
computed by the planner, as in the real cycle. Machines find work or not according to
the scenario, and end themselves.

    python -m vac.sim.simulator --scenario shares --plot shares.svg
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from types import MappingProxyType
from typing import Callable, Dict, List, Optional, Sequence

from vac.constants import GB, MIB
from vac.core import planner, projection, status, usage
from vac.core.actions import Create, Destroy, Finalise, Preempt, RecordUsage
from vac.core.configtypes import Config, Machinetype, Settings
from vac.core.naming import machine_name
from vac.core.shares import abort_code
from vac.model import HostFacts, SlotRecord
from vac.services.backends.base import MachineRequest
from vac.sim.fakebackend import FakeBackend

START = 1_700_000_000
HS06_PER_PROCESSOR = 10.0

# work(machinetype, now) -> seconds of work a new machine finds (0: none), from its rng
WorkModel = Callable[[str, float, random.Random], float]


@dataclasses.dataclass
class SimFactory:
    """One factory: its configuration, in-memory slots, backend and machine end times."""

    cfg: Config
    slots: List[SlotRecord]
    backend: FakeBackend
    rng: random.Random
    ends: Dict[str, tuple] = dataclasses.field(default_factory=dict)   # name -> (t, msg)
    created: Dict[str, int] = dataclasses.field(default_factory=dict)  # mt -> count
    creation_times: Dict[str, List[float]] = dataclasses.field(default_factory=dict)
    finishes: Dict[str, SlotRecord] = dataclasses.field(default_factory=dict)  # finishes/MT
    usage: usage.Usage = dataclasses.field(default_factory=dict)         # share-usage

    @property
    def name(self) -> str:
        return self.cfg.settings.factory_hostname


@dataclasses.dataclass
class Result:
    """Time series of running HS06 per machinetype (summed over the space)."""

    times: List[float]
    hs06: Dict[str, List[float]]
    created: Dict[str, int]
    creation_times: Dict[str, List[float]] = dataclasses.field(default_factory=dict)  # hours
    figures: Dict[str, float] = dataclasses.field(default_factory=dict)   # scenario figures
    compared: Dict[str, List[float]] = dataclasses.field(default_factory=dict)  # plot only
    preempted_processors: int = 0
    aborts: Dict[str, int] = dataclasses.field(default_factory=dict)   # code >= 300
    work_lost_hs06_hours: float = 0.0   # runs of preempted machines that did not finish

    def created_between(self, machinetype: str, start_hour: float, end_hour: float) -> int:
        return sum(1 for t in self.creation_times.get(machinetype, ())
                   if start_hour <= t < end_hour)

    def mean_hs06(self, machinetype: str, since: float) -> float:
        values = [v for t, v in zip(self.times, self.hs06[machinetype]) if t >= since]
        return sum(values) / len(values) if values else 0.0


class Simulation:
    """A space of factories sharing machinetypes; :meth:`run` advances the fake clock."""

    def __init__(self, machinetypes: Sequence[Machinetype], factories: int, processors: int,
                 work: WorkModel, seed: int = 1, **settings):
        self.machinetypes = list(machinetypes)
        self.work = work
        self.now = float(START)
        self.factories = [self._factory(i, processors, seed, settings)
                          for i in range(factories)]
        self.preempted_processors = 0
        self.work_lost = 0.0                 # HS06 seconds
        self.aborts: Dict[str, int] = {}     # machinetype -> finished with code >= 300

    def reconfigure(self, machinetypes: Sequence[Machinetype]) -> None:
        """Every factory gets a new set of machinetypes (e.g. one arriving)."""
        self.machinetypes = list(machinetypes)
        mts = MappingProxyType({mt.name: mt for mt in self.machinetypes})
        for f in self.factories:
            f.cfg = dataclasses.replace(f.cfg, machinetypes=mts)

    def _factory(self, i: int, processors: int, seed: int, settings: dict) -> SimFactory:
        name = f"factory{i}.example.com"
        s = Settings(vac_space="vac01.example.com", factory_hostname=name,
                     hs06_per_processor=HS06_PER_PROCESSOR, shutdown_grace_seconds=0,
                     **settings)
        cfg = Config(settings=s, machinetypes=MappingProxyType(
            {mt.name: mt for mt in self.machinetypes}))
        slots = [SlotRecord(ordinal=o, name=machine_name(name, o)) for o in range(processors)]
        return SimFactory(cfg, slots, FakeBackend(name), random.Random(seed * 1000 + i))

    # --- one cycle of one factory ------------------------------------------------------
    def _facts(self, f: SimFactory) -> HostFacts:
        return HostFacts(len(f.slots), 0.0, 0.0, 1024 * 1024 * MIB, 512 * 1024 * MIB, 100 * GB)

    def _bodies(self, f: SimFactory) -> Dict[str, dict]:
        """What ``f``'s responder says now: machinetype -> machinetype_status body."""
        decayed = usage.current(f.usage, self.now, f.cfg.settings.share_half_life_seconds)
        return {b["machinetype"]: b for b in status.machinetype_statuses(
            f.cfg, f.slots, self.now, f.finishes, decayed)}

    def _reports(self, exclude: SimFactory) -> Dict[str, Dict[str, dict]]:
        """What the other factories' responders say (this one's own is the planner's)."""
        return {f.name: self._bodies(f) for f in self.factories if f is not exclude}

    def _cycle(self, f: SimFactory) -> None:
        own = planner.OwnFacts(dict(f.finishes), usage.current(
            f.usage, self.now, f.cfg.settings.share_half_life_seconds))
        inputs = planner.CycleInputs(f.cfg, f.slots, f.backend.inventory(), self._facts(f),
                                     self._reports(f), START - 86400, own=own)
        for action in planner.plan(inputs, self.now, f.rng).actions:
            self._apply(f, action)

    def _set(self, f: SimFactory, name: str, **changes) -> None:
        for i, slot in enumerate(f.slots):
            if slot.name == name:
                f.slots[i] = dataclasses.replace(slot, **changes)

    def _apply(self, f: SimFactory, action) -> None:
        """What the executor does to the files, done to the in-memory SlotRecords."""
        if isinstance(action, Destroy):
            self._destroy(f, action)
        elif isinstance(action, Create):
            self._create(f, action)
            return
        elif isinstance(action, Preempt):
            self.preempted_processors += action.processors
        elif isinstance(action, RecordUsage):
            f.usage = usage.add(f.usage, action.machinetype, action.hs06_seconds, self.now,
                                f.cfg.settings.share_half_life_seconds)
        for i, slot in enumerate(f.slots):
            f.slots[i] = projection.after(slot, action, self.now) \
                if slot.name == projection.action_name(action) else slot
        if isinstance(action, Finalise):
            slot = f.slots[action.slot.ordinal]
            self._update_finishes(f, slot)
            if abort_code(slot.shutdown_message) is not None:
                self.aborts[slot.machinetype or ""] = self.aborts.get(slot.machinetype or "",
                                                                      0) + 1

    def _destroy(self, f: SimFactory, action: Destroy) -> None:
        """The executor's destroy: the domain goes; vac's message unless the guest's."""
        slot = next((s for s in f.slots if s.name == action.name), None)
        if action.name not in f.backend.machines:
            return
        f.backend.destroy(action.name, grace_seconds=0)
        f.ends.pop(action.name, None)
        if slot is not None and slot.preempted_until is not None \
                and slot.started_time is not None:
            self.work_lost += (slot.hs06 or 0.0) * (self.now - slot.started_time)

    @staticmethod
    def _update_finishes(f: SimFactory, slot: SlotRecord) -> None:
        """finishes/MT names the most recently *created* finished machine of the type."""
        mt = slot.machinetype or ""
        old = f.finishes.get(mt)
        if old is None or (slot.created or 0) >= (old.created or 0):
            f.finishes[mt] = slot

    def _create(self, f: SimFactory, c: Create) -> None:
        mt = f.cfg.machinetypes[c.machinetype]
        uuid = f.backend.create(MachineRequest(c.name, c.ordinal, mt, c.processors, "",
                                               c.shutdown_time, lambda _uuid: None)).uuid
        f.slots[c.ordinal] = SlotRecord(
            ordinal=c.ordinal, name=c.name, created=int(self.now), machinetype=c.machinetype,
            machine_model="cernvm3", machine_dir=f"sim:{c.name}:{int(self.now)}",
            started_time=self.now, heartbeat_time=self.now, heartbeat_mtime=self.now,
            cpu_seconds=0.0, shutdown_time_job=c.shutdown_time, processors=c.processors,
            hs06=HS06_PER_PROCESSOR * c.processors, uuid=uuid)
        found = self.work(c.machinetype, self.now, f.rng)
        if found > 0:
            f.ends[c.name] = (min(self.now + found, c.shutdown_time - 1), "200 Success")
        else:
            f.ends[c.name] = (self.now + 300, "300 Nothing to do")
        f.created[c.machinetype] = f.created.get(c.machinetype, 0) + 1
        f.creation_times.setdefault(c.machinetype, []).append((self.now - START) / 3600.0)

    def _machines_end(self, f: SimFactory) -> None:
        """Guests whose work is over write their shutdown message and power off."""
        for name, (t, message) in list(f.ends.items()):
            if t <= self.now:
                del f.ends[name]
                if name in f.backend.machines:
                    self._set(f, name, shutdown_message=message, shutdown_message_time=t)
                    f.backend.power_off(name)

    # --- the clock ------------------------------------------------------------------------
    def running_hs06(self) -> Dict[str, float]:
        totals = {mt.name: 0.0 for mt in self.machinetypes}
        for f in self.factories:
            for slot in f.slots:
                if slot.machinetype in totals and status.is_running(slot, self.now):
                    totals[slot.machinetype] += slot.hs06 or 0.0
        return totals

    def run(self, hours: float, step: float = 60.0,
            on_step: Optional[Callable[["Simulation"], None]] = None) -> Result:
        """Advance ``hours``; ``on_step(self)`` runs before every step (scenario events)."""
        result = Result([], {mt.name: [] for mt in self.machinetypes}, {})
        end = self.now + hours * 3600
        while self.now < end:
            if on_step is not None:
                on_step(self)
            for f in self.factories:
                f.backend.tick(step)
                self._machines_end(f)
                self._cycle(f)
            result.times.append((self.now - START) / 3600.0)
            for mt, value in self.running_hs06().items():
                result.hs06.setdefault(mt, [0.0] * (len(result.times) - 1)).append(value)
            self.now += step
        for f in self.factories:
            for mt, n in f.created.items():
                result.created[mt] = result.created.get(mt, 0) + n
            for mt, times in f.creation_times.items():
                result.creation_times.setdefault(mt, []).extend(sorted(times))
        result.aborts = dict(self.aborts)
        result.preempted_processors = self.preempted_processors
        result.work_lost_hs06_hours = self.work_lost / 3600.0
        return result


# --- scenarios ---------------------------------------------------------------------------

def _always(low: float, high: float) -> WorkModel:
    return lambda mt, now, rng: rng.uniform(low, high)


def scenario_shares(hours: float = 24.0) -> Result:
    """Shares 1:3 converge to 1:3 of running HS06."""
    mts = [Machinetype("a", target_share=1.0, max_wallclock_seconds=6 * 3600),
           Machinetype("b", target_share=3.0, max_wallclock_seconds=6 * 3600)]
    return Simulation(mts, factories=4, processors=8, work=_always(3600, 5 * 3600)).run(hours)


def scenario_backoff(hours: float = 12.0, work_from_hour: float = 4.0) -> Result:
    """A machinetype with no work (until ``work_from_hour``) backs off, then recovers."""
    def work(mt: str, now: float, rng: random.Random) -> float:
        if mt == "idle" and now < START + work_from_hour * 3600:
            return 0.0
        return rng.uniform(3600, 3 * 3600)
    mts = [Machinetype("idle", target_share=1.0, backoff_seconds=1800, fizzle_seconds=600,
                       max_wallclock_seconds=4 * 3600),
           Machinetype("busy", target_share=1.0, max_wallclock_seconds=4 * 3600)]
    return Simulation(mts, factories=2, processors=8, work=work).run(hours)


def scenario_multiproc(hours: float = 24.0) -> Result:
    """1- and 8-processor machinetypes share factories without starving the 8s."""
    mts = [Machinetype("single", target_share=1.0, max_wallclock_seconds=6 * 3600,
                       min_wallclock_seconds=1800),
           Machinetype("eight", target_share=1.0, min_processors=8, max_processors=8,
                       max_wallclock_seconds=6 * 3600)]
    return Simulation(mts, factories=2, processors=16, work=_always(2 * 3600, 6 * 3600),
                      processors_per_superslot=8).run(hours)


SCENARIOS: Dict[str, Callable[[], Result]] = {
    "shares": scenario_shares, "backoff": scenario_backoff, "multiproc": scenario_multiproc}


def scenarios() -> Dict[str, Callable[[], Result]]:
    """Every scenario, including those of vac.sim.schedscenarios."""
    from vac.sim import schedscenarios
    return dict(SCENARIOS, preemption=schedscenarios.scenario_preemption,
                halflife=schedscenarios.scenario_halflife)


def summary(name: str, result: Result) -> dict:
    """What ``--json`` writes: final shares of running HS06 and the scenario's figures."""
    from vac.sim.schedscenarios import final_shares
    return {"scenario": name, "hours": result.times[-1] if result.times else 0.0,
            "final_shares": final_shares(result), "created": result.created,
            "figures": result.figures}


def main(argv: Optional[List[str]] = None) -> int:
    every = scenarios()
    parser = argparse.ArgumentParser(prog="python -m vac.sim.simulator",
                                     description="Vac scheduling simulator")
    parser.add_argument("--scenario", choices=sorted(every), required=True)
    parser.add_argument("--plot", metavar="FILE.svg", help="write an SVG of HS06 over time")
    parser.add_argument("--json", metavar="FILE.json", help="write final shares and figures")
    args = parser.parse_args(argv)
    result = every[args.scenario]()
    for mt, series in result.hs06.items():
        print(f"{mt}: created {result.created.get(mt, 0)}, final running HS06 "
              f"{series[-1]:.0f}, mean over the last half "
              f"{result.mean_hs06(mt, result.times[-1] / 2):.1f}")
    for key, value in result.figures.items():
        print(f"{key}: {value:g}")
    if args.plot:
        from vac.sim.plot import write_svg
        write_svg(args.plot, result.times, dict(result.hs06, **result.compared),
                  title=f"Running HS06 per machinetype - scenario {args.scenario}")
        print(f"plot written to {args.plot}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary(args.scenario, result), f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
