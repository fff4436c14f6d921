"""A real HTTPS server on 127.0.0.1 for fetch and pipe tests (CA from tests.adapters.pki).

Test modules import the fixtures: ``from tests.services.https_server import pki, https``.
"""

from __future__ import annotations

import email.utils
import http.server
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import pytest

from tests.adapters.pki import make_pki


@dataclass
class Route:
    """What one path answers: status, body, Last-Modified (Unix seconds), redirect, delay."""

    body: bytes = b""
    status: int = 200
    last_modified: Optional[float] = None
    location: Optional[str] = None
    delay_seconds: float = 0.0


@dataclass
class Served:
    """Routes served and the requests received: (path, headers)."""

    routes: Dict[str, Route] = field(default_factory=dict)
    requests: List[Tuple[str, Dict[str, str]]] = field(default_factory=list)
    base: str = ""

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


def _handler(served: Served):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server naming)
            served.requests.append((self.path, dict(self.headers)))
            route = served.routes.get(self.path, Route(status=404))
            if route.delay_seconds:
                time.sleep(route.delay_seconds)
            ims = self.headers.get("If-Modified-Since")
            if route.status == 200 and ims and route.last_modified and \
                    email.utils.parsedate_to_datetime(ims).timestamp() >= route.last_modified:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", served.base + route.location)
            if route.last_modified:
                self.send_header("Last-Modified",
                                 email.utils.formatdate(route.last_modified, usegmt=True))
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args):
            pass
    return Handler


class HttpsServer:
    """Context manager running the server in a thread; ``served.base`` is its https:// URL."""

    def __init__(self, cert_file: str, key_file: str):
        self.served = Served()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.served))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, address: None  # clients that hang up
        self.served.base = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    def __enter__(self) -> Served:
        self._thread.start()
        return self.served

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA (``pki.ca_file``) and a server certificate for 127.0.0.1."""
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def https(pki):
    """A running HttpsServer's Served value (routes, requests, base URL)."""
    with HttpsServer(pki.server_cert_file, pki.server_key_file) as served:
        yield served
