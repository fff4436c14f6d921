"""vac's command line (issue point 9): --json on either side of the command, a clean
--help with one line per command, and the exit statuses vac(1) documents."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest

from vac.cli import build_parser, main
from vac.cli.common import EXIT_FAILURE, EXIT_USAGE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = "[settings]\nvac_space = vac01.example.com\nfactory_hostname = f1.example.com\n"


def _commands():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", [["--json", "machines"], ["machines", "--json"],
                                  ["-J", "config", "--check"], ["config", "-J", "--check"]])
def test_json_is_accepted_before_and_after_the_command(argv):
    assert build_parser().parse_args(argv).json is True
    assert build_parser().parse_args([a for a in argv if a not in ("--json", "-J")]).json \
        is False


def test_json_after_the_command_gives_the_same_output(paths):
    os.makedirs(os.path.dirname(paths.etc_vac_conf))
    with open(paths.etc_vac_conf, "w") as f:
        f.write(CONF)
    before = _run("--root", paths.root, "--json", "config")
    after = _run("config", "--json", "--root", paths.root)
    assert before == after and json.loads(before[1])["valid"] is True


def test_help_lists_every_command_on_one_line_without_suppress(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = _run("--help")
    assert code == 0 and "==SUPPRESS==" not in out
    listing = out.split("commands:")[1].splitlines()[2:]
    names = [line.split()[0] for line in listing if line.strip()]
    assert names == list(_commands().choices)
    for line in listing:
        assert re.match(r"^    \S+ +\S.*$", line), f"not one line: {line!r}"
    for action in _commands()._choices_actions:
        assert action.help and action.help != argparse.SUPPRESS, action.dest


@pytest.mark.parametrize("argv", [[], ["no-such-command"], ["--bogus", "machines"],
                                  ["machines", "--bogus"], ["machinetype"],
                                  ["apel-sync", "202613"], ["squid-conf", "only-one"],
                                  ["proxy-init"], ["cernvm-signature"]])
def test_usage_errors_exit_2(paths, argv):
    os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
    with open(paths.etc_vac_conf, "w") as f:
        f.write(CONF)
    code, _out, err = _run("--root", paths.root, *argv)
    assert code == EXIT_USAGE and err, (argv, err)


def test_failures_exit_1_and_the_exit_statuses_are_documented(paths):
    code, _out, err = _run("--root", paths.root, "machines")       # no configuration
    assert code == EXIT_FAILURE and "Reading configuration fails" in err
    assert _run("scan")[0] == EXIT_FAILURE
    with open(os.path.join(REPO, "man", "vac.1"), encoding="utf-8") as f:
        status = f.read().split(".SH EXIT STATUS")[1].split(".SH")[0]
    for code, words in ((0, "on success"), (1, "configuration error"), (2, "usage error")):
        assert f".B {code}\n" in status and words in status, status
