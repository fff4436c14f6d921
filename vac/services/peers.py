"""VacQuery client (SPEC §7.5): scatter a query to the factories of the space, gather replies.

Every factory is asked at once; the ones that have not answered completely are asked
again on an adaptive schedule (vac.core.pollplan: RTT-based timeout, exponential
back-off, a factory silent for 1.5-2 s is given up) until all have answered or
``udp_timeout_seconds`` has passed. Replies with the wrong cookie, space, type or shape
are ignored. With a space key (``query_key_file``) every request is signed (fresh nonce,
time and target factory) and a reply is believed only with a valid HMAC, or unsigned
from ``query_unkeyed_sources`` (vac.core.vqauth).
"""

from __future__ import annotations

import logging
import os
import time
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

from vac import __version__
from vac.adapters import dns, udp
from vac.core import vacquery as vq
from vac.core import vqauth
from vac.core.configtypes import Config
from vac.core.pollplan import PollPlan
from vac.core.querygate import SourcePolicy
from vac.paths import Paths
from vac.services import spacekey

log = logging.getLogger(__name__)

Address = Tuple[str, int]
Resolver = Callable[[str], Optional[Address]]
# called with (the factory's place in the result, the reply's key, the reply) for each
# reply kept, in the order they come
ReplyHook = Callable[[int, str, Dict[str, Any]], None]

# reply type -> key of the per-factory reply map and the "expected total" field
_KEYS = {vq.MACHINE_STATUS: ("machine", "num_machines"),
         vq.MACHINETYPE_STATUS: ("machinetype", "num_machinetypes"),
         vq.SUBSPACE_STATUS: ("machinetype", "num_machinetypes"),
         vq.FACTORY_STATUS: (None, None)}
Extras = Mapping[str, Mapping[str, Any]]
# transport(gather, addresses, make, timeout): send make(target) to each target, feed
# every datagram that comes back to gather.accept(data, peer), until done or timeout
Transport = Callable[[Any, Mapping[str, Address], Callable[[str], bytes], float], None]


class QueryResult(Mapping[str, Any]):
    """factory -> replies (key -> reply dict; the reply itself for factory queries).

    ``missing``: factories that sent nothing acceptable; ``incomplete``: factories that
    answered only part (fewer replies than they announced). Both are sorted.
    """

    def __init__(self, replies: Dict[str, Any], missing: Sequence[str],
                 incomplete: Sequence[str] = ()):
        self.replies = replies
        self.missing = sorted(missing)
        self.incomplete = sorted(incomplete)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.incomplete

    @property
    def not_answered(self) -> List[str]:
        return sorted(set(self.missing) | set(self.incomplete))

    def __getitem__(self, factory: str) -> Any:
        return self.replies[factory]

    def __iter__(self) -> Iterator[str]:
        return iter(self.replies)

    def __len__(self) -> int:
        return len(self.replies)

    def __repr__(self) -> str:
        return f"QueryResult({sorted(self.replies)}, missing={self.missing})"


class _Gather:
    """Replies collected so far for one query batch."""

    def __init__(self, targets: Sequence[str], reply_type: str, space: str, salt: str,
                 signer: Optional[vqauth.Signer] = None,
                 unkeyed: Optional[SourcePolicy] = None,
                 on_reply: Optional[ReplyHook] = None, also: Sequence[str] = ()):
        self.reply_type, self.space, self.salt = reply_type, space, salt
        self.also = tuple(also)             # reply types taken besides reply_type
        self.signer, self.unkeyed, self.on_reply = signer, unkeyed, on_reply
        self.position = {t: i for i, t in enumerate(targets)}
        self.key, self.total_field = _KEYS[reply_type]
        self.got: Dict[str, Dict[str, dict]] = {t: {} for t in targets}
        self.expected: Dict[str, int] = {t: 1 for t in targets}
        self.cookies: Dict[str, str] = {t: vq.cookie(salt, t) for t in targets}

    def complete(self, factory: str) -> bool:
        return len(self.got[factory]) >= self.expected[factory]

    def authentic(self, data: bytes, peer: Any) -> bool:
        """Without a key everything is; with one, a valid HMAC or an unkeyed peer."""
        if self.signer is None:
            return True
        if vqauth.is_signed(data):
            return self.signer.verify(data)
        return self.unkeyed is not None and self.unkeyed.allows(str(peer[0]))

    def accept(self, data: bytes, peer: Any) -> Optional[str]:
        """Store a valid reply; returns its factory if it was new, else None (logged)."""
        if not self.authentic(data, peer):
            log.debug("Ignoring reply from %s: no valid HMAC of the space key", peer)
            return None
        reply, error = vq.parse_response(data)
        if reply is not None and reply["factory"] not in self.got:
            error = f"unexpected factory {reply['factory']!r}"
        elif reply is not None:
            rtype = reply["message_type"] if reply["message_type"] in self.also \
                else self.reply_type
            error = vq.reply_matches(reply, rtype, self.space, self.salt,
                                     self.cookies[reply["factory"]])
        if error is not None:
            log.debug("Ignoring reply from %s: %s", peer, error)
            return None
        factory = reply["factory"]
        key = "" if self.key is None else str(reply[self.key])
        if key in self.got[factory]:
            return None                         # a duplicate (answer to a resend)
        self.got[factory][key] = reply
        if self.on_reply is not None:           # e.g. summed while the reply is hot
            self.on_reply(self.position[factory], key, reply)
        total = reply.get(self.total_field) if self.total_field else None
        if isinstance(total, int) and total >= 0:
            self.expected[factory] = total
        return factory

    def result(self) -> QueryResult:
        replies: Dict[str, Any] = {}
        for factory, got in self.got.items():
            if got:
                replies[factory] = got[""] if self.key is None else dict(sorted(got.items()))
        missing = [f for f, got in self.got.items() if not got and self.expected[f] > 0]
        incomplete = [f for f, got in self.got.items() if got and not self.complete(f)]
        return QueryResult(replies, missing, incomplete)


def target_names(cfg: Config, factories: Optional[Iterable[str]]) -> List[str]:
    """Canonical, de-duplicated target names (given ones, else ``factories``)."""
    this = cfg.settings.factory_hostname
    names = cfg.settings.factories if factories is None else factories
    result: List[str] = []
    for name in names:
        canonical = dns.canonical_name(name, this)
        if canonical and canonical not in result:
            result.append(canonical)
    return result


def default_resolver(port: int) -> Resolver:
    def resolve(name: str) -> Optional[Address]:
        address = dns.resolve_ipv4(name)
        return (address, port) if address else None
    return resolve


def query(cfg: Config, request_type: str, *, client_name: Optional[str] = "-",
          factories: Optional[Iterable[str]] = None, timeout: Optional[float] = None,
          space: Optional[str] = None, resolver: Optional[Resolver] = None,
          paths: Optional[Paths] = None, signer: Optional[vqauth.Signer] = None,
          random_bytes: Callable[[int], bytes] = os.urandom,
          on_reply: Optional[ReplyHook] = None, extras: Optional[Extras] = None,
          accept: Sequence[str] = (), transport: Optional[Transport] = None) -> QueryResult:
    """Send ``request_type`` to every target factory and gather the replies.

    With ``query_key_file`` set the space key is read below ``paths`` (default: /)
    unless a ``signer`` is given; a bad key raises ConfigError. ``on_reply`` sees each
    reply kept (position = the factory's place among the result's factories).
    ``extras``: more request fields for some targets (target -> fields, signed with the
    rest); ``accept``: reply types taken besides the request's own; ``transport``: the
    exchange instead of a UDP socket (the simulator's).
    """
    space = space or cfg.settings.vac_space
    timeout = cfg.settings.udp_timeout_seconds if timeout is None else timeout
    resolver = resolver or default_resolver(cfg.settings.vacquery_port)
    if signer is None and cfg.settings.query_key_file:
        signer = spacekey.load(paths or Paths.from_root(None), cfg)
    targets = target_names(cfg, factories)
    salt = vq.make_salt(random_bytes(32))
    reply_type = vq.REQUEST_TYPES[request_type][1]
    gather = _Gather(targets, reply_type, space, salt, signer,
                     SourcePolicy(networks=cfg.settings.query_unkeyed_sources, loopback=False),
                     on_reply, accept)
    addresses = {t: resolver(t) for t in targets}
    for name in (t for t, a in addresses.items() if a is None):
        log.warning("Cannot resolve factory %s: not queried", name)
    make = _Requests(request_type, space, salt, client_name, signer, random_bytes, extras)
    (transport or _udp)(gather, {t: a for t, a in addresses.items() if a is not None},
                        make, timeout)
    return gather.result()


def _udp(gather: _Gather, addresses: Mapping[str, Address], make: Callable[[str], bytes],
         timeout: float) -> None:
    sock = udp.open_socket()
    try:
        _poll(sock, gather, addresses, make, timeout)
    finally:
        sock.close()


class _Requests:
    """Request datagrams of one batch: unkeyed ones are built once per factory; keyed
    ones get a fresh nonce and time for every send (the responder refuses replays)."""

    def __init__(self, request_type: str, space: str, salt: str, client_name: Optional[str],
                 signer: Optional[vqauth.Signer], random_bytes: Callable[[int], bytes],
                 extras: Optional[Extras] = None):
        self.request_type, self.space, self.salt = request_type, space, salt
        self.extras = extras or {}
        self.client_name, self.signer, self.random_bytes = client_name, signer, random_bytes
        self._built: Dict[str, bytes] = {}

    def __call__(self, target: str) -> bytes:
        if self.signer is None and target in self._built:
            return self._built[target]
        message = vq.request_dict(self.request_type, self.space, vq.cookie(self.salt, target),
                                  __version__, self.client_name)
        message.update(self.extras.get(target, {}))
        if self.signer is None:
            data = self._built[target] = vq.encode(message)
            return data
        message.update(vqauth.keyed_fields(target, int(time.time()),
                                           self.random_bytes(vqauth.NONCE_HEX // 2).hex()))
        return self.signer.sign(vq.encode(message))


def _poll(sock: Any, gather: _Gather, addresses: Mapping[str, Address],
          make: Callable[[str], bytes], timeout: float) -> None:
    """Send, receive and re-send on the PollPlan schedule until it says the batch is over.
    Queued replies are always read before anybody is given up or asked again (a client
    that was not scheduled for a while must not mistake its own delay for silence)."""
    plan = PollPlan(addresses, time.monotonic() + timeout)
    wake: Optional[float] = 0.0
    while wake is not None:
        _read(sock, gather, plan, wake)
        now = time.monotonic()
        due = plan.due(now)
        for address, error in udp.send_to_many(sock, [(make(t), addresses[t]) for t in due]):
            log.debug("Cannot send query to %s: %s", address, error)
        for target in due:
            plan.sent(target, now)
        wake = plan.next_wakeup(now)
    _read(sock, gather, plan, 0.0)
    for factory in plan.given_up():
        log.debug("No reply from factory %s after %.1f s", factory, plan.silent_seconds)


def _read(sock: Any, gather: _Gather, plan: PollPlan, until: float) -> None:
    """Wait until monotonic ``until`` for a reply, then take every queued one."""
    received = udp.receive(sock, until, vq.MAX_REPLY_BYTES)
    while received is not None:
        factory = gather.accept(*received)
        if factory is not None:
            plan.heard(factory, time.monotonic(), gather.complete(factory))
        received = udp.receive(sock, 0.0, vq.MAX_REPLY_BYTES)


def query_machinetypes(cfg: Config, *, client_name: str = "vacd-factory",
                       factories: Optional[Iterable[str]] = None,
                       timeout: Optional[float] = None, **kw: Any) -> QueryResult:
    """factory -> machinetype -> machinetype_status reply."""
    return query(cfg, vq.MACHINETYPES_QUERY, client_name=client_name, factories=factories,
                 timeout=timeout, **kw)


def query_machines(cfg: Config, *, client_name: str = "vac-command",
                   factories: Optional[Iterable[str]] = None,
                   timeout: Optional[float] = None, **kw: Any) -> QueryResult:
    """factory -> machine name -> machine_status reply."""
    return query(cfg, vq.MACHINES_QUERY, client_name=client_name, factories=factories,
                 timeout=timeout, **kw)


def query_factories(cfg: Config, *, client_name: str = "vacd-factory",
                    factories: Optional[Iterable[str]] = None,
                    timeout: Optional[float] = None, **kw: Any) -> QueryResult:
    """factory -> its factory_status reply."""
    return query(cfg, vq.FACTORY_QUERY, client_name=client_name, factories=factories,
                 timeout=timeout, **kw)
