"""Root image cache with conditional HTTP(S) fetches, and CernVM signature checks (SPEC §3.6).

Images are cached as ``<imagecache>/<URL percent-encoded with no safe characters>``; each
use sends If-Modified-Since = the cached copy's mtime, a 200 answer must carry
Last-Modified (the new copy gets it as mtime). Downloads go to a temp file in the tmp
directory, which never outlives the call (bug B16). Times are Unix epoch seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import urllib.parse
from typing import Callable, Optional

from vac.adapters.atomicfile import file_mtime
from vac.errors import FetchError, ImageError

log = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS = 120.0
__all__ = ["ImageCache", "SignatureResult", "verify_cernvm_signature", "cache_file_name",
           "is_remote", "cernvmsig"]
_LAZY = ("cernvmsig", "SignatureResult", "verify_cernvm_signature")


def __getattr__(name: str):
    """The signature checks (and cryptography, which they need), imported on first use:
    a role that only serves files through this module never loads them."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from vac.adapters import cernvmsig
    return cernvmsig if name == "cernvmsig" else getattr(cernvmsig, name)


def is_remote(root_image: str) -> bool:
    return root_image.startswith(("http://", "https://"))


def cache_file_name(url: str) -> str:
    """``https://a/b.iso`` -> ``https%3A%2F%2Fa%2Fb.iso``."""
    return urllib.parse.quote(url, safe="")


def _epoch(value: object) -> Optional[float]:
    """Last-Modified as epoch seconds from an HTTP date string or a number."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    import email.utils          # only when an image is fetched
    try:
        return email.utils.parsedate_to_datetime(str(value)).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class ImageCache:
    """Fetches remote root images into ``cache_dir`` using ``tmp_dir`` for downloads.

    ``fetch`` has the signature of :func:`vac.adapters.fetch.fetch`.
    """

    def __init__(self, cache_dir: str, tmp_dir: str, *, user_agent: str,
                 ca_dir: Optional[str] = None, ca_file: Optional[str] = None,
                 fetch: Optional[Callable] = None,
                 timeout: float = FETCH_TIMEOUT_SECONDS):
        self.cache_dir = cache_dir
        self.tmp_dir = tmp_dir
        self.user_agent = user_agent
        self.ca_dir = ca_dir
        self.ca_file = ca_file
        self.timeout = timeout
        self._fetch = fetch

    def _fetcher(self) -> Callable:
        if self._fetch is None:
            from vac.adapters.fetch import fetch   # written alongside; imported when first used
            self._fetch = fetch
        return self._fetch

    def get(self, url: str) -> str:
        """Path of an up-to-date cached copy of ``url``; ImageError if there is none."""
        cached = os.path.join(self.cache_dir, cache_file_name(url))
        if url.startswith("https://") and not (self.ca_dir or self.ca_file):
            log.info("No CA directory for %s: using the default CA bundle", url)
        ims = file_mtime(cached) if os.path.isfile(cached) else None
        os.makedirs(self.tmp_dir, exist_ok=True)
        os.makedirs(self.cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="image.", dir=self.tmp_dir)
        os.close(fd)
        try:
            return self._get(url, cached, ims, tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _get(self, url: str, cached: str, ims: Optional[float], tmp: str) -> str:
        try:
            result = self._fetcher()(url, timeout=self.timeout, user_agent=self.user_agent,
                                     ca_file=self.ca_file, ca_dir=self.ca_dir,
                                     if_modified_since=ims, dest_path=tmp)
        except (FetchError, OSError) as e:
            raise ImageError(f"Failed to fetch {url} ({e})") from e
        status = int(result.status)
        if status == 200:
            return self._store(url, cached, tmp, result)
        if status == 304 and ims is not None:
            log.info("No new version of %s found and existing copy not replaced", url)
            return cached
        raise ImageError(f"Failed to fetch {url} (HTTP status {status})")

    def _store(self, url: str, cached: str, tmp: str, result) -> str:
        modified = _epoch(getattr(result, "last_modified", None))
        if modified is None:
            raise ImageError(f"Failed to get last modified time for {url}")
        if getattr(result, "path", None) != tmp or not os.path.exists(tmp):
            body = getattr(result, "body", None)
            if body is None:
                raise ImageError(f"Failed to fetch {url} (no body received)")
            with open(tmp, "wb") as f:
                f.write(body)
        try:
            os.chmod(tmp, 0o644)         # qemu may run as another user
            os.utime(tmp, (modified, modified))
            os.replace(tmp, cached)
        except OSError as e:
            raise ImageError(f"cannot store {url} in {self.cache_dir}: {e}") from e
        log.info("New %s put in %s", url, self.cache_dir)
        return cached
