"""``python -m vac.demo config|clean --root DIR`` writes a valid demo configuration and removes it."""

from __future__ import annotations

import os

from vac import demo
from vac.paths import Paths
from vac.services.configload import load_config


def test_demo_run_writes_valid_config_and_clean_removes_it(tmp_path, capsys):
    root = str(tmp_path / "demo")
    assert demo.main(["config", "--root", root]) == 0
    out = capsys.readouterr().out
    assert "Configuration OK: 2 machinetype(s)" in out
    cfg = load_config(Paths(root), processor_count=2, pipes="none")
    assert cfg.settings.vac_space == "demo.vac.test"
    assert "." in cfg.settings.factory_hostname
    assert cfg.settings.domain_type == "qemu"
    shares = sorted(m.target_share for m in cfg.machinetypes.values())
    assert shares == [1.0, 2.0]
    assert demo.main(["clean", "--root", root]) == 0
    assert not os.path.exists(root)


def test_clean_refuses_non_demo_directories(tmp_path):
    (tmp_path / "precious").write_text("x")
    assert demo.main(["clean", "--root", str(tmp_path)]) == 1
    assert (tmp_path / "precious").exists()
    assert demo.main(["clean", "--root", str(tmp_path / "absent")]) == 0
