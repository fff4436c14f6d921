"""This factory's VacQuery replies, encoded once per snapshot and re-used per request.

Every reply to one request type is the same datagram except for the echoed cookie, so
each is kept as ``prefix + <cookie as JSON> + suffix`` and a request only splices its
cookie in (and, with a space key, finishes an HMAC whose state after ``prefix`` is
kept too). A snapshot is rebuilt from the state files when it is ``snapshot_seconds``
old (its ``time_sent`` is the build time) or when :meth:`ReplyCache.clear` is called
(new configuration or key).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from vac.core import vacquery as vq
from vac.core.vqauth import Signer

# (reply type, time_sent) -> the complete messages, each with ``cookie`` = placeholder
Build = Callable[[str, str, float], List[Dict[str, Any]]]


def cookie_json(cookie: str) -> bytes:
    """The cookie as vq.encode writes it (a JSON string)."""
    if cookie.isalnum() and cookie.isascii():
        return ('"%s"' % cookie).encode("ascii")
    return json.dumps(cookie).encode("ascii")


class _Template:
    """One reply datagram around the cookie (plus the HMAC state after ``prefix``)."""

    __slots__ = ("prefix", "suffix", "state")

    def __init__(self, prefix: bytes, suffix: bytes, state: Any):
        self.prefix, self.suffix, self.state = prefix, suffix, state


class ReplyCache:
    """Encoded replies per reply type; ``build`` makes the messages of one snapshot."""

    def __init__(self, build: Build, snapshot_seconds: float = 1.0,
                 signer: Optional[Signer] = None):
        self.build = build
        self.snapshot_seconds = snapshot_seconds
        self.signer = signer
        self._placeholder = "\u0000" + os.urandom(8).hex() + "\u0000"
        self._mark = cookie_json(self._placeholder)
        self._entries: Dict[str, Tuple[float, Optional[List[_Template]],
                                       List[Dict[str, Any]]]] = {}

    def clear(self, signer: Optional[Signer] = None) -> None:
        """Forget every snapshot (new configuration) and use ``signer`` from now on."""
        self._entries.clear()
        self.signer = signer

    def datagrams(self, reply_type: str, cookie: str, clock: Optional[float] = None
                  ) -> List[bytes]:
        """The reply datagrams for one request with ``cookie`` (signed if keyed);
        ``clock``: time.monotonic() if the caller has it."""
        if clock is None:
            clock = time.monotonic()
        entry = self._entries.get(reply_type)
        if entry is None or clock - entry[0] >= self.snapshot_seconds:
            entry = self._snapshot(reply_type, clock)
        templates = entry[1]
        if templates is None:       # placeholder not unique: encode each message
            return [self._sign(vq.encode(dict(m, cookie=cookie))) for m in entry[2]]
        mark = cookie_json(cookie)
        if self.signer is None:
            return [t.prefix + mark + t.suffix for t in templates]
        return [Signer.finish(t.state.copy(), t.prefix + mark + t.suffix, mark, t.suffix)
                for t in templates]

    def _sign(self, data: bytes) -> bytes:
        return data if self.signer is None else self.signer.sign(data)

    def _snapshot(self, reply_type: str, clock: float
                  ) -> Tuple[float, Optional[List[_Template]], List[Dict[str, Any]]]:
        messages = self.build(reply_type, self._placeholder, time.time())
        templates: Optional[List[_Template]] = []
        for message in messages:
            data = vq.encode(message)
            if data.count(self._mark) != 1:
                templates = None
                break
            prefix, suffix = data.split(self._mark)
            state = self.signer.start(prefix) if self.signer is not None else None
            templates.append(_Template(prefix, suffix, state))
        entry = (clock, templates, messages)
        self._entries[reply_type] = entry
        return entry
