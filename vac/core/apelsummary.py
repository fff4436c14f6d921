"""Day summaries of the APEL archive: what ``vac apel-sync`` needs without reading records.

A summary describes one archive day directory ``apel-archive/YYYYMMDD``: how many records
name each (Site, SubmitHost), which records lack one of them (newest first), the Site of
the newest usable record, and the state of the directory it was made from: its mtime (ns)
and its number of entries (names not starting with a dot). It is a cache, never the
truth: apel-sync trusts it only while it provably matches the directory (:func:`verdict`)
and otherwise reads the day's records again, exactly as without summaries.

* The factory adds each record it archives (:func:`after_archive`), but only to a
  summary that matched the directory just before its write, and a retried write of the
  same record (after a crash) adds nothing: the archive name was already there.
* A directory's mtime changes whenever an entry is added, removed or renamed, by vac or by
  hand, so a summary with another mtime is stale. Timestamps have a granularity (a
  kernel tick), so a change in the same tick as the summary's mtime would not show: a
  summary not checked at least RACY_NS after its mtime is "racy", and apel-sync counts
  the directory's entries before trusting it, then records when it checked.
* Editing a record in place (same name, no rename) changes neither; ``vac apel-sync
  --rescan`` reads everything again.

Pure: times are passed in (ns since the epoch); JSON text in and out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

FORMAT = 1
RACY_NS = 2_000_000_000         # a summary checked this long after its mtime is trusted
KEYS = ("Site", "SubmitHost")
TRUSTED, COUNT, STALE = "trusted", "count", "stale"

SiteHost = Tuple[str, str]


@dataclass(frozen=True)
class DaySummary:
    """One archive day directory, summarised (see the module docstring)."""

    mtime_ns: int                       # the directory's mtime when it was summarised
    entries: int                        # its names not starting with "."
    checked_ns: int = 0                 # when apel-sync last saw it match (0: never)
    counts: Mapping[SiteHost, int] = field(default_factory=dict)
    newest: Optional[Tuple[str, str]] = None     # (name, Site) of the newest usable record
    invalid: Tuple[Tuple[str, str], ...] = ()    # (name, first missing key), newest first

    def sites(self) -> List[str]:
        return sorted({site for site, _host in self.counts})


def missing_key(values: Mapping[str, str]) -> Optional[str]:
    """The first of Site, SubmitHost that a record's header lacks (or has empty)."""
    for key in KEYS:
        if not values.get(key):
            return key
    return None


class Builder:
    """Summarise a day from its records, fed newest first (reverse name order)."""

    def __init__(self) -> None:
        self.counts: Dict[SiteHost, int] = {}
        self.newest: Optional[Tuple[str, str]] = None
        self.invalid: List[Tuple[str, str]] = []
        self.entries = 0

    def add(self, name: str, values: Optional[Mapping[str, str]]) -> None:
        """One entry; ``values`` None if it could not be read (it counts for nothing)."""
        self.entries += 1
        if values is None:
            return
        missing = missing_key(values)
        if missing is not None:
            self.invalid.append((name, missing))
            return
        key = (values["Site"], values["SubmitHost"])
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.newest is None:
            self.newest = (name, values["Site"])

    def summary(self, mtime_ns: int, checked_ns: int = 0) -> DaySummary:
        return DaySummary(mtime_ns, self.entries, checked_ns, dict(self.counts), self.newest,
                          tuple(self.invalid))


def after_archive(old: Optional[DaySummary], before_ns: Optional[int], after_ns: int,
                  existed: bool, name: str, values: Mapping[str, str]
                  ) -> Optional[DaySummary]:
    """The summary after the factory archived record ``name`` (header ``values``).

    ``before_ns``/``after_ns``: the day directory's mtime just before and after the
    write (``before_ns`` None: the directory did not exist); ``existed``: the name was
    already there (a retried write). None when ``old`` did not match the directory
    before the write: nothing trustworthy can be added to it, apel-sync rebuilds it.
    The result is never "checked" (a change by hand in the same tick may hide in it).
    """
    if before_ns is None:
        old = DaySummary(mtime_ns=0, entries=0)
    elif old is None or old.mtime_ns != before_ns:
        return None
    if existed:
        return replace(old, mtime_ns=after_ns, checked_ns=0)
    missing = missing_key(values)
    counts = dict(old.counts)
    newest, invalid = old.newest, old.invalid
    if missing is not None:
        invalid = tuple(sorted(invalid + ((name, missing),), reverse=True))
    else:
        key = (values["Site"], values["SubmitHost"])
        counts[key] = counts.get(key, 0) + 1
        if newest is None or name > newest[0]:
            newest = (name, values["Site"])
    return DaySummary(after_ns, old.entries + 1, 0, counts, newest, invalid)


def verdict(summary: Optional[DaySummary], mtime_ns: Optional[int]) -> str:
    """TRUSTED, COUNT (trust only if the entries still number ``summary.entries``) or
    STALE, for the day directory's current ``mtime_ns`` (None: it is gone)."""
    if summary is None or mtime_ns is None or summary.mtime_ns != mtime_ns:
        return STALE
    if summary.checked_ns >= mtime_ns + RACY_NS:
        return TRUSTED
    return COUNT


def checked(summary: DaySummary, now_ns: int) -> Optional[DaySummary]:
    """``summary`` marked as seen matching at ``now_ns`` (taken before the directory was
    looked at), or None if that is still too close to its mtime to be worth saving."""
    if now_ns < summary.mtime_ns + RACY_NS:
        return None
    return replace(summary, checked_ns=now_ns)


def month_site(summaries: Iterable[DaySummary]) -> Optional[str]:
    """The Site of the month's newest usable record (summaries of days newest first)."""
    for summary in summaries:
        if summary.newest is not None:
            return summary.newest[1]
    return None


def needs_messages(summary: DaySummary, site: Optional[str]) -> bool:
    """True if the day has records of another Site than the month's: their names (for the
    "Site changes" messages) are not in the summary, so the day must be read again."""
    return any(s != site for s in summary.sites())


def add_counts(totals: Dict[str, int], summary: DaySummary, site: str) -> None:
    """Add the day's records of ``site`` to ``totals`` (SubmitHost -> number of jobs)."""
    for (s, host), number in summary.counts.items():
        if s == site:
            totals[host] = totals.get(host, 0) + number


# --- JSON ---------------------------------------------------------------------------------

def to_json(summary: DaySummary) -> str:
    data = {"format": FORMAT, "mtime_ns": summary.mtime_ns, "entries": summary.entries,
            "checked_ns": summary.checked_ns,
            "counts": [[s, h, n] for (s, h), n in sorted(summary.counts.items())],
            "newest": list(summary.newest) if summary.newest else None,
            "invalid": [list(item) for item in summary.invalid]}
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


def _ints(data: Mapping[str, Any], *keys: str) -> bool:
    return all(type(data.get(k)) is int and data[k] >= 0 for k in keys)


def _strs(item: Any, n: int) -> bool:
    return isinstance(item, list) and len(item) == n and all(type(x) is str for x in item)


def from_json(text: Optional[str]) -> Optional[DaySummary]:
    """The summary in ``text``, or None if absent, of another format, or malformed."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or \
            not _ints(data, "mtime_ns", "entries", "checked_ns"):
        return None
    counts, newest, invalid = data.get("counts"), data.get("newest"), data.get("invalid")
    if not isinstance(counts, list) or not isinstance(invalid, list) or \
            not all(isinstance(c, list) and len(c) == 3 and _strs(c[:2], 2)
                    and type(c[2]) is int and c[2] > 0 for c in counts) or \
            not all(_strs(item, 2) for item in invalid) or \
            not (newest is None or _strs(newest, 2)):
        return None
    return DaySummary(data["mtime_ns"], data["entries"], data["checked_ns"],
                      {(s, h): n for s, h, n in counts},
                      tuple(newest) if newest else None,    # type: ignore[arg-type]
                      tuple((name, key) for name, key in invalid))
