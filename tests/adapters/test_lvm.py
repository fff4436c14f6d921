"""LVM adapter against a recording runner (SPEC §3.5, checklist rows 51-52)."""

from __future__ import annotations

import pytest

from tests.adapters.recording import RecordingRunner
from vac.adapters.lvm import Lvm
from vac.errors import CommandError, StorageError

VGS_OUT = "  21470642176 4194304\n"
LVS_OUT = "  f1-00.example.com 10737418240\n  home 4194304000\n"


def lvm(runner, tmp_path, block=True, mounts="") -> Lvm:
    (tmp_path / "mounts").write_text(mounts)
    return Lvm(run=runner, dev_dir=str(tmp_path / "dev"), mounts_file=str(tmp_path / "mounts"),
               is_block=lambda _p: block)


def test_volume_group_parses_stdout_only(tmp_path):
    runner = RecordingRunner({"vgs": VGS_OUT})
    vg = lvm(runner, tmp_path).volume_group("vac_volume_group")
    assert (vg.total_bytes, vg.extent_bytes) == (21470642176, 4194304)
    assert runner.calls[0] == ["vgs", "--noheadings", "--options", "vg_size,extent_size",
                               "--units", "b", "--nosuffix", "vac_volume_group"]
    assert runner.envs[0] == {"LVM_SUPPRESS_FD_WARNINGS": "1"}


def test_explicit_vg_missing_is_a_clear_error(tmp_path):
    runner = RecordingRunner({"vgs": CommandError(["vgs"], 5, "Volume group not found")})
    with pytest.raises(StorageError, match="volume_group vg_site does not exist"):
        lvm(runner, tmp_path).usable_volume_group("vg_site")


def test_default_vg_used_only_if_present(tmp_path):
    assert lvm(RecordingRunner({"vgs": ""}), tmp_path).usable_volume_group(None) is None
    vg = lvm(RecordingRunner({"vgs": VGS_OUT}), tmp_path).usable_volume_group(None)
    assert vg.name == "vac_volume_group"


def test_list_lvs(tmp_path):
    runner = RecordingRunner({"lvs": LVS_OUT})
    assert lvm(runner, tmp_path).list_lvs("vg") == [("f1-00.example.com", 10737418240),
                                                     ("home", 4194304000)]
    assert runner.calls[0] == ["lvs", "--noheadings", "--units", "B", "--nosuffix",
                               "--options", "lv_name,lv_size", "vg"]


def test_create_lv_command_and_path(tmp_path):
    runner = RecordingRunner()
    path = lvm(runner, tmp_path).create_lv("vg", "f1-01.example.com", 8388608)
    assert runner.calls == [["lvcreate", "--yes", "--name", "f1-01.example.com",
                             "-L", "8388608B", "vg"]]
    assert path == str(tmp_path / "dev" / "vg" / "f1-01.example.com")


def test_create_lv_failure(tmp_path):
    runner = RecordingRunner({"lvcreate": CommandError(["lvcreate"], 5, "Insufficient free")})
    with pytest.raises(StorageError, match="cannot create logical volume vg/n.*Insufficient"):
        lvm(runner, tmp_path).create_lv("vg", "n", 4194304)


def test_create_lv_without_block_device_removes_it(tmp_path):
    runner = RecordingRunner({"lvs": "  n 4194304\n"})
    with pytest.raises(StorageError, match="is not a block device"):
        lvm(runner, tmp_path, block=False).create_lv("vg", "n", 4194304)
    assert runner.commands() == ["lvcreate", "lvs", "lvremove"]


def test_remove_absent_lv_does_nothing(tmp_path):
    runner = RecordingRunner({"lvs": LVS_OUT})
    assert lvm(runner, tmp_path).remove_lv("vg", "f1-05.example.com") is False
    assert runner.commands() == ["lvs"]


def test_remove_unmounted_lv_skips_fuser(tmp_path):
    (tmp_path / "dev" / "vg").mkdir(parents=True)
    (tmp_path / "dev" / "vg" / "n").write_text("")
    runner = RecordingRunner()
    assert lvm(runner, tmp_path).remove_lv("vg", "n") is True
    assert runner.calls == [["lvremove", "-f", "vg/n"]]


def test_remove_mounted_lv_kills_users_and_unmounts_first(tmp_path):
    dev = tmp_path / "dev" / "vg" / "n"
    dev.parent.mkdir(parents=True)
    dev.write_text("")
    runner = RecordingRunner()
    lv = lvm(runner, tmp_path, mounts=f"{dev} /var/lib/vac/machines/x/mnt ext4 rw 0 0\n")
    assert lv.remove_lv("vg", "n") is True
    assert runner.calls == [["fuser", "--kill", "--mount", str(dev)], ["umount", str(dev)],
                            ["lvremove", "-f", "vg/n"]]


def test_remove_failure_raises_unless_quiet(tmp_path):
    runner = RecordingRunner({"lvs": "  n 1\n",
                              "lvremove": CommandError(["lvremove"], 5, "in use")})
    with pytest.raises(StorageError, match="cannot remove logical volume vg/n"):
        lvm(runner, tmp_path).remove_lv("vg", "n")
    assert lvm(runner, tmp_path).remove_lv("vg", "n", quiet=True) is False
