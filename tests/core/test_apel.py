"""APEL job and sync records: golden texts, derived identities and the loader's rules."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from vac.core import apel
from vac.core.configtypes import Config, Machinetype, Settings
from vac.model import SlotRecord

START = 1_699_900_000


def make_cfg(**settings) -> Config:
    base = dict(vac_space="vac01.example.com", gocdb_sitename="UKI-EXAMPLE",
                factory_hostname="factory1.example.com")
    base.update(settings)
    mts = {"lhcb-prod": Machinetype(name="lhcb-prod",
                                    accounting_fqan="/lhcb/Role=NULL/Capability=NULL"),
           "atlas": Machinetype(name="atlas", hepscore23_per_processor=12.0)}
    return Config(settings=Settings(**base), machinetypes=MappingProxyType(mts))


def make_slot(**fields) -> SlotRecord:
    base = dict(ordinal=0, name="factory1-00.example.com", created=START - 10,
                machinetype="lhcb-prod", machine_dir="/nonexistent",
                started_time=START + 0.4, heartbeat_time=START + 86100.9,
                cpu_seconds=83000.6, processors=1, hs06=10.5,
                max_rss_bytes=2 * 1024 ** 3, uuid="3f1d8a9e-0c2b-4c55-9d7e-2a6b0f1e4d21")
    base.update(fields)
    return SlotRecord(**base)


def record_input(cfg: Config, slot: SlotRecord) -> apel.JobRecordInput:
    """The record input of ``slot`` with accounting inputs rebuilt from ``cfg`` (as for a
    machine directory made by an older vac)."""
    return apel.job_record_input(
        dataclasses.replace(slot, accounting=apel.inputs_from_config(cfg, slot)))


def test_v03_record_golden(golden, now):
    text = apel.render_job_record(record_input(make_cfg(), make_slot()))
    golden.check(text, "apel/job-v0.3.txt")
    assert apel.check_job_record(text, now) == []


def test_v03_record_without_fqan_hs06_or_rss(golden, now):
    slot = make_slot(machinetype="atlas", hs06=None, max_rss_bytes=None, processors=4)
    cfg = make_cfg(gocdb_sitename=None, mb_per_processor=3000)
    rec = record_input(cfg, slot)
    assert rec.site == "example.com" and rec.fqan is None
    assert rec.memory_kb == 3000 * 4 * 1024
    text = apel.render_job_record(dataclasses.replace(rec, hepscore23_per_processor=None))
    golden.check(text, "apel/job-v0.3-minimal.txt")
    assert "FQAN" not in text and "ServiceLevel: 1.0\n" in text
    assert apel.check_job_record(text, now) == []


def test_v04_record_golden(golden, now):
    slot = make_slot(machinetype="atlas", processors=8, hs06=84.0, accounting_fqan="/atlas")
    text = apel.render_job_record(record_input(make_cfg(), slot), "0.4")
    golden.check(text, "apel/job-v0.4.txt")
    assert "ServiceLevel: {hepspec: 10.5, HEPscore23: 12.0}\n" in text
    assert "ServiceLevelType" not in text
    assert apel.check_job_record(text, now) == []


def test_v04_without_hepscore_has_hepspec_only(now):
    text = apel.render_job_record(record_input(make_cfg(), make_slot()), "0.4")
    assert "ServiceLevel: {hepspec: 10.5}\n" in text
    assert apel.check_job_record(text, now) == []


def test_unknown_version_is_refused():
    with pytest.raises(ValueError):
        apel.render_job_record(record_input(make_cfg(), make_slot()), "0.5")


def test_sync_record_golden(golden):
    text = apel.render_sync_record("UKI-EXAMPLE", "vac01.example.com/vac-factory1.example.com",
                                   1234, 2023, 3)
    golden.check(text, "apel/sync-v0.1.txt")
    assert "Month: 3\n" in text and "Year: 2023\n" in text


@pytest.mark.parametrize("space,gocdb,site,dn", [
    ("vac01.example.com", None, "example.com", "/DC=com/DC=example/DC=vac01"),
    ("vac01.example.com", "UKI-X", "UKI-X", "/DC=com/DC=example/DC=vac01"),
    ("a.b.c.d", None, "b.c.d", "/DC=d/DC=c/DC=b/DC=a"),
    ("single", None, "single", "/DC=single"),
])
def test_identities_from_space(space, gocdb, site, dn):
    assert apel.site_name(space, gocdb) == site
    assert apel.global_user_name(space) == dn
    assert apel.submit_host(space, "f1.b.c") == f"{space}/vac-f1.b.c"


def test_hs06_is_per_processor_and_times_are_integers():
    rec = record_input(make_cfg(), make_slot(processors=4, hs06=42.0))
    assert rec.hs06_per_processor == 10.5
    assert (rec.start_time, rec.end_time, rec.wall_seconds) == (START, START + 86100, 86100)
    assert rec.cpu_seconds == 83000 and rec.memory_kb == 2 * 1024 * 1024


def test_record_name_is_hex_time_ordered_and_machine_specific():
    day, name = apel.record_name(1_700_000_000.123, "1699_lhcb_factory1-00")
    assert day == "20231114" and name.startswith("221320") and len(name) == 14
    assert apel.is_record_file_name(name)
    assert apel.record_name(1_700_000_000.9, "1699_lhcb_factory1-00") == (day, name)
    assert apel.record_name(1_700_000_000, "1699_lhcb_factory1-01")[1] != name
    assert not apel.is_record_file_name(".tmp-abc")


@pytest.mark.parametrize("text,expected", [
    ("202311", (2023, 11)), ("199901", (1999, 1)), ("202313", None), ("2023-11", None),
    ("20231", None), ("abcdef", None), ("", None)])
def test_parse_month(text, expected):
    assert apel.parse_month(text) == expected


def test_default_month_is_month_of_24h_ago():
    assert apel.default_month(1_698_796_800 + 3600) == (2023, 10)   # 1 Nov 01:00 UTC
    assert apel.default_month(1_698_796_800 + 86400) == (2023, 11)  # 2 Nov 00:00 UTC


def test_header_values_takes_first_values():
    head = "H\nSite: A\nSite: B\nSubmitHost: h/vac-x\n"
    assert apel.header_values(head, ("Site", "SubmitHost")) == {"Site": "A",
                                                                "SubmitHost": "h/vac-x"}


# --- the loader's rules: one broken variant of a good record per row ----------------

def _good(version="0.3"):
    return apel.render_job_record(record_input(make_cfg(), make_slot()), version)


def _sub(old, new, version="0.3"):
    text = _good(version)
    assert old in text
    return text.replace(old, new)


NOW = START + 90_000


@pytest.mark.parametrize("text,problem", [
    (_good(), None),
    (_good("0.4"), None),
    (_sub("Site: UKI-EXAMPLE\n", ""), "mandatory field Site missing"),
    (_sub("LocalJobId: 3f1d8a9e-0c2b-4c55-9d7e-2a6b0f1e4d21", "LocalJobId: None"),
     "mandatory field LocalJobId missing"),
    (_sub("WallDuration: 86100", "WallDuration: 86100.5"), "WallDuration '86100.5' is not"),
    (_sub("MemoryReal: 2097152", "MemoryReal: 2GB"), "MemoryReal '2GB' is not an integer"),
    (_sub("Processors: 1", "Processors: one"), "Processors 'one' is not an integer"),
    (_sub(f"EndTime: {START + 86100}", f"EndTime: {START - 1}"), "is before StartTime"),
    (_sub(f"EndTime: {START + 86100}", f"EndTime: {NOW + 2 * 86400 + 1}"),
     "more than 2 days in the future"),
    (_sub("Queue: lhcb-prod", "Queue: lhcb-pr\u00f6d"), "non-ASCII"),
    (_sub("ServiceLevelType: HEPSPEC", "ServiceLevelType: specint"), "not one of si2k"),
    (_sub("ServiceLevelType: HEPSPEC", "ServiceLevelType: hepscore23"), None),
    (_sub("ServiceLevelType: HEPSPEC\n", ""), "must be given together"),
    (_sub("ServiceLevel: 10.5", "ServiceLevel: fast"), "is not a number"),
    (_sub("ServiceLevel: {hepspec: 10.5}", "ServiceLevel: {hs06: 10.5}", "0.4"),
     "not one of si2k"),
    (_sub("ServiceLevel: {hepspec: 10.5}", "ServiceLevel: 10.5", "0.4"), "not a dictionary"),
    (_sub("ServiceLevel: {hepspec: 10.5}",
          "ServiceLevelType: HEPSPEC\nServiceLevel: {hepspec: 10.5}", "0.4"),
     "unknown field ServiceLevelType"),
    (_sub("NodeCount: 1", "NodeCount: 1\nColour: blue"), "unknown field Colour"),
    (_sub("%%\n", ""), "not terminated"),
    (_sub("APEL-individual-job-message: v0.3", "APEL-individual-job-message: v0.9"),
     "unknown header"),
    (_sub("NodeCount: 1", "NodeCount 1"), "without a key-value pair"),
])
def test_loader_rules(text, problem):
    problems = apel.check_job_record(text, NOW)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_v03_falls_back_to_hepscore23_without_hs06(now):
    slot = make_slot(machinetype="atlas", hs06=None)
    text = apel.render_job_record(record_input(make_cfg(), slot))
    assert "ServiceLevelType: HEPscore23\nServiceLevel: 12.0\n" in text
    assert apel.check_job_record(text, now) == []


# --- every record vac can render is one the loader accepts --------------------------------

_labels = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@hsettings(max_examples=200, deadline=None)
@given(space=st.lists(_labels, min_size=1, max_size=4).map(".".join),
       start=st.integers(1_000_000_000, 1_900_000_000), wall=st.integers(0, 10 ** 7),
       cpu=st.floats(0, 10 ** 8), processors=st.integers(1, 256),
       hs06=st.one_of(st.none(), st.floats(0.1, 10 ** 5)),
       rss=st.one_of(st.none(), st.integers(1, 2 ** 40)),
       version=st.sampled_from(["0.3", "0.4"]), machinetype=st.sampled_from(["lhcb-prod",
                                                                             "atlas"]))
def test_rendered_records_pass_the_loader_rules(space, start, wall, cpu, processors, hs06,
                                                rss, version, machinetype):
    slot = make_slot(started_time=float(start), heartbeat_time=float(start + wall),
                     cpu_seconds=cpu, processors=processors, hs06=hs06, max_rss_bytes=rss,
                     machinetype=machinetype)
    text = apel.render_job_record(record_input(make_cfg(vac_space=space), slot),
                                  version)
    assert apel.check_job_record(text, start + wall) == []
