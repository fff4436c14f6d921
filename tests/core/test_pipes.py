"""Vacuum pipe documents -> machinetypes (SPEC §10.1, §10.3, checklist rows 22-26)."""

from __future__ import annotations

import json
import os

import pytest

from vac.core.config import parse_config
from vac.core.pipes import (DEFAULT_CACHE_SECONDS, cache_seconds, expand_pipe, merge_layers,
                            parse_pipe_json)

URL = "https://vo.example.org/vo.pipe"
HOST = "factory1.example.com"
DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "pipes")


def entry(suffix, **options):
    return dict(suffix=suffix, root_image="https://vo.example.org/cernvm.iso", **options)


def load(conf, documents):
    return parse_config([("vac.conf", conf)], hostname=HOST, processor_count=8,
                        pipe_documents=documents)


PIPE_SECTION = ("[settings]\nvac_space = vac01.example.com\n"
                f"[vacuum_pipe vo]\nvacuum_pipe_url = {URL}\ntarget_share = 10\n")


def test_expansion_names_and_prefix():
    cfg = load(PIPE_SECTION, {"vo": {"machinetypes": [entry("prod"), entry("dev")]}})
    assert sorted(cfg.machinetypes) == ["vo-dev", "vo-prod"]
    assert all(m.pipe_prefix == "vo" for m in cfg.machinetypes.values())
    assert cfg.machinetypes["vo-prod"].machinetype_path == "/var/lib/vac/machinetypes/vo"


def test_target_share_normalised():
    doc = {"machinetypes": [entry("a", target_share=1), entry("b", target_share=3),
                            entry("c"), entry("d", target_share="junk")]}
    cfg = load(PIPE_SECTION, {"vo": doc})
    shares = {n: m.target_share for n, m in cfg.machinetypes.items()}
    assert shares == {"vo-a": 2.5, "vo-b": 7.5, "vo-c": 0.0, "vo-d": 0.0}


def test_precedence_local_over_section_over_pipe():
    conf = PIPE_SECTION + ("fizzle_seconds = 200\nbackoff_seconds = 300\n"
                           "[machinetype vo-prod]\nfizzle_seconds = 100\n")
    doc = {"machinetypes": [entry("prod", fizzle_seconds=1, backoff_seconds=2,
                                  heartbeat_seconds=3)]}
    cfg = load(conf, {"vo": doc})
    mt = cfg.machinetypes["vo-prod"]
    assert (mt.fizzle_seconds, mt.backoff_seconds, mt.heartbeat_seconds) == (100, 300, 3)
    assert str(cfg.origin("machinetype vo-prod", "fizzle_seconds")) == "vac.conf:9"
    assert str(cfg.origin("machinetype vo-prod", "backoff_seconds")) == "vac.conf:7"
    assert str(cfg.origin("machinetype vo-prod", "heartbeat_seconds")) == URL


def test_merge_layers_does_not_inherit_url_or_share():
    merged = merge_layers({"a": 1, "target_share": 5}, {"vacuum_pipe_url": "u",
                                                        "target_share": 9, "a": 2}, {})
    assert merged == {"a": 2, "target_share": 5}


@pytest.mark.parametrize("key, value, words", [
    ("heartbeat_file", "../x", "must not contain /"),
    ("user_data_file_motd", "/etc/passwd", "must not contain /"),
    ("cvmfs_repositories", "a/b", "must not contain /"),
    ("user_data", "a/b", "must start with http:// or https://"),
    ("user_data", "https://x/../y", "must not contain /../"),
    ("root_image", "/etc/shadow", "must start with docker://, /cvmfs/, http:// or https://"),
    ("root_image", "https://x/../../y", "must not contain /../"),
    ("machinetype_path", "/tmp", "is not accepted"),
    ("unknown_key", "1", "is not accepted"),
    ("fizzle_seconds", {"a": 1}, "has no usable value"),
])
def test_unsafe_or_unknown_values_ignored_with_message(key, value, words):
    doc = {"machinetypes": [dict(entry("prod"), **{key: value})]}
    expansion = expand_pipe("vo", URL, doc, 1.0)
    assert key not in expansion.machinetypes[0].options
    assert any(key in w and URL in w and words in w for w in expansion.warnings), \
        expansion.warnings


@pytest.mark.parametrize("key, value", [
    ("root_image", "docker://x"), ("root_image", "/cvmfs/sft.cern.ch/i.iso"),
    ("root_image", "plain.iso"), ("user_data", "https://x/u"), ("user_data", "template"),
    ("heartbeat_file", "heartbeat"), ("user_data_option_x", "a/b is fine here"),
])
def test_safe_values_kept(key, value):
    doc = {"machinetypes": [dict(entry("prod"), **{key: value})]}
    assert expand_pipe("vo", URL, doc, 1.0).machinetypes[0].options[key] == value


def test_values_become_text_and_lists_are_joined_b21():
    doc = {"machinetypes": [entry("prod", fizzle_seconds=600, machines=1.0,
                                  user_data_proxy=True, tmp_binds=["/a", "/b"],
                                  cvmfs_repositories=["atlas.cern.ch", "grid.cern.ch"])]}
    options = expand_pipe("vo", URL, doc, 1.0).machinetypes[0].options
    assert options["fizzle_seconds"] == "600"
    assert options["user_data_proxy"] == "true"
    assert options["tmp_binds"] == "/a /b"
    assert options["cvmfs_repositories"] == "atlas.cern.ch grid.cern.ch"


def test_entries_without_suffix_skipped_and_missing_machinetypes_yield_none():
    expansion = expand_pipe("vo", URL, {"machinetypes": [{"root_image": "x"}, entry("ok")]}, 1)
    assert [m.name for m in expansion.machinetypes] == ["vo-ok"]
    assert any("suffix is missing from one machinetype within " + URL in w
               for w in expansion.warnings)
    assert expand_pipe("vo", URL, {"cache_seconds": 5}, 1).machinetypes == ()
    assert expand_pipe("vo", URL, {"machinetypes": "x"}, 1).warnings


def test_bad_suffix_skipped():
    expansion = expand_pipe("vo", URL, {"machinetypes": [entry("Bad_One")]}, 1)
    assert expansion.machinetypes == () and "not a-z 0-9" in expansion.warnings[0]


def test_bad_pipe_value_drops_only_that_machinetype_with_warning():
    doc = {"machinetypes": [entry("prod", max_processors="many"), entry("dev")]}
    cfg = load(PIPE_SECTION, {"vo": doc})
    assert sorted(cfg.machinetypes) == ["vo-dev"]
    assert any("max_processors: 'many' is not valid" in w and "not created" in w
               for w in cfg.warnings)


def test_pipe_entry_without_root_image_dropped_not_fatal():
    cfg = load(PIPE_SECTION, {"vo": {"machinetypes": [{"suffix": "x"}]}})
    assert cfg.machinetypes == {}
    assert any("root_image: is missing" in w for w in cfg.warnings)


def test_local_override_section_without_pipe_document_is_skipped():
    conf = PIPE_SECTION + "[machinetype vo-prod]\nfizzle_seconds = 1\n"
    cfg = load(conf, {})
    assert cfg.machinetypes == {}
    assert any("whose pipe is not available" in w for w in cfg.warnings)
    cfg = load(conf, None)                  # pipes not expanded at all: nothing to say
    assert cfg.machinetypes == {} and cfg.warnings == ()


@pytest.mark.parametrize("document, seconds", [
    ({}, DEFAULT_CACHE_SECONDS), ({"cache_seconds": 60}, 60), ({"cache_seconds": "60"}, 60),
    ({"cache_seconds": 0}, 0), ({"cache_seconds": "x"}, DEFAULT_CACHE_SECONDS),
    ({"cache_seconds": -1}, DEFAULT_CACHE_SECONDS), ({"cache_seconds": True}, 3600),
])
def test_cache_seconds(document, seconds):
    assert cache_seconds(document) == seconds


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_parse_pipe_json_rejects_non_objects(data):
    with pytest.raises(ValueError):
        parse_pipe_json(data)


def test_example_pipe_fixture_yields_example_prod():
    with open(os.path.join(DATA, "example.pipe"), "rb") as f:
        document = parse_pipe_json(f.read())
    conf = ("[settings]\nvac_space = vac01.example.com\n[vacuum_pipe example]\n"
            "vacuum_pipe_url = https://repo.example.org/example.pipe\ntarget_share = 1\n")
    cfg = load(conf, {"example": document})
    mt = cfg.machinetypes["example-prod"]
    assert (mt.backoff_seconds, mt.fizzle_seconds, mt.min_wallclock_seconds,
            mt.max_wallclock_seconds, mt.max_processors, mt.target_share) == \
        (600, 600, 9000, 86400, 1, 1.0)
    assert json.dumps(document)  # round-trips
