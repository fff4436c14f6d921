"""The LV shim of the test environment: lvcreate/lvremove in shim_bin give (and take away) a
real block device /dev/VG/NAME over the LV's extents, with or without device-mapper."""

from __future__ import annotations

import os
import stat

import pytest

pytestmark = pytest.mark.integration


def block_size(path: str) -> int:
    """Size of a block device in bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def test_lvcreate_gives_a_block_device_and_lvremove_takes_it_away(real_env):
    a = real_env.create_lv("vactest-shim-a", 8)
    b = real_env.create_lv("vactest-shim-b", 16)
    for path, mib in ((a, 8), (b, 16)):
        assert stat.S_ISBLK(os.stat(path).st_mode)
        assert block_size(path) == mib * 1024 * 1024
    with open(a, "r+b") as f:  # the two LVs do not overlap
        f.write(b"A" * 4096)
    with open(b, "r+b") as f:
        f.write(b"B" * 4096)
    with open(a, "rb") as f:
        assert f.read(4096) == b"A" * 4096
    real_env.remove_lv("vactest-shim-a")
    assert not os.path.exists(a)
    assert os.path.exists(b)
    assert "vactest-shim-a" not in real_env.lv_names()
    assert "vactest-shim-b" in real_env.lv_names()


def test_failed_lvcreate_keeps_its_exit_code(real_env):
    res = real_env.run(["lvcreate", "-y", "-L", "1T", "-n", "vactest-too-big",
                        real_env.volume_group], check=False)
    assert res.returncode != 0
    assert not os.path.exists(real_env.lv_path("vactest-too-big"))
