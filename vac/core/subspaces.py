"""Polling a big space in subspaces (pure): who is asked what, and the sums that stand in.

The original asks every factory every cycle: N(1 + M) datagrams per factory and cycle,
N²(1 + M) for the space (M machinetypes). What the planner needs of the others is only
sums per machinetype (running HS06, machines before fizzle, ...) and the latest abort,
when ``subspace_min_factories`` is set (opt-in), a space of at least that many
factories is cut into subspaces of about ``subspace_size`` (default √N) factories each:

* every factory asks the factories of its own subspace directly, as before (plain
  machinetypes_query, answered by original factories too), and publishes their sums,
  its *subspace digest* (:func:`digest`), for its responder;
* for every other subspace it asks ONE member, with the same machinetypes_query plus a
  ``subspace`` field naming that subspace's key; a member of this implementation with a
  fresh digest of exactly that subspace answers with one ``subspace_status`` per
  machinetype (its subspace's sums), which count for the whole subspace;
* any other answer (an original factory or VacMon-era vac ignores the field and answers
  plainly; a factory whose list of factories differs has another key) counts for the
  member alone, and the rest of that subspace is then asked directly in the same cycle,
  so every factory is still counted. The member is remembered and not chosen again for a
  while (:func:`choose_members`).

Per factory and cycle that is about N/s + s queries instead of N: 2√N, so the space's
traffic grows as N^1.5. The sums of another subspace are at most one cycle (of the
member that answered) old.

Subspaces: factory f belongs to subspace ``sha256(f) mod G``, G = round(N / s); every
factory with the same ``factories`` list computes the same ones, and a list that differs
in one name changes (the key of) only the subspaces involved. A subspace's key is a hash
of its sorted member names.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from vac.core.preemption import PREEMPTIBLE_FIELD
from vac.core.shares import DECAYED_FIELD, PREEMPTED_FOR_FIELD, abort_code

# machinetype_status fields a subspace digest sums: what the shares, back-off and
# preemption read of the space (the optional fields of this implementation add 0 where
# a factory does not send them)
SUMMED = ("running_hs06", "num_before_fizzle", "running_machines", "running_processors",
          DECAYED_FIELD, PREEMPTED_FOR_FIELD)
INTEGERS = ("num_before_fizzle", "running_machines", "running_processors",
            PREEMPTED_FOR_FIELD)
# names of the subspace's factories with preemptible processors of the machinetype:
# preemption's round winner is one factory of the whole space (vac.core.preemption)
PREEMPTIBLE_FACTORIES = "preemptible_factories"
ABORT_FIELDS = ("shutdown_message", "shutdown_time", "shutdown_machine")
DIGEST_FORMAT = 1
MEMORY_SECONDS = 3600           # a member that did not answer with sums is avoided so long
SILENT_SECONDS = 600            # ... or so long if it did not answer at all

Reports = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Layout:
    """The subspaces of a space as one factory sees them."""

    groups: Tuple[Tuple[str, ...], ...]     # members of each subspace, sorted
    keys: Tuple[str, ...]                   # key of each subspace
    own: int                                # index of this factory's subspace

    def label(self, index: int) -> str:
        """``subspace I/G`` (1-based) for logs."""
        return f"subspace {index + 1}/{len(self.groups)}"


def subspace_count(factories: int, size: int) -> int:
    """G: how many subspaces for ``factories`` factories of about ``size`` (0: √N)."""
    if size <= 0:
        size = max(1, round(math.sqrt(factories)))
    return max(1, round(factories / size))


def subspace_key(members: Iterable[str]) -> str:
    """16 hex digits naming a set of factories (order does not matter)."""
    text = "\n".join(sorted(set(members)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _index(name: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") % count


def layout(factories: Sequence[str], this: str, min_factories: int,
           size: int) -> Optional[Layout]:
    """The subspaces, or None when the space is polled whole (``min_factories`` 0,
    fewer than ``min_factories`` factories, a single subspace, or ``this`` not in the
    list)."""
    names = sorted(set(factories))
    if min_factories <= 0 or len(names) < max(2, min_factories) or this not in names:
        return None
    count = subspace_count(len(names), size)
    if count < 2:
        return None
    members: List[List[str]] = [[] for _ in range(count)]
    for name in names:
        members[_index(name, count)].append(name)
    groups = tuple(tuple(m) for m in members if m)
    own = next(i for i, g in enumerate(groups) if this in g)
    return Layout(groups, tuple(subspace_key(g) for g in groups), own)


# --- which member stands for each other subspace -----------------------------------------

@dataclass(frozen=True)
class Remembered:
    """What a member did when last asked for its subspace's sums."""

    answered: str           # "sums", "plain" (only its own report) or "silent"
    time: float             # Unix seconds


def choose_members(lay: Layout, memory: Mapping[str, Remembered], now: float,
                   rng: Any) -> Dict[int, Optional[str]]:
    """For every other subspace, the member to ask for its sums (None: ask them all).

    Members that answered with sums before are preferred (chosen at random among them, so
    the load spreads); members that answered plainly within MEMORY_SECONDS or not at all
    within SILENT_SECONDS are avoided."""
    chosen: Dict[int, Optional[str]] = {}
    for index, members in enumerate(lay.groups):
        if index == lay.own:
            continue
        good, unknown = [], []
        for name in members:
            seen = memory.get(name)
            if seen is None:
                unknown.append(name)
            elif seen.answered == "sums":
                good.append(name)
            elif now - seen.time >= (MEMORY_SECONDS if seen.answered == "plain"
                                     else SILENT_SECONDS):
                unknown.append(name)
        pool = good or unknown
        chosen[index] = pool[int(rng.random() * len(pool))] if pool else None
    return chosen


# --- digests --------------------------------------------------------------------------

def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)


def digest(reports: Reports, start: Optional[Mapping[str, Mapping[str, Any]]] = None
           ) -> Dict[str, Dict[str, Any]]:
    """machinetype -> the subspace's sums of SUMMED over ``reports`` (factory ->
    machinetype -> machinetype_status), the latest abort (message, time, machine; None
    if no factory's last outcome is an abort) and the factories with preemptible
    processors of it: what the shares, back-off and preemption need of them.
    ``start``: sums to add to (a published digest's machinetypes)."""
    sums = {name: _entry(entry) for name, entry in (start or {}).items()}
    for factory, per_mt in sorted(reports.items()):
        for name, status in per_mt.items():
            if not isinstance(status, Mapping):
                continue
            entry = sums.get(name)
            if entry is None:
                entry = sums[name] = _entry({})
            for key in SUMMED:
                entry[key] += _num(status.get(key))
            _latest_abort(entry, status)
            if _num(status.get(PREEMPTIBLE_FIELD)) > 0:
                entry.setdefault(PREEMPTIBLE_FACTORIES, []).append(factory)
    for entry in sums.values():
        for key in SUMMED:
            entry[key] = int(entry[key]) if key in INTEGERS else round(entry[key], 2)
    return sums


def _entry(start: Mapping[str, Any]) -> Dict[str, Any]:
    """A machinetype's running sums, starting from ``start`` (a digest's entry, or {})."""
    entry: Dict[str, Any] = {key: _num(start.get(key)) for key in SUMMED}
    entry.update(shutdown_message=None, shutdown_time=None, shutdown_machine=None)
    if start.get("shutdown_message") is not None:
        _latest_abort(entry, start)
    able = start.get(PREEMPTIBLE_FACTORIES)
    if isinstance(able, list):
        entry[PREEMPTIBLE_FACTORIES] = [f for f in able if isinstance(f, str)]
    return entry


def _latest_abort(entry: Dict[str, Any], status: Mapping[str, Any]) -> None:
    message, when = status.get("shutdown_message"), status.get("shutdown_time")
    if isinstance(message, str) and abort_code(message) is not None and \
            isinstance(when, int) and not isinstance(when, bool) and \
            (entry["shutdown_time"] is None or when > entry["shutdown_time"]):
        entry.update(shutdown_message=message, shutdown_time=when,
                     shutdown_machine=status.get("shutdown_machine"))


def digest_state(lay: Layout, reports: Reports, now: float) -> Dict[str, Any]:
    """What the factory publishes for its responder: its subspace's key and sums
    (``reports``: of the OTHER factories of its subspace that answered; the responder
    adds this factory's own figures when it answers, :func:`with_own`)."""
    return {"format": DIGEST_FORMAT, "key": lay.keys[lay.own], "time": int(now),
            "factories": len(lay.groups[lay.own]), "answered": len(reports),
            "machinetypes": digest(reports)}


def max_age(settings: Any) -> float:
    """Oldest digest (seconds) a responder still answers with: three of its factory's
    cycles (its factory refreshes the digest every cycle), at least two minutes."""
    return max(120.0, 3.0 * settings.cycle_seconds)


def fresh_digest(state: Any, key: str, now: float, max_age: float
                 ) -> Optional[Mapping[str, Any]]:
    """The published digest if it is of subspace ``key``, well formed and at most
    ``max_age`` seconds old, else None (the responder then answers plainly)."""
    if not isinstance(state, Mapping) or state.get("format") != DIGEST_FORMAT or \
            state.get("key") != key:
        return None
    when, mts = state.get("time"), state.get("machinetypes")
    if not isinstance(when, int) or not isinstance(mts, Mapping) or \
            not 0 <= now - when <= max_age:
        return None
    if not all(isinstance(k, str) and isinstance(v, Mapping) for k, v in mts.items()):
        return None
    return state


def with_own(state: Mapping[str, Any], factory: str,
             own: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """A fresh digest plus this factory's own machinetype_status bodies (machinetype ->
    body), as its responder answers them: the whole subspace's sums."""
    mts = state["machinetypes"]
    return dict(state, answered=int(state.get("answered", 0)) + 1,
                machinetypes=digest({factory: own}, mts))


def status_bodies(state: Mapping[str, Any], now: float) -> List[Dict[str, Any]]:
    """The ``subspace_status`` bodies of a fresh digest, one per machinetype (sorted)."""
    mts = state["machinetypes"]
    common = {"subspace": state["key"], "subspace_factories": state["factories"],
              "subspace_answered": state["answered"],
              "subspace_age": max(0, int(now - state["time"])),
              "num_machinetypes": len(mts)}
    return [dict(sums, machinetype=name, **common) for name, sums in sorted(mts.items())]


def as_reports(lay: Layout, index: int, member: str,
               replies: Mapping[str, Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The planner's reports standing for subspace ``index``, from ``member``'s
    subspace_status replies (machinetype -> reply): one report of the sums, keyed
    ``subspace I/G via MEMBER`` (never a factory name), plus, for preemption, one
    report per factory with preemptible processors (only that field)."""
    result: Dict[str, Dict[str, Any]] = {f"{lay.label(index)} via {member}": dict(replies)}
    for name, reply in replies.items():
        able = reply.get(PREEMPTIBLE_FACTORIES)
        for factory in able if isinstance(able, list) else ():
            if isinstance(factory, str) and factory in lay.groups[index]:
                result.setdefault(factory, {})[name] = {PREEMPTIBLE_FIELD: 1}
    return result
