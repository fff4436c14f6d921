"""The VacQuery responder role (SPEC §2.4, §7.3): answer status queries of the space.

Reads the state directory through ``vac.adapters.statefs`` only (never writes slot state),
loads the configuration at start and again when a configuration file changes or vacd asks
for a reload, and never dies on a datagram. Heartbeat file: ``paths.heartbeat("responder")``
at least every 30 s.

Who gets an answer (anti-amplification): only the addresses of ``factories`` (resolved
every minute), ``query_allowed_sources`` and this host's loopback, each at most
RATE_PER_SECOND requests per second after a burst (vac.core.querygate); with a space key
(``query_key_file``) only requests with a valid HMAC, for this factory, recent and never
seen before (vac.core.vqauth), or unsigned ones from ``query_unkeyed_sources``. Every
other datagram gets nothing. Replies are encoded once per snapshot (vac.services.
replycache); received / answered / refused counts are logged once a minute. A
``machinetypes_query`` naming this factory's subspace is answered with the subspace's
sums (``subspace_status``, vac.services.spacepoll) when polling by subspaces is on and
the digest is fresh, else as any other.

``python -m vac.services.responder --root DIR`` runs the role alone (tests, benchmarks).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from vac import __version__
from vac.adapters import host, statefs, sysinfo, udp
from vac.constants import DAEMON_ROLES
from vac.core import status
from vac.core import vacquery as vq
from vac.core.configtypes import Config
from vac.core.querygate import QueryCounters
from vac.core.vqauth import ReplayGuard, Signer, is_signed
from vac.errors import ConfigError, ProtocolError
from vac.model import SlotRecord
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import metrics_hooks, spacekey
from vac.services.gather import own_facts
from vac.services.replycache import ReplyCache
from vac.services.rolekit import CONFIG_CHECK_SECONDS, ConfigHolder, write_heartbeat
from vac.services.sourcegate import SourceGate

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0      # heartbeat refresh period (contract: at most 60 s)
POLL_SECONDS = 0.5            # longest wait before checking the stop flag
RETRY_SECONDS = 10.0          # after a bind or config failure
LOG_EVERY_SECONDS = 10.0      # rate limit for malformed-datagram warnings
STATS_SECONDS = 60.0          # period of the counters log line
BATCH = 256                   # datagrams answered per wake-up at most


def local_bodies(cfg: Config, paths: Paths, reply_type: str, now: float
                 ) -> List[Dict[str, Any]]:
    """Status bodies of this factory for one reply type, from the files (read-only)."""
    factory = cfg.settings.factory_hostname
    if reply_type == vq.FACTORY_STATUS:
        return [status.factory_status(cfg, statefs.read_counts(paths), sysinfo.gather(paths),
                                      sysinfo.heartbeat_times(paths, DAEMON_ROLES), now)]
    hb_files = {n: mt.heartbeat_file for n, mt in cfg.machinetypes.items()}
    slots = statefs.read_slots(paths, factory, slot_count(paths), hb_files)
    if reply_type == vq.MACHINE_STATUS:
        return status.machine_statuses(cfg, slots, now)
    return machinetype_bodies(cfg, paths, slots, now)


def machinetype_bodies(cfg: Config, paths: Paths, slots: List[SlotRecord], now: float
                       ) -> List[Dict[str, Any]]:
    """machinetype_status bodies of this factory: ``slots`` plus each last finish."""
    own = own_facts(cfg, paths, now)
    decayed = own.usage if cfg.settings.share_half_life_seconds > 0 else None
    return status.machinetype_statuses(cfg, slots, now, own.finishes, decayed)


def slot_count(paths: Paths) -> int:
    """Slots of this factory: the counts file's figure, else the host's processors."""
    counts = statefs.read_counts(paths)
    return counts[1] if counts and counts[1] > 0 else host.processor_count(paths)


def wrap(cfg: Config, reply_type: str, body: Dict[str, Any], cookie_hex: str, now: float,
         client_name: Optional[str] = "-") -> Dict[str, Any]:
    """Full response message of this factory around ``body``."""
    s = cfg.settings
    return vq.response(reply_type, body, space=s.vac_space, factory=s.factory_hostname,
                       cookie_hex=cookie_hex, version=__version__, time_sent=int(now),
                       site=vq.site_name(s.vac_space, s.gocdb_sitename),
                       client_name=client_name)


class Responder:
    """One factory's responder: socket, configuration, space key, gate and counters."""

    def __init__(self, paths: Paths, load: Optional[Callable[[], Config]] = None,
                 bind: Optional[Tuple[str, int]] = None, snapshot_seconds: float = 1.0,
                 stats_seconds: float = STATS_SECONDS, gate: Optional[SourceGate] = None):
        self.paths = paths
        self.config = ConfigHolder(paths, (lambda _paths: load()) if load else None,
                                   check_seconds=CONFIG_CHECK_SECONDS)
        self._bind = bind
        self.stats = QueryCounters()
        self.stats_seconds = stats_seconds
        self.gate = gate or SourceGate()
        self.cache = ReplyCache(self._messages, snapshot_seconds)
        self.subspace_key: Optional[str] = None     # of the cached subspace_status replies
        self.replay = ReplayGuard()
        self.signer: Optional[Signer] = None
        self.key_error = False                  # key configured but unusable: answer nobody
        self._key_signature: Any = None
        self._next_key_check = 0.0
        self._next_heartbeat = 0.0
        self._next_stats = time.monotonic() + stats_seconds
        self.sock = None
        self._last_warning = 0.0
        self._suppressed = 0

    @property
    def cfg(self) -> Optional[Config]:
        """The configuration answered with (None until one could be loaded)."""
        return self.config.cfg

    # --- configuration and key ---------------------------------------------------
    def refresh_config(self, force: bool = False) -> Optional[Config]:
        """(Re)load the configuration if forced or its files changed; keep the old on error."""
        if self.config.reload(force):
            self.gate.configure(self.config.cfg)
            self._load_key(self.config.cfg)
        return self.config.cfg

    def _load_key(self, cfg: Config) -> None:
        self._key_signature = spacekey.signature(self.paths, cfg)
        try:
            self.signer, self.key_error = spacekey.load(self.paths, cfg), False
        except ConfigError as e:
            log.error("%s: no VacQuery request is answered until it is fixed", e)
            self.signer, self.key_error = None, True
        self.cache.clear(self.signer)
        log.info("VacQuery answers %d factories, networks [%s] and the loopback; %s",
                 len(self.gate.names), " ".join(cfg.settings.query_allowed_sources),
                 f"space key {cfg.settings.query_key_file}" if cfg.settings.query_key_file
                 else "no space key")

    def _check_key(self, clock: float) -> None:
        """Reload the space key when its file changed (rotation)."""
        if self.cfg is None or clock < self._next_key_check:
            return
        self._next_key_check = clock + CONFIG_CHECK_SECONDS
        if spacekey.signature(self.paths, self.cfg) != self._key_signature:
            self._load_key(self.cfg)

    def address(self) -> Tuple[str, int]:
        if self._bind is not None:
            return self._bind
        assert self.cfg is not None
        return self.cfg.settings.responder_bind_address, self.cfg.settings.vacquery_port

    def open(self) -> Tuple[str, int]:
        """Bind the UDP socket (raises OSError); returns the bound address."""
        bind_address, port = self.address()
        self.sock = udp.open_socket(bind_address, port, raise_limits=self.paths.root == "/")
        bound = self.sock.getsockname()
        log.info("Vac responder listening on %s:%d", bound[0], bound[1])
        return bound[0], bound[1]

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # --- answering (per datagram) --------------------------------------------------
    def _messages(self, reply_type: str, cookie_hex: str, now: float
                  ) -> List[Dict[str, Any]]:
        cfg = self.cfg
        assert cfg is not None
        if reply_type == vq.SUBSPACE_STATUS:
            from vac.services import spacepoll      # only with subspace polling on
            own = local_bodies(cfg, self.paths, vq.MACHINETYPE_STATUS, now)
            self.subspace_key, bodies = spacepoll.subspace_bodies(cfg, self.paths, now, own)
        else:
            bodies = local_bodies(cfg, self.paths, reply_type, now)
        return [wrap(cfg, reply_type, body, cookie_hex, now) for body in bodies]

    def _datagrams(self, request: vq.Request, cfg: Config, clock: float) -> List[bytes]:
        """The reply datagrams: this subspace's sums if asked for them, the published
        digest is fresh and of the subspace asked for (vac.services.spacepoll), else
        what an original factory answers."""
        reply_type = vq.REQUEST_TYPES[request.message_type][1]
        if request.subspace is not None and reply_type == vq.MACHINETYPE_STATUS and \
                cfg.settings.subspace_min_factories > 0:
            replies = self.cache.datagrams(vq.SUBSPACE_STATUS, request.cookie, clock)
            if replies and self.subspace_key == request.subspace:
                return replies
        return self.cache.datagrams(reply_type, request.cookie, clock)

    def answer(self, data: bytes, address: Any) -> Sequence[bytes]:
        """The datagrams answering one datagram from ``address`` (empty: nothing is sent).
        Never raises: a failure is logged and counted (datagram boundary)."""
        source = address[0]
        stats = self.stats
        stats.received += 1
        try:
            clock = time.monotonic()
            refusal = self.gate.admit(source, clock)
            if refusal is None:
                return self._answer(data, source, clock)
        except Exception:                       # datagram boundary
            stats.errors += 1
            metrics_hooks.count("vacquery_refused", reason="error")
            log.exception("Failed to answer datagram from %s", address)
            return ()
        self._refuse(refusal, source)
        return ()

    def _answer(self, data: bytes, source: str, clock: float) -> Sequence[bytes]:
        try:
            request = vq.decode_request(data)
        except ProtocolError as e:
            self._refuse("malformed", source)
            self._warn("Malformed VacQuery datagram from %s: %s", source, e)
            return ()
        cfg = self.config.cfg
        if cfg is None or request.space != cfg.settings.vac_space:
            self._refuse("space", source)
            return ()
        if self.signer is not None or self.key_error:
            refusal = self._authenticate(data, request, source, cfg)
            if refusal is not None:
                self._refuse(refusal, source)
                return ()
        replies = self._datagrams(request, cfg, clock)
        self.stats.answer(request.message_type, source, len(replies), sum(map(len, replies)))
        metrics_hooks.count("vacquery_requests", type=request.message_type)
        return replies

    def _refuse(self, reason: str, source: str) -> None:
        """Count a datagram that gets no answer (log summary and metrics)."""
        self.stats.refuse(reason, source)
        metrics_hooks.count("vacquery_refused", reason=reason)

    def _authenticate(self, data: bytes, request: vq.Request, source: str, cfg: Config
                      ) -> Optional[str]:
        """None if a keyed responder may answer ``request``, else the refusal reason."""
        if not is_signed(data):
            return None if self.gate.unkeyed.allows(source) else "unsigned"
        if self.signer is None:
            return "nokey"
        if not self.signer.verify(data):
            return "forged"
        if request.target != cfg.settings.factory_hostname:
            return "target"
        return self.replay.check(request.nonce, request.time_sent, time.time())

    def handle(self, data: bytes, peer: Tuple[str, int]) -> None:
        """Answer one datagram and send the replies (the serve loop uses :meth:`answer`
        through udp.drain)."""
        replies = self.answer(data, peer)
        for failure in udp.send_to_many(self.sock, ((r, peer) for r in replies)):
            log.warning("Cannot send reply to %s: %s", failure[0], failure[1])

    def _warn(self, fmt: str, *args: Any) -> None:
        clock = time.monotonic()
        if clock - self._last_warning < LOG_EVERY_SECONDS:
            self._suppressed += 1
            return
        if self._suppressed:
            log.warning("%d further malformed datagrams not logged", self._suppressed)
        self._last_warning, self._suppressed = clock, 0
        log.warning(fmt, *args)

    # --- main loop ------------------------------------------------------------
    def serve(self, control: RoleControl) -> None:
        """Loop until ``control.should_stop()``."""
        log.info("Start new vac responder main loop")
        while not control.should_stop():
            self._housekeeping()
            if not self._ready(control):
                continue
            self.gate.maybe_refresh(time.monotonic())
            if udp.wait_readable(self.sock, POLL_SECONDS):
                _, failures = udp.drain(self.sock, self.answer, vq.MAX_REQUEST_BYTES + 1,
                                        BATCH)
                for address, error in failures:
                    log.warning("Cannot send reply to %s: %s", address, error)
        self.log_stats()
        self.close()

    def _housekeeping(self) -> None:
        """Heartbeat, counters line and key file check when due."""
        clock = time.monotonic()
        if clock >= self._next_heartbeat:
            write_heartbeat(self.paths, "responder")
            self._next_heartbeat = clock + HEARTBEAT_SECONDS
        if clock >= self._next_stats:
            self.log_stats()
        self._check_key(clock)

    def log_stats(self) -> None:
        """Log the counters of the period just ended (nothing if nothing arrived)."""
        self._next_stats = time.monotonic() + self.stats_seconds
        line = self.stats.period_summary(self.stats_seconds)
        if line:
            log.info("%s", line)

    def _ready(self, control: RoleControl) -> bool:
        """Configuration loaded and socket bound; waits and returns False otherwise."""
        self.refresh_config(force=control.take_reload())
        if self.cfg is None:
            control.wait(RETRY_SECONDS)
            return False
        if self.sock is None:
            try:
                self.open()
            except OSError as e:
                address, port = self.address()
                log.error("Failed to bind to vac responder port %d%s: %s", port,
                          f" on {address}" if address else "", e)
                control.wait(RETRY_SECONDS)
                return False
        return True


def run_role(paths: Paths, control: RoleControl) -> None:
    """vacd role entry: answer VacQuery datagrams until told to stop."""
    Responder(paths).serve(control)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m vac.services.responder --root DIR``: the role alone, logging to stderr."""
    parser = argparse.ArgumentParser(prog="vac-responder")
    parser.add_argument("--root", default="/")
    parser.add_argument("--bind", help="ADDRESS:PORT instead of the configured one")
    parser.add_argument("--stats-seconds", type=float, default=STATS_SECONDS,
                        help="period of the counters log line (default 60)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [%(process)d]: %(message)s")
    control = RoleControl()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: control.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: control.request_reload())
    bind = None
    if args.bind:
        address, _, port = args.bind.rpartition(":")
        bind = (address, int(port))
    Responder(Paths.from_root(args.root), bind=bind,
              stats_seconds=args.stats_seconds).serve(control)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
