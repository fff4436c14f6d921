"""vac.adapters.fetch against a real HTTPS server on 127.0.0.1 with a test CA."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.adapters.pki import make_pki
from tests.services.https_server import Route, https, pki  # noqa: F401 (fixtures)
from vac.adapters.fetch import DEFAULT_USER_AGENT, fetch
from vac.errors import FetchError

MODIFIED = 1_600_000_000.0


@pytest.fixture
def server(https):
    return https


def test_get_body_last_modified_and_user_agent(server, pki):
    server.routes["/p"] = Route(b"hello", last_modified=MODIFIED)
    result = fetch(server.base + "/p", ca_file=pki.ca_file)
    assert (result.status, result.body, result.last_modified, result.path) == \
        (200, b"hello", MODIFIED, None)
    assert server.requests[0][1]["User-Agent"] == DEFAULT_USER_AGENT
    assert DEFAULT_USER_AGENT.startswith("Vac ")


def test_ca_dir_accepted(server, pki):
    """A hashed CA directory such as /etc/grid-security/certificates."""
    server.routes["/p"] = Route(b"x")
    subprocess.run(["openssl", "rehash", pki.ca_dir], check=True, capture_output=True)
    assert fetch(server.base + "/p", ca_dir=pki.ca_dir).body == b"x"


def test_stream_to_dest_path_atomically(server, pki, tmp_path):
    server.routes["/big"] = Route(b"x" * 3_000_000)
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    result = fetch(server.base + "/big", ca_file=pki.ca_file, dest_path=str(dest))
    assert result.status == 200 and result.body is None and result.path == str(dest)
    assert dest.read_bytes() == b"x" * 3_000_000
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_if_modified_since_gives_304(server, pki):
    server.routes["/p"] = Route(b"x", last_modified=MODIFIED)
    result = fetch(server.base + "/p", ca_file=pki.ca_file, if_modified_since=MODIFIED + 5)
    assert (result.status, result.body) == (304, None)
    assert "If-Modified-Since" in server.requests[0][1]


def test_redirect_followed(server, pki):
    server.routes["/old"] = Route(status=302, location="/new")
    server.routes["/new"] = Route(b"moved")
    assert fetch(server.base + "/old", ca_file=pki.ca_file).body == b"moved"


@pytest.mark.parametrize("status", [403, 404, 500, 503])
def test_error_statuses_raise_with_url(server, pki, status):
    server.routes["/e"] = Route(b"no", status=status)
    with pytest.raises(FetchError, match=f"{server.base}/e: HTTP status {status}"):
        fetch(server.base + "/e", ca_file=pki.ca_file)


def test_untrusted_server_certificate_rejected(server, tmp_path):
    other = make_pki(str(tmp_path))
    server.routes["/p"] = Route(b"x")
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch(server.base + "/p", ca_file=other.ca_file)


def test_timeout_raises(server, pki):
    server.routes["/slow"] = Route(b"x", delay_seconds=1.0)
    with pytest.raises(FetchError, match="/slow"):
        fetch(server.base + "/slow", ca_file=pki.ca_file, timeout=0.2)


def test_connection_refused_raises(pki):
    with pytest.raises(FetchError, match="127.0.0.1:9"):
        fetch("https://127.0.0.1:9/p", ca_file=pki.ca_file, timeout=2)


def test_bad_ca_file_raises(tmp_path):
    with pytest.raises(FetchError, match="cannot load CA"):
        fetch("https://127.0.0.1:9/p", ca_file=str(tmp_path / "missing.pem"))


def test_max_bytes_limits_bodies_kept_in_memory(server, pki):
    server.routes["/big"] = Route(b"y" * 1000)
    assert len(fetch(server.base + "/big", ca_file=pki.ca_file, max_bytes=1000).body) == 1000
    with pytest.raises(FetchError, match="longer than 999 bytes"):
        fetch(server.base + "/big", ca_file=pki.ca_file, max_bytes=999)
