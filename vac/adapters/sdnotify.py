"""systemd service notifications (sd_notify(3)): READY=1, STATUS=..., STOPPING=1.

Through the systemd library (python3-systemd, ``systemd.daemon.notify``) when it is
installed; otherwise the same datagram is sent to ``$NOTIFY_SOCKET`` directly (the
protocol is one ``KEY=VALUE`` line per field in one AF_UNIX datagram; a leading ``@``
names an abstract socket). Without ``$NOTIFY_SOCKET`` (not started by systemd with
Type=notify) nothing is sent. A failure to notify is returned, never raised: systemd's
view must not decide whether vacd runs.
"""

from __future__ import annotations

import os
import socket
from typing import Optional

MAX_STATUS_CHARS = 400          # systemctl status shows one line; keep the datagram small


def _library_notify():
    """``systemd.daemon.notify`` if python3-systemd is importable, else None."""
    try:
        from systemd import daemon  # type: ignore[import-not-found]
    except ImportError:
        return None
    return getattr(daemon, "notify", None)


def status_line(text: str) -> str:
    """``text`` as one STATUS value: a single line, at most MAX_STATUS_CHARS."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_STATUS_CHARS else line[:MAX_STATUS_CHARS - 3] + "..."


def notify(message: str, socket_path: Optional[str] = None) -> bool:
    """Send ``message`` (e.g. ``"READY=1\\nSTATUS=running"``); True if it was sent.

    ``socket_path`` overrides ``$NOTIFY_SOCKET`` (tests).
    """
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    library = _library_notify() if socket_path is None else None
    if library is not None:
        return bool(library(message))
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode("utf-8", "replace"), address)
    except OSError:
        return False
    return True
