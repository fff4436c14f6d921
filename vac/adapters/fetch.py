"""HTTP(S) GET for pipes, user_data templates and images (stdlib urllib, TLS verified).

Redirects are followed; ``If-Modified-Since`` gives a 304 result without body; a 200
body is returned in memory or streamed atomically into ``dest_path``. Transport errors,
timeouts and 4xx/5xx statuses raise FetchError naming the URL and the reason.
"""

from __future__ import annotations

import email.utils
import http.client
import shutil
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional

from vac import __version__
from vac.adapters.atomicfile import atomic_writer
from vac.errors import FetchError

DEFAULT_USER_AGENT = f"Vac {__version__}"
_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FetchResult:
    """status 200 or 304; body (200 without dest_path); Last-Modified (Unix seconds); path."""

    status: int
    body: Optional[bytes]
    last_modified: Optional[float]
    path: Optional[str]


def fetch(url: str, *, timeout: float = 30.0, user_agent: str = DEFAULT_USER_AGENT,
          ca_file: Optional[str] = None, ca_dir: Optional[str] = None,
          if_modified_since: Optional[float] = None,
          dest_path: Optional[str] = None, max_bytes: Optional[int] = None) -> FetchResult:
    """GET ``url`` (timeout in seconds per network operation; if_modified_since in Unix seconds).

    TLS peers are verified against ``ca_file``/``ca_dir`` (e.g. /etc/grid-security/
    certificates) or the system bundle when neither is given. A body kept in memory
    longer than ``max_bytes`` (if given) raises FetchError.
    """
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    if if_modified_since is not None:
        request.add_header("If-Modified-Since",
                           email.utils.formatdate(if_modified_since, usegmt=True))
    opener = _opener(ca_file, ca_dir) if url.lower().startswith("https:") else \
        urllib.request.build_opener()
    try:
        with opener.open(request, timeout=timeout) as response:
            modified = _http_date(response.headers.get("Last-Modified"))
            if dest_path is None:
                body = response.read() if max_bytes is None else response.read(max_bytes + 1)
                if max_bytes is not None and len(body) > max_bytes:
                    raise FetchError(f"{url}: body longer than {max_bytes} bytes")
                return FetchResult(response.status, body, modified, None)
            _stream(response, dest_path)
            return FetchResult(response.status, None, modified, dest_path)
    except urllib.error.HTTPError as e:
        if e.code == 304:
            return FetchResult(304, None, _http_date(e.headers.get("Last-Modified")), None)
        raise FetchError(f"{url}: HTTP status {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise FetchError(f"{url}: {e.reason}") from e
    except (socket.timeout, TimeoutError) as e:
        raise FetchError(f"{url}: timed out after {timeout} seconds") from e
    except (http.client.HTTPException, ssl.SSLError, OSError, ValueError) as e:
        raise FetchError(f"{url}: {e}") from e


def _opener(ca_file: Optional[str], ca_dir: Optional[str]) -> urllib.request.OpenerDirector:
    try:
        context = ssl.create_default_context(cafile=ca_file, capath=ca_dir)
    except (ssl.SSLError, OSError) as e:
        raise FetchError(f"cannot load CA certificates {ca_file or ca_dir}: {e}") from e
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))


def _stream(response: http.client.HTTPResponse, dest_path: str) -> None:
    """Copy the body into a temporary file next to ``dest_path``, then rename it over."""
    with atomic_writer(dest_path, fsync=False) as f:
        shutil.copyfileobj(response, f, _CHUNK_BYTES)


def _http_date(text: Optional[str]) -> Optional[float]:
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
