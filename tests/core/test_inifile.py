"""INI parsing with Python 2 RawConfigParser semantics (SPEC §1.2, checklist row 2)."""

from __future__ import annotations

import pytest

from vac.core.inifile import IniValue, parse_ini


def _opts(text, section="s", **kw):
    doc = parse_ini([("f.conf", text)], **kw)
    return {k: v.value for k, v in doc.options(section).items()}, doc


@pytest.mark.parametrize("text, expected", [
    ("[s]\na = 1\n", {"a": "1"}),
    ("[s]\na: 1\n", {"a": "1"}),
    ("[s]\nA_Option = x\n", {"a_option": "x"}),                 # names folded to lower case
    ("[s]\na = value ;comment\n", {"a": "value"}),              # ; after white space
    ("[s]\na = value;not comment\n", {"a": "value;not comment"}),
    ("[s]\na = value # not a comment\n", {"a": "value # not a comment"}),
    ("[s]\na = 100%\n", {"a": "100%"}),                          # no interpolation
    ("[s]\na = %(b)s\n", {"a": "%(b)s"}),
    ("[s]\na = \"\"\n", {"a": ""}),                              # "" means empty (Python 2)
    ("[s]\na =\n", {"a": ""}),
    ("[s]\n# comment\n; comment\nrem comment\na = 1\n", {"a": "1"}),
    ("[s]\na = one\n  two\n\tthree\n", {"a": "one\ntwo\nthree"}),  # continuation lines
    ("[s]\na = one\n\n  two\n", {"a": "one\ntwo"}),             # blank line does not end it
    ("[s]\na = one\n  two ; kept\n", {"a": "one\ntwo ; kept"}),   # no comments on continuations
    ("[s]\na = one\n  # kept\n", {"a": "one\n# kept"}),
    ("[s]\na = 1\na = 2\n", {"a": "2"}),                         # later wins
    ("[s]\na = 1\n[t]\nb = 2\n[s]\nc = 3\n", {"a": "1", "c": "3"}),  # sections merged
    ("[s] trailing text\na = 1\n", {"a": "1"}),
    ("[s]\na = x = y\n", {"a": "x = y"}),
    ("[s]\na = 1\r\n", {"a": "1"}),
    ("[s]\na = ;x\n", {"a": ";x"}),                            # Python 2 quirks kept
    ("[s]\na = ;x \n", {"a": ""}),
])
def test_values(text, expected):
    values, doc = _opts(text)
    assert values == expected
    assert doc.problems == []


def test_line_numbers_and_files_recorded():
    doc = parse_ini([("a.conf", "[s]\nx = 1\ny = 2\n"), ("b.conf", "\n[s]\nx = 3\n  more\n")])
    assert doc.options("s")["x"] == IniValue("3\nmore", "b.conf", 3)
    assert doc.options("s")["y"] == IniValue("2", "a.conf", 3)
    assert doc.headers("s") == [("a.conf", 1), ("b.conf", 2)]
    assert doc.header("s") == ("a.conf", 1)


def test_default_section_appears_everywhere_but_sections_win():
    doc = parse_ini([("f", "[DEFAULT]\nd = 1\nx = 0\n[s]\nx = 2\n")])
    assert {k: v.value for k, v in doc.options("s").items()} == {"d": "1", "x": "2"}
    assert doc.sections() == ["s"]
    assert "d" not in doc.options("s", with_defaults=False)


def test_section_names_are_case_sensitive_unless_mapped():
    doc = parse_ini([("f", "[Settings]\na = 1\n[settings]\nb = 2\n")])
    assert doc.sections() == ["Settings", "settings"]
    doc = parse_ini([("f", "[A]\na = 1\n[a]\nb = 2\n")], section_key=str.lower)
    assert doc.sections() == ["a"]
    assert [h[2] for h in doc.raw_headers("a")] == ["A", "a"]


@pytest.mark.parametrize("text, line, words", [
    ("a = 1\n[s]\n", 1, "outside any section"),
    ("[s]\nnot an option\n", 2, "cannot parse"),
    ("[s]\n  indented = 1\n", 2, "cannot parse"),   # no open option: not a continuation
    ("[s]\n=1\n", 2, "cannot parse"),
])
def test_parse_errors_are_collected_with_line(text, line, words):
    doc = parse_ini([("f.conf", text)])
    assert len(doc.problems) == 1
    assert doc.problems[0].file == "f.conf" and doc.problems[0].line == line
    assert words in doc.problems[0].text


def test_parse_continues_after_errors():
    doc = parse_ini([("f", "[s]\nbad line\na = 1\nworse\nb = 2\n")])
    assert len(doc.problems) == 2
    assert set(doc.options("s")) == {"a", "b"}
