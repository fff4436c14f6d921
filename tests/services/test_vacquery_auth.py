"""Authenticated VacQuery on real sockets: a keyed responder answers only valid, fresh,
signed requests for itself; the keyed client believes only signed replies; unkeyed
peers listed for a migration still work; a bad key file is a configuration error."""

from __future__ import annotations

import os
import socket
import time

import pytest

from vac.core import vacquery as vq
from vac.core import vqauth
from vac.core.vqauth import Signer
from vac.errors import ConfigError
from vac.services import peers, spacekey
from vac.services.configload import load_config
from vac.services.sourcegate import SourceGate
from tests.services.respondertools import (LiveResponder, ask, make_cfg, running_factory,
                                           write)
from tests.services.test_peers import Fake, machines

F = "factory1.example.com"
KEY = b"7f3a0c9d5e1b2a4f8c6d0e3b5a7f9c1d"
KEY_FILE = "/etc/vac-space.key"
SPACE = "vac01.example.com"


def install_key(paths, key: bytes = KEY, mode: int = 0o600) -> str:
    """The key file below ``paths``, replaced atomically (as an admin should)."""
    path = paths.under_root(KEY_FILE)
    write(path + ".new", key.decode() + "\n")
    os.chmod(path + ".new", mode)
    os.replace(path + ".new", path)
    return path


def keyed_cfg(**settings):
    return make_cfg(F, [F], query_key_file=KEY_FILE, **settings)


@pytest.fixture
def state(paths):
    install_key(paths)
    return running_factory(paths, F, 2)


def signed(key=KEY, target=F, when=None, nonce=None, mtype=vq.MACHINES_QUERY) -> bytes:
    msg = vq.request_dict(mtype, SPACE, "c" * 64, "04.00.00", "vac-command")
    msg.update(vqauth.keyed_fields(target, int(time.time()) if when is None else when,
                                   nonce or os.urandom(16).hex()))
    return Signer(key).sign(vq.encode(msg))


def test_keyed_responder_answers_only_valid_fresh_requests_for_itself(state):
    gate = SourceGate(resolve=lambda name: [])
    with LiveResponder(state, keyed_cfg(), gate=gate) as live:
        good = signed()
        replies = ask(live.address, good, 2, 3, raw=True)
        assert len(replies) == 2 and all(Signer(KEY).verify(r) for r in replies)
        unkeyed = vq.encode(vq.request_dict(vq.MACHINES_QUERY, SPACE, "c", "1", "-"))
        for refused in (unkeyed, signed(key=b"an attacker's guess of the key!!"),
                        good, signed(target="factory2.example.com"),
                        signed(when=int(time.time()) - 3600), good[:-6] + b'0000"}'):
            assert ask(live.address, refused, 1, 0.3, raw=True) == []
        refused = dict(live.responder.stats.refused)
    assert {k: refused[k] for k in ("unsigned", "forged", "replayed", "target", "stale")} \
        == {"unsigned": 1, "forged": 2, "replayed": 1, "target": 1, "stale": 1}


def test_migration_unkeyed_sources_still_answered(state):
    gate = SourceGate(resolve=lambda name: [])
    cfg = keyed_cfg(query_allowed_sources=("127.0.0.2/32", "127.0.0.3/32"),
                    query_unkeyed_sources=("127.0.0.2/32",))
    unkeyed = vq.request_dict(vq.FACTORY_QUERY, SPACE, "c", "1", "-")
    with LiveResponder(state, cfg, gate=gate) as live:
        (reply,) = ask(live.address, unkeyed, 1, 3, source="127.0.0.2", raw=True)
        assert Signer(KEY).verify(reply)        # replies are signed all the same
        assert ask(live.address, unkeyed, 1, 0.3, source="127.0.0.3") == []


def test_keyed_client_and_responder_agree_and_forged_replies_are_ignored(state):
    signer = spacekey.load(state, keyed_cfg())
    with LiveResponder(state, keyed_cfg(), gate=SourceGate(resolve=lambda n: [])) as live:
        result = peers.query_machines(keyed_cfg(), resolver=lambda name: live.address,
                                      paths=state, timeout=3)
    assert result.complete and len(result[F]) == 2

    forger = Fake(F, lambda f, r, n: [Signer(b"not the space key, but 32 bytes!").sign(
        vq.encode(m)) for m in machines(2, f, r)])
    plain = Fake("f2.example.com", lambda f, r, n: machines(2, f, r))
    try:
        cfg = make_cfg(F, [F, "f2.example.com"], query_key_file=KEY_FILE)
        table = {F: forger.address, "f2.example.com": plain.address}
        result = peers.query_machines(cfg, resolver=table.get, signer=signer, timeout=0.5)
        assert result.missing == sorted([F, "f2.example.com"])     # forged and unsigned
        request = forger.requests[0]
        assert request["target"] == F and len(request["nonce"]) == 32 and "hmac" in request
        assert len({r["nonce"] for r in forger.requests}) == len(forger.requests)
        migrating = make_cfg(F, ["f2.example.com"], query_key_file=KEY_FILE,
                             query_unkeyed_sources=("127.0.0.0/8",))
        result = peers.query_machines(migrating, resolver=table.get, signer=signer,
                                      timeout=2)
        assert result.complete and len(result["f2.example.com"]) == 2
    finally:
        forger.close()
        plain.close()


@pytest.mark.parametrize("mode,content,problem", [
    (0o644, KEY, "readable by group or others"),
    (0o620, KEY, "writable or executable by group or others"),
    (0o600, b"short", "holds 5 bytes"),
])
def test_bad_key_file_is_a_config_error_naming_it(paths, mode, content, problem):
    write(paths.etc_vac_conf, f"[settings]\nvac_space = {SPACE}\nfactory_hostname = {F}\n"
          f"query_key_file = {KEY_FILE}\n")
    path = install_key(paths, content, mode)
    with pytest.raises(ConfigError) as error:
        load_config(paths, pipes="none")
    assert "query_key_file" in str(error.value) and path in str(error.value)
    assert problem in str(error.value)
    assert error.value.fallback.settings.query_key_file == KEY_FILE   # roles keep serving
    os.unlink(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(paths, pipes="none")


def test_without_a_key_requests_are_the_original_ones():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        peers.query_factories(make_cfg(F, [F]), resolver=lambda n: sock.getsockname(),
                              timeout=0.2)
        data, _ = sock.recvfrom(4096)
    assert not vqauth.is_signed(data)
    assert vq.decode_request(data).nonce is None and b"nonce" not in data \
        and b"target" not in data and b"time_sent" not in data


def test_rotated_key_is_used_and_an_unreadable_one_answers_nobody(state):
    with LiveResponder(state, keyed_cfg(), gate=SourceGate(resolve=lambda n: [])) as live:
        assert len(ask(live.address, signed(), 2, 3)) == 2
        new_key = b"the next space key, 32 bytes long"
        path = install_key(state, new_key)
        os.utime(path, (1, 1))                   # a different mtime for sure
        live.responder._next_key_check = 0.0     # do not wait for the 5 s check
        deadline = time.monotonic() + 5
        while not ask(live.address, signed(key=new_key), 2, 0.2):
            assert time.monotonic() < deadline, "the rotated key was not taken"
        assert ask(live.address, signed(), 2, 0.3) == []
        refused = live.responder.stats.refused["nokey"]
        os.chmod(path, 0o644)
        live.responder._next_key_check = 0.0
        deadline = time.monotonic() + 5
        while live.responder.stats.refused["nokey"] == refused:
            ask(live.address, signed(key=new_key), 2, 0.2)
            assert time.monotonic() < deadline, "an open key file was still used"
        assert ask(live.address, signed(key=new_key), 2, 0.3) == []
