"""Image cache against a real local HTTP(S) server, and CernVM signature checks (rows 49-50)."""

from __future__ import annotations

import contextlib
import email.utils
import http.server
import os
import ssl
import threading

import pytest

from tests.adapters.pki import SIGNER_DN, make_pki, signed_image
from vac.adapters.cernvmsig import verify_cernvm_signature
from vac.adapters.images import ImageCache, cache_file_name
from vac.errors import ImageError

LAST_MODIFIED = 1_600_000_000


class Site:
    """What the test server serves: path -> (body, Last-Modified epoch or None)."""

    def __init__(self):
        self.files = {}
        self.requests = []


def _handler(site: Site):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            site.requests.append((self.path, dict(self.headers)))
            if self.path not in site.files:
                self.send_error(404)
                return
            body, modified = site.files[self.path]
            ims = self.headers.get("If-Modified-Since")
            if ims and modified and email.utils.parsedate_to_datetime(ims).timestamp() >= modified:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            if modified:
                self.send_header("Last-Modified", email.utils.formatdate(modified, usegmt=True))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    return Handler


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("other")))


@contextlib.contextmanager
def serving(scheme: str, pki):
    site = Site()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    if scheme == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.server_cert_file, pki.server_key_file)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    site.base = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(params=["http", "https"])
def server(request, pki):
    with serving(request.param, pki) as site:
        yield site


@pytest.fixture
def cache(paths, pki):
    return ImageCache(paths.imagecache, paths.tmp, user_agent="Vac test", ca_file=pki.ca_file)


def test_cache_file_name():
    assert cache_file_name("https://repo.example.org/images/cernvm.iso") == \
        "https%3A%2F%2Frepo.example.org%2Fimages%2Fcernvm.iso"


def test_fetch_then_304_keeps_copy(server, cache, paths):
    server.files["/img.iso"] = (b"image-v1", LAST_MODIFIED)
    url = server.base + "/img.iso"
    path = cache.get(url)
    assert path == os.path.join(paths.imagecache, cache_file_name(url))
    assert open(path, "rb").read() == b"image-v1"
    assert os.stat(path).st_mtime == LAST_MODIFIED
    assert "If-Modified-Since" not in server.requests[0][1]
    assert server.requests[0][1]["User-Agent"] == "Vac test"
    assert cache.get(url) == path
    assert server.requests[1][1]["If-Modified-Since"] == \
        email.utils.formatdate(LAST_MODIFIED, usegmt=True)
    assert os.listdir(paths.tmp) == []


def test_newer_version_replaces_copy(server, cache):
    url = server.base + "/img.iso"
    server.files["/img.iso"] = (b"image-v1", LAST_MODIFIED)
    cache.get(url)
    server.files["/img.iso"] = (b"image-v2", LAST_MODIFIED + 60)
    path = cache.get(url)
    assert open(path, "rb").read() == b"image-v2"
    assert os.stat(path).st_mtime == LAST_MODIFIED + 60


def test_last_modified_is_mandatory(server, cache, paths):
    server.files["/img.iso"] = (b"image", None)
    url = server.base + "/img.iso"
    with pytest.raises(ImageError, match="Failed to get last modified time for"):
        cache.get(url)
    assert not os.path.exists(os.path.join(paths.imagecache, cache_file_name(url)))
    assert os.listdir(paths.tmp) == []


def test_404_fails_and_leaves_no_temp(server, cache, paths):
    with pytest.raises(ImageError, match="Failed to fetch .*404"):
        cache.get(server.base + "/missing.iso")
    assert os.listdir(paths.tmp) == []


def test_unreachable_url(cache, paths):
    with pytest.raises(ImageError) as info:
        cache.get("http://127.0.0.1:9/nothing.iso")
    assert str(info.value).startswith("Failed to fetch http://127.0.0.1:9/nothing.iso (")
    assert "\n" not in str(info.value)
    assert os.listdir(paths.tmp) == []


def test_https_with_untrusted_server(pki, paths, other_pki):
    cache = ImageCache(paths.imagecache, paths.tmp, user_agent="Vac", ca_file=other_pki.ca_file)
    with serving("https", pki) as server:
        server.files["/img.iso"] = (b"image", LAST_MODIFIED)
        with pytest.raises(ImageError, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            cache.get(server.base + "/img.iso")
    assert os.listdir(paths.tmp) == []


# --- signatures ---------------------------------------------------------------------

def test_good_signature(pki, tmp_path):
    image = signed_image(str(tmp_path / "good.iso"), pki.signer_key, pki.signer_cert)
    result = verify_cernvm_signature(image, pki.ca_dir)
    assert result.verified, result.error
    assert result.dn == SIGNER_DN
    assert result.version == "2.7.7"


def test_tampered_image_fails(pki, tmp_path):
    image = signed_image(str(tmp_path / "bad.iso"), pki.signer_key, pki.signer_cert,
                         tamper=True)
    result = verify_cernvm_signature(image, pki.ca_dir)
    assert not result.verified
    assert result.error.startswith("Failed to verify signature for")


def test_signature_by_untrusted_ca_fails(pki, tmp_path):
    image = signed_image(str(tmp_path / "rogue.iso"), pki.rogue_key, pki.rogue_cert)
    result = verify_cernvm_signature(image, pki.ca_dir)
    assert not result.verified and result.dn == SIGNER_DN
    assert "Failed to verify cert" in result.error


def test_other_dn_is_verified_but_different(pki, tmp_path):
    image = signed_image(str(tmp_path / "other.iso"), pki.other_key, pki.other_cert)
    result = verify_cernvm_signature(image, pki.ca_dir)
    assert result.verified and result.dn == "/CN=someone.example.org"


def test_unsigned_and_small_images(pki, tmp_path):
    small = tmp_path / "small.iso"
    small.write_bytes(b"x" * 1000)
    assert "too small" in verify_cernvm_signature(str(small), pki.ca_dir).error
    unsigned = tmp_path / "unsigned.iso"
    unsigned.write_bytes(b"\0" * 200_000)
    result = verify_cernvm_signature(str(unsigned), pki.ca_dir)
    assert not result.verified and "cannot read signature blocks" in result.error
