"""The factory's poll of its space each cycle: whole, or by subspaces (vac.core.subspaces).

This factory's own responder is never asked (the planner computes its own report). A
space of fewer than ``subspace_min_factories`` factories is asked whole, as by the
original. A bigger one: the rest of this factory's own subspace directly, one member of every other
subspace for that subspace's sums, then directly the rest of each subspace whose member
did not answer with sums (so original factories are asked and counted like before).
:class:`SpacePoller` remembers between cycles which members answered with sums, so that
they are asked again and the others avoided for a while.

The query itself is ``peers.query`` (real sockets), or any function with its signature
(the simulator's in-memory exchange).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from vac.adapters import statereports
from vac.core import subspaces as sub
from vac.core import vacquery as vq
from vac.core.configtypes import Config
from vac.paths import Paths
from vac.services import peers

log = logging.getLogger(__name__)
# most machinetypes a published digest holds (this factory's own first): a subspace_status
# answer is one datagram per machinetype, so a peer's report naming many made-up
# machinetypes must not make the responder answer one query with a flood
MAX_DIGEST_MACHINETYPES = 32

Query = Callable[..., peers.QueryResult]
Reports = Dict[str, Dict[str, Any]]


@dataclass
class SpacePoll:
    """What one cycle's poll found."""

    reports: Reports                        # for the planner (subspace sums under labels)
    layout: Optional[sub.Layout] = None     # None: the space was asked whole
    asked: int = 0                          # queries sent (each answered by 1+M datagrams)
    by_sums: int = 0                        # subspaces counted from a member's sums
    fallback: List[str] = field(default_factory=list)   # asked directly in a second round
    not_answered: List[str] = field(default_factory=list)

    def own_reports(self) -> Reports:
        """The reports of the other factories of this factory's own subspace (what its
        digest sums; the responder adds this factory's own figures)."""
        if self.layout is None:
            return {}
        own = self.layout.groups[self.layout.own]
        return {f: r for f, r in self.reports.items() if f in own}


class SpacePoller:
    """One factory's poll of the space, cycle after cycle (its memory of members)."""

    def __init__(self) -> None:
        self.memory: Dict[str, sub.Remembered] = {}
        self._layout: Tuple[Any, Optional[sub.Layout]] = (None, None)

    def layout(self, targets: List[str], cfg: Config) -> Optional[sub.Layout]:
        """The subspaces of ``targets`` (remembered while the inputs stay the same)."""
        s = cfg.settings
        key = (tuple(targets), s.factory_hostname, s.subspace_min_factories,
               s.subspace_size)
        if self._layout[0] != key:
            self._layout = (key, sub.layout(targets, s.factory_hostname,
                                            s.subspace_min_factories, s.subspace_size))
        return self._layout[1]

    def poll(self, cfg: Config, now: float, rng: Any, query: Query = peers.query,
             **kw: Any) -> SpacePoll:
        """Ask the space for machinetype_status reports (``kw`` go to ``query``)."""
        targets = peers.target_names(cfg, None)
        own = cfg.settings.factory_hostname
        lay = self.layout(targets, cfg)
        if lay is None:
            others = [f for f in targets if f != own]
            result = _machinetypes(query, cfg, others, None, kw)
            return SpacePoll({f: dict(r) for f, r in result.replies.items() if f != own},
                             None, len(others), not_answered=result.not_answered)
        chosen = sub.choose_members(lay, self.memory, now, rng)
        direct = [f for f in lay.groups[lay.own] if f != own]
        for index, member in chosen.items():
            if member is None:
                direct += lay.groups[index]
        extras = {m: {vq.SUBSPACE_FIELD: lay.keys[i]} for i, m in chosen.items() if m}
        result = _machinetypes(query, cfg, direct + list(extras), extras, kw)
        poll = SpacePoll({f: _plain(result[f]) for f in direct if f in result}, lay,
                         len(direct) + len(extras))
        missing = set(result.not_answered)
        for index, member in chosen.items():
            if member is not None:
                self._take(poll, lay, index, member, result, now)
        if poll.fallback:
            again = _machinetypes(query, cfg, poll.fallback, None, kw)
            poll.reports.update((f, dict(r)) for f, r in again.replies.items())
            poll.asked += len(poll.fallback)
            missing |= set(again.not_answered)
        poll.not_answered = sorted(missing - set(extras))
        log.info("Space polled by subspaces: %d queries for %d factories; %d of %d other "
                 "subspaces counted by their sums", poll.asked, len(targets), poll.by_sums,
                 len(lay.groups) - 1)
        return poll

    def _take(self, poll: SpacePoll, lay: sub.Layout, index: int, member: str,
              result: peers.QueryResult, now: float) -> None:
        """Count subspace ``index`` from what ``member`` answered, or plan the fallback."""
        replies = result.replies.get(member) or {}
        sums = {k: r for k, r in replies.items()
                if r.get("message_type") == vq.SUBSPACE_STATUS
                and r.get("subspace") == lay.keys[index]}
        if sums and len(sums) == len(replies) and member not in result.incomplete:
            poll.reports.update(sub.as_reports(lay, index, member, sums))
            poll.by_sums += 1
            self.memory[member] = sub.Remembered("sums", now)
            return
        plain = _plain(replies)
        if plain:
            poll.reports[member] = plain
        self.memory[member] = sub.Remembered("plain" if replies else "silent", now)
        log.info("%s: %s %s; asking its other %d factories directly", lay.label(index),
                 member, "answered without its subspace's sums" if replies
                 else "did not answer", len(lay.groups[index]) - 1)
        poll.fallback += [m for m in lay.groups[index] if m != member]


def _plain(replies: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """A factory's own machinetype_status replies (sums count only from a member asked)."""
    return {k: r for k, r in replies.items() if r.get("message_type") == vq.MACHINETYPE_STATUS}


def _machinetypes(query: Query, cfg: Config, targets: List[str],
                  extras: Optional[Mapping[str, Mapping[str, Any]]],
                  kw: Mapping[str, Any]) -> peers.QueryResult:
    if extras:
        kw = dict(kw, extras=extras, accept=(vq.SUBSPACE_STATUS,))
    return query(cfg, vq.MACHINETYPES_QUERY, client_name="vacd-factory", factories=targets,
                 **kw)


_POLLER = SpacePoller()         # the factory process's memory between cycles


def poll_space(cfg: Config, now: float, paths: Optional[Paths] = None, rng: Any = random,
               poller: SpacePoller = _POLLER, **kw: Any) -> SpacePoll:
    """This cycle's poll of the space; with ``paths`` (the factory's cycle only) the
    digest of its subspace is published for its responder (and the space key, if any,
    is read below it); ``kw`` go to peers.query."""
    if paths is not None:
        kw.setdefault("paths", paths)
    poll = poller.poll(cfg, now, rng, **kw)
    if paths is not None and poll.layout is not None:
        state = sub.digest_state(poll.layout, poll.own_reports(), now)
        mts = state["machinetypes"]
        keep = sorted(mts, key=lambda m: (m not in cfg.machinetypes, m))
        state["machinetypes"] = {m: mts[m] for m in keep[:MAX_DIGEST_MACHINETYPES]}
        statereports.write_subspace_digest(paths, json.dumps(state, sort_keys=True))
    return poll


def subspace_bodies(cfg: Config, paths: Paths, now: float,
                    own: Sequence[Mapping[str, Any]]) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """(key, subspace_status bodies) of the published digest of this factory's subspace
    plus its ``own`` machinetype_status bodies; (None, []) unless polling by subspaces
    is on and the digest is fresh (the responder then answers plainly)."""
    if cfg.settings.subspace_min_factories <= 0:
        return None, []
    text = statereports.read_subspace_digest(paths)
    try:
        state = json.loads(text) if text else None
    except ValueError:
        log.warning("%s is not JSON: answering plainly", statereports.SUBSPACE_DIGEST_FILE)
        return None, []
    key = state.get("key") if isinstance(state, dict) else None
    state = sub.fresh_digest(state, key, now, sub.max_age(cfg.settings)) \
        if isinstance(key, str) else None
    if state is None:
        return None, []
    mine = {b["machinetype"]: b for b in own if isinstance(b.get("machinetype"), str)}
    state = sub.with_own(state, cfg.settings.factory_hostname, mine)
    mts = state["machinetypes"]
    keep = sorted(mts, key=lambda m: (m not in cfg.machinetypes, m))
    state["machinetypes"] = {m: mts[m] for m in keep[:MAX_DIGEST_MACHINETYPES]}
    return key, sub.status_bodies(state, now)
