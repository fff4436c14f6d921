"""The VacQuery responder role (SPEC §2.4, §7.3): answer status queries of the space.

Reads the state directory through ``vac.adapters.statefs`` only (never writes slot state),
loads the configuration at start and again when a configuration file changes or vacd asks
for a reload, and never dies on a datagram: malformed ones are counted and logged at a
limited rate. Heartbeat file: ``paths.heartbeat("responder")`` at least every 30 s.

``python -m vac.services.responder --root DIR`` runs the role alone (tests, until vacd).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from vac import __version__
from vac.adapters import host, statefs, sysinfo, udp
from vac.constants import DAEMON_ROLES
from vac.core import status, usage
from vac.core import vacquery as vq
from vac.core.configtypes import Config
from vac.model import SlotRecord
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import accounting, metrics_hooks
from vac.services.rolekit import CONFIG_CHECK_SECONDS, ConfigHolder, write_heartbeat

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0      # heartbeat refresh period (contract: at most 60 s)
POLL_SECONDS = 0.5            # longest wait before checking the stop flag
RETRY_SECONDS = 10.0          # after a bind or config failure
LOG_EVERY_SECONDS = 10.0      # rate limit for malformed-datagram warnings


@dataclass
class Stats:
    """Counters since start (read by tests and the benchmark)."""

    received: int = 0
    answered: int = 0
    replies: int = 0
    malformed: int = 0
    wrong_space: int = 0
    errors: int = 0


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
    finishes = {}
    for name in cfg.machinetypes:
        record = statefs.read_finished(paths, name)
        if record is not None:
            finishes[name] = record
    half_life = cfg.settings.share_half_life_seconds
    decayed = usage.current(accounting.share_usage(paths), now, half_life) \
        if half_life > 0 else None
    return status.machinetype_statuses(cfg, slots, now, finishes, decayed)


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
    """One factory's responder: socket, current configuration, counters."""

    def __init__(self, paths: Paths, load: Optional[Callable[[], Config]] = None,
                 bind: Optional[Tuple[str, int]] = None, snapshot_seconds: float = 1.0):
        self.paths = paths
        self.config = ConfigHolder(paths, (lambda _paths: load()) if load else None,
                                   check_seconds=CONFIG_CHECK_SECONDS)
        self._bind = bind
        self.snapshot_seconds = snapshot_seconds
        self.stats = Stats()
        self.sock = None
        self._cache: Dict[str, Tuple[float, List[Dict[str, Any]]]] = {}
        self._last_warning = 0.0
        self._suppressed = 0

    @property
    def cfg(self) -> Optional[Config]:
        """The configuration answered with (None until one could be loaded)."""
        return self.config.cfg

    # --- configuration ------------------------------------------------------
    def refresh_config(self, force: bool = False) -> Optional[Config]:
        """(Re)load the configuration if forced or its files changed; keep the old on error."""
        if self.config.reload(force):
            self._cache.clear()
        return self.config.cfg

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

    # --- answering ----------------------------------------------------------
    def _bodies(self, cfg: Config, reply_type: str, now: float) -> List[Dict[str, Any]]:
        clock = time.monotonic()
        cached = self._cache.get(reply_type)
        if cached is not None and clock - cached[0] < self.snapshot_seconds:
            return cached[1]
        bodies = local_bodies(cfg, self.paths, reply_type, now)
        self._cache[reply_type] = (clock, bodies)
        return bodies

    def replies_for(self, data: bytes, peer: Any = None, now: Optional[float] = None
                    ) -> List[bytes]:
        """The datagrams answering one request (empty if it is not ours or malformed)."""
        cfg = self.cfg
        self.stats.received += 1
        request, error = vq.parse_request(data)
        if request is None:
            self.stats.malformed += 1
            metrics_hooks.count("vacquery_refused", reason="malformed")
            self._warn("Malformed VacQuery datagram from %s: %s", peer, error)
            return []
        if cfg is None or request.space != cfg.settings.vac_space:
            self.stats.wrong_space += 1
            metrics_hooks.count("vacquery_refused", reason="space")
            log.debug("Ignoring query for space %r from %s", request.space[:80], peer)
            return []
        now = time.time() if now is None else now
        log.info("Received %s from %s", request.message_type, peer)
        bodies = self._bodies(cfg, request.reply_type, now)
        self.stats.answered += 1
        metrics_hooks.count("vacquery_requests", type=request.message_type)
        return [vq.encode(wrap(cfg, request.reply_type, b, request.cookie, now))
                for b in bodies]

    def handle(self, data: bytes, peer: Tuple[str, int]) -> None:
        """Answer one datagram; any failure is logged and counted, never raised."""
        try:
            replies = self.replies_for(data, peer)
        except Exception:                       # datagram boundary
            self.stats.errors += 1
            metrics_hooks.count("vacquery_refused", reason="error")
            log.exception("Failed to answer datagram from %s", peer)
            return
        for failure in udp.send_to_many(self.sock, ((r, peer) for r in replies)):
            log.warning("Cannot send reply to %s: %s", failure[0], failure[1])
        self.stats.replies += len(replies)

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
        next_heartbeat = 0.0
        while not control.should_stop():
            if time.monotonic() >= next_heartbeat:
                write_heartbeat(self.paths, "responder")
                next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
            if not self._ready(control):
                continue
            deadline = min(next_heartbeat, time.monotonic() + POLL_SECONDS)
            received = udp.receive(self.sock, deadline, vq.MAX_REQUEST_BYTES + 1)
            if received is not None:
                self.handle(*received)
        self.close()

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
    Responder(Paths.from_root(args.root), bind=bind).serve(control)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
