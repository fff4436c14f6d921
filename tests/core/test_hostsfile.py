"""Managed /etc/hosts lines: exact format, appended once, idempotent."""

from __future__ import annotations

from vac.core import hostsfile


def test_line_format():
    lines = hostsfile.desired_lines("f1.example.com", 101)
    assert lines[0] == "169.254.169.0 f1-00 f1-00.example.com # added by Vac"
    assert lines[100] == "169.254.169.100 f1-100 f1-100.example.com # added by Vac"


def test_hundred_lines_written_once():
    desired = hostsfile.desired_lines("f1.example.com", 100)
    original = "127.0.0.1 localhost\n" + desired[5] + "\n"
    first = hostsfile.updated_text(original, desired)
    assert first.startswith(original)
    assert hostsfile.updated_text(first, desired) is None
    for line in desired:
        assert first.splitlines().count(line) == 1


def test_missing_newline_and_empty_file():
    desired = hostsfile.desired_lines("f1", 1)
    assert hostsfile.updated_text("127.0.0.1 localhost", desired) == \
        "127.0.0.1 localhost\n169.254.169.0 f1-00 f1-00 # added by Vac\n"
    assert hostsfile.updated_text("", desired) == desired[0] + "\n"


def test_missing_lines_ignores_surrounding_blanks():
    desired = hostsfile.desired_lines("f1.example.com", 2)
    assert hostsfile.missing_lines("  " + desired[0] + "  \n", desired) == [desired[1]]
