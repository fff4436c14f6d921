"""Property tests: no input crashes the parsers; the INI model agrees with configparser."""

from __future__ import annotations

import configparser

from hypothesis import given, settings
from hypothesis import strategies as st

from vac.core import schema
from vac.core.config import parse_config
from vac.core.inifile import parse_ini
from vac.core.pipes import expand_pipe
from vac.errors import ConfigError

NAMES = st.text("abcdefghij_", min_size=1, max_size=8)
VALUES = st.text("abc 123.%:=#", max_size=12).map(str.strip).filter(
    lambda v: not v.startswith(("#", ";", "=", ":")))
OPTION_NAMES = st.sampled_from(
    [o.name for o in schema.SETTINGS_OPTIONS + schema.MACHINETYPE_OPTIONS]
    + ["user_data_option_x", "cpu_total", "vm_model", "junk"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) |
                    st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parse_ini_never_raises(text):
    parse_ini([("f", text)])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["settings", "machinetype a", "vacuum_pipe p",
                                           "targetshares", "DEFAULT", "other"]),
                          st.lists(st.tuples(OPTION_NAMES, st.text(max_size=20)), max_size=5)),
                max_size=5))
def test_parse_config_only_raises_config_error(sections):
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in options)
                   for name, options in sections)
    try:
        parse_config([("f", text)], hostname="f1.example.com", processor_count=4,
                     pipe_documents={"p": {"machinetypes": []}})
    except ConfigError as e:
        assert e.problems and all(str(p) for p in e.problems)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["suffix", "target_share", "root_image", "user_data",
                                        "heartbeat_file", "tmp_binds", "fizzle_seconds",
                                        "cvmfs_repositories", "junk"]), JSON, max_size=6),
       st.floats(min_value=0, max_value=100))
def test_expand_pipe_never_raises(entry, share):
    expansion = expand_pipe("vo", "https://x/p", {"machinetypes": [entry, entry]}, share)
    for machinetype in expansion.machinetypes:
        assert all(isinstance(v, str) for v in machinetype.options.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NAMES, st.lists(st.tuples(NAMES, VALUES), max_size=4)),
                min_size=1, max_size=4))
def test_agrees_with_configparser_on_plain_files(sections):
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in options)
                   for name, options in sections)
    reference = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";",),
                                             empty_lines_in_values=False,
                                             default_section="DEFAULT")
    reference.read_string(text)
    document = parse_ini([("f", text)])
    assert document.sections() == reference.sections()
    for name in reference.sections():
        ours = {k: v.value for k, v in document.options(name).items()}
        assert ours == dict(reference.items(name))
