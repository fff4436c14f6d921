"""Configuration files in merge order (SPEC §1.1, checklist row 1)."""

from __future__ import annotations

import os

import pytest

from vac.adapters.conffiles import config_file_names, read_config_sources
from vac.errors import ConfigError


def _write(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_order_vac_d_sorted_then_etc_then_run(paths):
    for name in ("b.conf", "a.conf", "B.conf", "10-x.conf", "notes.txt", "c.conf~"):
        _write(os.path.join(paths.etc_vac_d, name), name)
    os.makedirs(os.path.join(paths.etc_vac_d, "dir.conf"))
    _write(paths.run_vac_conf, "run")
    _write(paths.etc_vac_conf, "etc")
    names = [os.path.relpath(n, paths.root) for n in config_file_names(paths)]
    assert names == ["etc/vac.d/10-x.conf", "etc/vac.d/B.conf", "etc/vac.d/a.conf",
                     "etc/vac.d/b.conf", "etc/vac.conf", "var/run/vac.conf"]
    texts = [text for _, text in read_config_sources(paths)]
    assert texts == ["10-x.conf", "B.conf", "a.conf", "b.conf", "etc", "run"]


def test_nothing_there(paths):
    assert read_config_sources(paths) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file_is_a_config_error(paths):
    _write(paths.etc_vac_conf, "x")
    os.chmod(paths.etc_vac_conf, 0)
    with pytest.raises(ConfigError, match="vac.conf: cannot read file"):
        read_config_sources(paths)


def test_directory_named_vac_conf_is_skipped(paths):
    os.makedirs(paths.etc_vac_conf)
    assert read_config_sources(paths) == []


def test_config_signature_changes_with_any_input_file(paths):
    from vac.adapters.conffiles import config_signature
    first = config_signature(paths)
    assert config_signature(paths) == first
    steps = [os.path.join(paths.etc_vac_d, "10-a.conf"), paths.etc_vac_conf,
             paths.run_vac_conf, paths.pipe_cache_file("vo")]
    seen = {first}
    for path in steps:
        _write(path, "x")
        now = config_signature(paths)
        assert now not in seen, path
        seen.add(now)
    _write(paths.etc_vac_conf, "longer text")
    assert config_signature(paths) not in seen
