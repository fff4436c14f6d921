"""VacQuery client (SPEC §7.5): scatter a query to the factories of the space, gather replies.

Rounds re-ask only the factories whose reply set is still incomplete; gathering stops as
soon as every factory is complete, when a round's receive wait (udp_timeout_seconds / 5)
passes with nothing new, or at the overall deadline (udp_timeout_seconds). Replies with
the wrong cookie, space, type or shape are ignored.
"""

from __future__ import annotations

import logging
import os
import time
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

from vac import __version__
from vac.adapters import dns, udp
from vac.constants import UDP_TRIES
from vac.core import vacquery as vq
from vac.core.configtypes import Config

log = logging.getLogger(__name__)

Address = Tuple[str, int]
Resolver = Callable[[str], Optional[Address]]

# reply type -> key of the per-factory reply map and the "expected total" field
_KEYS = {vq.MACHINE_STATUS: ("machine", "num_machines"),
         vq.MACHINETYPE_STATUS: ("machinetype", "num_machinetypes"),
         vq.FACTORY_STATUS: (None, None)}


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

    def __init__(self, targets: Sequence[str], reply_type: str, space: str, salt: str):
        self.reply_type, self.space, self.salt = reply_type, space, salt
        self.key, self.total_field = _KEYS[reply_type]
        self.got: Dict[str, Dict[str, dict]] = {t: {} for t in targets}
        self.expected: Dict[str, int] = {t: 1 for t in targets}

    def complete(self, factory: str) -> bool:
        return len(self.got[factory]) >= self.expected[factory]

    def accept(self, data: bytes, peer: Any) -> bool:
        """Store a valid reply; False (and a debug log) for anything else."""
        reply, error = vq.parse_response(data)
        if reply is not None:
            error = vq.reply_matches(reply, self.reply_type, self.space, self.salt)
        if reply is not None and error is None and reply["factory"] not in self.got:
            error = f"unexpected factory {reply['factory']!r}"
        if error is not None:
            log.debug("Ignoring reply from %s: %s", peer, error)
            return False
        factory = reply["factory"]
        if self.key is None:
            self.got[factory] = {"": reply}
        else:
            self.got[factory][str(reply[self.key])] = reply
            total = reply.get(self.total_field)
            if isinstance(total, int) and total >= 0:
                self.expected[factory] = total
        return True

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
          random_bytes: Callable[[int], bytes] = os.urandom) -> QueryResult:
    """Send ``request_type`` to every target factory and gather the replies."""
    space = space or cfg.settings.vac_space
    timeout = cfg.settings.udp_timeout_seconds if timeout is None else timeout
    resolver = resolver or default_resolver(cfg.settings.vacquery_port)
    targets = target_names(cfg, factories)
    salt = vq.make_salt(random_bytes(32))
    reply_type = vq.REQUEST_TYPES[request_type][1]
    gather = _Gather(targets, reply_type, space, salt)
    addresses = {t: resolver(t) for t in targets}
    for name in (t for t, a in addresses.items() if a is None):
        log.warning("Cannot resolve factory %s: not queried", name)
    sock = udp.open_socket()
    try:
        _rounds(sock, gather, addresses, request_type, client_name, timeout)
    finally:
        sock.close()
    return gather.result()


def _rounds(sock: Any, gather: _Gather, addresses: Mapping[str, Optional[Address]],
            request_type: str, client_name: Optional[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    round_wait = timeout / UDP_TRIES
    for _ in range(UDP_TRIES + 1):
        pending = [t for t, a in addresses.items() if a is not None and not gather.complete(t)]
        if not pending or time.monotonic() >= deadline:
            return
        datagrams = [(vq.encode(vq.request_dict(request_type, gather.space,
                                                vq.cookie(gather.salt, t), __version__,
                                                client_name)), addresses[t])
                     for t in pending]
        for address, error in udp.send_to_many(sock, datagrams):
            log.debug("Cannot send query to %s: %s", address, error)
        _receive_round(sock, gather, pending, min(deadline, time.monotonic() + round_wait),
                       deadline, round_wait)


def _receive_round(sock: Any, gather: _Gather, pending: Sequence[str], round_deadline: float,
                   deadline: float, round_wait: float) -> None:
    waiting = [t for t in pending if not gather.complete(t)]
    while waiting:
        received = udp.receive(sock, round_deadline, vq.MAX_REPLY_BYTES)
        if received is None:
            return
        if gather.accept(*received):
            round_deadline = min(deadline, time.monotonic() + round_wait)
            waiting = [t for t in waiting if not gather.complete(t)]


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
