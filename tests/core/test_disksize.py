"""LV and file disk sizing (SPEC §3.5, B24)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from vac.core import disksize

GB = 10 ** 9
EXTENT = 4 * 1024 * 1024


def test_gb_per_processor_choice():
    assert disksize.gb_per_processor(None, None) is None
    assert disksize.gb_per_processor(None, 50) == 50
    assert disksize.gb_per_processor(20, None) == 20
    assert disksize.gb_per_processor(20, 50) == 20
    assert disksize.gb_per_processor(80, 50) == 50      # machinetype only if <= global
    assert disksize.gb_per_processor(0, None) == 0


def test_fixed_gb_rounded_down_to_extents():
    size = disksize.lv_size_bytes(processors=2, gb=10, vg_total_bytes=10 ** 12,
                                  extent_bytes=EXTENT, non_vac_bytes=0, total_processors=8)
    assert size == (20 * GB // EXTENT) * EXTENT
    assert size % EXTENT == 0 and size <= 20 * GB


def test_share_of_non_vac_space():
    total, other = 800 * EXTENT + 3, 200 * EXTENT
    size = disksize.lv_size_bytes(processors=3, gb=None, vg_total_bytes=total,
                                  extent_bytes=EXTENT, non_vac_bytes=other, total_processors=6)
    assert size == 300 * EXTENT


def test_split_usage_counts_only_slot_names():
    lvs = [("f1-00.example.com", 5), ("f1-123.example.com", 7), ("home", 11),
           ("f1-0.example.com", 13), ("f2-01.example.com", 17)]
    assert disksize.split_usage("f1.example.com", lvs) == (12, 41)


def test_errors():
    with pytest.raises(ValueError):
        disksize.lv_size_bytes(processors=1, gb=None, vg_total_bytes=EXTENT - 1,
                               extent_bytes=EXTENT, non_vac_bytes=0, total_processors=1)
    with pytest.raises(ValueError):
        disksize.lv_size_bytes(processors=1, gb=1, vg_total_bytes=1, extent_bytes=0,
                               non_vac_bytes=0, total_processors=1)


def test_file_disk_default_40gb_per_processor():
    assert disksize.file_disk_bytes(processors=2, gb=None) == 80 * GB
    assert disksize.file_disk_bytes(processors=2, gb=5) == 10 * GB


@given(p=st.integers(1, 64), gb=st.one_of(st.none(), st.integers(1, 500)),
       total=st.integers(10 ** 9, 10 ** 14), extent=st.sampled_from([EXTENT, 32 * 1024 ** 2]))
def test_size_is_whole_extents_and_never_more_than_wanted(p, gb, total, extent):
    try:
        size = disksize.lv_size_bytes(processors=p, gb=gb, vg_total_bytes=total,
                                      extent_bytes=extent, non_vac_bytes=0,
                                      total_processors=64)
    except ValueError:
        return
    wanted = gb * p * GB if gb else p * total // 64
    assert size % extent == 0 and 0 < size <= wanted < size + extent
