"""Vacuum pipe fetch and cache against a real local HTTPS server (SPEC §10.2, rows 21, 27; B20)."""

from __future__ import annotations

import functools
import json
import logging
import os

import pytest

from tests.services.https_server import Route, https, pki  # noqa: F401 (fixtures)
from vac.adapters.fetch import fetch
from vac.services.configload import load_config
from vac.services.pipecache import load_pipe

PIPE = {"cache_seconds": 600,
        "machinetypes": [{"suffix": "prod", "root_image": "https://vo.example.org/vm.iso",
                          "target_share": 1, "fizzle_seconds": 300}]}


@pytest.fixture
def server(https):
    https.routes["/vo.pipe"] = Route(json.dumps(PIPE).encode())
    return https


@pytest.fixture
def trusted_fetch(pki):
    return functools.partial(fetch, ca_file=pki.ca_file)


def _load(paths, server, fetcher, refresh=True, now=None):
    return load_pipe(paths, "vo", server.base + "/vo.pipe", refresh=refresh, now=now,
                     fetch=fetcher)


def test_first_read_fetches_and_saves_cache(paths, server, trusted_fetch):
    assert _load(paths, server, trusted_fetch) == PIPE
    cache = paths.pipe_cache_file("vo")
    assert json.load(open(cache)) == PIPE
    assert os.stat(cache).st_mode & 0o777 == 0o644
    assert server.requests[0][1]["User-Agent"].startswith("Vac ")


def test_within_cache_seconds_no_fetch_then_refetch_after_expiry(paths, server, trusted_fetch):
    _load(paths, server, trusted_fetch)
    saved = os.stat(paths.pipe_cache_file("vo")).st_mtime
    assert _load(paths, server, trusted_fetch, now=saved + 599) == PIPE
    assert server.count("/vo.pipe") == 1
    changed = dict(PIPE, cache_seconds=60)
    server.routes["/vo.pipe"] = Route(json.dumps(changed).encode())
    assert _load(paths, server, trusted_fetch, now=saved + 600) == changed
    assert server.count("/vo.pipe") == 2


def test_cache_seconds_zero_always_fetches(paths, server, trusted_fetch):
    server.routes["/vo.pipe"] = Route(json.dumps(dict(PIPE, cache_seconds=0)).encode())
    _load(paths, server, trusted_fetch)
    _load(paths, server, trusted_fetch)
    assert server.count("/vo.pipe") == 2


@pytest.mark.parametrize("failure", [Route(b"gone", status=500), Route(b"{not json"),
                                     Route(b"[1, 2]")])
def test_failed_refresh_after_expiry_keeps_stale_copy_b20(paths, server, trusted_fetch,
                                                          caplog, failure):
    _load(paths, server, trusted_fetch)
    saved = os.stat(paths.pipe_cache_file("vo")).st_mtime
    server.routes["/vo.pipe"] = failure
    with caplog.at_level(logging.WARNING, logger="vac.services.pipecache"):
        assert _load(paths, server, trusted_fetch, now=saved + 3600) == PIPE
    assert "keep using the stale cached copy" in caplog.text
    assert json.load(open(paths.pipe_cache_file("vo"))) == PIPE
    assert os.stat(paths.pipe_cache_file("vo")).st_mtime == saved   # retried next cycle


def test_failed_first_fetch_gives_nothing(paths, server, trusted_fetch, caplog):
    server.routes["/vo.pipe"] = Route(status=404)
    with caplog.at_level(logging.ERROR, logger="vac.services.pipecache"):
        assert _load(paths, server, trusted_fetch) is None
    assert "no machinetypes created" in caplog.text
    assert not os.path.exists(paths.pipe_cache_file("vo"))


def test_untrusted_server_not_used(paths, server):
    assert _load(paths, server, fetch) is None     # system CA bundle does not trust it


def test_responder_uses_cache_only(paths, server, trusted_fetch):
    assert _load(paths, server, trusted_fetch, refresh=False) is None
    _load(paths, server, trusted_fetch)
    saved = os.stat(paths.pipe_cache_file("vo")).st_mtime
    assert _load(paths, server, trusted_fetch, refresh=False, now=saved + 10 ** 6) == PIPE
    assert server.count("/vo.pipe") == 1


def test_corrupt_cache_is_refetched(paths, server, trusted_fetch):
    os.makedirs(paths.pipescache)
    with open(paths.pipe_cache_file("vo"), "w") as f:
        f.write("garbage")
    assert _load(paths, server, trusted_fetch) == PIPE


def test_not_modified_refreshes_cache_time(paths, server, trusted_fetch):
    server.routes["/vo.pipe"] = Route(json.dumps(PIPE).encode(), last_modified=1_000_000)
    _load(paths, server, trusted_fetch)
    cache = paths.pipe_cache_file("vo")
    os.utime(cache, (2_000_000, 2_000_000))
    assert _load(paths, server, trusted_fetch, now=2_000_000 + 700) == PIPE
    assert server.count("/vo.pipe") == 2
    assert os.stat(cache).st_mtime > 2_000_000


def test_non_http_urls_never_fetched(paths):
    def refuse(*args, **kw):
        raise AssertionError("must not fetch")
    assert load_pipe(paths, "vo", "file:///x.pipe", refresh=True, fetch=refuse) is None


def _write_config(paths, url):
    os.makedirs(paths.etc_vac_d)
    with open(paths.etc_vac_conf, "w") as f:
        f.write("[settings]\nvac_space = vac01.example.com\n"
                f"[vacuum_pipe vo]\nvacuum_pipe_url = {url}\ntarget_share = 4\n")


def test_load_config_modes(paths, server, trusted_fetch):
    _write_config(paths, server.base + "/vo.pipe")
    kw = dict(hostname="f1.example.com", processor_count=4, fetch=trusted_fetch)
    assert load_config(paths, pipes="none", **kw).machinetypes == {}
    assert load_config(paths, pipes="cache", **kw).machinetypes == {}
    assert server.requests == []
    cfg = load_config(paths, pipes="refresh", **kw)
    assert cfg.machinetypes["vo-prod"].target_share == 4.0
    assert cfg.machinetypes["vo-prod"].fizzle_seconds == 300
    assert str(cfg.origin("machinetype vo-prod", "fizzle_seconds")) == server.base + "/vo.pipe"
    assert "vo-prod" in load_config(paths, pipes="cache", **kw).machinetypes
    with pytest.raises(ValueError):
        load_config(paths, pipes="sometimes", **kw)


def test_unsafe_file_names_from_served_pipe_rejected(paths, server, trusted_fetch):
    entry = dict(PIPE["machinetypes"][0], heartbeat_file="../../etc/passwd",
                 user_data="../templates/user_data", root_image="/etc/shadow",
                 user_data_file_hostcert="/etc/grid-security/hostcert.pem",
                 cvmfs_repositories="atlas.cern.ch/../x", machinetype_path="/")
    server.routes["/vo.pipe"] = Route(json.dumps({"machinetypes": [entry]}).encode())
    _write_config(paths, server.base + "/vo.pipe")
    cfg = load_config(paths, hostname="f1.example.com", processor_count=4, pipes="refresh",
                      fetch=trusted_fetch)
    assert "vo-prod" not in cfg.machinetypes      # its root_image was rejected
    for key in ("heartbeat_file", "user_data", "root_image", "user_data_file_hostcert",
                "cvmfs_repositories", "machinetype_path"):
        assert any(f"option {key} from vacuum pipe" in w for w in cfg.warnings), key
