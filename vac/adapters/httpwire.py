"""HTTP/1.x request heads and replies as bytes, for vac.adapters.httpserver (no sockets).

Strict on purpose: a request line of at most 2 KiB with exactly three words, an upper-case
method, HTTP/1.0 or HTTP/1.1; at most 100 header lines and 64 KiB of head in all; no obsolete line folding, no space before a header's colon, and at most
one Content-Length, Transfer-Encoding or Host. Anything else is an :class:`HttpError`
with the status to answer (400, 414, 431, 505); the connection is then closed.
"""

from __future__ import annotations

import re
import time
from http import HTTPStatus
from typing import Dict, NamedTuple, Optional, Sequence, Tuple
from wsgiref.handlers import format_date_time  # not email.utils: ~1 MiB more per role

MAX_REQUEST_LINE = 2048          # bytes, the request line without its line end
MAX_HEADERS = 100                # header lines (as http.client)
MAX_HEAD = 64 * 1024             # bytes of request line and headers together
_METHOD_RE = re.compile(r"^[A-Z]{1,16}$")
_VERSION_RE = re.compile(r"^HTTP/(\d)\.(\d)$")
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_SINGLE = ("content-length", "transfer-encoding", "host")
_PHRASES = {int(s): s.phrase for s in HTTPStatus}
_METHODS = frozenset(("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"))   # match _METHOD_RE
_VERSIONS = {"HTTP/1.1": "HTTP/1.1", "HTTP/1.0": "HTTP/1.0"}     # match _VERSION_RE
_NAMES: Dict[str, str] = {}      # header names that matched _TOKEN_RE -> lower case
_MAX_NAMES = 1024


class HttpError(Exception):
    """The request cannot be served: answer ``status`` and close the connection."""

    def __init__(self, status: int, why: str, requestline: str = ""):
        super().__init__(why)
        self.status = status
        self.requestline = requestline


class Head(NamedTuple):
    """A parsed request line and headers. ``headers`` keeps the client's spelling;
    ``fields`` maps lower-case names to values. (A NamedTuple, not a frozen dataclass:
    one is made per request, at half the cost.)"""

    method: str
    path: str
    version: str
    requestline: str
    headers: Dict[str, str]
    fields: Dict[str, str]

    @property
    def keep_alive(self) -> bool:
        connection = self.fields.get("connection")
        if not connection:
            return self.version == "HTTP/1.1"
        value = connection.strip().lower()
        tokens = {t.strip() for t in value.split(",")} if "," in value else {value}
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens

    @property
    def expects_continue(self) -> bool:
        return self.fields.get("expect", "").strip().lower() == "100-continue"

    def content_length(self) -> Optional[int]:
        """The body length in bytes (None: no body); HttpError 400 if unparsable."""
        value = self.fields.get("content-length")
        if value is None:
            return None
        if not value.strip().isdigit():
            raise HttpError(400, "unparsable Content-Length", self.requestline)
        return int(value)


def find_head_end(buf: bytearray, start: int = 0) -> int:
    """Index just past the empty line ending the head in ``buf``, or -1. Before it is
    found, HttpError if the request line or the head is already too long."""
    match = _HEAD_END.search(buf, max(0, start - 3))
    if match is not None:
        return match.end()
    first = buf.find(b"\n")
    if (first < 0 and len(buf) > MAX_REQUEST_LINE + 1) or first > MAX_REQUEST_LINE + 1:
        raise HttpError(414, "request line too long")
    if len(buf) > MAX_HEAD:
        raise HttpError(431, "request head too long")
    return -1


def _request_line(line: str):
    if len(line) > MAX_REQUEST_LINE:
        raise HttpError(414, "request line too long")
    words = line.split()
    if len(words) != 3:
        raise HttpError(400, "bad request line", line)
    method, path, version = words
    if method not in _METHODS and not _METHOD_RE.match(method):
        raise HttpError(400, "bad request line", line)
    normal = _VERSIONS.get(version)
    if normal is None:
        match = _VERSION_RE.match(version)
        if match is None:
            raise HttpError(400, "bad HTTP version", line)
        if match.group(1) != "1":
            raise HttpError(505, "HTTP version not supported", line)
        normal = f"HTTP/1.{min(int(match.group(2)), 1)}"
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return method, path, normal


def _header_key(name: str, requestline: str) -> str:
    """The lower-case key of a header ``name``; HttpError 400 unless it is a token.
    Names seen before are looked up instead of matched again (at most _MAX_NAMES)."""
    key = _NAMES.get(name)
    if key is None:
        if not _TOKEN_RE.match(name):
            raise HttpError(400, "malformed header line", requestline)
        if len(_NAMES) >= _MAX_NAMES:
            _NAMES.clear()
        key = _NAMES[name] = name.lower()
    return key


def parse_head(data: bytes) -> Head:
    """Parse a whole request head (up to and including its empty line; bytes-like)."""
    text = data.decode("iso-8859-1")
    if text.endswith("\r"):
        text = text[:-1]
    lines = text.replace("\r\n", "\n").split("\n")   # each line less one final CR
    while lines and lines[0] == "":
        lines.pop(0)                          # tolerated blank lines before a request
    if not lines:
        raise HttpError(400, "empty request")
    requestline = lines[0]
    method, path, version = _request_line(requestline)
    headers: Dict[str, str] = {}
    fields: Dict[str, str] = {}
    if len(lines) - 1 - lines.count("") > MAX_HEADERS:      # lines[0] is not empty
        raise HttpError(431, "too many headers", requestline)
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpError(400, "malformed header line", requestline)
        key = _NAMES.get(name) or _header_key(name, requestline)
        value = value.strip(" \t")
        if key in fields:
            if key in _SINGLE:
                raise HttpError(400, f"repeated {name} header", requestline)
            value = fields[key] + ", " + value
        else:
            headers[name] = value
        fields[key] = value
    return Head(method, path, version, requestline, headers, fields)


_date_cache = [0, ""]
_MAX_KEPT_BODY = 256             # bytes
_MAX_REPLIES = 64
_replies: Dict[tuple, bytes] = {}


def http_date() -> str:
    """The Date header value (RFC 7231), recomputed at most once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, format_date_time(now)]
    return _date_cache[1]


def reply_bytes(status: int, content_type: str, body: bytes, server: str, close: bool,
                send_body: bool = True, extra: Sequence[Tuple[str, str]] = ()) -> bytes:
    """A whole HTTP/1.1 reply; ``send_body`` False (HEAD) keeps Content-Length only;
    ``extra``: further (name, value) header lines (the app's, no CR/LF in them).
    Replies with a small body are kept (at most _MAX_REPLIES, by Date and arguments):
    under a burst most replies are alike (201 to a PUT, 404, a short feature value)."""
    date, key = http_date(), None
    if len(body) <= _MAX_KEPT_BODY and type(extra) is tuple:
        key = (date, status, content_type, body, server, close, send_body, extra)
        try:
            out = _replies.get(key)
        except TypeError:                 # an unhashable header value: not kept
            out = key = None
        if out is not None:
            return out
    reason = _PHRASES.get(status, "")
    more = "".join(f"{k}: {v}\r\n" for k, v in extra)
    head = (f"HTTP/1.1 {status} {reason}\r\nServer: {server}\r\nDate: {date}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{more}"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n")
    out = head.encode("latin-1") + (body if send_body else b"")
    if key is not None:
        if len(_replies) >= _MAX_REPLIES:
            _replies.clear()
        _replies[key] = out
    return out


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
