"""make_user_data and make_config_drive (SPEC §5.2, §5.3; checklist rows 95-100)."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import time

import pytest

from tests.adapters.test_credentials import _write_user_cert
from tests.services.https_server import Route, https, pki  # noqa: F401 (fixtures)
from vac.core.configtypes import Config, Machinetype, Settings
from vac.core.userdata import UserDataError
from vac.services.configdrive import build_config_drive, make_config_drive
from vac.services.userdata import make_user_data, read_wlcg_token

NOW = 1_700_000_000
TEMPLATE = (b"host=##user_data_machine_hostname## uuid=##user_data_uuid## "
            b"url=##user_data_url## cert=##user_data_option_hostcert## "
            b"deprecated=##user_data_file_hostcert## squid=##user_data_option_cvmfs_proxy## "
            b"proxy=##user_data_option_x509_proxy## gone=##user_data_option_nothing##")


def _cfg() -> Config:
    return Config(settings=Settings(vac_space="vac01.example.com",
                                    factory_hostname="factory1.example.com"))


def _mt(**kw) -> Machinetype:
    base = dict(name="lhcb", machine_model="cernvm4", user_data="template.user_data",
                user_data_options={"cvmfs_proxy": "http://squid:3128"},
                user_data_files={"hostcert": "hostcert.pem"})
    base.update(kw)
    return Machinetype(**base)


@pytest.fixture
def mtdir(paths):
    files = os.path.join(paths.machinetype_dir("lhcb"), "files")
    os.makedirs(files)
    with open(os.path.join(files, "template.user_data"), "wb") as f:
        f.write(TEMPLATE)
    with open(os.path.join(files, "hostcert.pem"), "w") as f:
        f.write("HOSTCERT")
    return paths.machinetype_dir("lhcb")


def _make(paths, mt, **kw) -> bytes:
    args = dict(machine_name="factory1-05.example.com", uuid="the-uuid",
                shutdown_time=NOW + 3600, now=NOW)
    args.update(kw)
    return make_user_data(_cfg(), paths, mt, **args)


def test_files_directory_template(paths, mtdir):
    out = _make(paths, _mt())
    assert out == (b"host=factory1-05.example.com uuid=the-uuid url= cert=HOSTCERT "
                   b"deprecated=HOSTCERT squid=http://squid:3128 proxy= gone=")


def test_absolute_template_and_proxy(paths, mtdir):
    _write_user_cert(mtdir)
    os.makedirs(paths.under_root("/srv"))
    shutil.copy(os.path.join(mtdir, "files", "template.user_data"), paths.under_root("/srv/t"))
    out = _make(paths, _mt(user_data="/srv/t", user_data_proxy=True))
    assert b"proxy=-----BEGIN CERTIFICATE-----" in out
    assert out.count(b"BEGIN CERTIFICATE") == 2 and b"BEGIN RSA PRIVATE KEY" in out


def test_failures_are_one_clear_line(paths, mtdir):
    with pytest.raises(UserDataError, match="Failed to read user_data template .*missing"):
        _make(paths, _mt(user_data="missing"))
    with pytest.raises(UserDataError, match="user_data_file_hostcert"):
        _make(paths, _mt(user_data_files={"hostcert": "nope.pem"}))
    with pytest.raises(UserDataError, match="Failed to make proxy for machinetype lhcb"):
        _make(paths, _mt(user_data_proxy=True))
    key = os.path.join(mtdir, "files", "hostkey.pem")
    with open(key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\n")
    os.chmod(key, 0o644)
    with pytest.raises(UserDataError, match="readable by group or others"):
        _make(paths, _mt(user_data_files={"hostkey": "hostkey.pem"}))
    os.chmod(key, 0o600)
    assert b"cert=-----BEGIN PRIVATE KEY" in _make(paths, _mt(user_data_files={
        "hostcert": "hostkey.pem"}))


@pytest.fixture
def template_server():
    state = {"body": TEMPLATE, "up": True}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, state
    server.shutdown()
    server.server_close()


def test_url_template_fetched_cached_and_url_filled(paths, mtdir, template_server):
    server, _ = template_server
    url = f"http://127.0.0.1:{server.server_address[1]}/user_data"
    out = _make(paths, _mt(user_data=url))
    assert f"url={url} ".encode() in out
    server.shutdown()
    server.server_close()
    assert _make(paths, _mt(user_data=url)) == out      # served from the cache


def test_url_template_unreachable_without_cache(paths, mtdir):
    with pytest.raises(UserDataError, match="Failed to fetch user_data template"):
        _make(paths, _mt(user_data="http://127.0.0.1:9/user_data"))


def test_config_drive_iso(paths, mtdir, tmp_path):
    if not shutil.which("genisoimage") or not shutil.which("isoinfo"):
        pytest.skip("genisoimage/isoinfo not installed")
    iso = str(tmp_path / "config.iso")
    make_config_drive(_cfg(), paths, _mt(config_drive=True), machine_name="factory1-05.x",
                      uuid="the-uuid", ordinal=5, user_data=b"#!/bin/sh\n", dest_path=iso)
    info = subprocess.run(["isoinfo", "-d", "-i", iso], capture_output=True, text=True).stdout
    assert "Volume id: config-2" in info
    listing = subprocess.run(["isoinfo", "-R", "-f", "-i", iso], capture_output=True,
                             text=True).stdout
    assert "/openstack/latest/meta_data.json" in listing
    assert "/openstack/latest/user_data" in listing
    ud = subprocess.run(["isoinfo", "-R", "-i", iso, "-x", "/openstack/latest/user_data"],
                        capture_output=True).stdout
    assert ud == b"#!/bin/sh\n"


def test_factory_hook_builds_the_iso_in_the_machine_dir(paths, mtdir):
    if not shutil.which("genisoimage"):
        pytest.skip("genisoimage not installed")
    mdir = paths.machine_dir(NOW, "lhcb", "factory1-05.example.com")
    os.makedirs(os.path.join(mdir, "jobfeatures"))
    with open(os.path.join(mdir, "jobfeatures", "job_id"), "w") as f:
        f.write("the-uuid")
    iso = build_config_drive(_cfg(), paths, _mt(config_drive=True),
                             machine_name="factory1-05.example.com", machine_dir=mdir)
    assert iso == os.path.join(mdir, "config-drive.iso") and os.path.getsize(iso) > 0
    assert os.stat(iso).st_mode & 0o777 == 0o600     # its user_data may hold secrets
    with pytest.raises(UserDataError, match="is not a slot of factory1.example.com"):
        build_config_drive(_cfg(), paths, _mt(), machine_name="other-01.example.org",
                           machine_dir=mdir)



def test_https_template_verified_with_grid_security_and_cached(paths, mtdir, https, pki):
    """CA dir /etc/grid-security/certificates (below root); a 304 reuses the cache."""
    ca_dir = paths.grid_security_certificates
    shutil.copytree(pki.ca_dir, ca_dir)
    subprocess.run(["openssl", "rehash", ca_dir], check=True, capture_output=True)
    https.routes["/lhcb/user_data"] = Route(body=TEMPLATE, last_modified=NOW)
    url = https.base + "/lhcb/user_data"
    first = _make(paths, _mt(user_data=url))
    assert f"url={url} ".encode() in first
    assert https.requests[0][1]["User-Agent"].startswith("Vac ")
    assert _make(paths, _mt(user_data=url)) == first
    assert https.count("/lhcb/user_data") == 2
    assert "If-Modified-Since" in https.requests[1][1]
    https.routes["/lhcb/user_data"] = Route(body=b"new ##user_data_uuid##",
                                            last_modified=time.time() + 10)
    assert _make(paths, _mt(user_data=url)) == b"new the-uuid"


def test_wlcg_token_file_must_be_private_readable_and_not_empty(paths, mtdir):
    token = os.path.join(mtdir, "files", "wlcg.token")      # a bare name: under files/
    mt = _mt(wlcg_token_file="wlcg.token")
    with pytest.raises(UserDataError, match="wlcg_token_file .*wlcg.token of machinetype "
                                            "lhcb: No such file"):
        read_wlcg_token(paths, mt)
    with open(token, "w") as f:
        f.write(" jwt.token.sig \n")
    for bad in (0o640, 0o604, 0o620, 0o602):
        os.chmod(token, bad)
        with pytest.raises(UserDataError, match=f"by group or others \\(mode 0{bad:o}\\)"):
            read_wlcg_token(paths, mt)
    os.chmod(token, 0o600)
    assert read_wlcg_token(paths, mt) == "jwt.token.sig"
    public = os.path.join(mtdir, "files", "public")            # a symlink: the target counts
    with open(public, "w") as f:
        f.write("jwt")
    os.chmod(public, 0o644)
    os.symlink(public, os.path.join(mtdir, "files", "link.token"))
    with pytest.raises(UserDataError, match="mode 0644"):
        read_wlcg_token(paths, _mt(wlcg_token_file="link.token"))
    with open(token, "w") as f:
        f.write("\n")
    with pytest.raises(UserDataError, match="is empty"):
        read_wlcg_token(paths, mt)
    assert read_wlcg_token(paths, _mt()) is None
