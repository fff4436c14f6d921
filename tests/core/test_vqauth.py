"""Space-key HMAC of VacQuery datagrams: wire form, tampering, replay window."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from vac.core import vacquery as vq
from vac.core import vqauth
from vac.core.vqauth import ReplayGuard, Signer

KEY = b"0123456789abcdef0123456789abcdef"
SPACE = "vac01.example.com"
FACTORY = "factory1.example.com"


def keyed_request(now=1_700_000_000, nonce="ab" * 16):
    msg = vq.request_dict(vq.MACHINES_QUERY, SPACE, "c0ffee", "04.00.00", "vac-command")
    msg.update(vqauth.keyed_fields(FACTORY, now, nonce))
    return vq.encode(msg)


def test_signed_request_golden_and_readable_by_a_keyless_peer(golden):
    data = Signer(KEY).sign(keyed_request())
    golden.check(data.decode() + "\n", "vacquery/keyed_machines_query.json")
    obj = json.loads(data)                      # what the original responder sees
    assert obj["space"] == SPACE and obj["cookie"] == "c0ffee" and len(obj["hmac"]) == 64
    assert vq.decode_request(data).target == FACTORY


def test_hmac_is_over_the_datagram_without_its_last_member():
    unsigned = keyed_request()
    data = Signer(KEY).sign(unsigned)
    assert data.startswith(unsigned[:-1]) and data.endswith(b'"}')
    expected = hmac.new(KEY, unsigned, hashlib.sha256).hexdigest()
    assert data == unsigned[:-1] + b',"hmac":"' + expected.encode() + b'"}'
    assert vqauth.split_signed(data) == (unsigned, expected.encode())


def test_every_tampered_byte_wrong_key_or_malformed_tail_fails():
    signer = Signer(KEY)
    data = signer.sign(keyed_request())
    assert signer.verify(data)
    assert not Signer(KEY + b"x").verify(data)
    for i in range(0, len(data), 7):
        changed = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
        assert not signer.verify(changed), i
    assert not signer.verify(keyed_request())                   # unsigned
    assert not signer.verify(data.upper())                       # upper-case hex
    assert not signer.verify(data[:-2] + b'" }')                  # white space
    assert not vqauth.is_signed(b'{"hmac":"' + b"0" * 64 + b'"}')  # no signed member


def test_start_finish_equals_sign_over_prefix_and_rest():
    signer = Signer(KEY)
    data = keyed_request()
    cut = 40
    state = signer.start(data[:cut])
    assert Signer.finish(state, data, data[cut:50], data[50:]) == signer.sign(data)
    with pytest.raises(ValueError):
        signer.sign(b"{}")
    with pytest.raises(ValueError):
        Signer(b"")


def test_replay_guard_refuses_stale_replayed_and_malformed():
    guard = ReplayGuard(skew=60, limit=3)
    now = 1_700_000_000
    assert guard.check("a" * 32, now, now) is None
    assert guard.check("a" * 32, now, now + 1) == "replayed"
    assert guard.check("b" * 32, now - 61, now) == "stale"
    assert guard.check("b" * 32, now + 61, now) == "stale"
    assert guard.check("b" * 32, True, now) == "stale"
    assert guard.check("short", now, now) == "stale"
    for i in range(5):
        assert guard.check(f"{i:032x}", now, now) is None
    assert len(guard) == 3                                   # bounded memory
    assert guard.check("c" * 32, now + 200, now + 200) is None
    assert len(guard) == 1                                   # the old ones expired
