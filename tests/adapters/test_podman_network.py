"""vac's podman network file: written once, rewritten only when it differs, and a clear
error when podman's network backend cannot put containers on an existing bridge."""

from __future__ import annotations

import os

import pytest

from tests.adapters.recording import RecordingRunner
from vac.adapters.podman import Podman, PodmanError


def podman(tmp_path, backend="cni"):
    runner = RecordingRunner({"podman": backend + "\n"})
    return Podman(run=runner, cni_config_dir=str(tmp_path / "net.d")), runner


def test_network_file_written_once_and_repaired(tmp_path):
    p, _runner = podman(tmp_path)
    path = tmp_path / "net.d" / "vac.conflist"
    assert p.ensure_network("vac", "A\n") is True
    assert path.read_text() == "A\n"
    assert p.ensure_network("vac", "A\n") is False
    path.write_text("edited by hand\n")
    assert p.ensure_network("vac", "A\n") is True and path.read_text() == "A\n"
    assert sorted(os.listdir(tmp_path / "net.d")) == ["vac.conflist"]


def test_netavark_backend_is_one_clear_error(tmp_path):
    p, _runner = podman(tmp_path, backend="netavark")
    with pytest.raises(PodmanError, match='network_backend = "cni"'):
        p.ensure_network("vac", "A\n")
    assert not (tmp_path / "net.d").exists()
