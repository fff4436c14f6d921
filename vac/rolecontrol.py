"""RoleControl: how vacd tells a long-running role (factory, responder, metadata, mjf)
to stop or reload. Signal handlers only set these flags; role loops poll them.
"""

from __future__ import annotations

import threading


class RoleControl:
    """Flags shared between a role's signal handlers and its main loop."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._reload = threading.Event()

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def take_reload(self) -> bool:
        """True once per reload request (the flag is cleared)."""
        if self._reload.is_set():
            self._reload.clear()
            return True
        return False

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` or until a stop is requested; True if stopping."""
        return self._stop.wait(max(0.0, seconds))
