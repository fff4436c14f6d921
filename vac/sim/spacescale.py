"""Space traffic at scale: N factories polling each other through the real VacQuery code.

Every factory runs the real planner each simulated cycle (vac.sim.simulator) and gets its
reports from the real client (vac.services.spacepoll and vac.services.peers: requests
encoded, replies decoded, validated and matched by cookie) over an in-memory exchange
instead of UDP: each request is decoded by the target, answered with the bodies its
responder would send (vac.core.status, or vac.core.subspaces' sums) wrapped and encoded
by vac.services.responder's code, and fed back to the client. Every datagram and byte is
counted. Modes:

* ``subspaces``: this implementation (whole below ``subspace_min_factories``);
* ``all``: the original behaviour. Its planners are given every factory's report exactly
  (what a loss-free poll of everybody returns); its traffic is that of real full polls,
  run through the same exchange for ``sample`` factories per cycle.

``originals``: that many factories (spread over the space) speak only VacQuery 01.03:
their responders ignore the ``subspace`` field and they poll everybody themselves.

For every factory and cycle the share error is the largest difference, over the
machinetypes, between the machinetype's share of the space's running HS06 as the
factory's reports say and as it exactly is at that instant; ``disagree`` counts the
cycles whose first-ranked machinetype differs from the one the exact reports rank first.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from vac.core import shares, status
from vac.core import subspaces as sub
from vac.core import vacquery as vq
from vac.core.configtypes import Machinetype
from vac.services import peers
from vac.services.responder import wrap
from vac.services.spacepoll import SpacePoller
from vac.sim.simulator import START, Simulation, SimFactory

MACHINETYPES = (Machinetype("a", target_share=1.0, max_wallclock_seconds=4 * 3600),
                Machinetype("b", target_share=3.0, max_wallclock_seconds=4 * 3600))
NO_SUBSPACES = 10 ** 9          # subspace_min_factories of an original factory


@dataclasses.dataclass
class Figures:
    """What one run measured (per factory and cycle unless said otherwise)."""

    factories: int
    mode: str
    originals: int
    cycles: int = 0                 # factory-cycles measured
    datagrams: int = 0              # sent + received, all measured polls
    bytes: int = 0                  # UDP payload bytes of those datagrams
    polls: int = 0                  # polls whose traffic was measured
    client_cpu: float = 0.0         # CPU seconds of the polls, responders' share excluded
    error_sum: float = 0.0
    error_max: float = 0.0
    disagree: int = 0
    shares: Dict[str, float] = dataclasses.field(default_factory=dict)   # final HS06 shares

    @property
    def datagrams_per_cycle(self) -> float:
        return self.datagrams / max(1, self.polls)

    @property
    def bytes_per_cycle(self) -> float:
        return self.bytes / max(1, self.polls)

    @property
    def client_cpu_per_poll(self) -> float:
        return self.client_cpu / max(1, self.polls)

    @property
    def mean_error(self) -> float:
        return self.error_sum / max(1, self.cycles)


def hs06_shares(totals: Mapping[str, shares.Totals]) -> Dict[str, float]:
    whole = sum(t.hs06 for t in totals.values())
    return {mt: (t.hs06 / whole if whole > 0 else 0.0) for mt, t in totals.items()}


class ScaleSimulation(Simulation):
    """A space of ``n`` factories whose polls go through the VacQuery client and codec."""

    def __init__(self, n: int, mode: str = "subspaces", originals: int = 0,
                 processors: int = 4, sample: int = 2, seed: int = 1, warmup: int = 1,
                 work: Optional[Callable[[str, float, random.Random], float]] = None,
                 **settings: Any):
        names = tuple(f"factory{i}.example.com" for i in range(n))
        super().__init__(MACHINETYPES, n, processors,
                         work or (lambda mt, now, rng: rng.uniform(1200, 3600)), seed,
                         max_creations_per_cycle=2, **settings)
        self.mode, self.sample = mode, sample
        self.warmup, self.step_index = warmup, 0      # cycles not measured (no digests yet)
        step = max(1, n // originals) if originals else 0
        self.originals = {names[i] for i in range(0, n, step)} if originals else set()
        for f in self.factories:
            extra = {"subspace_min_factories": NO_SUBSPACES} \
                if f.name in self.originals or mode == "all" else {}
            f.cfg = dataclasses.replace(f.cfg, settings=dataclasses.replace(
                f.cfg.settings, factories=names, **extra))
        self.by_name = {f.name: f for f in self.factories}
        self.pollers = {f.name: SpacePoller() for f in self.factories}
        self.digests: Dict[str, Any] = {}
        self.current: Dict[str, Dict[str, dict]] = {}   # every factory's report, now
        self.sums = {mt.name: [0.0, 0.0] for mt in MACHINETYPES}   # of current: hs06, nbf
        self.abort_times: Dict[str, Dict[str, float]] = {mt.name: {} for mt in MACHINETYPES}
        self.figures = Figures(n, mode, len(self.originals))
        self._tally = [0, 0]                              # datagrams, bytes of one poll
        self._answering = 0.0                             # CPU seconds the responders took

    # --- what each factory's responder says -------------------------------------------
    def _refresh(self, f: SimFactory) -> None:
        """Recompute what ``f`` reports, and the exact space totals with it."""
        old, new = self.current.get(f.name, {}), Simulation._bodies(self, f)
        for mt, sums in self.sums.items():
            before, after = old.get(mt) or {}, new.get(mt) or {}
            sums[0] += after.get("running_hs06", 0.0) - before.get("running_hs06", 0.0)
            sums[1] += after.get("num_before_fizzle", 0) - before.get("num_before_fizzle", 0)
            if shares.abort_code(after.get("shutdown_message")) is not None:
                self.abort_times[mt][f.name] = float(after["shutdown_time"] or 0)
            else:
                self.abort_times[mt].pop(f.name, None)
        self.current[f.name] = new

    def exact_totals(self) -> Dict[str, shares.Totals]:
        """The space totals every factory's report gives right now (all peers, exactly)."""
        return {mt: shares.Totals(hs06, nbf, max(self.abort_times[mt].values(), default=0.0))
                for mt, (hs06, nbf) in self.sums.items()}

    def _bodies(self, f: SimFactory) -> Dict[str, dict]:
        return self.current[f.name]

    def _apply(self, f: SimFactory, action: Any) -> None:
        super()._apply(f, action)
        self._refresh(f)

    def _machines_end(self, f: SimFactory) -> None:
        super()._machines_end(f)
        self._refresh(f)

    def answer(self, target: str, data: bytes) -> List[bytes]:
        """The datagrams ``target``'s responder sends back for request ``data``."""
        f = self.by_name[target]
        request = vq.decode_request(data)
        reply_type, bodies = vq.MACHINETYPE_STATUS, list(self.current[target].values())
        if request.subspace and target not in self.originals:
            state = sub.fresh_digest(self.digests.get(target), request.subspace, self.now,
                                     sub.max_age(f.cfg.settings))
            if state is not None:        # the digest plus its own figures, as it answers
                state = sub.with_own(state, target, self.current[target])
                reply_type, bodies = vq.SUBSPACE_STATUS, sub.status_bodies(state, self.now)
        return [vq.encode(wrap(f.cfg, reply_type, b, request.cookie, self.now))
                for b in bodies]

    def transport(self, gather: Any, addresses: Mapping[str, Any],
                  make: Callable[[str], bytes], timeout: float) -> None:
        """peers' exchange, in memory: every request answered at once, nothing lost."""
        requests = {target: make(target) for target in addresses}
        start = time.process_time()         # per-call clocks cost more than the answers
        answers = {target: self.answer(target, data) for target, data in requests.items()}
        self._answering += time.process_time() - start
        for target, data in requests.items():
            self._tally[0] += 1
            self._tally[1] += len(data)
            for reply in answers[target]:
                self._tally[0] += 1
                self._tally[1] += len(reply)
                gather.accept(reply, (target, 995))

    def _poll(self, f: SimFactory) -> Dict[str, Dict[str, Any]]:
        """One factory's real poll; publishes its subspace's sums; counts the traffic."""
        self._tally, self._answering, start = [0, 0], 0.0, time.process_time()
        poll = self.pollers[f.name].poll(f.cfg, self.now, f.rng, resolver=lambda n: (n, 995),
                                         transport=self.transport)
        if poll.layout is not None and f.name not in self.originals:
            self.digests[f.name] = sub.digest_state(poll.layout, poll.own_reports(),
                                                    self.now)
        if self.measuring:
            self.figures.client_cpu += time.process_time() - start - self._answering
            self.figures.datagrams += self._tally[0]
            self.figures.bytes += self._tally[1]
            self.figures.polls += 1
        return poll.reports

    @property
    def measuring(self) -> bool:
        """Past the warm-up cycles (members' memory of who answers with sums)."""
        return self.step_index > self.warmup

    # --- one factory cycle -----------------------------------------------------------------
    def _reports(self, f: SimFactory) -> Dict[str, Dict[str, dict]]:
        if self.mode == "all" and f.name not in self.originals:
            if self.measuring and self.figures.cycles % len(self.factories) < self.sample:
                self._poll(f)                        # traffic of a full poll, measured
            reports = {g: r for g, r in self.current.items() if g != f.name}
        else:
            reports = self._poll(f)
        self._measure(f, dict(reports, **{f.name: self.current[f.name]}))
        return reports

    def _measure(self, f: SimFactory, reports: Mapping[str, Any]) -> None:
        if not self.measuring:
            return
        names = [mt.name for mt in self.machinetypes]
        seen = shares.space_totals(reports, names)
        exact = self.exact_totals()
        a, b = hs06_shares(seen), hs06_shares(exact)
        error = max(abs(a[mt] - b[mt]) for mt in names)
        fig = self.figures
        fig.cycles += 1
        fig.error_sum += error
        fig.error_max = max(fig.error_max, error)
        if self._first(f, seen) != self._first(f, exact):
            fig.disagree += 1

    def _first(self, f: SimFactory, totals: Mapping[str, shares.Totals]) -> Optional[str]:
        stands = shares.standings(f.cfg, {}, self.now, totals=totals)
        eligible = sorted((-s.tier, s.group_score, s.score, s.machinetype)
                          for s in stands if s.eligible)
        return eligible[0][3] if eligible else None

    def run_cycles(self, cycles: int) -> Figures:
        for f in self.factories:
            self._refresh(f)
        self.prime()
        result = self.run((cycles + self.warmup) / 60.0, step=60.0, on_step=self._new_step)
        whole = sum(v[-1] for v in result.hs06.values())
        self.figures.shares = {mt: (v[-1] / whole if whole else 0.0)
                               for mt, v in result.hs06.items()}
        return self.figures

    def prime(self) -> None:
        """Publish every factory's digest of its own subspace as at the start (a space
        in its steady state; from cold, the first cycle asks nearly everybody)."""
        for f in self.factories:
            lay = self.pollers[f.name].layout(list(f.cfg.settings.factories), f.cfg)
            if lay is not None and f.name not in self.originals:
                own = {g: self.current[g] for g in lay.groups[lay.own]}
                self.digests[f.name] = sub.digest_state(lay, own, self.now)

    def _new_step(self, _sim: Simulation) -> None:
        self.step_index += 1
        for f in self.factories:            # what "running" and "young" mean moves on
            self._refresh(f)


def run_case(n: int, mode: str, cycles: int, originals: int = 0, seed: int = 1,
             **settings: Any) -> Figures:
    """One row of the table: ``n`` factories, ``cycles`` measured one-minute cycles
    (after the warm-up ones)."""
    return ScaleSimulation(n, mode, originals, seed=seed, **settings).run_cycles(cycles)


def all_peers_cost(n: int, machinetypes: int = len(MACHINETYPES)) -> int:
    """Datagrams per factory and cycle when everybody asks everybody else: (N-1)(1 + M)
    (the original also asked its own responder: N(1 + M))."""
    return (n - 1) * (1 + machinetypes)


__all__: Sequence[str] = ("ScaleSimulation", "Figures", "run_case", "all_peers_cost",
                          "START")
