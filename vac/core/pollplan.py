"""When the VacQuery client (re)sends a query to each factory of one batch (pure).

Adaptive retransmission instead of the original's fixed rounds (SPEC §7.5):

* every factory is asked at once;
* a factory that has not answered completely is asked again after RTO, then after
  2, 4, 8 ... RTO, the interval capped at a quarter of the silence limit below; a new
  reply from it resets its interval, so a factory whose many replies are still
  arriving is not asked again;
* RTO follows the round-trip times (RTT) of this batch: twice their running average
  (gain 1/8, as TCP's SRTT), between RTO_MIN and RTO_MAX, RTO_INITIAL until the first
  reply. A reply cannot say which send it answers, so its sample is the time since the
  LAST send to that factory, a lower bound of its true round trip (a lost first
  request never inflates RTO);
* a factory that has sent nothing new for SILENT_RTTS x the smallest RTT, but at least
  SILENT_SECONDS and at most SILENT_MAX_SECONDS, since it was first asked or last made
  progress is given up, so a dead factory costs 1.5-2 s, not the whole
  ``udp_timeout_seconds``. The smallest RTT is the path's own delay; the queueing of a
  big batch (500 factories answering at once) lengthens the other samples but must not
  lengthen the wait for the dead;
* nothing is sent or awaited after the batch's deadline (``udp_timeout_seconds``).

Times are seconds on one monotonic clock, passed in by the caller.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

RTO_INITIAL = 0.1
RTO_MIN = 0.05
RTO_MAX = 1.0
SILENT_SECONDS = 1.5
SILENT_MAX_SECONDS = 2.0
SILENT_RTTS = 8


class _Peer:
    __slots__ = ("sends", "tries", "last_sent", "progress", "next_send", "state")

    def __init__(self) -> None:
        self.sends = 0            # datagrams sent to it in this batch
        self.tries = 0            # sends since its last progress
        self.last_sent = 0.0
        self.progress = 0.0       # first send, or its latest new reply
        self.next_send = 0.0
        self.state = "active"     # active | done | given up


class PollPlan:
    """The retransmission schedule of one query batch."""

    def __init__(self, targets: Iterable[str], deadline: float):
        self.deadline = deadline
        self.peers: Dict[str, _Peer] = {t: _Peer() for t in targets}
        self.srtt: Optional[float] = None       # running average RTT (seconds)
        self.rtt_min: Optional[float] = None

    @property
    def rto(self) -> float:
        """Current retransmission timeout (seconds)."""
        if self.srtt is None:
            return RTO_INITIAL
        return min(RTO_MAX, max(RTO_MIN, 2.0 * self.srtt))

    @property
    def silent_seconds(self) -> float:
        """How long a factory may send nothing new before it is given up."""
        return min(SILENT_MAX_SECONDS,
                   max(SILENT_SECONDS, SILENT_RTTS * (self.rtt_min or 0.0)))

    def due(self, now: float) -> List[str]:
        """Factories to send to now (factories silent for too long are given up first)."""
        if now >= self.deadline:
            return []
        silent = self.silent_seconds
        due = []
        for name, peer in self.peers.items():
            if peer.state != "active":
                continue
            if peer.sends and now >= peer.progress + silent:
                peer.state = "given up"
            elif now >= peer.next_send:
                due.append(name)
        return due

    def sent(self, name: str, now: float) -> None:
        """A request went to ``name`` at ``now``."""
        peer = self.peers[name]
        if not peer.sends:
            peer.progress = now
        peer.sends += 1
        peer.tries += 1
        peer.last_sent = now
        rto = self.rto
        peer.next_send = now + min(rto * 2 ** (peer.tries - 1),
                                   max(rto, self.silent_seconds / 4))

    def heard(self, name: str, now: float, complete: bool) -> None:
        """A new (not duplicate) reply from ``name`` arrived at ``now``."""
        peer = self.peers.get(name)
        if peer is None or peer.state != "active":
            return
        if peer.tries:                                  # first reply since a send
            sample = now - peer.last_sent
            if self.srtt is None or self.rtt_min is None:
                self.srtt = self.rtt_min = sample
            else:
                self.srtt += (sample - self.srtt) / 8.0
                self.rtt_min = min(self.rtt_min, sample)
        peer.progress = now
        peer.tries = 0
        peer.next_send = now + self.rto
        if complete:
            peer.state = "done"

    def next_wakeup(self, now: float) -> Optional[float]:
        """When the caller must act next (send or give up); None when the batch is over."""
        if now >= self.deadline:
            return None
        silent = self.silent_seconds
        times = [min(p.next_send, p.progress + silent) if p.sends else p.next_send
                 for p in self.peers.values() if p.state == "active"]
        if not times:
            return None
        return min(self.deadline, max(now, min(times)))

    def given_up(self) -> List[str]:
        return sorted(n for n, p in self.peers.items() if p.state == "given up")
