"""Per-machine tokens and WLCG token files: made at creation, served only to the machine,
required on JOBOUTPUTS PUTs with ``joboutputs_require_token`` (factory cycles, then the
metadata and MJF roles over real sockets, then from real slot addresses in a netns).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import stat

import pytest

from tests.services.ctxhelpers import (in_thread, loopback_resolver, make_config, make_machine,
                                       netns_pair, request, running_role)
from tests.services.factorykit import Rig
from vac.adapters import contextfiles, statefs
from vac.adapters.atomicfile import read_text
from vac.core.configtypes import Machinetype
from vac.services import metadata_httpd, mjf_httpd

TEMPLATE = "#!/bin/sh\nTOKEN='##user_data_machine_token##'\nWLCG='##user_data_option_wlcg_token##'\n"
WLCG = "eyJhbGciOiJFUzI1NiJ9.payload.signature"


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def token_rig(paths, machinetype: str = "") -> Rig:
    rig = Rig(paths, machinetype="user_data = tok.user_data\n" + machinetype)
    files = os.path.join(paths.machinetype_dir("lhcb"), "files")
    os.makedirs(files)
    with open(os.path.join(files, "tok.user_data"), "w") as f:
        f.write(TEMPLATE)
    return rig


def write_token_file(paths, text: str = WLCG + "\n", file_mode: int = 0o600) -> str:
    path = paths.under_root("/etc/vac/wlcg.token")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, file_mode)
    return path


# --- creation -------------------------------------------------------------------------

def test_each_machine_gets_its_own_secret_readable_only_by_root(paths):
    rig = token_rig(paths, "joboutputs_require_token = yes\n")
    rig.cycle()
    rig.cycle()
    dirs = [statefs.read_slot(paths, "f1.example.com", i).machine_dir for i in (0, 1)]
    tokens = [contextfiles.read_machine_token(d) for d in dirs]
    assert tokens[0] != tokens[1] and all(len(t) >= 43 for t in tokens)
    for mdir, token in zip(dirs, tokens):
        assert mode(os.path.join(mdir, contextfiles.MACHINE_TOKEN)) == 0o600
        assert mode(os.path.join(mdir, "user_data")) == 0o600      # it holds the token
        assert f"TOKEN='{token}'" in read_text(os.path.join(mdir, "user_data"))
        assert contextfiles.joboutputs_token_required(mdir)


def test_token_not_required_unless_the_machinetype_says_so(paths):
    rig = token_rig(paths)
    rig.cycle()
    mdir = statefs.read_slot(paths, "f1.example.com", 0).machine_dir
    assert contextfiles.read_machine_token(mdir) and not contextfiles.joboutputs_token_required(mdir)
    assert "WLCG=''" in read_text(os.path.join(mdir, "user_data"))


def test_a_group_readable_wlcg_token_file_is_refused(paths):
    path = write_token_file(paths, file_mode=0o640)
    rig = token_rig(paths, "wlcg_token_file = /etc/vac/wlcg.token\n")
    assert rig.cycle().created == 0
    error = read_text(paths.factory_error)
    assert path in error and "readable or writable by group or others (mode 0640)" in error
    os.chmod(path, 0o600)
    assert rig.cycle().created == 1
    mdir = statefs.read_slot(paths, "f1.example.com", 0).machine_dir
    assert f"WLCG='{WLCG}'" in read_text(os.path.join(mdir, "user_data"))


# --- metadata and MJF over real sockets ---------------------------------------------------

@pytest.fixture
def machines(paths):
    dirs = {5: make_machine(paths, 5), 6: make_machine(paths, 6, machinetype="atlas")}
    contextfiles.write_machine_token(dirs[5], "token-of-five", required_for_joboutputs=True)
    contextfiles.write_machine_token(dirs[6], "token-of-six", required_for_joboutputs=False)
    return dirs


def test_metadata_gives_each_machine_only_its_own_secrets(paths, machines):
    token_file = write_token_file(paths)
    cfg = dataclasses.replace(make_config(), machinetypes={
        "lhcb-prod": Machinetype(name="lhcb-prod", wlcg_token_file="/etc/vac/wlcg.token")})
    with running_role(metadata_httpd.run_role, paths, cfg,
                      resolve=loopback_resolver(paths)) as addr:
        def get(path, source="127.0.0.5"):
            status, _, body = request(addr, "GET", path, source=source)
            return status, body
        assert get("/vac/machine_token") == (200, b"token-of-five")
        assert get("/vac/machine_token", "127.0.0.6") == (200, b"token-of-six")
        assert get("/vac/machine_token", "127.0.0.1")[0] == 404          # not a machine
        assert get("/vac/") == (200, b"machine_token\nwlcg_token\n")
        assert get("/vac/wlcg_token") == (200, WLCG.encode())
        assert get("/vac/wlcg_token", "127.0.0.6")[0] == 404             # atlas has none
        write_token_file(paths, "refreshed-token\n")                     # e.g. by cron
        assert get("/vac/wlcg_token") == (200, b"refreshed-token")
        os.chmod(token_file, 0o644)
        assert get("/vac/wlcg_token")[0] == 404
        assert b"token" not in get("/latest/meta-data.json")[1]
        assert b"token" not in get("/openstack/latest/meta_data.json")[1]


def test_joboutputs_put_needs_the_machines_own_token(paths, machines):
    with running_role(mjf_httpd.run_role, paths, make_config(),
                      resolve=loopback_resolver(paths)) as addr:
        def put(headers, source="127.0.0.5"):
            return request(addr, "PUT", "/joboutputs/heartbeat", source=source, body=b"1",
                           headers=headers)[0]
        status, reply_headers, _ = request(addr, "PUT", "/joboutputs/heartbeat", body=b"1")
        assert status == 401 and reply_headers["WWW-Authenticate"].startswith("Bearer ")
        assert put({"Authorization": "Basic dG9rZW4="}) == 401
        assert put({"Authorization": "Bearer token-of-six"}) == 403      # another's token
        assert put({"Authorization": "Bearer token-of-fiv"}) == 403
        assert not os.path.exists(os.path.join(machines[5], "joboutputs", "heartbeat"))
        assert put({"authorization": "bearer token-of-five"}) == 201     # names are caseless
        assert put({}, source="127.0.0.6") == 201                         # not required there
        assert put({"Authorization": "Bearer token-of-five"}, source="127.0.0.6") == 201
        assert put({"Authorization": "Bearer token-of-five"}, source="127.0.0.1") == 403

        # a large upload without the token is refused on its head: no 100 Continue, no body
        with socket.create_connection(addr, timeout=10, source_address=("127.0.0.5", 0)) as s:
            s.sendall(b"PUT /joboutputs/big HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000000"
                      b"\r\nExpect: 100-continue\r\n\r\n" % addr[0].encode())
            assert s.recv(100).startswith(b"HTTP/1.1 401 ")
        assert os.listdir(os.path.join(machines[5], "joboutputs")) == ["heartbeat"]


@pytest.mark.integration
def test_secrets_follow_the_real_slot_address(paths, machines):
    with netns_pair("tok") as (srv, cli):
        with running_role(metadata_httpd.run_role, paths, make_config("169.254.169.254", 80),
                          netns=srv) as md, \
                running_role(mjf_httpd.run_role, paths, make_config("169.254.169.253", 80),
                             netns=srv) as mjf:
            def token(src):
                return request(md, "GET", "/vac/machine_token", source=src)[2]
            assert in_thread(lambda: token("169.254.169.6"), cli) == b"token-of-six"
            assert in_thread(lambda: token("169.254.169.5"), cli) == b"token-of-five"
            assert in_thread(lambda: request(md, "GET", "/vac/machine_token",
                                             source="169.254.169.253"), srv)[0] == 404
            assert in_thread(lambda: request(
                mjf, "PUT", "/joboutputs/shutdown_message", source="169.254.169.5",
                body=b"200 Success", headers={"Authorization": "Bearer token-of-five"}),
                cli)[0] == 201
