"""MJF/JOBOUTPUTS answers (SPEC §5.1, checklist rows 93, 94)."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vac.core.mjfhttp import check_put, mjf_get, valid_name

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
    d = check_put("/joboutputs/shutdown_message", 11, {}, 100, 1000)
    assert (d.status, d.name) == (201, "shutdown_message")
    assert check_put("/joboutputs/vm-heartbeat", 0, {}, 100, 1000).status == 201


@pytest.mark.parametrize("path", [
    "/joboutputs/", "/joboutputs", "/joboutputs/a/b", "/joboutputs/../slots/x",
    "/joboutputs/..", "/joboutputs/.hidden", "/joboutputs/a..b", "/jobfeatures/x",
    "/joboutputs/" + "n" * 129, "/joboutputs/sp ace", "/joboutputs/%2F"])
def test_put_bad_paths_403(path):
    assert check_put(path, 1, {}, 100, 1000).status == 403


def test_put_size_limits():
    assert check_put("/joboutputs/f", None, {}, 100, 1000).status == 403
    assert check_put("/joboutputs/f", -1, {}, 100, 1000).status == 403
    assert check_put("/joboutputs/f", 101, {}, 100, 1000).status == 403
    assert check_put("/joboutputs/f", 100, {"a": 950}, 100, 1000).status == 403
    # replacing a file does not count its old size
    assert check_put("/joboutputs/a", 100, {"a": 950}, 100, 1000).status == 201


def test_name_rules():
    assert valid_name("heartbeat") and valid_name("log.tar.gz") and valid_name("n" * 128)
    assert not any(valid_name(n) for n in ("", ".", "..", ".x", "a/b", "a..b", "n" * 129))



@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="/.%\\\x00 ajo_bup-t", max_size=40))
def test_accepted_put_names_stay_inside_joboutputs(tail):
    d = check_put("/joboutputs/" + tail, 1, {}, 100, 1000)
    if d.status == 201:
        assert valid_name(d.name)
        joined = posixpath.normpath(posixpath.join("/m/joboutputs", d.name))
        assert posixpath.dirname(joined) == "/m/joboutputs" and not d.name.startswith(".")
    r = mjf_get("/jobfeatures/" + tail, FEATURES)
    assert r.status in (200, 404)
