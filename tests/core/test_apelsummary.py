"""Day summaries of the APEL archive (pure rules): building, archive-time updates, trust."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vac.core import apelsummary as sm

A = {"Site": "UKI-EXAMPLE", "SubmitHost": "vac01/f1"}
B = {"Site": "UKI-EXAMPLE", "SubmitHost": "vac01/f2"}
OLD = {"Site": "OLD-NAME", "SubmitHost": "vac01/f1"}
T = 1_700_000_000 * 10 ** 9


def same_content(a: sm.DaySummary, b: sm.DaySummary) -> bool:
    """Equal counts, newest, invalid records and entries (times aside)."""
    return (dict(a.counts), a.newest, a.invalid, a.entries) == \
        (dict(b.counts), b.newest, b.invalid, b.entries)


def build(records, mtime=T):
    """records: name -> values (any order); fed newest first, as apel-sync reads them."""
    b = sm.Builder()
    for name in sorted(records, reverse=True):
        b.add(name, records[name])
    return b.summary(mtime)


def test_builder_counts_site_host_pairs_and_lists_invalid_records_newest_first():
    s = build({"10": A, "11": B, "12": {"Site": "UKI-EXAMPLE"}, "13": {"SubmitHost": "h"},
               "09": OLD, "14": None})
    assert s.counts == {("UKI-EXAMPLE", "vac01/f1"): 1, ("UKI-EXAMPLE", "vac01/f2"): 1,
                        ("OLD-NAME", "vac01/f1"): 1}
    assert s.invalid == (("13", "Site"), ("12", "SubmitHost"))
    assert s.newest == ("11", "UKI-EXAMPLE") and s.entries == 6
    assert sm.needs_messages(s, "UKI-EXAMPLE") and not sm.needs_messages(build({"1": A}),
                                                                           "UKI-EXAMPLE")


ops = st.lists(st.tuples(st.sampled_from(["%02d" % i for i in range(12)]),
                         st.sampled_from([A, B, OLD, {"Site": "X"}])), max_size=30)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_archive_time_updates_equal_a_build_even_with_retried_writes(writes):
    """Each write (a name may repeat: a retry after a crash, same record) applied to the
    summary the factory keeps equals a summary built from the final directory."""
    summary, files, mtime = None, {}, None
    for name, values in writes:
        values = files.get(name, values)           # a retry rewrites the same record
        after = (mtime or T) + 1
        summary = sm.after_archive(summary, mtime, after, name in files, name, values)
        files[name], mtime = values, after
        assert summary is not None and summary.checked_ns == 0
    if files:
        assert same_content(summary, build(files))


def test_archive_time_update_refuses_a_summary_that_did_not_match_before():
    s = build({"10": A})
    assert sm.after_archive(s, T + 5, T + 6, False, "11", A) is None      # mtime moved
    assert sm.after_archive(None, T, T + 6, False, "11", A) is None       # no summary
    fresh = sm.after_archive(s, None, T + 6, False, "11", A)              # new directory
    assert fresh.entries == 1 and fresh.counts == {("UKI-EXAMPLE", "vac01/f1"): 1}


def test_verdict_stale_racy_and_trusted():
    s = build({"10": A}, mtime=T)
    assert sm.verdict(s, T + 1) == sm.STALE and sm.verdict(s, None) == sm.STALE
    assert sm.verdict(None, T) == sm.STALE
    assert sm.verdict(s, T) == sm.COUNT                   # never checked: count entries
    assert sm.checked(s, T + sm.RACY_NS - 1) is None      # too close to its mtime
    ok = sm.checked(s, T + sm.RACY_NS)
    assert sm.verdict(ok, T) == sm.TRUSTED


def test_json_round_trip_and_anything_else_is_no_summary():
    s = sm.checked(build({"10": A, "11": {"Site": "S"}, "12": OLD}), T + 3 * sm.RACY_NS)
    assert sm.from_json(sm.to_json(s)) == s
    good = sm.to_json(s)
    for bad in (None, "", "{", "[]", good.replace('"format":1', '"format":2'),
                good.replace('"entries":3', '"entries":-1'),
                good.replace('"entries":3', '"entries":"3"'),
                '{"format":1,"mtime_ns":1,"entries":1,"checked_ns":0,"counts":[["a","b",0]],'
                '"newest":null,"invalid":[]}',
                '{"format":1,"mtime_ns":1,"entries":1,"checked_ns":0,"counts":[],'
                '"newest":["x"],"invalid":[]}'):
        assert sm.from_json(bad) is None, bad


@pytest.mark.parametrize("days,site", [([{}, {"3": A}, {"9": OLD}], "UKI-EXAMPLE"),
                                       ([{"1": {"Site": "S"}}], None)])
def test_month_site_is_the_newest_usable_records(days, site):
    assert sm.month_site(build(d) for d in days) == site
