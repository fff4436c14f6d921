"""The MJF/JOBOUTPUTS service's answers (SPEC §5.1, PEERS-AND-STANDARDS §2.2): pure.

GET ``/machinefeatures[/]`` and ``/jobfeatures[/]`` give the HTML listing of the original;
GET ``/machinefeatures/KEY`` the raw value; a missing key is 404 (DIRAC treats every
non-2xx as "absent"). ``PUT /joboutputs/NAME`` is checked by ``check_put``: 201 after the
service wrote the file, 403 for a bad name, a missing/oversized length, a full quota
(bytes or files) or an unknown machine, 409 while the same name is still being uploaded.
Subdirectories, ``..`` and hidden files never match. For machines created with
``joboutputs_require_token``, ``check_bearer`` first wants ``Authorization: Bearer TOKEN``
with the machine's token: 401 (with ``WWW-Authenticate: Bearer``, RFC 6750) without
one, 403 with another.

Quotas hold under concurrency because every upload is charged before its body is
written (``PutDecision.charge``, given back if it fails) and a name has at most one
upload in progress, so the file it replaces cannot change meanwhile. Invariant: stored
bytes + charges of uploads in progress <= ``max_total_bytes``; likewise for files.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Collection, Mapping, NamedTuple, Optional

from vac.core.metadata import NOT_FOUND, Response, normalise

FEATURE_DIRS = ("machinefeatures", "jobfeatures")
JOBOUTPUTS = "joboutputs"
MAX_NAME_CHARS = 128
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=,@-]{0,%d}$" % (MAX_NAME_CHARS - 1))
FORBIDDEN = Response(403)


def valid_name(name: str) -> bool:
    """A key or joboutputs file name: no ``/``, no ``..``, not hidden, at most 128 chars."""
    return bool(NAME_RE.match(name)) and ".." not in name


def listing_html(keys) -> bytes:
    """The original's listing: ``<html><body><ul><li><a href="K">K</a></li>...``."""
    items = "".join(f'<li><a href="{html.escape(k)}">{html.escape(k)}</a></li>'
                    for k in sorted(keys))
    return f"<html><body><ul>{items}</ul></body></html>".encode()


def _split(path: str):
    """(directory, key) of a one- or two-component path; None if unsafe or deeper."""
    norm = normalise(path)
    if norm is None:
        return None
    parts = norm[1:].split("/")
    if len(parts) == 1:
        return parts[0], ""
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def mjf_get(path: str, features: Mapping[str, Mapping[str, bytes]]) -> Response:
    """GET ``path``; ``features`` maps machinefeatures/jobfeatures -> {key: value bytes}."""
    split = _split(path)
    if split is None or split[0] not in FEATURE_DIRS:
        return NOT_FOUND
    directory, key = split
    values = features.get(directory, {})
    if key == "":
        return Response(200, "text/html", listing_html(k for k in values if valid_name(k)))
    if not valid_name(key) or key not in values:
        return NOT_FOUND
    return Response(200, "text/plain", values[key])


@dataclass(frozen=True)
class JoboutputsLimits:
    """Per machine: largest file, all files together (bytes), number of files."""

    max_file_bytes: int
    max_total_bytes: int
    max_files: int


@dataclass(frozen=True)
class JoboutputsUsage:
    """One machine's joboutputs/ as the mjf role accounts for it.

    ``sizes``: stored file name -> bytes; ``uploading``: names with an upload in
    progress; ``reserved_bytes``/``reserved_files``: what those uploads are charged."""

    sizes: Mapping[str, int]
    stored_bytes: int
    uploading: Collection[str] = ()
    reserved_bytes: int = 0
    reserved_files: int = 0


class PutDecision(NamedTuple):
    """``name`` to write when ``status`` is 201, the bytes (``charge``) to reserve
    meanwhile and the size of the stored file it replaces (``replaced``; None: a new
    file); otherwise the refusal and its reason. (A NamedTuple: one is made per PUT, at
    half the cost of a frozen dataclass.)"""

    status: int
    name: Optional[str] = None
    reason: str = ""
    charge: int = 0
    replaced: Optional[int] = None

    @property
    def new_file(self) -> bool:
        """An allowed PUT of a name not stored yet (a file to reserve)."""
        return self.name is not None and self.replaced is None


def check_put(path: str, content_length: Optional[int], usage: JoboutputsUsage,
              limits: JoboutputsLimits) -> PutDecision:
    """May ``PUT path`` with ``content_length`` bytes be written to joboutputs/? O(1).
    ``usage``: or any object with its attributes (the ledger's own account, read only).

    Replacing a stored file is charged only what it adds (nothing if it shrinks)."""
    split = _split(path)
    if split is None or split[0] != JOBOUTPUTS:
        return PutDecision(403, reason="not a /joboutputs/NAME path")
    name = split[1]
    if not valid_name(name):
        return PutDecision(403, reason="invalid joboutputs file name")
    if content_length is None or content_length < 0:
        return PutDecision(403, reason="missing or invalid Content-Length")
    if content_length > limits.max_file_bytes:
        return PutDecision(403, reason=f"file larger than {limits.max_file_bytes} bytes")
    if name in usage.uploading:
        return PutDecision(409, reason=f"{name} is already being uploaded")
    replaced = usage.sizes.get(name)
    charge = content_length - min(replaced or 0, content_length)
    if usage.stored_bytes + usage.reserved_bytes + charge > limits.max_total_bytes:
        return PutDecision(403, reason=f"joboutputs would exceed {limits.max_total_bytes} "
                                       "bytes")
    if replaced is None and len(usage.sizes) + usage.reserved_files >= limits.max_files:
        return PutDecision(403, reason=f"joboutputs would exceed {limits.max_files} files")
    return PutDecision(201, name=name, charge=charge, replaced=replaced)


UNAUTHORIZED = Response(401, headers=(("WWW-Authenticate", 'Bearer realm="joboutputs"'),))


def check_bearer(authorization: Optional[str], token: Optional[str]) -> Optional[PutDecision]:
    """None if ``authorization`` (the header's value) is ``Bearer <token>``; else the
    refusal: 401 when no Bearer credential came, 403 when it is not the machine's
    (or the machine has no token). Compared in constant time."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return PutDecision(401, reason="no Authorization: Bearer token")
    import hmac     # here: hmac loads hashlib and OpenSSL's libcrypto (idle mjf role)
    if not token or not hmac.compare_digest(credential.strip().encode(), token.encode()):
        return PutDecision(403, reason="wrong bearer token")
    return None
