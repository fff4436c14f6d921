"""VacMon push messages and the (off by default) version logger (SPEC §7.6, §7.7).

Fire-and-forget UDP: factory_status and every machinetype_status at the end of each
factory cycle, one machine_status when a started machine is finalised, all with cookie
``"0"`` and client name ``vacd-factory``. With a space key (``query_key_file``) every
message carries its HMAC (vac.core.vqauth); a key that cannot be read sends nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from vac.adapters import dns, udp
from vac.adapters.atomicfile import file_mtime, touch
from vac.core import status
from vac.core import vacquery as vq
from vac.core.configtypes import Config
from vac.errors import ConfigError, VacError
from vac.model import SlotRecord
from vac.paths import Paths
from vac.services import spacekey
from vac.services.responder import local_bodies, slot_count, wrap

log = logging.getLogger(__name__)

CLIENT_NAME = "vacd-factory"
VERSION_LOGGER_REPEATS = 5
VERSION_LOGGER_PERIOD_SECONDS = 86400


def split_hostport(hostport: str) -> Optional[Tuple[str, int]]:
    """``host:port`` -> (host, port), or None if malformed."""
    host, _, port = hostport.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def resolve_targets(hostports: Iterable[str]) -> List[Tuple[str, int]]:
    """Addresses of the ``host:port`` list; unresolvable or malformed ones are logged."""
    targets = []
    for hostport in hostports:
        parsed = split_hostport(hostport)
        address = dns.resolve_ipv4(parsed[0]) if parsed else None
        if parsed is None or address is None:
            log.warning("Cannot send VacMon messages to %s: bad or unresolvable host:port",
                        hostport)
            continue
        targets.append((address, parsed[1]))
    return targets


def encoded(cfg: Config, paths: Paths, messages: Sequence[Dict[str, Any]]
            ) -> List[bytes]:
    """The messages as datagrams, signed with the space key if there is one; none at
    all (logged) if the key cannot be read."""
    try:
        signer = spacekey.load(paths, cfg)
    except ConfigError as e:
        log.error("Not sending VacMon messages: %s", e)
        return []
    data = [vq.encode(m) for m in messages]
    return data if signer is None else [signer.sign(d) for d in data]


def send_messages(datagrams: Sequence[bytes], targets: Sequence[Tuple[str, int]]) -> int:
    """Send every datagram to every target; returns the datagrams sent."""
    if not datagrams or not targets:
        return 0
    pairs = [(d, t) for t in targets for d in datagrams]
    sock = udp.open_socket()
    try:
        failures = udp.send_to_many(sock, pairs)
    finally:
        sock.close()
    for address, error in failures:
        log.warning("Cannot send VacMon message to %s: %s", address, error)
    return len(pairs) - len(failures)


def cycle_messages(cfg: Config, paths: Paths, now: float) -> List[Dict[str, Any]]:
    """factory_status followed by every machinetype_status, cookie ``"0"``."""
    bodies = [(vq.FACTORY_STATUS, b) for b in local_bodies(cfg, paths, vq.FACTORY_STATUS, now)]
    bodies += [(vq.MACHINETYPE_STATUS, b)
               for b in local_bodies(cfg, paths, vq.MACHINETYPE_STATUS, now)]
    return [wrap(cfg, t, b, vq.UNSOLICITED_COOKIE, now, CLIENT_NAME) for t, b in bodies]


def send_cycle_status(cfg: Config, paths: Paths, now: float) -> int:
    """End of a factory cycle: status messages to every ``vacmon_hostport``."""
    targets = resolve_targets(cfg.settings.vacmon_hostport)
    if not targets:
        return 0
    return send_messages(encoded(cfg, paths, cycle_messages(cfg, paths, now)), targets)


def send_machine_status(cfg: Config, paths: Paths, slot: SlotRecord, now: float) -> int:
    """A started machine was finalised: its machine_status to every ``vacmon_hostport``."""
    targets = resolve_targets(cfg.settings.vacmon_hostport)
    if not targets:
        return 0
    body = status.machine_status(slot, slot_count(paths))
    message = wrap(cfg, vq.MACHINE_STATUS, body, vq.UNSOLICITED_COOKIE, now, CLIENT_NAME)
    return send_messages(encoded(cfg, paths, [message]), targets)




def maybe_log_version(cfg: Config, paths: Paths, now: float,
                      sleep: Callable[[float], None] = time.sleep) -> bool:
    """Version logger: off when version_logger = 0 (the default); else once per
    86400 / version_logger seconds (and after every factory start) send factory_status
    5 times at 1-second intervals to version_logger_hostport. True if sent."""
    per_day = cfg.settings.version_logger
    if per_day <= 0:
        return False
    marker = file_mtime(paths.factory_version_logged)
    if marker is not None and now - marker < VERSION_LOGGER_PERIOD_SECONDS / per_day:
        return False
    try:
        touch(paths.factory_version_logged)
    except VacError as e:
        log.error("Cannot touch %s: %s", paths.factory_version_logged, e)
        return False
    targets = resolve_targets([cfg.settings.version_logger_hostport])
    body = local_bodies(cfg, paths, vq.FACTORY_STATUS, now)[0]
    message = wrap(cfg, vq.FACTORY_STATUS, body, vq.UNSOLICITED_COOKIE, now, CLIENT_NAME)
    datagrams = encoded(cfg, paths, [message])
    for i in range(VERSION_LOGGER_REPEATS):
        if i:
            sleep(1.0)
        send_messages(datagrams, targets)
    return True
