"""sd_notify: the datagram reaches a real AF_UNIX socket (path or abstract); the systemd
library is used when importable; nothing is sent outside systemd."""

from __future__ import annotations

import os
import socket
import sys
import types

from vac.adapters import sdnotify


def _receiver(address):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_sends_to_a_socket_path_and_an_abstract_socket(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "systemd", None)          # library not installed
    path = str(tmp_path / "notify")
    with _receiver(path) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert sdnotify.notify("READY=1\nSTATUS=running")
        assert sock.recv(4096) == b"READY=1\nSTATUS=running"
    name = f"vac-test-{os.getpid()}"
    with _receiver("\0" + name) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("STATUS=x")
        assert sock.recv(4096) == b"STATUS=x"


def test_nothing_is_sent_without_notify_socket_and_a_dead_socket_is_not_fatal(
        tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.notify("READY=1")
    monkeypatch.setitem(sys.modules, "systemd", None)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert not sdnotify.notify("READY=1")


def test_the_systemd_library_is_used_when_present(monkeypatch):
    sent = []
    daemon = types.SimpleNamespace(notify=lambda message: sent.append(message) or True)
    monkeypatch.setitem(sys.modules, "systemd", types.SimpleNamespace(daemon=daemon))
    monkeypatch.setitem(sys.modules, "systemd.daemon", daemon)
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/socket")
    assert sdnotify.notify("STATUS=y") and sent == ["STATUS=y"]


def test_status_line_is_one_bounded_line():
    assert sdnotify.status_line("a\n  b\tc") == "a b c"
    long = sdnotify.status_line("x" * 1000)
    assert len(long) == sdnotify.MAX_STATUS_CHARS and long.endswith("...")
