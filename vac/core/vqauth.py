"""Space-key authentication of VacQuery datagrams (HMAC-SHA256), pure.

Wire form (docs/VACQUERY.md): a signed datagram is a JSON object whose LAST member is
``"hmac":"<64 lower-case hex digits>"``, written exactly as ``,"hmac":"…"}`` with no white
space, at the very end of the datagram. The HMAC-SHA256 (key = the space key bytes) is
computed over the datagram with that member removed: every byte before ``,"hmac"``
followed by the closing brace ``}``. Receivers that do not know the key (the original
Vac, VacMon) see one more string member and ignore it.

Keyed requests also carry ``target`` (canonical name of the factory asked), ``time_sent``
(Unix seconds, int) and ``nonce`` (32 lower-case hex digits, fresh per datagram); the
responder refuses a request for another factory, one outside ±CLOCK_SKEW_SECONDS of its
clock, or a nonce it has already seen (:class:`ReplayGuard`). Replies echo the request's
cookie, which is fresh per query batch, so a signed reply cannot be replayed into
another batch.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Optional, Tuple

HMAC_FIELD = "hmac"
_HEAD = b',"' + HMAC_FIELD.encode() + b'":"'
_DIGEST_HEX = 64
SUFFIX_BYTES = len(_HEAD) + _DIGEST_HEX + 2          # ,"hmac":"<64 hex>"}
_HEX = frozenset(b"0123456789abcdef")
NONCE_HEX = 32                                       # 16 random bytes
CLOCK_SKEW_SECONDS = 60                              # accepted |now - time_sent|
MAX_REMEMBERED_NONCES = 100_000                      # bounded replay memory

# Request fields added by a keyed client (ignored by responders without a key).
KEYED_REQUEST_FIELDS = ("target", "time_sent", "nonce")


class Signer:
    """HMAC-SHA256 with one space key; ``start``/``finish`` let a caller precompute the
    state after a fixed prefix (the responder's cached reply templates)."""

    def __init__(self, key: bytes):
        if not key:
            raise ValueError("the space key is empty")
        import hashlib      # with hmac: libcrypto, loaded only where a space key is set
        import hmac
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self._compare = hmac.compare_digest

    def start(self, prefix: bytes) -> Any:
        """HMAC state after ``prefix`` (copy it before use with :meth:`finish`)."""
        state = self._base.copy()
        state.update(prefix)
        return state

    @staticmethod
    def finish(state: Any, unsigned: bytes, *parts: bytes) -> bytes:
        """The signed datagram: ``unsigned`` (= the prefix given to :meth:`start` plus
        ``parts``) with the hmac member appended. ``state`` is consumed."""
        for part in parts:
            state.update(part)
        return unsigned[:-1] + _HEAD + state.hexdigest().encode("ascii") + b'"}'

    def sign(self, data: bytes) -> bytes:
        """``data`` (a JSON object with at least one member) with the hmac member added."""
        if len(data) < 3 or not data.endswith(b"}"):
            raise ValueError("only a non-empty JSON object can be signed")
        return self.finish(self.start(data), data)

    def digest(self, message: bytes) -> bytes:
        state = self._base.copy()
        state.update(message)
        return state.hexdigest().encode("ascii")

    def verify(self, data: bytes) -> bool:
        """True if ``data`` ends with a well-formed hmac member that this key made."""
        parts = split_signed(data)
        return parts is not None and self._compare(self.digest(parts[0]), parts[1])


def split_signed(data: bytes) -> Optional[Tuple[bytes, bytes]]:
    """(signed message, hex digest) if ``data`` ends with the hmac member, else None."""
    if len(data) <= SUFFIX_BYTES + 1 or not data.endswith(b'"}'):
        return None
    cut = len(data) - SUFFIX_BYTES
    if data[cut:cut + len(_HEAD)] != _HEAD:
        return None
    digest = data[cut + len(_HEAD):-2]
    if not _HEX.issuperset(digest):
        return None
    return data[:cut] + b"}", digest


def is_signed(data: bytes) -> bool:
    """True if ``data`` carries an hmac member in the wire form (valid or not)."""
    return split_signed(data) is not None


def keyed_fields(target: str, time_sent: int, nonce: str) -> Mapping[str, Any]:
    """The fields a keyed client adds to each request datagram."""
    return {"target": target, "time_sent": int(time_sent), "nonce": nonce}


class ReplayGuard:
    """Nonces of accepted keyed requests, remembered for twice the clock skew.

    ``check`` returns None for a fresh request (and remembers its nonce) or the refusal
    reason: ``stale`` (time_sent outside ±skew of ``now``) or ``replayed``.
    """

    def __init__(self, skew: float = CLOCK_SKEW_SECONDS, limit: int = MAX_REMEMBERED_NONCES):
        self.skew = skew
        self.limit = limit
        self._seen: "OrderedDict[str, float]" = OrderedDict()   # nonce -> forget after

    def check(self, nonce: Any, time_sent: Any, now: float) -> Optional[str]:
        if (not isinstance(nonce, str) or len(nonce) != NONCE_HEX
                or not isinstance(time_sent, int) or isinstance(time_sent, bool)):
            return "stale"
        if abs(now - time_sent) > self.skew:
            return "stale"
        self._expire(now)
        if nonce in self._seen:
            return "replayed"
        self._seen[nonce] = now + 2 * self.skew
        if len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return None

    def _expire(self, now: float) -> None:
        while self._seen:
            nonce, forget_after = next(iter(self._seen.items()))
            if forget_after > now:
                return
            del self._seen[nonce]

    def __len__(self) -> int:
        return len(self._seen)
