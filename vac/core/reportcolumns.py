"""The peers' machinetype_status bodies summed as the poll decodes them (SPEC §6.2).

A space of 500 factories with 100 machinetypes answers a factory's machinetypes_query
with 50,000 bodies every cycle. Walking them as dicts costs the planner about 30 ms
(three dict look-ups per body, each body cold in the cache by then).
:class:`ReportColumns` takes the numbers out of each body when the poll accepts it (the
body is hot then, and the poll is waiting on the network anyway) and keeps them as one
column of floats per machinetype and field, with one position per factory in the
order of the reports, each an ``array('d')`` (the doubles side by side: summing
50,000 float objects scattered over the heap costs cache misses, about 5 ms).
:meth:`ReportColumns.totals` sums each column with one C-level
``sum`` in that order: the same additions in the same order as
:func:`vac.core.shares.space_totals` walking the same reports, so the totals are equal
to the last bit. A position no body filled holds 0.0, which changes no sum that starts
at +0.0 (x + 0.0 == x for every float but -0.0, and such a sum is never -0.0).
"""

from __future__ import annotations

import sys
from array import array
from functools import reduce
from operator import add
from typing import Any, Dict, Iterable, Mapping, Optional, Set

from vac.core import shares
from vac.core.configtypes import Config
from vac.core.shares import DECAYED_FIELD, PREEMPTED_FOR_FIELD, Totals, _is_abort, _num

# sum() of floats adds left to right up to Python 3.11; 3.12 compensates the rounding
# errors (Neumaier), which would give a different last bit than a loop of ``+=``.
_PLAIN_SUM = sys.version_info < (3, 12)


def sequential_sum(column: Iterable[float]) -> float:
    """0.0 + column[0] + column[1] + ..., rounded after each addition like ``+=``."""
    return sum(column, 0.0) if _PLAIN_SUM else reduce(add, column, 0.0)


def _value(value: Any) -> float:
    """A body's number as a float; junk (None, text, too big) as :func:`shares._num`."""
    kind = type(value)
    if kind is float:
        return value
    if kind is int or kind is bool:
        try:
            return float(value)
        except OverflowError:
            return 0.0
    return _num(value)


def _set(column: "array[float]", position: int, value: float) -> None:
    if len(column) <= position:             # 0.0 each, doubled as in ReportColumns.add
        column.frombytes(bytes(8 * (max(position + 1, 2 * len(column), 64) - len(column))))
    column[position] = value


class ReportColumns:
    """Per machinetype: running HS06, machines before fizzle and the optional fields as
    columns (position = the factory's place in the reports), and the latest abort."""

    def __init__(self) -> None:
        self._hs06: Dict[str, "array[float]"] = {}
        self._nbf: Dict[str, "array[float]"] = {}
        self._usage: Dict[str, "array[float]"] = {}
        self._preempting: Dict[str, "array[float]"] = {}
        self._last_abort: Dict[str, float] = {}
        self._aborts: Dict[Any, bool] = {}            # message -> is it an abort
        self._clean: Set[str] = set()                 # messages known not to be aborts

    def add(self, position: int, name: str, status: Mapping[str, Any]) -> None:
        """The body of machinetype ``name`` from the factory at ``position`` (at most once
        per factory and machinetype; later positions may come first). Called for every
        datagram of the poll, so kept flat."""
        if not status:
            return
        hs06 = self._hs06.get(name)
        if hs06 is None:
            hs06 = self._hs06[name] = array("d")
            self._nbf[name] = array("d")
        nbf = self._nbf[name]
        if len(hs06) <= position:           # doubled: bodies come in about in order
            zeros = bytes(8 * (max(position + 1, 2 * len(hs06), 64) - len(hs06)))
            hs06.frombytes(zeros)           # 0.0 each
            nbf.frombytes(zeros)
        value = status.get("running_hs06")
        hs06[position] = value if type(value) is float else _value(value)
        value = status.get("num_before_fizzle")
        try:                                # an int as float(int) does, or too big
            nbf[position] = value if type(value) is int else _value(value)
        except OverflowError:
            nbf[position] = 0.0
        message = status.get("shutdown_message")
        if message and (type(message) is not str or message not in self._clean):
            self._message(name, message, status)
        if DECAYED_FIELD in status or PREEMPTED_FOR_FIELD in status:
            self._optional(position, name, status)

    def _message(self, name: str, message: Any, status: Mapping[str, Any]) -> None:
        if _is_abort(message, self._aborts):
            when = _num(status.get("shutdown_time"))
            if when > self._last_abort.get(name, 0.0):
                self._last_abort[name] = when
        elif type(message) is str:
            self._clean.add(message)

    def _optional(self, position: int, name: str, status: Mapping[str, Any]) -> None:
        for field, columns in ((DECAYED_FIELD, self._usage),
                               (PREEMPTED_FOR_FIELD, self._preempting)):
            if status.get(field) is not None:
                _set(columns.setdefault(name, array("d")), position, _num(status.get(field)))

    def totals(self, names: Iterable[str], *, usage: bool = False,
               preempting: bool = False) -> Dict[str, Totals]:
        """What :func:`vac.core.shares.space_totals` gives for the same reports."""
        out = {}
        empty = array("d")
        for name in names:
            out[name] = Totals(
                sequential_sum(self._hs06.get(name, empty)),
                sequential_sum(self._nbf.get(name, empty)),
                self._last_abort.get(name, 0.0),
                sequential_sum(self._usage.get(name, empty)) if usage else 0.0,
                sequential_sum(self._preempting.get(name, empty)) if preempting else 0.0)
        return out

    def cycle_totals(self, cfg: Config, then: Optional[Mapping[str, Any]] = None
                     ) -> Dict[str, Totals]:
        """:func:`vac.core.shares.cycle_totals` of these reports followed by ``then``
        (factory -> machinetype -> status: this factory's own report)."""
        start = self.totals([mt.name for mt in shares.enabled(cfg)],
                            **shares.optional_fields(cfg))
        return shares.cycle_totals(cfg, then, start=start) if then else start
