"""Machine/Job Features maps (SPEC §5.4, checklist rows 57-60)."""

from __future__ import annotations

from types import MappingProxyType

from vac.core import mjf
from vac.core.configtypes import Settings

NOW = 1_700_000_000


def _settings(**kw):
    return Settings(vac_space="vac01.example.com", **kw)


def test_checklist_57_full_file_set():
    s = _settings(hs06_per_processor=10.0, mb_per_processor=2048)
    mf = mjf.machinefeatures(s, 2, NOW + 3600)
    jf = mjf.jobfeatures(s, 2, NOW + 3600, NOW)
    assert mf == {"hs06": "20.0", "total_cpu": "2", "phys_cores": "2", "log_cores": "2",
                  "jobslots": "1", "shutdowntime": str(NOW + 3600)}
    assert jf == {"shutdowntime_job": str(NOW + 3600), "cpufactor_lrms": "1.0",
                  "cpu_limit_secs_lrms": "7200", "cpu_limit_secs": "7200",
                  "wall_limit_secs_lrms": "3600", "wall_limit_secs": "3600",
                  "jobstart_secs": str(NOW), "hs06_job": "20.0",
                  "max_rss_bytes": "4294967296", "mem_limit_MB": "4294",
                  "allocated_cpu": "2\n", "allocated_CPU": "2\n"}


def test_checklist_58_no_hs06_files_without_hs06_per_processor():
    s = _settings()
    assert "hs06" not in mjf.machinefeatures(s, 1, NOW)
    assert "hs06_job" not in mjf.jobfeatures(s, 1, NOW, NOW)


def test_checklist_59_machinefeatures_options():
    s = _settings(machinefeatures_options=MappingProxyType({"foo": "bar", "x_y": "1"}))
    mf = mjf.machinefeatures(s, 1, NOW)
    assert mf["foo"] == "bar" and mf["x_y"] == "1"


def test_limits_never_negative():
    jf = mjf.jobfeatures(_settings(), 4, NOW - 10, NOW)
    assert jf["wall_limit_secs"] == "0" and jf["cpu_limit_secs"] == "0"


def test_checklist_60_lowered_shutdown_time_files():
    assert mjf.lowered_shutdown_time(NOW + 5) == {
        ("machinefeatures", "shutdowntime"): str(NOW + 5),
        ("jobfeatures", "shutdowntime_job"): str(NOW + 5)}
