"""RoleControl: how vacd tells a long-running role (factory, responder, metadata, mjf)
to stop or reload. Signal handlers only set these flags; role loops poll them.

The flags are plain attributes, not threading.Event: a signal handler runs in the main
thread between bytecodes, and Event.set() takes a lock the interrupted main thread may
already hold inside Event.wait(), which could deadlock. Waiting is done in short sleeps.
"""

from __future__ import annotations

import time

POLL_SECONDS = 0.1  # longest delay between a stop request and wait() returning


class RoleControl:
    """Flags shared between a role's signal handlers (or other threads) and its main loop."""

    def __init__(self) -> None:
        self._stop = False
        self._reload = False

    def request_stop(self) -> None:
        self._stop = True

    def request_reload(self) -> None:
        self._reload = True

    def should_stop(self) -> bool:
        return self._stop

    def take_reload(self) -> bool:
        """True once per reload request (the flag is cleared)."""
        if self._reload:
            self._reload = False
            return True
        return False

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` or until a stop is requested; True if stopping."""
        deadline = time.monotonic() + max(0.0, seconds)
        while not self._stop:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(POLL_SECONDS, remaining))
        return self._stop
