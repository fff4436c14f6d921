"""MJF/JOBOUTPUTS answers (SPEC §5.1, checklist rows 93, 94)."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vac.core.mjfhttp import (JoboutputsLimits, JoboutputsUsage, check_bearer, check_put,
                              mjf_get, valid_name)

LIMITS = JoboutputsLimits(max_file_bytes=100, max_total_bytes=1000, max_files=3)
EMPTY = JoboutputsUsage({}, 0)


def stored(**sizes):
    return JoboutputsUsage(sizes, sum(sizes.values()))


FEATURES = {"machinefeatures": {"total_cpu": b"2", "hs06": b"20.0", "shutdowntime": b"17"},
            "jobfeatures": {"allocated_cpu": b"2\n", "wall_limit_secs": b"3600"}}


def test_listing_is_the_original_html(golden):
    for path in ("/machinefeatures", "/machinefeatures/", "//machinefeatures//"):
        r = mjf_get(path, FEATURES)
        assert r.status == 200 and r.content_type == "text/html"
    golden.check(mjf_get("/machinefeatures/", FEATURES).body, "mjf/machinefeatures.html")
    assert mjf_get("/jobfeatures", FEATURES).body == (
        b'<html><body><ul><li><a href="allocated_cpu">allocated_cpu</a></li>'
        b'<li><a href="wall_limit_secs">wall_limit_secs</a></li></ul></body></html>')


def test_values_and_missing_keys():
    r = mjf_get("/jobfeatures/allocated_cpu", FEATURES)
    assert (r.status, r.content_type, r.body) == (200, "text/plain", b"2\n")
    assert mjf_get("/machinefeatures/hs06", FEATURES).body == b"20.0"
    assert mjf_get("/machinefeatures/max_swap_bytes", FEATURES).status == 404
    assert mjf_get("/jobfeatures/", {}).body == b"<html><body><ul></ul></body></html>"


@pytest.mark.parametrize("path", [
    "/", "/joboutputs", "/joboutputs/heartbeat", "/machinefeatures/a/b",
    "/machinefeatures/../jobfeatures/allocated_cpu", "/jobfeatures/.hidden",
    "/other/x", "/machinefeatures/%2e%2e"])
def test_get_refusals_are_404(path):
    assert (mjf_get(path, FEATURES).status, mjf_get(path, FEATURES).body) == (404, b"")


def test_put_accepted():
    d = check_put("/joboutputs/shutdown_message", 11, EMPTY, LIMITS)
    assert (d.status, d.name, d.charge, d.new_file) == (201, "shutdown_message", 11, True)
    assert check_put("/joboutputs/vm-heartbeat", 0, EMPTY, LIMITS).status == 201


@pytest.mark.parametrize("path", [
    "/joboutputs/", "/joboutputs", "/joboutputs/a/b", "/joboutputs/../slots/x",
    "/joboutputs/..", "/joboutputs/.hidden", "/joboutputs/a..b", "/jobfeatures/x",
    "/joboutputs/" + "n" * 129, "/joboutputs/sp ace", "/joboutputs/%2F"])
def test_put_bad_paths_403(path):
    assert check_put(path, 1, EMPTY, LIMITS).status == 403


def test_put_size_limits():
    assert check_put("/joboutputs/f", None, EMPTY, LIMITS).status == 403
    assert check_put("/joboutputs/f", -1, EMPTY, LIMITS).status == 403
    assert check_put("/joboutputs/f", 101, EMPTY, LIMITS).status == 403
    assert check_put("/joboutputs/f", 100, stored(a=950), LIMITS).status == 403
    # replacing a file is charged only what it adds
    d = check_put("/joboutputs/a", 100, stored(a=950), LIMITS)
    assert (d.status, d.charge, d.new_file) == (201, 0, False)
    assert check_put("/joboutputs/a", 100, stored(a=40), LIMITS).charge == 60


def test_uploads_in_progress_count():
    busy = JoboutputsUsage({"a": 100}, 100, uploading={"b"}, reserved_bytes=850,
                           reserved_files=1)
    assert check_put("/joboutputs/c", 50, busy, LIMITS).status == 201
    assert check_put("/joboutputs/c", 51, busy, LIMITS).status == 403
    assert check_put("/joboutputs/b", 1, busy, LIMITS).status == 409   # one upload per name
    assert check_put("/joboutputs/a", 100, busy, LIMITS).status == 201  # no growth


def test_file_count_limit():
    full = stored(a=1, b=1, c=1)
    assert check_put("/joboutputs/d", 1, full, LIMITS).status == 403
    assert check_put("/joboutputs/a", 1, full, LIMITS).status == 201    # a replacement
    two = JoboutputsUsage({"a": 1, "b": 1}, 2, uploading={"x"}, reserved_bytes=1,
                          reserved_files=1)
    assert check_put("/joboutputs/d", 1, two, LIMITS).status == 403


def test_name_rules():
    assert valid_name("heartbeat") and valid_name("log.tar.gz") and valid_name("n" * 128)
    assert not any(valid_name(n) for n in ("", ".", "..", ".x", "a/b", "a..b", "n" * 129))



@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="/.%\\\x00 ajo_bup-t", max_size=40))
def test_accepted_put_names_stay_inside_joboutputs(tail):
    d = check_put("/joboutputs/" + tail, 1, EMPTY, LIMITS)
    if d.status == 201:
        assert valid_name(d.name)
        joined = posixpath.normpath(posixpath.join("/m/joboutputs", d.name))
        assert posixpath.dirname(joined) == "/m/joboutputs" and not d.name.startswith(".")
    r = mjf_get("/jobfeatures/" + tail, FEATURES)
    assert r.status in (200, 404)


def test_bearer_token_check():
    assert check_bearer("Bearer s3cret", "s3cret") is None
    assert check_bearer("  bearer   s3cret ", "s3cret") is None
    for header in (None, "", "Bearer", "Bearer ", "Basic czNjcmV0", "s3cret"):
        assert check_bearer(header, "s3cret").status == 401, header
    for header in ("Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET"):
        assert check_bearer(header, "s3cret").status == 403, header
    assert check_bearer("Bearer anything", None).status == 403    # no token: never accepted
    assert check_bearer("Bearer ", "").status == 401
